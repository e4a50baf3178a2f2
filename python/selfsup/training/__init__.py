"""Training: the trainer, atomic checkpoints, optimizers and schedules."""

from selfsup.training.checkpoint import load_checkpoint, save_checkpoint
from selfsup.training.optim import LARS, build_optimizer
from selfsup.training.schedules import warmup_cosine
from selfsup.training.trainer import TrainConfig, Trainer

__all__ = ["LARS", "TrainConfig", "Trainer", "build_optimizer", "load_checkpoint", "save_checkpoint", "warmup_cosine"]
