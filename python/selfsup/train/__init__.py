"""Training: the trainer, atomic checkpoints, optimizers and schedules."""

from selfsup.train.checkpoint import load_checkpoint, save_checkpoint
from selfsup.train.optim import LARS, build_optimizer
from selfsup.train.schedules import warmup_cosine
from selfsup.train.trainer import TrainConfig, Trainer

__all__ = ["LARS", "TrainConfig", "Trainer", "build_optimizer", "load_checkpoint", "save_checkpoint", "warmup_cosine"]
