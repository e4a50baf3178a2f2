"""Deep InfoMax (Hjelm et al. 2019, "Learning deep representations by mutual information estimation
and maximization", arXiv:1808.06670).

The encoder E_ψ is the backbone: its pooled output is the global feature y = E_ψ(x) ``(N, D)``
(what the probe reads) and the output of one of its intermediate layers is the local feature map
C_ψ(x) ``(N, C, H, W)`` with M = H·W locations C^{(i)}. The paper's encoder-and-dot architecture
scores a (local, global) pair as

    T(C^{(i)}, y) = φ(C^{(i)})ᵀ ψ(y),

φ a 1×1-convolution net and ψ an MLP (two layers plus a linear shortcut, ``score_dim`` units).
Positive pairs take C and y of the same image (P); negative pairs take C of one image and y of
another image of the batch (P × P̃). Three lower bounds of the mutual information are available
(``estimator``); for local DIM the expectations run over all M locations:

    "jsd"     (eq. 4)  Î = E_P[−sp(−T)] − E_{P×P̃}[sp(T)]                 sp(t) = log(1 + eᵗ)
    "dv"      (§3.1)   Î = E_P[T] − log E_{P×P̃}[e^T]
    "infonce" (eq. 5)  Î = E_P[T(C^{(i)}, y) − log Σ_{y'} e^{T(C^{(i)}, y')}]

InfoNCE contrasts, at every location i, the local feature C^{(i)} of an image with the global
features of all images of the batch (its own is the positive); it is
:func:`selfsup_kernels.info_nce` with raw dot products (``normalize=False``, τ = 1), one call per
location. P × P̃ holds every (location of one image, global feature of another image) pair.

The objective (eq. 8) is

    L = −α·Î_global − β·(1/M) Σ_i Î(C^{(i)}, y) + γ·L_prior,

with α = 0, β = 1, γ = 0.1 by default (the paper's DIM(L)). The global term scores
T_g(C, y) = φ_g(flatten C)ᵀ ψ_g(y) with the same estimator (built only when α > 0; it fixes the
image size to ``image_size``).

Prior matching (eq. 7, γ > 0): a code u = σ(W y + b) ``(N, prior_dim)`` of the global feature is
matched to the uniform prior V = U[0, 1]^prior_dim by a discriminator D (an MLP with 1000 and 200
hidden units, one logit) in the min–max of the paper's value function

    max_D min_E  E_{v∼V}[log D(v)] + E_{x∼P}[log(1 − D(σ(W E(x) + b)))].

One optimizer step serves both players as in :mod:`selfsup.methods.bigan`: the discriminator
receives the gradient of γ·(softplus(−D(v)) + softplus(D(u.detach()))) (its side of the game, as
a loss) and the encoder and W receive the gradient of their loss through a copy D̄ of the
discriminator whose parameters are detached: ``encoder_loss="minimax"`` (default)
γ·(−softplus(D̄(u))) = γ·log(1 − D̄(u)), the value function itself, or ``"non_saturating"``
γ·softplus(−D̄(u)) = −γ·log D̄(u), which keeps a gradient when D wins (on digits D wins within a few
dozen steps, and the minimax term then passes almost no gradient to the encoder). The paper
matches the encoder's final 64-unit output; here the backbone's pooled features stay the probed
representation and the learned linear code W y + b (``prior_dim = 64``) is what the prior shapes.

The local feature map is read with a forward hook on the backbone's submodule ``local_layer``
(e.g. ``"stages.2"`` of :func:`selfsup.models.small_resnet` or ``"layer3"`` of torchvision's
ResNets; by default the last block of the third stage of either, 8×8 for 32-px inputs as in the
paper's CIFAR-10 encoder). Any backbone whose named submodule outputs ``(N, C, H, W)`` works.

Nothing is gathered under ``torch.distributed``: the negatives of every term are the other images
of the rank's own batch. Scaled down: ``score_dim`` 2 048 in the paper (use 256 on CPU runs).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.base import batch_generator, Method
from selfsup.models.inputs import images_to_tensor
from selfsup.losses.mutual_information import ESTIMATORS, mi_bound

ENCODER_LOSSES = ("minimax", "non_saturating")


class LocalScoreNet(nn.Module):
    """φ: ``(N, C, H, W)`` → ``(N, H·W, S)``: 1×1 conv → ReLU → 1×1 conv, plus a linear 1×1 shortcut."""

    def __init__(self, channels: int, units: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels, units, 1), nn.ReLU(), nn.Conv2d(units, units, 1))
        self.shortcut = nn.Conv2d(channels, units, 1)

    def forward(self, local: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(local) + self.shortcut(local)
        return out.flatten(2).transpose(1, 2)


class GlobalScoreNet(nn.Module):
    """ψ: ``(N, D)`` → ``(N, S)``: linear → ReLU → linear, plus a linear shortcut."""

    def __init__(self, inputs: int, units: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(inputs, units), nn.ReLU(), nn.Linear(units, units))
        self.shortcut = nn.Linear(inputs, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x) + self.shortcut(x)
        return out


def default_local_layer(backbone: nn.Module) -> str:
    """The last block of the third stage: ``small_resnet`` (``stages``) or torchvision ResNets (``layer3``)."""
    stages = getattr(backbone, "stages", None)
    if isinstance(stages, nn.Sequential) and len(stages) % 4 == 0:
        return f"stages.{3 * len(stages) // 4 - 1}"
    if isinstance(getattr(backbone, "layer3", None), nn.Module):
        return "layer3"
    raise ValueError(f"local_layer: name the submodule of {type(backbone).__name__} whose output is the local feature map")


class DeepInfoMax(Method):
    """Shapes: ``make_batch`` turns N uint8 images into ``images (N, C, H, W)`` (standardised) and
    ``prior (N, prior_dim)`` samples of U[0, 1]; ``training_step`` returns the loss, the local bound
    ``local_mi`` and, when enabled, ``global_mi`` and the prior terms ``prior_d``/``prior_e``.

    Args:
        backbone: an ``nn.Module`` with an integer ``out_dim``.
        estimator: ``"jsd"``, ``"infonce"`` or ``"dv"``.
        alpha, beta, gamma: weights of the global, local and prior-matching terms (≥ 0; α + β > 0).
        local_layer: dotted name of the backbone submodule giving C(x); see :func:`default_local_layer`.
        score_dim: S, units of φ, ψ (and φ_g, ψ_g).
        prior_dim: size of the code matched to the uniform prior.
        encoder_loss: the encoder's side of prior matching, ``"minimax"`` or ``"non_saturating"``.
        image_size, in_channels: the input the local map's shape is probed with (and, when α > 0,
            the only size accepted).

    Raises:
        ValueError: naming the argument: unknown estimator, negative weights, α = β = 0, a local
            layer that does not exist or does not output a 4-d map, non-positive sizes.

    Example:
        >>> from selfsup.models import small_resnet
        >>> import numpy as np
        >>> method = DeepInfoMax(small_resnet(width=8), score_dim=32)
        >>> batch = method.make_batch(np.zeros((4, 32, 32, 3), np.uint8), seed=0, epoch=0, indices=np.arange(4))
        >>> sorted(method.training_step(batch))
        ['local_mi', 'loss', 'prior_d', 'prior_e']
    """

    name: ClassVar[str] = "dim"
    views: ClassVar[tuple[str, ...]] = ("images", "prior")

    def __init__(
        self,
        backbone: nn.Module,
        estimator: str = "jsd",
        alpha: float = 0.0,
        beta: float = 1.0,
        gamma: float = 0.1,
        local_layer: str | None = None,
        score_dim: int = 2048,
        prior_dim: int = 64,
        encoder_loss: str = "minimax",
        image_size: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__(backbone)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {estimator!r}")
        if encoder_loss not in ENCODER_LOSSES:
            raise ValueError(f"encoder_loss: expected one of {ENCODER_LOSSES}, got {encoder_loss!r}")
        for key, weight in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not weight >= 0:
                raise ValueError(f"{key}: expected a weight >= 0, got {weight}")
        if alpha == 0 and beta == 0:
            raise ValueError("alpha, beta: expected at least one mutual-information term with a positive weight")
        for key, value in (("score_dim", score_dim), ("prior_dim", prior_dim), ("image_size", image_size), ("in_channels", in_channels)):
            if value < 1:
                raise ValueError(f"{key}: expected a positive int, got {value}")
        self.estimator = estimator
        self.encoder_loss = encoder_loss
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.local_layer = local_layer or default_local_layer(backbone)
        self.image_size, self.in_channels, self.prior_dim = image_size, in_channels, prior_dim
        channels, height, width = self.probe_local_shape()
        self.local_scores = LocalScoreNet(channels, score_dim)
        self.global_scores = GlobalScoreNet(self.feature_dim, score_dim)
        self.global_local: nn.Module | None = None
        self.global_global: nn.Module | None = None
        if alpha > 0:
            flat = channels * height * width
            self.global_local = nn.Sequential(nn.Flatten(), nn.Linear(flat, score_dim), nn.ReLU(), nn.Linear(score_dim, score_dim))
            self.global_global = GlobalScoreNet(self.feature_dim, score_dim)
        self.prior_code: nn.Module | None = None
        self.discriminator: nn.Module | None = None
        if gamma > 0:
            self.prior_code = nn.Linear(self.feature_dim, prior_dim)
            self.discriminator = nn.Sequential(nn.Linear(prior_dim, 1000), nn.ReLU(), nn.Linear(1000, 200), nn.ReLU(), nn.Linear(200, 1))

    def local_module(self) -> nn.Module:
        try:
            return self.backbone.get_submodule(self.local_layer)
        except AttributeError as error:
            raise ValueError(f"local_layer: {type(self.backbone).__name__} has no submodule {self.local_layer!r}") from error

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W)`` images → (local map C(x) ``(N, C', H', W')``, global feature y ``(N, D)``)."""
        captured: list[torch.Tensor] = []
        handle = self.local_module().register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            y = self.backbone(x)
        finally:
            handle.remove()
        if len(captured) != 1 or not isinstance(captured[0], torch.Tensor) or captured[0].ndim != 4:
            raise ValueError(f"local_layer: {self.local_layer!r} must run once per forward and output (N, C, H, W)")
        return captured[0], y

    def probe_local_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the local map for one ``image_size`` input (eval mode, no statistics updated)."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                local, _ = self.features(torch.zeros(1, self.in_channels, self.image_size, self.image_size))
        finally:
            self.backbone.train(was_training)
        return int(local.shape[1]), int(local.shape[2]), int(local.shape[3])

    def make_batch(
        self, images: npt.NDArray[np.uint8], *, seed: int, epoch: int, indices: npt.NDArray[np.int64], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        if images.ndim != 4 or len(images) < 2:
            raise ValueError(f"images: expected uint8 (N, H, W, C) with N >= 2 for negative pairs, got shape {images.shape}")
        if self.alpha > 0 and images.shape[1:3] != (self.image_size, self.image_size):
            size = f"{images.shape[1]}x{images.shape[2]}"
            raise ValueError(f"images: the global term expects {self.image_size}x{self.image_size} images, got {size}")
        prior = torch.rand(len(images), self.prior_dim, generator=batch_generator(seed, epoch, indices))
        return {"images": images_to_tensor(images, device), "prior": prior.to(device)}

    def prior_losses(self, y: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(discriminator loss −E_V[log D(v)] − E_P[log(1 − D(u))] on a detached code, encoder loss
        −E_P[log D̄(u)] (non-saturating) or E_P[log(1 − D̄(u))] (minimax) through the detached-parameter copy D̄)."""
        assert self.prior_code is not None and self.discriminator is not None
        code = torch.sigmoid(self.prior_code(y))
        real, fake = self.discriminator(prior), self.discriminator(code.detach())
        loss_d = F.softplus(-real).mean() + F.softplus(fake).mean()
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        fooled = functional_call(self.discriminator, frozen, (code,))
        loss_e = F.softplus(-fooled).mean() if self.encoder_loss == "non_saturating" else -F.softplus(fooled).mean()
        return loss_d, loss_e

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        local_map, y = self.features(batch["images"])
        local_mi = mi_bound(self.local_scores(local_map), self.global_scores(y), self.estimator)
        loss = -self.beta * local_mi
        out: dict[str, torch.Tensor] = {"local_mi": local_mi.detach()}
        if self.global_local is not None and self.global_global is not None:
            global_mi = mi_bound(self.global_local(local_map).unsqueeze(1), self.global_global(y), self.estimator)
            loss = loss - self.alpha * global_mi
            out["global_mi"] = global_mi.detach()
        if self.discriminator is not None:
            loss_d, loss_e = self.prior_losses(y, batch["prior"])
            loss = loss + self.gamma * (loss_d + loss_e)
            out["prior_d"], out["prior_e"] = loss_d.detach(), loss_e.detach()
        return {"loss": loss, **out}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(DeepInfoMax, name="dim", aliases=("deep_infomax",))


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("dim", {"score_dim": 256}, summary="AdamW 1e-3, 256-d scores"))
