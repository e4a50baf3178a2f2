"""Distributed data parallel through ``torchrun`` (the distributed engine; nothing home-made).

``torchrun --nproc-per-node K -m selfsup train ...`` sets ``RANK``/``WORLD_SIZE``; the trainer then
joins the process group, wraps the method in ``DistributedDataParallel`` and feeds each rank its
share ``batch[rank::world]`` of the same global batch (:mod:`selfsup.data.sampler`), so gradients (averaged by DDP) equal those
of one process on the global batch for methods whose loss is a mean over samples and that hold no
batch statistics (BatchNorm sees per-rank batches unless ``TrainConfig.sync_bn`` synchronises it).
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist


def init_from_env(backend: str | None = None) -> bool:
    """Joins the process group when launched by torchrun (``WORLD_SIZE`` > 1). Returns whether
    training is distributed. A group joined here is left again at interpreter exit: a gloo group
    still alive during interpreter teardown can abort the process when its threads are destroyed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    atexit.register(leave_process_group)
    return True


def leave_process_group(timeout_s: float = 60.0) -> None:
    """Destroys the default process group if one is active (idempotent), after every rank has
    arrived here: a rank that tears its group down while another still talks to it (or while rank
    0's rendezvous store is gone) can abort. The wait is bounded by ``timeout_s`` on gloo (a
    monitored barrier raises if a rank died); the group is destroyed either way."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_world_size() > 1:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=timeout_s))
            else:
                dist.barrier()
    except RuntimeError:
        pass  # a rank is gone: nothing left to wait for
    finally:
        dist.destroy_process_group()
