"""The objectives of selfsup, one file per loss, usable from your own training code.

- The fused contrastive losses of ``selfsup-kernels`` (NT-Xent, InfoNCE, SupCon; Triton on CUDA,
  a row-chunked path elsewhere), re-exported: :func:`nt_xent`, :func:`info_nce`, :func:`sup_con`
  and their modules.
- :mod:`~selfsup.losses.dino` (DINO), :mod:`~selfsup.losses.byol` (BYOL, SimSiam),
  :mod:`~selfsup.losses.barlow_twins`, :mod:`~selfsup.losses.vicreg`,
  :mod:`~selfsup.losses.sinkhorn` (SwAV), :mod:`~selfsup.losses.nce` (InstDisc, memory-bank
  InfoNCE), :mod:`~selfsup.losses.local_aggregation`, :mod:`~selfsup.losses.masked_patch` (MAE),
  :mod:`~selfsup.losses.mutual_information` (Deep InfoMax's bounds).
- Semi-supervised: :mod:`~selfsup.losses.fixmatch`, :mod:`~selfsup.losses.uda` (consistency and
  training-signal annealing), :mod:`~selfsup.losses.mixmatch` (sharpening, MixUp, the two
  losses), :mod:`~selfsup.losses.label_augmentation` (joint labels, aggregation,
  self-distillation).

Each function's docstring gives its paper's equation, the shapes it takes and what it raises.
"""

from selfsup_kernels import *  # noqa: F401,F403
from selfsup_kernels import __all__ as _kernel_names

from selfsup.losses.barlow_twins import barlow_twins_loss
from selfsup.losses.byol import byol_loss
from selfsup.losses.dino import dino_loss
from selfsup.losses.fixmatch import fixmatch_loss
from selfsup.losses.label_augmentation import aggregated_logits, joint_labels, self_distillation_loss
from selfsup.losses.local_aggregation import local_aggregation_loss
from selfsup.losses.masked_patch import masked_patch_loss
from selfsup.losses.mixmatch import linear_rampup, mixmatch_losses, mixup, sharpen
from selfsup.losses.mutual_information import dv_bound, infonce_bound, jsd_bound, mi_bound
from selfsup.losses.nce import bank_info_nce, instance_softmax_loss, nce_loss
from selfsup.losses.sinkhorn import sinkhorn, swapped_prediction_loss
from selfsup.losses.uda import tsa_cross_entropy, tsa_threshold, uda_consistency
from selfsup.losses.vicreg import vicreg_terms

__all__ = [
    *_kernel_names,
    "aggregated_logits",
    "bank_info_nce",
    "barlow_twins_loss",
    "byol_loss",
    "dino_loss",
    "dv_bound",
    "fixmatch_loss",
    "infonce_bound",
    "instance_softmax_loss",
    "joint_labels",
    "jsd_bound",
    "linear_rampup",
    "local_aggregation_loss",
    "masked_patch_loss",
    "mi_bound",
    "mixmatch_losses",
    "mixup",
    "nce_loss",
    "self_distillation_loss",
    "sharpen",
    "sinkhorn",
    "swapped_prediction_loss",
    "tsa_cross_entropy",
    "tsa_threshold",
    "uda_consistency",
    "vicreg_terms",
]
