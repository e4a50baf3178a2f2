"""Context encoder (Pathak, Krähenbühl, Donahue, Darrell & Efros 2016, "Context Encoders: Feature
Learning by Inpainting", arXiv:1604.07379).

The encoder (the backbone) sees the image with a region M̂ dropped (filled with the mean colour); a
decoder from its pooled features (the paper's channel-wise fully connected bottleneck) paints the
image back, and the loss looks at the dropped region only (eq. 1, with the training code's overlap
weighting: the decoder also predicts a band of ``overlap`` visible pixels around the hole, weighted
``overlap_weight`` = 10 times):

    L_rec = Σ W ⊙ (x − F((1 − M̂) ⊙ x))² / (C · |R|),   W = M̂ + overlap_weight · (R − M̂),
    R = M̂ dilated by ``overlap`` pixels (the predicted region)

With ``adversarial=True`` a small image discriminator D judges the inpainted composite
x̃ = (1 − M̂) ⊙ x + M̂ ⊙ F(·) against real images (eq. 2) and the joint loss (eq. 3) is

    L = λ_rec L_rec + λ_adv L_adv,   L_adv = −log D(x̃) (non-saturating),   λ_rec = 0.999, λ_adv = 0.001

D is trained in the same optimizer step on L_D = −log D(x) − log(1 − D(x̃)), with x̃ detached;
the encoder–decoder's L_adv flows through a copy of D whose parameters are detached, as in
:mod:`selfsup.methods.bigan`. Masks come from the native ops: the central square (¼ of the area),
random blocks, or random regions (the paper's choice for feature learning; the ops' smooth random
shapes stand in for its PASCAL segmentation masks). The overlap of 4 px at the paper's 128-px
inputs is 1 px at 32 px, the default here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, cast

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.autoencoder import Decoder
from selfsup.methods.base import Method
from selfsup.models.inputs import device_of, images_to_tensor

MASK_KINDS = ("center", "blocks", "region")


class ImageDiscriminator(nn.Module):
    """D(x): strided 4×4 convolutions with LeakyReLU (DCGAN-style, as the paper's), one logit."""

    def __init__(self, channels: int, size: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (size // 4) ** 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit: torch.Tensor = self.net(x).squeeze(1)
        return logit


def region_weights(masks: torch.Tensor, overlap: int, overlap_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss weights W and predicted region R, both ``(N, 1, H, W)``, for masks ``(N, 1, H, W)`` in {0, 1}."""
    region = F.max_pool2d(masks, 2 * overlap + 1, 1, overlap) if overlap > 0 else masks
    return masks + overlap_weight * (region - masks), region


class ContextEncoder(Method):
    """``make_batch``: N uint8 images → ``masked (N, C, H, W)`` (the encoder's input), ``images``
    (the originals) and ``masks (N, 1, H, W)`` (1 = dropped), all standardised like
    :func:`~selfsup.models.inputs.images_to_tensor`.

    Raises:
        ValueError: unknown ``mask``; ``fraction`` outside (0, 1]; ``overlap`` < 0;
            ``overlap_weight`` < 0; λs < 0; an image size the decoder cannot produce; images of
            another size (at make_batch).

    Example:
        >>> import numpy as np
        >>> from selfsup.models import small_resnet
        >>> method = ContextEncoder(small_resnet(width=8), mask="center")
        >>> batch = method.make_batch(np.zeros((2, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
        >>> batch["masks"].sum().item()
        512.0
    """

    name: ClassVar[str] = "inpainting"
    views: ClassVar[tuple[str, ...]] = ("masked", "images", "masks")

    def __init__(
        self, backbone: nn.Module, mask: str = "region", fraction: float = 0.25, blocks: int = 8, overlap: int = 1,
        overlap_weight: float = 10.0, adversarial: bool = False, lambda_rec: float = 0.999, lambda_adv: float = 0.001,
        image_size: int = 32, channels: int = 3, fill: int | Sequence[int] = ops.inpainting.IMAGENET_MEAN_COLOUR,
    ) -> None:
        super().__init__(backbone)
        if mask not in MASK_KINDS:
            raise ValueError(f"mask: expected one of {', '.join(MASK_KINDS)}, got {mask!r}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction: expected a value in (0, 1], got {fraction}")
        if overlap < 0 or overlap_weight < 0:
            raise ValueError(f"overlap, overlap_weight: expected non-negative values, got {overlap}, {overlap_weight}")
        if lambda_rec < 0 or lambda_adv < 0:
            raise ValueError(f"lambda_rec, lambda_adv: expected non-negative values, got {lambda_rec}, {lambda_adv}")
        if blocks < 1:
            raise ValueError(f"blocks: expected a positive int, got {blocks}")
        self.mask, self.fraction, self.blocks, self.fill = mask, fraction, blocks, fill
        self.overlap, self.overlap_weight = overlap, overlap_weight
        self.adversarial, self.lambda_rec, self.lambda_adv = adversarial, lambda_rec, lambda_adv
        self.image_size = image_size
        self.decoder = Decoder(self.feature_dim, channels, image_size)
        self.discriminator = ImageDiscriminator(channels, image_size) if adversarial else None

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected (N, {self.image_size}, {self.image_size}, C) images, got shape {tuple(images.shape)}")
        masks = ops.inpaint_masks(
            len(images), self.image_size, cast(Literal["center", "blocks", "region"], self.mask), fraction=self.fraction, blocks=self.blocks, seed=seed, epoch=epoch, indices=indices
        )
        masked = ops.apply_mask(images, masks, self.fill, seed=seed, epoch=epoch, indices=indices)
        return {
            "masked": images_to_tensor(masked, device),
            "images": images_to_tensor(images, device),
            "masks": torch.from_numpy(masks).to(device).float().unsqueeze(1),
        }

    def inpaint(self, masked: torch.Tensor) -> torch.Tensor:
        """The decoder's full image ``(N, C, H, W)`` from the masked input."""
        out: torch.Tensor = self.decoder(self.backbone(masked))
        return out

    def reconstruction_loss(self, prediction: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        weights, region = region_weights(masks, self.overlap, self.overlap_weight)
        return (weights * (prediction - images).pow(2)).sum() / (images.shape[1] * region.sum().clamp_min(1.0))

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, masks = batch["images"], batch["masks"]
        prediction = self.inpaint(batch["masked"])
        rec = self.reconstruction_loss(prediction, x, masks)
        if self.discriminator is None:
            return {"loss": rec, "reconstruction": rec.detach()}
        composite = (1 - masks) * x + masks * prediction
        real, fake = self.discriminator(x), self.discriminator(composite.detach())
        loss_d = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        judged = functional_call(self.discriminator, frozen, (composite,))
        adv = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        loss = self.lambda_rec * rec + self.lambda_adv * adv + loss_d
        return {"loss": loss, "reconstruction": rec.detach(), "adversarial": adv.detach(), "loss_d": loss_d.detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        n = min(8, len(images))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        masks = batch["masks"]
        composite = (1 - masks) * batch["images"] + masks * self.inpaint(batch["masked"])
        rows = [Row(f"masked ({self.mask})"), Row("inpainted"), Row("original")]
        for i in range(n):
            rows[0].add(to_image(batch["masked"][i]))
            rows[1].add(to_image(composite[i]))
            rows[2].add(to_image(batch["images"][i]))
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(ContextEncoder, aliases=("context_encoder",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("inpainting", summary="AdamW 1e-3"))
