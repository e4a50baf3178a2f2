"""Masked autoencoder (He, Chen, Xie, Li, Dollár & Girshick 2021, "Masked Autoencoders Are Scalable
Vision Learners", arXiv:2111.06377).

An augmented image x ``(3, S, S)`` is cut into L = (S/p)² patches; a random subset of M = round(r·L)
of them (mask ratio r = 0.75) is removed. The encoder (a :class:`~selfsup.models.vit.ViT`) sees the
class token and the L − M visible patches only. A lightweight decoder embeds its output to a
smaller width, puts a shared learned mask token at every removed position, adds its own fixed
sin-cos positions, runs a few transformer blocks and predicts the p²·3 pixel values of every
patch. The loss is the mean squared error over the removed patches only (§3, "Reconstruction
target"):

    L = (1 / (N·M)) Σ_i Σ_{k ∈ masked(i)} ‖ŷ_ik − t_ik‖² / (p²·3)

with t_ik the pixels of patch k (standardised like
:func:`~selfsup.models.inputs.images_to_tensor`) or, with ``norm_pix_loss=True`` (the paper's
better-performing variant, our default), each patch normalised by its own statistics:

    t_ik = (x_ik − mean(x_ik)) / √(var(x_ik) + 10⁻⁶)    (var unbiased, as ``torch.var`` in MAE's code)

Shapes: ``make_batch`` turns N uint8 images ``(N, H, W, 3)`` into ``images (N, 3, S, S)``,
``keep (N, L − M)`` and ``masked (N, M)`` (patch indices in row-major order); the decoder predicts
``(N, L, p²·3)``.

Masking is per sample (MAE's ``random_masking``: the argsort of uniform noise; the first L − M
patches of that order are kept) with the noise drawn from a generator seeded by
(seed, epoch, dataset index), so a sample's mask depends on nothing else in the batch; it lives on
the data side (``make_batch``). Augmentation is the paper's: RandomResizedCrop with scale
(0.2, 1) and a horizontal flip, nothing else (the native transforms; bilinear antialiased
resizing where MAE's code uses bicubic).

Under DDP nothing is gathered: every sample has the same M masked patches, so the mean of the
ranks' losses (DDP's gradient average) is the loss of the global batch.

Defaults scaled to 32-px images on a CPU: patch 4, decoder dim 64 × 2 blocks × 4 heads (the
paper: ViT-B/16 at 224 px with a 512-d × 8-block decoder, 16 heads). The paper trains 800–1600
epochs with AdamW (β₂ = 0.95, weight decay 0.05, base lr 1.5·10⁻⁴·batch/256) and reports linear
probing and fine-tuning; short runs and linear probes are MAE's weak spot, which it says itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD, device_of, images_to_tensor
from selfsup.methods.base import Method
from selfsup.methods.joint import view_side
from selfsup.models.vit import LAYER_NORM_EPS, Block, ViT, check_transformer, init_like_mae, patchify, sincos_position_embedding, unpatchify
from selfsup.ops._common import check_epoch, resolve_seed
from selfsup.transforms import Compose, Normalize, RandomHorizontalFlip, RandomResizedCrop
from selfsup.losses.masked_patch import masked_patch_loss

NORM_PIX_EPS = 1e-6


def masked_count(patches: int, mask_ratio: float) -> int:
    """M = round(r·L), the number of patches removed per sample.

    Raises:
        ValueError: ``mask_ratio`` outside (0, 1), or one that leaves no masked or no visible patch.
    """
    if not 0 < mask_ratio < 1:
        raise ValueError(f"mask_ratio: expected a value in (0, 1), got {mask_ratio}")
    count = round(mask_ratio * patches)
    if not 0 < count < patches:
        raise ValueError(f"mask_ratio: {mask_ratio} masks {count} of {patches} patches; expected at least one masked and one visible")
    return count


def random_masking(
    patches: int, masked: int, *, seed: int, epoch: int, indices: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per-sample random masking: for sample ``indices[i]``, uniform noise ``(L,)`` from
    ``numpy.random.default_rng([seed, epoch, indices[i]])``, argsorted; the first L − M patch
    indices of that order are kept, the last M masked. Returns ``keep (N, L − M)`` and
    ``masked (N, M)``, int64."""
    seed, epoch = resolve_seed(seed), check_epoch(epoch)
    order = np.stack([np.argsort(np.random.default_rng([seed, epoch, int(i)]).random(patches), kind="stable") for i in indices])
    order = order.astype(np.int64).reshape(len(indices), patches)
    return np.ascontiguousarray(order[:, : patches - masked]), np.ascontiguousarray(order[:, patches - masked :])


def patch_targets(images: torch.Tensor, patch: int, norm_pix_loss: bool) -> torch.Tensor:
    """The reconstruction targets ``(N, L, p²·C)``: each patch's pixels, normalised per patch
    (mean 0, unbiased variance 1 up to ε = 10⁻⁶) when ``norm_pix_loss``."""
    target = patchify(images, patch)
    if not norm_pix_loss:
        return target
    mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
    return (target - mean) / (var + NORM_PIX_EPS).sqrt()


class MAEDecoder(nn.Module):
    """``latent (N, 1 + K, D)`` of the class token and the kept patches ``keep (N, K)`` →
    predicted pixels ``(N, L, p²·C)`` of every patch: linear embedding to ``dim``, the mask token
    at the L − K removed positions, fixed sin-cos positions, ``depth`` blocks, LayerNorm, linear
    prediction (the class token goes through the blocks and is dropped at the end, as in MAE)."""

    pos_embed: torch.Tensor

    def __init__(self, encoder_dim: int, grid: int, pixels: int, dim: int = 64, depth: int = 2, heads: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        check_transformer(dim, depth, heads, mlp_ratio, prefix="decoder_")
        self.num_patches = grid * grid
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_position_embedding(dim, grid).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.predict = nn.Linear(dim, pixels)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(init_like_mae)

    def forward(self, latent: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.embed(latent)
        n, _, dim = x.shape
        canvas = self.mask_token.expand(n, self.num_patches, dim).to(x.dtype)  # x is bfloat16/float16 under autocast
        patches = torch.scatter(canvas, 1, keep.unsqueeze(-1).expand(-1, -1, dim), x[:, 1:])
        x = torch.cat([x[:, :1], patches], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.predict(self.norm(x))[:, 1:]
        return out


class MAE(Method):
    """See the module docstring for the objective and shapes.

    Args:
        backbone: a :class:`~selfsup.models.vit.ViT` with 3 input channels (backbone ``vit_tiny``).
        mask_ratio: r, the fraction of patches removed per sample.
        decoder_dim, decoder_depth, decoder_heads, mlp_ratio: the decoder's transformer.
        norm_pix_loss: normalise each target patch by its mean and standard deviation.
        min_scale: the lower bound of RandomResizedCrop's area scale (the paper's 0.2).

    Raises:
        ValueError: a backbone that is not a 3-channel ViT, ``mask_ratio`` outside (0, 1) or leaving
            no masked or visible patch, bad decoder sizes, ``min_scale`` outside (0, 1], images
            that are not uint8 ``(N, H, W, 3)`` (at make_batch).

    Example:
        >>> import numpy as np
        >>> from selfsup.models.vit import vit_tiny
        >>> method = MAE(vit_tiny(image_size=16, dim=32, depth=1, heads=2), decoder_dim=16, decoder_depth=1)
        >>> batch = method.make_batch(np.zeros((2, 16, 16, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> tuple(batch["keep"].shape), tuple(batch["masked"].shape)
        ((2, 4), (2, 12))
    """

    name: ClassVar[str] = "mae"
    views: ClassVar[tuple[str, ...]] = ("images", "keep", "masked")
    takes_originals: ClassVar[bool] = True
    backbone: ViT

    def __init__(
        self, backbone: nn.Module, mask_ratio: float = 0.75, decoder_dim: int = 64, decoder_depth: int = 2, decoder_heads: int = 4,
        mlp_ratio: float = 4.0, norm_pix_loss: bool = True, min_scale: float = 0.2,
    ) -> None:
        if not isinstance(backbone, ViT) or backbone.in_channels != 3:
            raise ValueError(
                f"backbone: MAE encodes the visible patches only and needs a 3-channel selfsup.models.vit.ViT "
                f"(backbone 'vit_tiny'), got {type(backbone).__name__}"
            )
        super().__init__(backbone)
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale: expected a value in (0, 1], got {min_scale}")
        self.mask_ratio = float(mask_ratio)
        self.num_masked = masked_count(backbone.num_patches, mask_ratio)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.min_scale = float(min_scale)
        pixels = backbone.patch_size**2 * backbone.in_channels
        self.decoder = MAEDecoder(backbone.out_dim, backbone.grid, pixels, decoder_dim, decoder_depth, decoder_heads, mlp_ratio)
        self._augmentation: Compose | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the compiled pipeline behind; it is rebuilt on demand."""
        state = self.__dict__.copy()
        state["_augmentation"] = None
        return state

    def augmentation(self) -> Compose:
        """RandomResizedCrop(S, scale=(min_scale, 1)), horizontal flip, standardisation."""
        if self._augmentation is None:
            self._augmentation = Compose(
                [
                    RandomResizedCrop(self.backbone.image_size, scale=(self.min_scale, 1.0)),
                    RandomHorizontalFlip(0.5),
                    Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD),
                ]
            )
        return self._augmentation

    def masks(self, *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """``keep (N, L − M)`` and ``masked (N, M)`` of :func:`random_masking` as tensors."""
        keep, masked = random_masking(self.backbone.num_patches, self.num_masked, seed=seed, epoch=epoch, indices=indices)
        return {"keep": torch.from_numpy(keep).to(device), "masked": torch.from_numpy(masked).to(device)}

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        view_side(images, self.backbone.image_size)
        views = self.augmentation()(images, seed=seed, epoch=epoch, indices=indices)
        return {"images": views.to(device), **self.masks(seed=seed, epoch=epoch, indices=indices, device=device)}

    def reconstruct(self, images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The decoder's prediction ``(N, L, p²·3)`` for every patch from the kept ones."""
        prediction: torch.Tensor = self.decoder(self.backbone.forward_tokens(images, keep), keep)
        return prediction

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["images"]
        prediction = self.reconstruct(images, batch["keep"])
        target = patch_targets(images, self.backbone.patch_size, self.norm_pix_loss)
        return {"loss": masked_patch_loss(prediction, target, batch["masked"])}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        """For up to 8 un-augmented images: the original, the visible patches (removed ones grey),
        the prediction of every patch (brought back to pixel statistics with each patch's own mean
        and variance under ``norm_pix_loss``, as the paper's figures), and the visible patches
        pasted over the prediction."""
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        n = min(8, len(images))
        x = images_to_tensor(images[:n], device_of(self))
        masks = self.masks(seed=seed, epoch=0, indices=np.arange(n, dtype=np.int64), device=x.device)
        p, channels = self.backbone.patch_size, self.backbone.in_channels
        patches = patchify(x, p)
        prediction = self.reconstruct(x, masks["keep"])
        if self.norm_pix_loss:
            mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
            prediction = prediction * (var + NORM_PIX_EPS).sqrt() + mean
        removed = torch.zeros(n, patches.shape[1], 1, device=x.device).scatter_(1, masks["masked"].unsqueeze(-1), 1.0)
        visible = unpatchify(patches * (1 - removed), p, channels)
        pasted = unpatchify(patches * (1 - removed) + prediction * removed, p, channels)
        predicted = unpatchify(prediction, p, channels)
        rows = [Row("original"), Row(f"masked {self.mask_ratio:.0%}"), Row("reconstruction"), Row("reconstruction + visible")]
        for i in range(n):
            for row, picture in zip(rows, (x, visible, predicted, pasted)):
                row.add(to_image(picture[i]))
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(MAE, aliases=("masked_autoencoder",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("mae", lr=5e-4, backbone="vit_tiny", summary="AdamW 5e-4 on the tiny ViT"))
