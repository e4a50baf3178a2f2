"""selfsup-kernels: contrastive losses that never materialise the N×K logits.

Every loss has a functional form and an ``nn.Module``; ``backend="torch"`` (the default on every
device) evaluates the logits in row chunks with a recomputing backward, ``backend="reference"``
forms them all (the test oracle).
"""

from selfsup_kernels.info_nce import InfoNCELoss, info_nce
from selfsup_kernels.nt_xent import NTXentLoss, nt_xent
from selfsup_kernels.sup_con import SupConLoss, sup_con

__version__ = "0.1.0"

__all__ = ["InfoNCELoss", "NTXentLoss", "SupConLoss", "info_nce", "nt_xent", "sup_con"]
