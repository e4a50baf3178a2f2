"""Contrastive Predictive Coding on images (van den Oord, Li & Vinyals 2018, "Representation Learning
with Contrastive Predictive Coding", arXiv:1807.03748, §3.2; CPC v2: Hénaff et al. 2019,
"Data-Efficient Image Recognition with Contrastive Predictive Coding", arXiv:1905.09272).

An image is cut into an overlapping G×G grid of P-px patches at stride s (the paper: 256 px →
7×7 patches of 64 px, 50 % overlap; :func:`selfsup.ops.patch_grid`). The patch encoder (the
method's ``.backbone``, mean-pooled) embeds every patch, z_{i,j} = f(x_{i,j}) ``(N, D, G, G)``; a
masked context network g summarises the rows above, c_{i,j} = g(z_{u,v} : u ≤ i) ``(N, C, G, G)``
(its convolutions are padded at the top only, so nothing below row i reaches c_{i,j}), and a
linear map per offset k = 1..K predicts the patch k rows below, ẑ_{i+k,j} = W_k c_{i,j}. InfoNCE
(eq. 4 of v1) scores the prediction against the true patch among the other patches:

    ℓ_{i,j,k} = −log  exp(ẑ_{i+k,j}ᵀ z_{i+k,j}) / Σ_{z_l} exp(ẑ_{i+k,j}ᵀ z_l)

with raw dot products (no normalisation, τ = 1). For each offset k the queries are the
N·(G − k)·G predictions and the keys the patches they predict (rows k..G−1 of every image), so
the negatives z_l are the other positions of the same image and every position of the other
images in those rows. The loss is the mean of the K offsets (and of the directions): the paper
sums over k, which only rescales the learning rate. It is :func:`selfsup_kernels.info_nce`
(chunked; the logits are never formed). Under ``torch.distributed`` the keys of all ranks are
gathered with their gradient (``gather=True``), so every query sees the global batch's patches as
negatives, as one process would.

* **v1** (``version=1``): BatchNorm allowed in the patch encoder, no patch-wise augmentation,
  predictions downward only (``directions=("down",)``).
* **v2** (``version=2``): the patch encoder's BatchNorm layers are replaced by layer
  normalisation (``GroupNorm(1, C)``: normalised over C×H×W per patch, so no statistics are shared
  between patches of an image); every patch is augmented independently (flip, colour jitter,
  grayscale in place of the paper's channel dropping, from the native pipeline); predictions
  downward and upward (``directions=("down", "up")``: the same loss on the row-flipped grid with
  its own context network and W_k). ``"right"``/``"left"`` predict across columns the same way.

Probing: ``.backbone`` is the patch encoder; it pools over any input size, so applied to a whole
image it gives the features that the linear probe and kNN read (with v2, a backbone with layer
normalisation: ``selfsup export`` writes that module, and loaders rebuild it through
:meth:`CPC.prepare_backbone`).

Defaults are the paper's (7×7 grid of 64-px patches at stride 32 on 256-px images, K = 5);
scaled to 32-px digits use ``patch=8, stride=4`` (7×7) and ``offsets=3``. The context network is
``context_layers`` residual blocks (1×1 → masked 3×3 → 1×1, ReLU) of width ``context_width``
(default D), a small stand-in for the paper's PixelCNN / ResNet context stack.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.models.inputs import images_to_tensor, CHANNEL_MEAN, CHANNEL_STD
from selfsup.methods.base import Method
from selfsup.models.batchnorm import swap_modules

DIRECTIONS = ("down", "up", "right", "left")
NORMS = ("batch", "layer")


class CausalConv2d(nn.Module):
    """A k×k convolution that sees rows i − k + 1 .. i only: padded k − 1 rows at the top, none at the
    bottom, symmetrically left and right; the output has the input's height and width."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 3) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel: expected an odd positive int, got {kernel}")
        self.kernel = kernel
        self.conv = nn.Conv2d(inputs, outputs, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = (self.kernel - 1) // 2
        out: torch.Tensor = self.conv(F.pad(x, (side, side, self.kernel - 1, 0)))
        return out


class CausalBlock(nn.Module):
    """x + 1×1(ReLU(masked 3×3(ReLU(1×1(ReLU(x)))))): a residual block whose row i sees rows ≤ i."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, hidden, 1),
            nn.ReLU(), CausalConv2d(hidden, hidden, 3),
            nn.ReLU(), nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class ContextNetwork(nn.Module):
    """``(N, D, G, G)`` patch codes → contexts ``(N, D, G, G)``; c[..., i, :] depends on rows ≤ i of z."""

    def __init__(self, channels: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[CausalBlock(channels, hidden) for _ in range(layers)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.blocks(z)
        return out


def orient(z: torch.Tensor, direction: str) -> torch.Tensor:
    """The grid ``(N, D, G, G)`` turned so that ``direction`` becomes "predict the rows below"."""
    if direction == "down":
        return z
    if direction == "up":
        return z.flip(2)
    if direction == "right":
        return z.transpose(2, 3)
    if direction == "left":
        return z.transpose(2, 3).flip(2)
    raise ValueError(f"directions: expected names among {DIRECTIONS}, got {direction!r}")


def layer_norm_everywhere(module: nn.Module) -> nn.Module:
    """Replaces every BatchNorm layer of ``module`` (in place) by ``GroupNorm(1, C)``: layer
    normalisation over channels and positions of each sample, with a per-channel affine map."""
    return swap_modules(
        module,
        lambda layer: nn.GroupNorm(1, layer.num_features, eps=layer.eps, affine=layer.affine) if isinstance(layer, _BatchNorm) else None,
    )


def default_norm(version: int) -> str:
    return "layer" if version == 2 else "batch"


class CPC(Method):
    """Shapes: ``make_batch`` turns N uint8 images ``(N, H, W, C)`` into ``patches (N, G·G, C, P, P)``
    (row-major over the grid, standardised like :func:`images_to_tensor`); ``training_step``
    returns the loss and the InfoNCE of each offset (``offset1`` … ``offsetK``).

    Args:
        backbone: the patch encoder, an ``nn.Module`` with an integer ``out_dim``.
        version: 1 or 2 (sets the defaults of ``norm``, ``patch_augment`` and ``directions``).
        grid: G, patches per side.
        patch: P, patch side in pixels.
        stride: s, pixels between neighbouring patches (< P overlaps).
        offsets: K, the farthest row predicted (1 ≤ K < G).
        context_layers, context_width: depth and hidden width of the masked context network.
        directions: among ``"down"``, ``"up"``, ``"right"``, ``"left"`` (a sequence, or one
            comma-separated string as ``--option directions=down,up`` gives it).
        norm: ``"batch"`` keeps the backbone as it is; ``"layer"`` swaps its BatchNorm layers for
            ``GroupNorm(1, C)`` (v2).
        patch_augment: augment every patch independently (v2).
        jitter: a random grid origin when the image is larger than the grid (the paper's random crop).

    Raises:
        ValueError: naming the argument: unknown version, direction or norm; ``offsets`` not in
            ``1..grid − 1``; non-positive sizes; at ``make_batch``, a grid larger than the images or
            patch augmentation of non-RGB images.

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = CPC(small_resnet(width=8), grid=7, patch=8, stride=4, offsets=3)
        >>> batch = method.make_batch(np.zeros((2, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> tuple(batch["patches"].shape)
        (2, 49, 3, 8, 8)
    """

    name: ClassVar[str] = "cpc"
    views: ClassVar[tuple[str, ...]] = ("patches",)

    def __init__(
        self,
        backbone: nn.Module,
        version: int = 1,
        grid: int = 7,
        patch: int = 64,
        stride: int = 32,
        offsets: int = 5,
        context_layers: int = 3,
        context_width: int | None = None,
        directions: tuple[str, ...] | list[str] | str | None = None,
        norm: str | None = None,
        patch_augment: bool | None = None,
        jitter: bool = True,
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"version: expected 1 or 2, got {version}")
        if norm is not None and norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        super().__init__(self.prepare_backbone(backbone, version=version, norm=norm))
        for key, value in (("grid", grid), ("patch", patch), ("stride", stride), ("context_layers", context_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: expected a positive int, got {value!r}")
        if grid < 2:
            raise ValueError(f"grid: expected at least 2 rows to predict across, got {grid}")
        if not 1 <= offsets < grid:
            raise ValueError(f"offsets: expected 1 <= offsets < grid = {grid}, got {offsets}")
        if context_width is not None and context_width < 1:
            raise ValueError(f"context_width: expected a positive int, got {context_width}")
        if isinstance(directions, str):
            directions = [d.strip() for d in directions.split(",")]
        chosen = tuple(directions) if directions is not None else (("down", "up") if version == 2 else ("down",))
        if not chosen or len(set(chosen)) != len(chosen) or any(d not in DIRECTIONS for d in chosen):
            raise ValueError(f"directions: expected distinct names among {DIRECTIONS}, got {chosen}")
        self.version = version
        self.norm = norm or default_norm(version)
        self.grid, self.patch, self.stride, self.offsets = grid, patch, stride, offsets
        self.directions = chosen
        self.patch_augment = version == 2 if patch_augment is None else bool(patch_augment)
        self.jitter = jitter
        width = context_width or self.feature_dim
        self.context = nn.ModuleDict({d: ContextNetwork(self.feature_dim, width, context_layers) for d in chosen})
        self.predictors = nn.ModuleDict({d: nn.Linear(self.feature_dim, offsets * self.feature_dim, bias=False) for d in chosen})
        self._augment: Any = None

    @classmethod
    def prepare_backbone(cls, backbone: nn.Module, **options: Any) -> nn.Module:
        """With ``norm="layer"`` (the v2 default) the backbone's BatchNorm layers become
        ``GroupNorm(1, C)``; loaders call this before loading a checkpoint's backbone weights."""
        norm = options.get("norm") or default_norm(int(options.get("version", 1)))
        return layer_norm_everywhere(backbone) if norm == "layer" else backbone

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled augmentation pipeline behind; it is rebuilt on demand."""
        state = self.__dict__.copy()
        state["_augment"] = None
        return state

    def augmentation(self) -> Any:
        """v2's patch-wise augmentation: flip, colour jitter (p = 0.8), grayscale (p = 0.25), standardised."""
        if self._augment is None:
            from selfsup import transforms as T

            self._augment = T.Compose(
                [
                    T.RandomHorizontalFlip(0.5),
                    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                    T.RandomGrayscale(0.25),
                    T.Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD),
                ]
            )
        return self._augment

    def grid_span(self) -> int:
        """Pixels per side covered by the grid: (G − 1)·s + max(s, P)."""
        return (self.grid - 1) * self.stride + max(self.stride, self.patch)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        from selfsup import ops

        if images.ndim != 4:
            raise ValueError(f"images: expected uint8 (N, H, W, C), got shape {images.shape}")
        n, height, width, channels = images.shape
        span = self.grid_span()
        if span > min(height, width):
            raise ValueError(
                f"grid: {self.grid}x{self.grid} patches of {self.patch} px at stride {self.stride} span {span} px, "
                f"larger than the {height}x{width} images"
            )
        cut = ops.patch_grid(images, self.grid, self.stride, self.patch, jitter=self.jitter, seed=seed, epoch=epoch, indices=indices)
        tiles = cut.tiles.reshape(n * self.grid**2, self.patch, self.patch, channels)
        if self.patch_augment:
            if channels != 3:
                raise ValueError(f"images: patch augmentation needs RGB images, got {channels} channels")
            streams = np.asarray(indices, dtype=np.int64)[:, None] * self.grid**2 + np.arange(self.grid**2)
            patches = self.augmentation()(tiles, seed=seed, epoch=epoch, indices=streams.reshape(-1)).float()
        else:
            patches = images_to_tensor(tiles)
        return {"patches": patches.reshape(n, self.grid**2, *patches.shape[1:]).to(device)}

    def encode_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """``(N, G·G, C, P, P)`` → patch codes z ``(N, D, G, G)``."""
        n = patches.shape[0]
        z: torch.Tensor = self.backbone(patches.flatten(0, 1))
        return z.view(n, self.grid, self.grid, -1).permute(0, 3, 1, 2)

    def predictions(self, z: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """For the grid oriented along ``direction``: the codes z ``(N, G, G, D)`` and the predictions
        ``(N, G, G, K, D)``, where ``[:, i, j, k − 1]`` is W_k c_{i,j}, the guess for z_{i+k,j}."""
        oriented = orient(z, direction)
        context = self.context[direction](oriented).permute(0, 2, 3, 1)
        predicted = self.predictors[direction](context)
        return oriented.permute(0, 2, 3, 1), predicted.unflatten(-1, (self.offsets, -1))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        from selfsup_kernels import info_nce
        from selfsup_kernels.distributed import is_distributed

        gather = is_distributed()
        z = self.encode_patches(batch["patches"])
        totals = [z.new_zeros(()) for _ in range(self.offsets)]
        for direction in self.directions:
            targets, predicted = self.predictions(z, direction)
            dim = targets.shape[-1]
            for k in range(1, self.offsets + 1):
                queries = predicted[:, : self.grid - k, :, k - 1].reshape(-1, dim)
                keys = targets[:, k:].reshape(-1, dim)
                totals[k - 1] = totals[k - 1] + info_nce(queries, keys, temperature=1.0, normalize=False, gather=gather)
        per_offset = torch.stack(totals) / len(self.directions)
        metrics = {f"offset{k + 1}": per_offset[k].detach() for k in range(self.offsets)}
        return {"loss": per_offset.mean(), **metrics}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(CPC)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("cpc", {"grid": 7, "patch": 8, "stride": 4, "offsets": 3, "context_layers": 2}, summary="a 7x7 grid of 8-px patches at stride 4; AdamW 1e-3"))
