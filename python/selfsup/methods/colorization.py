"""Colorization (Zhang, Isola & Efros 2016, "Colorful Image Colorization", arXiv:1603.08511).

The backbone sees the lightness L of an image (one channel) and predicts its colour: for every
pixel of an ``output_size``² map (¼ of the input side, as the paper's 56² for 224² inputs) a
distribution Ẑ over the Q in-gamut ab bins. Targets Z soft-encode the ground-truth ab over the 5
nearest bins with a Gaussian of σ = 5 (§2.1); the loss is the rebalanced multinomial cross-entropy
(eq. 2)

    L_cl(Ẑ, Z) = −(1/HW) Σ_{h,w} v(Z_{h,w}) Σ_q Z_{h,w,q} log Ẑ_{h,w,q},   v(Z_{h,w}) = w_{q*}, q* = argmax_q Z_{h,w,q}

with class-rebalancing weights (eq. 3–4) from the σ-smoothed empirical prior p̃ of the bins:

    w ∝ ((1 − λ) p̃ + λ/Q)^−1,   Σ_q p̃_q w_q = 1,   λ = ½   (``gamma`` in :mod:`selfsup.ops`)

The paper estimates p̃ once on ImageNet; here p̃ is estimated online from every ab value the method
has trained on (nearest-bin counts, a buffer saved with the checkpoint). Predictions are decoded
with the annealed mean at T = 0.38 (eq. 5). ``variant="regression"`` predicts ab directly (in
units of 100) with the paper's baseline loss L₂ = ½ Σ_{h,w} ‖Y − Ŷ‖² (per-pixel mean), or L₁.

Architecture (scaled down): the backbone's pooled features go through the transposed-convolution
decoder of the autoencoders to the ``(Q or 2, s, s)`` prediction map; the paper's network is fully
convolutional. The backbone must take one input channel (``small_resnet(in_channels=1)``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.autoencoder import Decoder
from selfsup.methods.base import Method
from selfsup.models.lightness import input_channels, lightness, lightness_to_tensor
from selfsup.models.inputs import device_of


def downsample_ab(ab: npt.NDArray[np.float32], size: int) -> npt.NDArray[np.float32]:
    """Area average of ab ``(N, H, W, 2)`` to ``(N, size, size, 2)``; H and W multiples of ``size``."""
    n, h, w, _ = ab.shape
    out: npt.NDArray[np.float32] = ab.reshape(n, size, h // size, size, w // size, 2).mean(axis=(2, 4), dtype=np.float32)
    return np.ascontiguousarray(out)


class Colorization(Method):
    """``make_batch``: N RGB uint8 images → ``lightness (N, 1, H, W)`` (standardised L), ``ab
    (N, 2, s, s)`` (ground truth ab / 100 at the output size), ``targets (N, Q, s, s)`` (soft
    encoding) and ``bins (N, s, s)`` (nearest bin).

    Raises:
        ValueError: unknown ``variant`` or ``regression_loss``; ``sigma``, ``temperature`` ≤ 0;
            ``gamma`` outside [0, 1]; ``neighbours`` < 1; an ``output_size`` that does not divide
            ``image_size`` or that the decoder cannot produce; a backbone whose first convolution
            does not take 1 channel; images of another size or not RGB (at make_batch).

    Example:
        >>> import numpy as np
        >>> from selfsup.models import small_resnet
        >>> method = Colorization(small_resnet(width=8, in_channels=1))
        >>> batch = method.make_batch(np.zeros((2, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> tuple(batch["lightness"].shape), tuple(batch["targets"].shape)
        ((2, 1, 32, 32), (2, 261, 8, 8))
    """

    name: ClassVar[str] = "colorization"
    views: ClassVar[tuple[str, ...]] = ("lightness", "ab", "targets", "bins")
    in_channels: ClassVar[int] = 1
    """Channels the backbone must take (``selfsup train`` builds ``small_resnet`` with it)."""

    bin_counts: torch.Tensor
    smoothing: torch.Tensor

    def __init__(
        self, backbone: nn.Module, variant: str = "classification", image_size: int = 32, output_size: int = 8, grid: int = 10,
        sigma: float = 5.0, neighbours: int = 5, gamma: float = 0.5, rebalance: bool = True, temperature: float = 0.38,
        regression_loss: str = "l2",
    ) -> None:
        super().__init__(backbone)
        if variant not in ("classification", "regression"):
            raise ValueError(f"variant: expected 'classification' or 'regression', got {variant!r}")
        if regression_loss not in ("l2", "l1"):
            raise ValueError(f"regression_loss: expected 'l2' or 'l1', got {regression_loss!r}")
        if not sigma > 0 or not temperature > 0:
            raise ValueError(f"sigma, temperature: expected positive values, got {sigma}, {temperature}")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma: expected a value in [0, 1], got {gamma}")
        if neighbours < 1:
            raise ValueError(f"neighbours: expected at least 1, got {neighbours}")
        if output_size < 1 or image_size % output_size:
            raise ValueError(f"output_size: expected a divisor of image_size {image_size}, got {output_size}")
        channels = input_channels(backbone)
        if channels is not None and channels != 1:
            raise ValueError(
                f"backbone: colorization feeds the L channel only; expected a backbone whose first convolution takes 1 channel "
                f"(e.g. small_resnet(in_channels=1)), got {channels}"
            )
        self.variant, self.regression_loss = variant, regression_loss
        self.image_size, self.output_size, self.grid = image_size, output_size, grid
        self.sigma, self.neighbours, self.gamma, self.rebalance, self.temperature = sigma, neighbours, gamma, rebalance, temperature
        centres = torch.from_numpy(ops.ab_bins(grid)).double()
        self.num_bins = len(centres)
        if neighbours > self.num_bins:
            raise ValueError(f"neighbours: expected at most {self.num_bins} (the bins of grid {grid}), got {neighbours}")
        self.register_buffer("smoothing", torch.exp(-torch.cdist(centres, centres) ** 2 / (2 * sigma**2)), persistent=False)
        self.register_buffer("bin_counts", torch.zeros(self.num_bins, dtype=torch.float64))
        self.decoder = Decoder(self.feature_dim, self.num_bins if variant == "classification" else 2, output_size)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected {self.image_size}x{self.image_size} images, got {images.shape[1]}x{images.shape[2]}")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: colorization expects RGB images (N, H, W, 3), got shape {tuple(images.shape)}")
        lab = ops.rgb_to_lab(images)
        ab = downsample_ab(lab[..., 1:], self.output_size)
        batch = {
            "lightness": lightness_to_tensor(np.ascontiguousarray(lab[..., 0]), device),
            "ab": torch.from_numpy(ab / 100.0).permute(0, 3, 1, 2).contiguous().to(device),
            "bins": torch.from_numpy(ops.nearest_ab_bin(ab, self.grid)).to(device),
        }
        if self.variant == "classification":
            soft = ops.encode_ab(ab, self.sigma, self.neighbours, self.grid)
            batch["targets"] = torch.from_numpy(soft).permute(0, 3, 1, 2).contiguous().to(device)
        return batch

    def prior(self, counts: torch.Tensor) -> torch.Tensor:
        """p̃ ``(Q,)``: nearest-bin ``counts`` normalised, smoothed by a Gaussian of σ over the bin centres."""
        smoothed = self.smoothing @ (counts.double() / counts.sum().clamp_min(1.0))
        return smoothed / smoothed.sum()

    def rebalancing_weights(self, counts: torch.Tensor) -> torch.Tensor:
        """w ``(Q,)`` of eq. 4 for the prior of ``counts``: ``w ∝ ((1 − λ)p̃ + λ/Q)^−1``, ``Σ p̃ w = 1``."""
        p = self.prior(counts)
        w = 1.0 / ((1 - self.gamma) * p + self.gamma / self.num_bins)
        return w / (p * w).sum()

    def predict(self, lightness_tensor: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, Q, s, s)`` (classification) or ab / 100 ``(N, 2, s, s)`` (regression)."""
        out: torch.Tensor = self.decoder(self.backbone(lightness_tensor))
        return out

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prediction = self.predict(batch["lightness"])
        if self.variant == "regression":
            diff = prediction - batch["ab"]
            loss = 0.5 * diff.pow(2).sum(1).mean() if self.regression_loss == "l2" else diff.abs().sum(1).mean()
            return {"loss": loss, "ab_rmse": (diff.detach() * 100).pow(2).sum(1).mean().sqrt()}
        bins = batch["bins"]
        with torch.no_grad():
            counts = self.bin_counts + torch.bincount(bins.reshape(-1), minlength=self.num_bins).double()
            if self.training:
                self.bin_counts.copy_(counts)
            weights = self.rebalancing_weights(counts).float() if self.rebalance else torch.ones(self.num_bins, device=bins.device)
        per_pixel = -(batch["targets"] * F.log_softmax(prediction, dim=1)).sum(1)
        loss = (weights[bins] * per_pixel).mean()
        accuracy = (prediction.argmax(1) == bins).float().mean()
        return {"loss": loss, "cross_entropy": per_pixel.mean().detach(), "bin_accuracy": accuracy.detach()}

    def colorize(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """RGB uint8 ``(N, H, W, 3)``: the L of ``images`` with the predicted ab (annealed mean at
        ``temperature`` for the classifier), upsampled bilinearly to the image size."""
        lab = ops.rgb_to_lab(images)
        with torch.no_grad():
            prediction = self.predict(lightness_to_tensor(np.ascontiguousarray(lab[..., 0])).to(device_of(self))).float().cpu()
            if self.variant == "classification":
                probs = torch.softmax(prediction, dim=1).permute(0, 2, 3, 1).contiguous().numpy()
                ab = torch.from_numpy(ops.decode_ab(probs, self.temperature, self.grid)).permute(0, 3, 1, 2)
            else:
                ab = prediction * 100.0
            ab = F.interpolate(ab, size=images.shape[1:3], mode="bilinear", align_corners=False)
        lab[..., 1:] = ab.permute(0, 2, 3, 1).numpy()
        rgb = ops.lab_to_rgb(lab)
        return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row

        n = min(8, len(images))
        colourised = self.colorize(images[:n])
        grey = lightness(images[:n])
        rows = [Row("input L"), Row(f"colourised ({'annealed mean' if self.variant == 'classification' else 'regression'})"),
                Row("ground truth")]
        for i in range(n):
            rows[0].add((grey[i] / 100.0).astype(np.float32))
            rows[1].add(colourised[i])
            rows[2].add(images[i])
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(Colorization, aliases=("colorisation", "colorful"))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("colorization", summary="AdamW 1e-3"))
