"""A plain-PyTorch trainer: deterministic batches, accumulation, AMP, schedules, atomic checkpoints
with exact resume, JSONL metrics and a progress line.

Batches are a function of ``(seed, epoch)`` only: epoch ``e`` visits a permutation of the
dataset drawn from ``(seed, e)`` and every sample's augmentation stream is ``(seed, e, index)``.
A checkpoint holds the model, optimizer, schedule, step and RNG state, so a run killed at any point
and resumed from its last checkpoint ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from selfsup_kernels.distributed import world

from selfsup.methods.base import Method, check_labels
from selfsup.models.batchnorm import sync_batchnorm
from selfsup.train.checkpoint import load_checkpoint, save_checkpoint
from selfsup.train.distributed import init_from_env, shard
from selfsup.train.optim import build_optimizer
from selfsup.train.schedules import warmup_cosine


@dataclass
class TrainConfig:
    steps: int = 100
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 1e-4
    optimizer: str = "sgd"
    schedule: str = "cosine"
    """``cosine`` (linear warm-up + cosine) or ``onecycle`` (Smith 2018)."""
    warmup_steps: int = 0
    accumulate: int = 1
    """Optimizer steps every ``accumulate`` micro-batches of ``batch_size``."""
    amp: str = "none"
    """``none``, ``bf16`` (autocast) or ``fp16`` (autocast with a dynamic gradient scaler, whose
    state is checkpointed)."""
    seed: int = 0
    checkpoint_every: int = 50
    log_every: int = 10
    progress: bool = True
    device: str = "cpu"
    sync_bn: bool = False
    """Under ``torch.distributed``: BatchNorm statistics over the global batch instead of each
    rank's share (:func:`selfsup.models.batchnorm.sync_batchnorm`: torch's SyncBatchNorm on CUDA,
    an all-reduce BatchNorm with the same semantics elsewhere). Ignored in a single process."""

    def validate(self) -> None:
        for name in ("steps", "batch_size", "accumulate", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.schedule not in ("cosine", "onecycle"):
            raise ValueError(f"schedule: expected 'cosine' or 'onecycle', got {self.schedule!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp: expected 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps: expected 0 to {self.steps}, got {self.warmup_steps}")


class Trainer:
    """Trains ``method`` on uint8 ``images (N, H, W, C)`` (with integer ``labels (N,)`` for
    methods that use them), writing into ``out_dir``: ``checkpoint.pt`` (atomic) and
    ``metrics.jsonl``. The method's :meth:`~selfsup.methods.base.Method.bind_dataset` is called
    first."""

    def __init__(
        self,
        method: Method,
        images: npt.NDArray[np.uint8],
        config: TrainConfig,
        out_dir: str | Path,
        metadata: dict[str, Any] | None = None,
        labels: npt.NDArray[np.int64] | None = None,
    ) -> None:
        config.validate()
        if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
            raise ValueError(f"images: expected a non-empty uint8 (N, H, W, C) array, got {images.dtype} {images.shape}")
        if labels is not None:
            labels = check_labels(labels, len(images))
        elif method.uses_labels:
            raise ValueError(f"labels: method {method.name} trains on class labels; pass the dataset's labels")
        method.bind_dataset(len(images), labels)
        self.method = method.to(config.device)
        self.distributed = init_from_env()
        self.rank, self.world = world()
        if config.sync_bn and self.distributed:
            sync_batchnorm(self.method, torch.device(config.device).type)
        self.model: torch.nn.Module = (
            torch.nn.parallel.DistributedDataParallel(self.method) if self.distributed else self.method
        )
        self.images = images
        self.config = config
        self.out_dir = Path(out_dir)
        self.metadata = {**(metadata or {}), "dataset_size": len(images)}
        """Saved with every checkpoint (e.g. the backbone's name and options, for ``export``; the
        dataset size that :meth:`Method.bind_dataset` saw, so a loader can rebuild per-sample state)."""
        self.optimizer = build_optimizer(method, config.optimizer, config.lr, config.weight_decay)
        self.scheduler = self._scheduler()
        self.scaler = torch.amp.GradScaler(torch.device(config.device).type, enabled=config.amp == "fp16")
        self.step = 0
        self.micro = 0
        """Micro-batches consumed since the start: fixes the epoch and position in it."""

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        c = self.config
        if c.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=c.lr, total_steps=c.steps)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(c.steps, c.warmup_steps))

    def batch_indices(self, micro: int) -> tuple[int, npt.NDArray[np.int64]]:
        """The epoch and dataset indices of micro-batch ``micro`` (the last partial batch of an
        epoch is dropped so every step sees ``batch_size`` images)."""
        n = len(self.images)
        size = min(self.config.batch_size, n)
        per_epoch = n // size
        epoch, position = divmod(micro, per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(n)
        return epoch, order[position * size : (position + 1) * size].astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "micro": self.micro,
            "config": asdict(self.config),
            "method": self.method.name,
            "torch_rng": torch.get_rng_state(),
            "metadata": self.metadata,
        }

    def resume(self, path: str | Path | None = None) -> bool:
        """Loads ``path`` (default: the run's checkpoint). Returns False if there is none."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path == self.checkpoint_path and not path.exists():
            return False
        state = load_checkpoint(path)
        if state.get("method") != self.method.name:
            raise ValueError(f"checkpoint: {path} was written by method {state.get('method')!r}, not {self.method.name!r}")
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.micro = int(state["step"]), int(state["micro"])
        torch.set_rng_state(state["torch_rng"])
        return True

    def save(self) -> Path | None:
        """Rank 0 writes; the other ranks wait for it so no rank runs ahead of a checkpoint."""
        path = save_checkpoint(self.state_dict(), self.checkpoint_path) if self.rank == 0 else None
        if self.distributed:
            torch.distributed.barrier()
        return path

    def fit(self) -> list[dict[str, float]]:
        """Runs until ``config.steps`` optimizer steps; returns the logged metrics."""
        c = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log: list[dict[str, float]] = []
        self.method.train()
        start, seen = time.perf_counter(), 0
        metrics_name = "metrics.jsonl" if self.rank == 0 else f"metrics.rank{self.rank}.jsonl"
        with open(self.out_dir / metrics_name, "a") as metrics_file:
            while self.step < c.steps:
                totals: dict[str, float] = {}
                for _ in range(c.accumulate):
                    epoch, indices = self.batch_indices(self.micro)
                    indices = shard(indices, self.rank, self.world)
                    batch = self.method.make_batch(self.images[indices], seed=c.seed, epoch=epoch, indices=indices, device=c.device)
                    dtype = torch.float16 if c.amp == "fp16" else torch.bfloat16
                    with torch.autocast(device_type=torch.device(c.device).type, dtype=dtype, enabled=c.amp != "none"):
                        out = self.model(batch)
                    loss = out["loss"]
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss.item()} at step {self.step}")
                    self.scaler.scale(loss / c.accumulate).backward()
                    for key, value in out.items():
                        totals[key] = totals.get(key, 0.0) + float(value.detach()) / c.accumulate
                    self.micro += 1
                    seen += len(indices)
                lr = self.optimizer.param_groups[0]["lr"]
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                self.method.on_step_end(self.step, c.steps)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    elapsed = time.perf_counter() - start
                    record = {"step": self.step, "epoch": epoch, "lr": lr, **totals, "images_per_s": seen / max(elapsed, 1e-9)}
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    log.append(record)
                    if c.progress and self.rank == 0:
                        bar = "#" * int(20 * self.step / c.steps)
                        print(
                            f"\r{self.method.name} [{bar:<20}] {self.step}/{c.steps} loss {totals['loss']:.4f} "
                            f"{record['images_per_s']:.0f} img/s", end="", file=sys.stderr, flush=True,
                        )
                if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                    self.save()
        if c.progress and self.rank == 0:
            print(file=sys.stderr)
        return log


def steps_for(epochs: float, dataset_size: int, batch_size: int) -> int:
    """Optimizer steps in ``epochs`` passes over ``dataset_size`` images."""
    return max(1, math.floor(epochs * (dataset_size // max(1, min(batch_size, dataset_size)))))
