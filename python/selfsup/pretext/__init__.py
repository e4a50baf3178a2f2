"""Data-side pretext tasks: a uint8 image batch in, network inputs and self-supervised targets out.

Each task is a small frozen dataclass, registered through
:func:`selfsup.hookspecs.selfsup_register_pretext_tasks`; look tasks up by name with
``selfsup.plugins.get("pretext_tasks", name)``.
"""

from selfsup.pretext.base import PretextBatch, PretextTask

__all__ = ["PretextBatch", "PretextTask"]
