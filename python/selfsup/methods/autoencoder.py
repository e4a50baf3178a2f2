"""Autoencoders: plain, denoising (Vincent et al. 2008) and variational (Kingma & Welling 2014,
"Auto-Encoding Variational Bayes", arXiv:1312.6114; β-VAE: Higgins et al. 2017).

The backbone is the encoder; a transposed-convolution decoder maps a code back to the image
(standardised pixels). With ``x̂ = g(z)``:

- plain:      L = ‖x − g(h(f(x)))‖² / (C·H·W)
- denoising:  L = ‖x − g(h(f(x̃)))‖² / (C·H·W), x̃ = x + σ·ε on the standardised input
- variational: μ, log σ² = h(f(x)); z = μ + σ·ε;
  L = ‖x − g(z)‖² / (C·H·W) + β · KL(N(μ, σ²) ‖ N(0, I)) / (C·H·W),
  KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.base import Method
from selfsup.models.inputs import device_of, images_to_tensor


class Decoder(nn.Module):
    """``(N, code) → (N, C, S, S)``: a linear layer to a 4×4 map, then ×2 transposed convolutions."""

    def __init__(self, code: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        ups = int(np.log2(size // 4)) if size >= 4 else -1
        if size < 4 or 4 * 2**ups != size:
            raise ValueError(f"image_size: expected 4·2^k pixels (8, 16, 32, 64, ...), got {size}")
        self.width = width
        self.project = nn.Linear(code, width * 16)
        layers: list[nn.Module] = []
        for _ in range(ups):
            layers += [nn.ConvTranspose2d(width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(self.project(z).view(-1, self.width, 4, 4))
        return out


class Autoencoder(Method):
    """``variant`` is ``plain``, ``denoising`` or ``variational``. Raises ``ValueError`` for an
    unknown variant, ``beta`` < 0, ``noise`` < 0 or an image size the decoder cannot produce."""

    name: ClassVar[str] = "autoencoder"
    views: ClassVar[tuple[str, ...]] = ("images",)

    def __init__(
        self, backbone: nn.Module, variant: str = "plain", image_size: int = 32, channels: int = 3, code: int = 128,
        beta: float = 1.0, noise: float = 0.5,
    ) -> None:
        super().__init__(backbone)
        if variant not in ("plain", "denoising", "variational"):
            raise ValueError(f"variant: expected 'plain', 'denoising' or 'variational', got {variant!r}")
        if beta < 0 or noise < 0:
            raise ValueError(f"beta, noise: expected non-negative values, got {beta}, {noise}")
        self.variant, self.beta, self.noise, self.image_size = variant, beta, noise, image_size
        self.to_code = nn.Linear(self.feature_dim, 2 * code if variant == "variational" else code)
        self.decoder = Decoder(code, channels, image_size)

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"images: expected {self.image_size}x{self.image_size} images, got {images.shape[1]}x{images.shape[2]}")
        batch = {"images": images_to_tensor(images, device)}
        if self.variant == "denoising":
            generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
            noise = torch.randn(batch["images"].shape, generator=generator).to(device)
            batch["noisy"] = batch["images"] + self.noise * noise
        return batch

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        code = self.to_code(self.backbone(x))
        if self.variant == "variational":
            mu, logvar = code.chunk(2, dim=1)
            return mu, logvar
        return code, None

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["images"]
        mu, logvar = self.encode(batch.get("noisy", x))
        pixels = x[0].numel()
        if logvar is None:
            reconstruction = self.decoder(mu)
            loss = (reconstruction - x).pow(2).sum(dim=(1, 2, 3)).mean() / pixels
            return {"loss": loss, "reconstruction": loss.detach()}
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        reconstruction = self.decoder(z)
        rec = (reconstruction - x).pow(2).sum(dim=(1, 2, 3)).mean() / pixels
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1).mean() / pixels
        return {"loss": rec + self.beta * kl, "reconstruction": rec.detach(), "kl": kl.detach()}

    def show(self, images: npt.NDArray[np.uint8], seed: int = 0) -> list[Any]:
        from selfsup.viz.canvas import Row
        from selfsup.viz.tensors import to_image

        n = min(8, len(images))
        batch = self.make_batch(images[:n], seed=seed, epoch=0, indices=np.arange(n), device=device_of(self))
        mu, _ = self.encode(batch.get("noisy", batch["images"]))
        reconstruction = self.decoder(mu)
        inputs, outputs = Row(f"{self.name} input"), Row("reconstruction")
        for i in range(n):
            inputs.add(to_image(batch.get("noisy", batch["images"])[i]), "noisy" if "noisy" in batch else "")
            outputs.add(to_image(reconstruction[i]))
        rows = [inputs, outputs]
        if self.variant == "variational":
            generator = torch.Generator().manual_seed(seed)
            samples = self.decoder(torch.randn(n, mu.shape[1], generator=generator).to(mu.device))
            sampled = Row("samples z ~ N(0, I)")
            for i in range(n):
                sampled.add(to_image(samples[i]))
            rows.append(sampled)
        return rows


class DenoisingAutoencoder(Autoencoder):
    name: ClassVar[str] = "denoising_autoencoder"

    def __init__(self, backbone: nn.Module, **options: object) -> None:
        super().__init__(backbone, variant="denoising", **options)  # type: ignore[arg-type]


class VAE(Autoencoder):
    name: ClassVar[str] = "vae"

    def __init__(self, backbone: nn.Module, **options: object) -> None:
        super().__init__(backbone, variant="variational", **options)  # type: ignore[arg-type]


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(Autoencoder)
    register(DenoisingAutoencoder, aliases=("dae",))
    register(VAE, aliases=("beta_vae",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("autoencoder", summary="AdamW 1e-3"))
    register(Recipe("denoising_autoencoder", summary="AdamW 1e-3"))
    register(Recipe("vae", summary="AdamW 1e-3"))
