"""A plain-PyTorch trainer: deterministic batches, accumulation, AMP, schedules, atomic checkpoints
with exact resume, JSONL metrics and a progress line.

The trainer reads ready tensors from the one data path (:class:`selfsup.data.pipeline.TrainLoader`):
a source (an in-memory array, an image folder, a file list, tar shards), the method's batch
pipeline run in the loader, the next batches built while the current step computes. Batches are a
function of ``(seed, micro-batch)`` only: epoch ``e`` visits a permutation of the dataset drawn
from ``(seed, e)`` and every sample's augmentation stream is ``(seed, e, index)``. A checkpoint
holds the model, optimizer, schedule, step, the loader's position and RNG state, so a run killed
at any point and resumed from its last checkpoint sees the same samples with the same bytes and
ends with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from selfsup_kernels.distributed import world

from selfsup.data.clips import ClipArraySource, FrameFolderSource, VideoFileSource
from selfsup.data.pipeline import ArraySource, BatchPipeline, Source, TrainBatch, TrainLoader
from selfsup.data.sampler import SemiSupervisedBatchSampler, StepBatchSampler
from selfsup.data.semi import SemiSupervisedSource, semi_supervised_source
from selfsup.methods.base import Method, check_labels
from selfsup.models.batchnorm import sync_batchnorm
from selfsup.training.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from selfsup.training.distributed import init_from_env
from selfsup.training.optim import build_optimizer
from selfsup.training.progress import Progress, duration
from selfsup.training.schedules import warmup_cosine


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
    workers: int = 0
    """Forked loader processes; 0 builds batches in the main process on the native pool (in a
    prefetch thread). Both give the same bytes."""
    prefetch: int = 2
    """Batches built ahead of the step (per worker with workers)."""
    loggers: tuple[str, ...] = ()
    """Loggers besides ``metrics.jsonl``: ``tensorboard`` writes the same rows as TensorBoard
    scalars under ``tensorboard/`` (needs the ``tensorboard`` package)."""
    sync_bn: bool = False
    """Under ``torch.distributed``: BatchNorm statistics over the global batch instead of each
    rank's share (:func:`selfsup.models.batchnorm.sync_batchnorm`: torch's SyncBatchNorm on CUDA,
    an all-reduce BatchNorm with the same semantics elsewhere). Ignored in a single process."""

    def validate(self) -> None:
        for name in ("steps", "batch_size", "accumulate", "checkpoint_every", "log_every", "prefetch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.schedule not in ("cosine", "onecycle"):
            raise ValueError(f"schedule: expected 'cosine' or 'onecycle', got {self.schedule!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ValueError(f"amp: expected 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers: expected an int >= 0, got {self.workers!r}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps: expected 0 to {self.steps}, got {self.warmup_steps}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: expected >= 0, got {self.weight_decay}")
        unknown = sorted(set(self.loggers) - {"jsonl", "tensorboard"})
        if unknown:
            raise ValueError(f"loggers: expected some of jsonl, tensorboard, got {unknown}")


RUN_DEFINING: tuple[str, ...] = ("steps", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "warmup_steps", "accumulate", "amp", "seed")
"""The :class:`TrainConfig` fields that fix the samples, the updates and the schedule of a run: a
resumed run with other values would not end where the original would."""


class Trainer:
    """Trains ``method`` on ``data`` — a uint8 ``(N, H, W, C)`` array (with integer ``labels
    (N,)`` for methods that use them) or a :class:`~selfsup.data.pipeline.Source` (an image
    folder, file list or tar shards, whose class labels are used) — writing into ``out_dir``:
    ``checkpoint.pt`` (atomic) and ``metrics.jsonl``. The method's
    :meth:`~selfsup.methods.base.Method.bind_dataset` is called first.

    ``image_size`` is the side that decoded images of different sizes are brought to for methods
    that do not cut their own crops from originals (``Method.takes_originals``). ``run_files``
    (name → text, such as the run's ``config.toml``) are written atomically into ``out_dir`` when
    training starts (rank 0), not before: a run refused at resume leaves the folder as it was.
    """

    def __init__(
        self,
        method: Method,
        data: npt.NDArray[np.uint8] | Source,
        config: TrainConfig,
        out_dir: str | Path,
        metadata: dict[str, Any] | None = None,
        labels: npt.NDArray[np.int64] | None = None,
        image_size: int | None = None,
        run_files: dict[str, str] | None = None,
    ) -> None:
        config.validate()
        if method.semi_supervised and not isinstance(data, SemiSupervisedSource):
            data = semi_supervised_source(data, labels)
            labels = None
        elif isinstance(data, SemiSupervisedSource) and not method.semi_supervised:
            raise ValueError(f"data: labelled + unlabelled data is for the semi-supervised methods; {method.name} reads one source")
        if isinstance(data, np.ndarray):
            if data.ndim != 4 or data.dtype != np.uint8 or len(data) == 0:
                raise ValueError(f"images: expected a non-empty uint8 (N, H, W, C) array, got {data.dtype} {data.shape}")
            self.source: Source = ArraySource(data)
        elif isinstance(data, Source):
            if labels is not None:
                raise ValueError("labels: a source brings its own labels; pass labels only with an array")
            if len(data) == 0:
                raise ValueError("data: the source has no samples")
            self.source = data
            labels = np.asarray(data.targets, dtype=np.int64) if data.labeled else None
        else:
            raise TypeError(f"data: expected a uint8 array or a data source, got {type(data).__name__}")
        clips = isinstance(self.source, (ClipArraySource, FrameFolderSource, VideoFileSource))
        if clips != method.takes_clips:
            raise ValueError(
                f"data: method {method.name} trains on {'clips' if method.takes_clips else 'images'} and the data holds "
                f"{'clips' if clips else 'images'} ({'a clip array, folders of frames or video files' if method.takes_clips else 'an image source'} expected)"
            )
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size: expected a positive int, got {image_size}")
        if labels is not None:
            labels = check_labels(labels, len(self.source))
        elif method.uses_labels:
            raise ValueError(f"labels: method {method.name} trains on class labels; pass the dataset's labels")
        method.bind_dataset(len(self.source), labels)
        self.method = method.to(config.device)
        self.distributed = init_from_env()
        self.rank, self.world = world()
        if config.sync_bn and self.distributed:
            sync_batchnorm(self.method, torch.device(config.device).type)
        self.model: torch.nn.Module = (
            torch.nn.parallel.DistributedDataParallel(self.method) if self.distributed else self.method
        )
        self.pipeline = BatchPipeline(method, config.seed, image_size, method.takes_originals)
        self.config = config
        self.sampler = self._sampler()
        self.out_dir = Path(out_dir)
        self.run_files = dict(run_files or {})
        self.metadata = {**(metadata or {}), "dataset_size": len(self.source)}
        """Saved with every checkpoint (e.g. the backbone's name and options, for ``export``; the
        dataset size that :meth:`Method.bind_dataset` saw, so a loader can rebuild per-sample state)."""
        self.optimizer = build_optimizer(method, config.optimizer, config.lr, config.weight_decay)
        self.scheduler = self._scheduler()
        self.scaler = torch.amp.GradScaler(torch.device(config.device).type, enabled=config.amp == "fp16")
        self.step = 0
        self.micro = 0
        """Micro-batches consumed since the start: the loader's position (epoch and place in it)."""
        self.skipped: dict[str, str] = {}
        """Unreadable samples met so far (path → reason); each was replaced in its batch."""

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        c = self.config
        if c.schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=c.lr, total_steps=c.steps)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(c.steps, c.warmup_steps))

    def _sampler(self, start: int = 0, stop: int | None = None) -> StepBatchSampler | SemiSupervisedBatchSampler:
        c = self.config
        if isinstance(self.source, SemiSupervisedSource):
            return SemiSupervisedBatchSampler(
                self.source.labelled_count, self.source.unlabelled_count, c.batch_size, int(getattr(self.method, "unlabelled_ratio", 0)),
                seed=c.seed, rank=self.rank, world=self.world, start=start, stop=stop,
            )
        return StepBatchSampler(len(self.source), c.batch_size, seed=c.seed, rank=self.rank, world=self.world, start=start, stop=stop)

    def batch_indices(self, micro: int) -> tuple[int, npt.NDArray[np.int64]]:
        """The epoch and global-batch dataset indices of micro-batch ``micro`` (the last partial
        batch of an epoch is dropped so every step sees ``batch_size`` images)."""
        return self.sampler.global_batch(micro)

    def loader(self) -> TrainLoader:
        """This rank's micro-batches from the current position to the end of the run."""
        c = self.config
        return TrainLoader(
            self.source, self.pipeline, c.batch_size, seed=c.seed, start=self.micro, stop=c.steps * c.accumulate,
            rank=self.rank, world=self.world, workers=c.workers, prefetch=c.prefetch,
            pin_memory=torch.device(c.device).type == "cuda", sampler=self._sampler(self.micro, c.steps * c.accumulate),
        )

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

    def resume(self, path: str | Path | None = None, *, allow_changes: bool = False) -> bool:
        """Loads ``path`` (default: the run's checkpoint). Returns False if there is none.

        Exact resume needs the run the checkpoint was written by: a different value of any of
        :data:`RUN_DEFINING` (the optimizer, batch, learning rate, schedule, steps, …) is refused,
        naming each change. With ``allow_changes`` the changes are accepted and reported on
        stderr: the weights and position load; the optimizer state loads only for the same
        optimizer, and the schedule continues from the step under the new settings.

        Raises:
            ValueError: another method wrote the checkpoint; changed settings without
                ``allow_changes``; and see :func:`~selfsup.training.checkpoint.load_checkpoint`.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if path == self.checkpoint_path and not path.exists():
            return False
        state = load_checkpoint(path)
        if state.get("method") != self.method.name:
            raise ValueError(f"checkpoint: {path} was written by method {state.get('method')!r}, not {self.method.name!r}")
        saved, now = state.get("config", {}), asdict(self.config)
        changes = [f"{key} {saved[key]!r} -> {now[key]!r}" for key in RUN_DEFINING if key in saved and saved[key] != now[key]]
        if changes and not allow_changes:
            raise ValueError(
                f"checkpoint: {path} was written by a run with other settings ({'; '.join(changes)}); resume with the same "
                "settings, or allow the changes (allow_changes=True, --allow-changes) to continue without exact resume"
            )
        self.method.load_state_dict(state["model"])
        if saved.get("optimizer", self.config.optimizer) == self.config.optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.micro = int(state["step"]), int(state["micro"])
        if changes:
            print(f"resuming {path} with changed settings: {'; '.join(changes)}", file=sys.stderr)
            self.micro = self.step * self.config.accumulate if saved.get("accumulate") != self.config.accumulate else self.micro
            self.scheduler = self._scheduler()
            with warnings.catch_warnings():  # stepping the schedule alone, to the resumed step
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(min(self.step, self.config.steps - 1)):
                    self.scheduler.step()
        else:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
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
        start = time.perf_counter()
        metrics_name = "metrics.jsonl" if self.rank == 0 else f"metrics.rank{self.rank}.jsonl"
        self._tidy_run_folder(self.out_dir / metrics_name)
        if self.rank == 0:
            for name, text in self.run_files.items():
                atomic_write_text(self.out_dir / name, text)
        progress = Progress(self.method.name, c.steps, start=self.step) if c.progress and self.rank == 0 else None
        first_step = self.step
        batches = iter(self.loader())
        try:
            self._run(batches, metrics_name, log, start, progress)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            del batches
        if progress is not None:
            elapsed = time.perf_counter() - start
            final = f", final loss {log[-1]['loss']:.4f}" if log else ""
            progress.close(
                f"{self.method.name}: steps {first_step + 1}-{self.step} of {c.steps} in {duration(elapsed)}{final}; "
                f"checkpoint {self.checkpoint_path}"
            )
        if self.skipped and self.rank == 0:
            listed = "; ".join(f"{path}: {reason}" for path, reason in list(self.skipped.items())[:5])
            more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            print(f"skipped {len(self.skipped)} unreadable images, each replaced in its batch: {listed}{more}", file=sys.stderr)
        return log

    def _tidy_run_folder(self, metrics: Path) -> None:
        """Before training: removes temporary checkpoint files a killed run left behind (rank 0)
        and cuts ``metrics`` back to the rows up to the current step, so that a resumed run logs
        every step once (a row cut short by the kill is dropped too)."""
        if self.rank == 0:
            for orphan in self.out_dir.glob(f".{self.checkpoint_path.name}.*.tmp"):
                orphan.unlink(missing_ok=True)
        if not metrics.exists():
            return
        kept = []
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and int(row.get("step", 0)) <= self.step:
                kept.append(line + "\n")
        metrics.write_text("".join(kept))

    def _tensorboard(self) -> Any:
        """A TensorBoard writer under ``tensorboard/`` (rank 0), dropping events after the current
        step that a killed run wrote, so a resumed run has each step once; None when not asked for."""
        if "tensorboard" not in self.config.loggers or self.rank != 0:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError('loggers: tensorboard needs the tensorboard package: pip install "selfsup[tensorboard]"') from None
        return SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=self.step + 1 if self.step else None)

    def _run(
        self, batches: Iterator[TrainBatch], metrics_name: str, log: list[dict[str, float]], start: float, progress: Progress | None
    ) -> None:
        c = self.config
        device = torch.device(c.device)
        dtype = torch.float16 if c.amp == "fp16" else torch.bfloat16
        seen = 0
        with open(self.out_dir / metrics_name, "a") as metrics_file, self._tensorboard() or contextlib.nullcontext() as board:
            while self.step < c.steps:
                totals: dict[str, float] = {}
                for _ in range(c.accumulate):
                    item = next(batches)
                    for _, path, reason in item.skipped:
                        self.skipped.setdefault(path, reason)
                    batch = {k: v.to(device, non_blocking=True) for k, v in item.tensors.items()}
                    with torch.autocast(device_type=device.type, dtype=dtype, enabled=c.amp != "none"):
                        out = self.model(batch)
                    loss = out["loss"]
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss.item()} at step {self.step}")
                    self.scaler.scale(loss / c.accumulate).backward()
                    for key, value in out.items():
                        totals[key] = totals.get(key, 0.0) + float(value.detach()) / c.accumulate
                    self.micro += 1
                    seen += item.size
                lr = self.optimizer.param_groups[0]["lr"]
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                with warnings.catch_warnings():
                    # fp16: a step the gradient scaler skips (inf/NaN gradients) still advances the
                    # schedule, as it should; torch warns as if the optimizer had not been stepped
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                    self.scheduler.step()
                self.step += 1
                self.method.on_step_end(self.step, c.steps)
                rate = seen / max(time.perf_counter() - start, 1e-9)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    record = {"step": self.step, "epoch": item.epoch, "lr": lr, **totals, "images_per_s": rate, "skipped": len(self.skipped)}
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    log.append(record)
                    if board is not None:
                        for key, value in record.items():
                            if key != "step":
                                board.add_scalar(key, value, self.step)
                if progress is not None:
                    progress.update(self.step, totals["loss"], rate)
                if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                    self.save()


def steps_for(epochs: float, dataset_size: int, batch_size: int) -> int:
    """Optimizer steps in ``epochs`` passes over ``dataset_size`` images."""
    return max(1, math.floor(epochs * (dataset_size // max(1, min(batch_size, dataset_size)))))
