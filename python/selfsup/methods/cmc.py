"""Contrastive Multiview Coding (Tian, Krishnan & Isola 2019, "Contrastive Multiview Coding",
arXiv:1906.05849), the memory-bank form of the paper's code with its softmax (InfoNCE) loss.

Every image is cropped once (RandomResizedCrop with scale (0.2, 1), the code's ``crop_low``, and a
horizontal flip; the native :func:`selfsup.transforms.Compose`), converted to CIE Lab by the
native :func:`selfsup.ops.rgb_to_lab`, and split into views of that *same* crop:

* ``"L"``: the lightness, ``(N, 1, S, S)``, standardised as ``(L/100 − 0.5)/0.25``
  (:func:`selfsup.models.lightness.lightness_to_tensor`, what colorization's backbone sees);
* ``"ab"``: the chrominance, ``(N, 2, S, S)``, as ``ab/50`` (the ±100 ab range of sRGB onto the ±2
  of standardised pixels);
* ``"gradient"``: ``(N, 1, S, S)``, the Sobel gradient magnitude of the lightness,
  ``‖(S_x, S_y) ∗ (L/100)‖ / 8 / 0.25`` (replicated border): a third view that RGB data carries,
  standing in for the paper's depth and surface-normal views of NYU-D.

Each view v has its own encoder f_v (backbone + a linear layer to 128-d, ℓ2-normalised: z_v) and
its own memory bank M_v of z_v with the code's momentum update M_v[i] ← normalize(½·M_v[i] + ½·z_v,i).
The loss contrasts every view's anchors with every other view's bank (eq. 2–3 with the bank of
§3.3, the "full graph" of eq. 6 for V > 2 views):

    L = Σ_{i ≠ j} L(V_i, V_j),   L(V_i, V_j) = −(1/N) Σ_n log  exp(z_{i,n}·M_j[n]/τ) / ( exp(z_{i,n}·M_j[n]/τ) + Σ_{k ∈ S} exp(z_{i,n}·M_j[k]/τ) )

with τ = 0.07 and m = |S| = 4096 negatives drawn uniformly from the bank (the same rows for every
view and anchor at a step; the code draws them per anchor). For V = 2 this is the paper's
L(V₁, V₂) + L(V₂, V₁). The paper's NCE estimator (its ``NCECriterion``) is replaced by its softmax
form (``NCESoftmaxLoss``, which the paper reports as better), computed by
:func:`selfsup_kernels.info_nce`. Under ``torch.distributed`` every rank writes the gathered
embeddings of the global batch into the banks (:meth:`MemoryBank.update`) and draws the same
negatives, so the banks and the loss are those of one process.

Encoders and probing: ``.backbone`` is the encoder of the first view, which must be ``"L"``; it is
built with one input channel (``in_channels = 1``, as colorization: ``selfsup train`` and
``selfsup compare`` build ``small_resnet(in_channels=1)``) and probed like colorization's, on the L
of RGB images (:func:`selfsup.eval.protocol.backbone_inputs`; ``compare`` sets it against a
random-init one-channel backbone). The other views' encoders are :func:`view_encoder` copies of the
backbone's architecture with their own first convolution and fresh weights, in ``view_encoders``.
The paper's representation concatenates the L and ab encoders' features; our probe uses the L
encoder alone. Scaled down: one linear layer as head on the backbone's pooled features (the paper's
AlexNet/ResNet halves end in a 128-d fc too), 4096 negatives (the paper's 16 384).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import selfsup.ops as ops
from selfsup.hookspecs import Register, hookimpl
from selfsup.run.recipe import Recipe
from selfsup.methods.banked import BankedEmbedding
from selfsup.models.lightness import input_channels, lightness_to_tensor
from selfsup.transforms import Compose, MultiView, Normalize, RandomHorizontalFlip, RandomResizedCrop

VIEW_CHANNELS: dict[str, int] = {"L": 1, "ab": 2, "gradient": 1}
"""The views CMC can compute from an RGB crop, and their channels."""

AB_SCALE = 50.0
GRADIENT_STD = 0.25


def sobel_magnitude(lightness_values: torch.Tensor) -> torch.Tensor:
    """``‖∇(L/100)‖`` per pixel of L ``(N, 1, H, W)`` in [0, 100]: the 3×3 Sobel responses divided
    by 8 (an intensity change per pixel), border pixels replicated."""
    derivative = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
    kernels = torch.stack([derivative, derivative.T]).unsqueeze(1).to(lightness_values)
    padded = F.pad(lightness_values / 100.0, (1, 1, 1, 1), mode="replicate")
    gradients = F.conv2d(padded, kernels)
    return gradients.pow(2).sum(1, keepdim=True).sqrt()


def lab_views(crops: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The named views of uint8 RGB crops ``(N, 3, S, S)``, each ``(N, C, S, S)`` float32 (see the
    module docstring for their scaling)."""
    lab = torch.from_numpy(ops.rgb_to_lab(crops.permute(0, 2, 3, 1).contiguous().numpy()))
    lightness = np.ascontiguousarray(lab[..., 0].numpy())
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "L":
            out[name] = lightness_to_tensor(lightness)
        elif name == "ab":
            out[name] = (lab[..., 1:].permute(0, 3, 1, 2) / AB_SCALE).contiguous()
        else:
            out[name] = sobel_magnitude(torch.from_numpy(lightness).unsqueeze(1)) / GRADIENT_STD
    return out


def view_encoder(backbone: nn.Module, in_channels: int) -> nn.Module:
    """An encoder of ``backbone``'s architecture for ``in_channels``-channel inputs: a deep copy
    whose first ``nn.Conv2d`` is rebuilt with ``in_channels`` inputs (other settings kept) and whose
    submodules with ``reset_parameters`` (convolutions, linear layers, BatchNorm) are re-initialised,
    so it starts independent of ``backbone`` as the paper's per-view networks do.

    Raises:
        ValueError: a backbone without an ``nn.Conv2d``.
    """
    encoder = copy.deepcopy(backbone)
    first = next(((name, m) for name, m in encoder.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ValueError("backbone: CMC builds its other views' encoders by replacing the first nn.Conv2d; this backbone has none")
    name, conv = first
    stem = nn.Conv2d(
        in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups,  # type: ignore[arg-type]
        bias=conv.bias is not None, padding_mode=conv.padding_mode,
    )
    parent_name, _, attribute = name.rpartition(".")
    setattr(encoder.get_submodule(parent_name) if parent_name else encoder, attribute, stem)
    for module in encoder.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return encoder


def view_names(views: str | Sequence[str]) -> tuple[str, ...]:
    """``views`` as a tuple (a string is split at commas, for ``--option views=L,ab,gradient``).

    Raises:
        ValueError: fewer than 2 views, an unknown or repeated view, a first view other than ``"L"``.
    """
    names = tuple(v.strip() for v in views.split(",")) if isinstance(views, str) else tuple(views)
    if len(names) < 2:
        raise ValueError(f"views: expected at least 2 views, got {names}")
    unknown = [v for v in names if v not in VIEW_CHANNELS]
    if unknown:
        raise ValueError(f"views: unknown view {unknown[0]!r}; expected names from {sorted(VIEW_CHANNELS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"views: expected distinct views, got {names}")
    if names[0] != "L":
        raise ValueError(f"views: the first view's encoder is the probed backbone and must be 'L', got {names[0]!r}")
    return names


class CMC(BankedEmbedding):
    """``make_batch``: N RGB uint8 images → one entry per view (``"L" (N, 1, S, S)``, ``"ab" (N,
    2, S, S)``, ``"gradient" (N, 1, S, S)``) of the same crop, and ``indices (N,)``.
    ``training_step`` returns the full-graph loss and the mean cosine between each view's embedding
    and the other views' bank rows of the same image (``positive_cosine``).
    Buffers saved in checkpoints: ``banks.<view>.bank (n, embedding_dim)`` per view and ``steps``.

    Args:
        backbone: the L encoder, an ``nn.Module`` with integer ``out_dim`` whose first convolution
            takes one channel (``small_resnet(in_channels=1)``).
        views: at least two of ``"L"``, ``"ab"``, ``"gradient"``, ``"L"`` first.
        embedding_dim: size of the ℓ2-normalised embeddings and bank rows (128).
        negatives: m, bank rows drawn per step (the paper: 16 384).
        temperature: τ (0.07).
        bank_momentum: the banks' momentum (0.5).
        image_size: crop side S; defaults to the input's height.
        crop_scale: RandomResizedCrop's area range ((0.2, 1)).

    Raises:
        ValueError: bad ``views`` (see :func:`view_names`); a backbone whose first convolution does
            not take 1 channel; ``crop_scale`` not within (0, 1]; the options of
            :class:`~selfsup.methods.banked.BankedEmbedding`.

    Example:
        >>> import numpy as np
        >>> from selfsup.models import small_resnet
        >>> method = CMC(small_resnet(width=8, in_channels=1))
        >>> method.bind_dataset(4)
        >>> images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
        >>> batch = method.make_batch(images, seed=0, epoch=0, indices=np.arange(4))
        >>> tuple(batch["L"].shape), tuple(batch["ab"].shape)
        ((4, 1, 16, 16), (4, 2, 16, 16))
        >>> float(method.training_step(batch)["loss"].detach()) > 0
        True
    """

    name: ClassVar[str] = "cmc"
    views: ClassVar[tuple[str, ...]] = ("L", "ab", "indices")
    in_channels: ClassVar[int] = 1
    """Channels the backbone (the L encoder) takes (``selfsup train`` builds ``small_resnet`` with it)."""

    def __init__(
        self,
        backbone: nn.Module,
        views: str | Sequence[str] = ("L", "ab"),
        embedding_dim: int = 128,
        negatives: int = 4096,
        temperature: float = 0.07,
        bank_momentum: float = 0.5,
        image_size: int | None = None,
        crop_scale: Sequence[float] = (0.2, 1.0),
    ) -> None:
        names = view_names(views)
        super().__init__(backbone, names, embedding_dim, negatives, temperature, bank_momentum, image_size=image_size, blur=False)
        channels = input_channels(backbone)
        if channels is not None and channels != 1:
            raise ValueError(
                f"backbone: CMC's backbone encodes the L view; expected a first convolution taking 1 channel "
                f"(e.g. small_resnet(in_channels=1)), got {channels}"
            )
        low, high = (float(s) for s in crop_scale)
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale: expected 0 < low <= high <= 1, got {tuple(crop_scale)}")
        self.view_names = names
        self.crop_scale = (low, high)
        self.view_encoders = nn.ModuleDict({v: view_encoder(backbone, VIEW_CHANNELS[v]) for v in names[1:]})
        self.heads = nn.ModuleDict({v: nn.Linear(self.feature_dim, embedding_dim) for v in names})

    def build_views(self, size: int, normalize: Normalize) -> MultiView:
        """One uint8 crop per image (no colour changes: colour is what the views split)."""
        return MultiView([Compose([RandomResizedCrop(size, scale=self.crop_scale), RandomHorizontalFlip(0.5)])])

    def group_views(self, views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return lab_views(views[0], self.view_names)

    def encoder(self, view: str) -> nn.Module:
        return self.backbone if view == self.view_names[0] else self.view_encoders[view]

    def embed(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """z_v ``(N, embedding_dim)``, ℓ2-normalised, for every view."""
        return {v: F.normalize(self.heads[v](self.encoder(v)(batch[v])), dim=1) for v in self.view_names}

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        indices = batch["indices"]
        z = self.embed(batch)
        pairs = [(i, j) for i in self.view_names for j in self.view_names if i != j]
        loss = torch.stack([self.contrast(z[i], j, indices) for i, j in pairs]).sum()
        with torch.no_grad():
            agreement = torch.stack([(z[i] * self.bank(j).rows(indices)).sum(1).mean() for i, j in pairs]).mean()
        for v in self.view_names:
            self.update_bank(v, indices, z[v])
        return {"loss": loss, "positive_cosine": agreement}


@hookimpl
def selfsup_register_methods(register: Register) -> None:
    register(CMC)


@hookimpl
def selfsup_register_recipes(register: Register) -> None:
    register(Recipe("cmc", {"views": ["L", "gradient"], "negatives": 1024}, optimizer="sgd", lr=0.03, summary="L against its gradient magnitude, 1 024 negatives, the code's SGD 0.03"))
    register(Recipe("cmc", {"negatives": 1024}, optimizer="sgd", lr=0.03, summary="the paper's L/ab pair for colour data, 1 024 negatives, SGD 0.03"), name="cmc_lab")
