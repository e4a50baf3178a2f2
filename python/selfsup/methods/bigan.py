"""BiGAN / ALI: adversarial feature learning (Donahue, Krähenbühl & Darrell 2017, "Adversarial
Feature Learning", arXiv:1605.09782; Dumoulin et al. 2017, arXiv:1606.00704).

An encoder E (the backbone + a linear map to the latent space), a generator G (latent → image)
and a discriminator D on joint pairs: real (x, E(x)) against fake (G(z), z), z ~ N(0, I):

    L_D  = −E[log D(x, E(x))] − E[log(1 − D(G(z), z))]
    L_EG = −E[log(1 − D(x, E(x)))] − E[log D(G(z), z)]      (non-saturating)

One optimizer step updates all three at once (simultaneous gradient descent): D receives the
gradient of L_D only (E and G outputs detached), E and G the gradient of L_EG only (through a copy
of D whose parameters are detached).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.autoencoder import Decoder
from selfsup.methods.base import batch_generator, Method
from selfsup.models.inputs import device_of, images_to_tensor


class JointDiscriminator(nn.Module):
    """D(x, z): a small convolutional image path and a latent path, joined by an MLP; one logit."""

    def __init__(self, channels: int, size: int, latent: int, width: int = 64) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.latent = nn.Sequential(nn.Linear(latent, 256), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(2 * width * (size // 4) ** 2 + 256, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logit: torch.Tensor = self.joint(torch.cat([self.image(x), self.latent(z)], dim=1)).squeeze(1)
        return logit


class BiGAN(Method):
    name: ClassVar[str] = "bigan"
    views: ClassVar[tuple[str, ...]] = ("images", "noise")

    def __init__(self, backbone: nn.Module, latent: int = 64, image_size: int = 32, channels: int = 3) -> None:
        super().__init__(backbone)
        if latent < 1:
            raise ValueError(f"latent: expected a positive int, got {latent}")
        self.image_size, self.latent = image_size, latent
        self.to_latent = nn.Linear(self.feature_dim, latent)
        self.generator = Decoder(latent, channels, image_size)
        self.discriminator = JointDiscriminator(channels, image_size, latent)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected {self.image_size}x{self.image_size} images, got {images.shape[1]}x{images.shape[2]}")
        noise = torch.randn(len(images), self.latent, generator=batch_generator(seed, epoch, indices))
        return {"images": images_to_tensor(images, device), "noise": noise.to(device)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        code: torch.Tensor = self.to_latent(self.backbone(x))
        return code

    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, z = batch["images"], batch["noise"]
        ex, gz = self.encode(x), self.generator(z)
        real, fake = self.discriminator(x, ex.detach()), self.discriminator(gz.detach(), z)
        loss_d = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        real_eg = functional_call(self.discriminator, frozen, (x, ex))
        fake_eg = functional_call(self.discriminator, frozen, (gz, z))
        loss_eg = F.binary_cross_entropy_with_logits(real_eg, torch.zeros_like(real_eg)) + F.binary_cross_entropy_with_logits(
            fake_eg, torch.ones_like(fake_eg)
        )
        return loss_d, loss_eg

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        loss_d, loss_eg = self.losses(batch)
        return {"loss": loss_d + loss_eg, "loss_d": loss_d.detach(), "loss_eg": loss_eg.detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        n = min(8, len(images))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        samples = self.generator(batch["noise"])
        reconstructions = self.generator(self.encode(batch["images"]))
        rows = [Row("bigan samples G(z)"), Row("input x"), Row("G(E(x))")]
        for i in range(n):
            rows[0].add(to_image(samples[i]))
            rows[1].add(to_image(batch["images"][i]))
            rows[2].add(to_image(reconstructions[i]))
        return rows


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(BiGAN, aliases=("ali",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("bigan", lr=2e-4, summary="AdamW at the paper's Adam rate 2e-4"))
