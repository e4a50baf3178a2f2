"""What the joint-embedding methods share: augmented views from a native recipe, one encoder pass
over all views, the exponential moving average of momentum encoders, global-batch gathering."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.methods.base import CHANNEL_MEAN, CHANNEL_STD, Method
from selfsup.transforms import MultiView, Normalize, byol, mocov2, simclr

BLUR_MIN_SIZE = 64
"""Views smaller than this get no Gaussian blur (SimCLR, arXiv:2002.05709, Appendix B.9: none on CIFAR)."""

RECIPES: dict[str, Callable[..., MultiView]] = {"simclr": simclr, "byol": byol, "mocov2": mocov2}


def view_side(images: Any, image_size: int | None) -> int:
    """The side of the views cut from ``images``: ``image_size``, or the height of a uint8
    ``(N, H, W, 3)`` batch; decoded originals (a list of ``(H, W, 3)`` arrays) need ``image_size``.

    Raises:
        ValueError: a batch that is not ``(N, H, W, 3)``; a list without ``image_size``.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected uint8 (N, H, W, 3), got shape {images.shape}")
        return image_size or int(images.shape[1])
    if any(getattr(image, "ndim", 0) != 3 or image.shape[-1] != 3 for image in images):
        raise ValueError("images: expected uint8 (H, W, 3) originals")
    if image_size is None:
        raise ValueError("image_size: views cut from originals of different sizes need their side; give the method an image_size")
    return image_size


class JointEmbedding(Method):
    """A method trained on ``V`` augmented views of every image.

    Subclasses set ``recipe_name`` (a key of :data:`RECIPES`) and may override :meth:`recipe`;
    ``view_recipe`` names another key for one instance (default: ``recipe_name``).
    ``make_batch`` returns ``views (V, N, 3, S, S)``, normalised like
    :func:`selfsup.methods.base.images_to_tensor` so that probing sees the statistics training saw.
    """

    views: ClassVar[tuple[str, ...]] = ("views",)
    recipe_name: ClassVar[str] = "simclr"
    takes_originals: ClassVar[bool] = True

    def __init__(
        self, backbone: nn.Module, image_size: int | None = None, blur: bool | None = None, view_recipe: str | None = None
    ) -> None:
        super().__init__(backbone)
        if image_size is not None and image_size < 8:
            raise ValueError(f"image_size: expected at least 8 pixels, got {image_size}")
        if view_recipe is not None and view_recipe not in RECIPES:
            raise ValueError(f"view_recipe: expected one of {', '.join(RECIPES)}, got {view_recipe!r}")
        self.view_recipe = view_recipe or self.recipe_name
        self.image_size = image_size
        self.blur = blur
        self._recipes: dict[int, MultiView] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled pipelines behind; they are rebuilt on demand."""
        state = self.__dict__.copy()
        state["_recipes"] = {}
        return state

    def uses_blur(self, size: int) -> bool:
        return size >= BLUR_MIN_SIZE if self.blur is None else self.blur

    def build_recipe(self, size: int, normalize: Normalize) -> MultiView:
        """The pipeline for views of side ``size``: the named recipe, without blur on small images."""
        return RECIPES[self.view_recipe](size, normalize=normalize, blur=self.uses_blur(size))

    def recipe(self, size: int) -> MultiView:
        if size not in self._recipes:
            self._recipes[size] = self.build_recipe(size, Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD))
        return self._recipes[size]

    def make_batch(
        self, images: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        size = view_side(images, self.image_size)
        views = self.recipe(size)(images, seed=seed, epoch=epoch, indices=indices)
        return {key: value.to(device) for key, value in self.group_views(views).items()}

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The recipe's views as batch entries; by default all stacked as ``views (V, N, 3, S, S)``."""
        return {"views": torch.stack(views)}

    @staticmethod
    def encode(encoder: Callable[[torch.Tensor], torch.Tensor], views: torch.Tensor) -> torch.Tensor:
        """``(V, N, 3, S, S)`` → ``(V, N, D)`` in one pass, so BatchNorm sees all views together."""
        out = encoder(views.flatten(0, 1))
        return out.view(views.shape[0], views.shape[1], -1)


class MultiCrop(JointEmbedding):
    """A joint-embedding method on multi-crop views (Caron et al. 2020, arXiv:2006.09882, §3.2;
    DINO and SwAV): ``global_crops`` views of side S that every branch sees, and ``local_crops``
    small views of side s (default S·96/224, the papers' 96 of 224) that only the predicting branch
    sees. ``make_batch`` returns ``views (G, N, 3, S, S)`` and, when L > 0, ``local (L, N, 3, s, s)``.

    Subclasses build a recipe whose first G views are the global ones (:meth:`local_side` gives s).
    """

    global_crops: ClassVar[int] = 2

    def __init__(
        self, backbone: nn.Module, local_crops: int, local_size: int | None = None, image_size: int | None = None, blur: bool | None = None
    ) -> None:
        super().__init__(backbone, image_size=image_size, blur=blur)
        if local_crops < 0:
            raise ValueError(f"local_crops: expected >= 0, got {local_crops}")
        if local_size is not None and local_size < 8:
            raise ValueError(f"local_size: expected at least 8 pixels, got {local_size}")
        self.local_crops = int(local_crops)
        self.local_size = local_size

    def local_side(self, size: int) -> int:
        """s for global views of side ``size``: ``local_size``, or ``size``·96/224 (at least 8)."""
        return self.local_size or max(8, round(size * 96 / 224))

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {"views": torch.stack(views[: self.global_crops])}
        if len(views) > self.global_crops:
            batch["local"] = torch.stack(views[self.global_crops :])
        return batch

    def encode_crops(self, encoder: Callable[[torch.Tensor], torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Every crop of ``batch`` through ``encoder``: ``(G + L, N, D)``, the global crops first;
        one pass per crop size."""
        out = self.encode(encoder, batch["views"])
        if "local" in batch:
            out = torch.cat([out, self.encode(encoder, batch["local"])])
        return out


def momentum_at(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule (Grill et al. 2020, eq. after 3.2): τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2,
    rising from τ_base at step 0 to 1 at the last step."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to be updated by :func:`ema_update` (a target/key encoder)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """ξ ← m·ξ + (1 − m)·θ for every parameter; buffers (BatchNorm statistics) are copied."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for buffer, source in zip(target.buffers(), online.buffers()):
        buffer.copy_(source)


def gather_global(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` in the order of the global batch (floating-point ``x`` with gradient,
    integer ``x`` such as dataset indices without). The trainer gives rank r the samples r, r + W,
    r + 2W, … (:func:`selfsup.train.distributed.shard`), so the rank-major gather is interleaved
    back; outside ``torch.distributed`` it returns ``x``."""
    from selfsup_kernels.distributed import gather, gather_labels, world

    _, size = world()
    if size == 1:
        return x
    gathered = gather(x)[0] if x.is_floating_point() else gather_labels(x)
    return gathered.view(size, x.shape[0], *x.shape[1:]).transpose(0, 1).reshape(size * x.shape[0], *x.shape[1:])


@torch.no_grad()
def ring_write(buffer: torch.Tensor, pointer: torch.Tensor, rows: torch.Tensor, filled: torch.Tensor | None = None) -> int:
    """Writes ``rows (B, D)`` over the oldest rows of the ring ``buffer (K, D)``, starting at
    ``pointer`` (a 0-dim long tensor, advanced in place) and wrapping around; with B > K only the
    newest K rows are kept. ``filled`` (a 0-dim long tensor), when given, counts the rows holding
    written data, up to K. Returns how many rows were written."""
    size = buffer.shape[0]
    rows = rows.detach()[-size:]
    start = int(pointer)
    buffer[(start + torch.arange(rows.shape[0], device=rows.device)) % size] = rows.to(buffer.dtype)
    pointer.fill_((start + int(rows.shape[0])) % size)
    if filled is not None:
        filled.fill_(min(int(filled) + int(rows.shape[0]), size))
    return int(rows.shape[0])


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(D, D)`` matrix as a flat ``(D² − D,)`` view."""
    d = matrix.shape[0]
    return matrix.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity of matching rows of ``a`` and ``b`` ``(N, D)``."""
    return nn.functional.cosine_similarity(a, b, dim=-1).mean()


def check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}: expected > 0, got {value}")
