"""Training methods, one module each, registered through ``selfsup_register_methods``."""

from selfsup.methods.base import Method
from selfsup.models.inputs import images_to_tensor

__all__ = ["Method", "images_to_tensor"]
