"""selfsup-kernels: contrastive losses that never materialise the N×K logits.

Every loss has a functional form and an ``nn.Module``. Backends: ``"triton"`` (fused kernels with
an online log-sum-exp; what ``"auto"`` picks for CUDA tensors when triton imports), ``"torch"``
(row chunks of the logits; ``"auto"`` everywhere else), ``"reference"`` (all logits at once: the
test oracle). The heavy part of every loss runs through ``torch.library`` custom ops
(``selfsup_kernels::chunked_lse``, ``chunked_lse_sum``, ``triton_lse`` and their backwards), so
``torch.compile`` keeps a training step in one graph.
"""

from selfsup_kernels.info_nce import InfoNCELoss, info_nce
from selfsup_kernels.nt_xent import NTXentLoss, nt_xent
from selfsup_kernels.sup_con import SupConLoss, sup_con

__version__ = "0.1.0"

__all__ = ["InfoNCELoss", "NTXentLoss", "SupConLoss", "info_nce", "nt_xent", "sup_con"]
