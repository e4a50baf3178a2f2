"""The fused contrastive losses of ``selfsup-kernels``, re-exported."""

from selfsup_kernels import *  # noqa: F401,F403
from selfsup_kernels import __all__  # noqa: F401
