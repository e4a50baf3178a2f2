"""A small Vision Transformer (Dosovitskiy et al. 2021, arXiv:2010.11929) in the form Masked
Autoencoders use it (He et al. 2021, arXiv:2111.06377, ``models_mae.py``): it can encode a subset of
the patches, as MAE's encoder does with the visible ones.

An image ``(N, C, H, W)`` is cut into L = (H/p)² patches of p × p pixels, embedded by a p × p
convolution with stride p (a linear map of each patch alone), in row-major patch order. Every
patch token gets a fixed 2-D sin-cos position (:func:`sincos_position_embedding`), a learned class
token (position zero) is prepended, and pre-norm transformer blocks follow:

    x ← x + Attn(LN(x)),   x ← x + MLP(LN(x)),   Attn: softmax(QKᵀ/√d_head)·V per head

with :func:`torch.nn.functional.scaled_dot_product_attention`, a GELU MLP of width ``mlp_ratio·dim``
and a final LayerNorm (ε = 10⁻⁶, as MAE's). :meth:`ViT.forward_tokens` takes ``keep_indices
(N, K)`` and runs the blocks on the class token and those K patches only, so the other patches
cannot influence the output.

Features for probing (``forward``): the class token after the final LayerNorm, ``out_dim = dim``
(``pool="cls"``), which is what MAE's linear probe reads; MAE adds a BatchNorm without affine
parameters in front of its linear classifier, and the linear probe of :mod:`selfsup.eval` already
standardises features, which is the same map. ``pool="mean"`` averages the normalised patch tokens
instead (closer to MAE's fine-tuning, which pools the patches).

Initialisation follows MAE: Xavier-uniform linear layers (the patch convolution as a flattened
linear map) with zero biases, class token ~ N(0, 0.02²), LayerNorms at (1, 0).

:func:`vit_tiny` (backbone ``vit_tiny``) is scaled to 32-px images on a CPU: patch 4 (L = 64),
dim 128, depth 4, 4 heads. The paper's encoders are ViT-B/16, L/16 and H/14 at 224 px (ViT-B/16:
dim 768, depth 12, 12 heads); the usual ViT-Ti/16 is dim 192, depth 12, 3 heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.hookspecs import Register, hookimpl

POOLS = ("cls", "mean")
LAYER_NORM_EPS = 1e-6


def sincos_position_embedding(dim: int, grid: int, cls_token: bool = True) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos positions ``(grid², dim)`` (``(1 + grid², dim)`` with a zero row for
    the class token first). For the patch at row r and column c, with ω_i = 10000^(−i/(dim/4)),
    i = 0 … dim/4 − 1, the embedding is [sin(c·ω), cos(c·ω), sin(r·ω), cos(r·ω)].

    Raises:
        ValueError: ``dim`` not a positive multiple of 4, ``grid`` < 1.
    """
    if dim < 4 or dim % 4:
        raise ValueError(f"dim: expected a positive multiple of 4 (2-D sin-cos positions), got {dim}")
    if grid < 1:
        raise ValueError(f"grid: expected a positive int, got {grid}")
    quarter = dim // 4
    omega = 1.0 / 10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")

    def encode(position: torch.Tensor) -> torch.Tensor:
        angles = position.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    table = torch.cat([encode(cols), encode(rows)], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim, dtype=torch.float64), table])
    return table.float()


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, L, p²·C)``: patches in row-major order, each flattened as (y, x, c)
    (MAE's ``patchify``). Raises ``ValueError`` when H or W is not a multiple of ``patch``."""
    n, c, h, w = images.shape
    if patch < 1 or h % patch or w % patch:
        raise ValueError(f"patch: expected a divisor of the image size {h}x{w}, got {patch}")
    grid = images.reshape(n, c, h // patch, patch, w // patch, patch)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, channels: int = 3) -> torch.Tensor:
    """The inverse of :func:`patchify` for square images: ``(N, L, p²·C)`` → ``(N, C, H, W)``."""
    n, length, size = patches.shape
    side = math.isqrt(length)
    if side * side != length or size != patch * patch * channels:
        raise ValueError(f"patches: expected (N, L, {patch * patch * channels}) with L a square, got {tuple(patches.shape)}")
    grid = patches.reshape(n, side, side, patch, patch, channels)
    return grid.permute(0, 5, 1, 3, 2, 4).reshape(n, channels, side * patch, side * patch)


def check_transformer(dim: int, depth: int, heads: int, mlp_ratio: float, prefix: str = "") -> None:
    """The shape arguments of a stack of :class:`Block` (``prefix`` names them, e.g. ``decoder_``)."""
    if dim < 4 or dim % 4:
        raise ValueError(f"{prefix}dim: expected a positive multiple of 4 (2-D sin-cos positions), got {dim}")
    if depth < 1:
        raise ValueError(f"{prefix}depth: expected at least 1 block, got {depth}")
    if heads < 1 or dim % heads:
        raise ValueError(f"{prefix}heads: expected a positive divisor of {prefix}dim={dim}, got {heads}")
    if not mlp_ratio > 0:
        raise ValueError(f"mlp_ratio: expected > 0, got {mlp_ratio}")


class Attention(nn.Module):
    """Multi-head self-attention ``(N, T, D) → (N, T, D)`` with a biased QKV projection (MAE's
    ``qkv_bias=True``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(q, k, v)
        out: torch.Tensor = self.proj(mixed.transpose(1, 2).reshape(n, tokens, dim))
        return out


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


def init_like_mae(module: nn.Module) -> None:
    """Xavier-uniform linear weights with zero biases, LayerNorm at (1, 0) (``apply`` it)."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class ViT(nn.Module):
    """Shapes: ``forward(images (N, C, S, S)) → (N, dim)``; ``forward_tokens(images, keep_indices
    (N, K)) → (N, 1 + K, dim)`` (class token first; all L patches without ``keep_indices``).

    Args:
        image_size: side S of the (square) input images.
        patch_size: side p of a patch; S must be a multiple of p.
        dim, depth, heads, mlp_ratio: the transformer (``dim`` a multiple of 4 and of ``heads``).
        in_channels: channels C of the input.
        pool: ``"cls"`` (the class token, MAE's linear probe) or ``"mean"`` (mean patch token).

    Raises:
        ValueError: a non-positive or inconsistent size (the message names the argument), an
            unknown ``pool``; images of another size (at ``forward``).

    Example:
        >>> import torch
        >>> vit = ViT(image_size=16, patch_size=4, dim=32, depth=1, heads=2)
        >>> vit(torch.zeros(2, 3, 16, 16)).shape, vit.out_dim, vit.num_patches
        (torch.Size([2, 32]), 32, 16)
        >>> vit.forward_tokens(torch.zeros(2, 3, 16, 16), torch.tensor([[0, 5], [3, 1]])).shape
        torch.Size([2, 3, 32])
    """

    pos_embed: torch.Tensor

    def __init__(
        self, image_size: int = 32, patch_size: int = 4, dim: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0,
        in_channels: int = 3, pool: str = "cls",
    ) -> None:
        super().__init__()
        if image_size < 1:
            raise ValueError(f"image_size: expected a positive int, got {image_size}")
        if patch_size < 1:
            raise ValueError(f"patch_size: expected a positive int, got {patch_size}")
        if image_size % patch_size:
            raise ValueError(f"image_size: expected a multiple of patch_size={patch_size}, got {image_size}")
        if in_channels < 1:
            raise ValueError(f"in_channels: expected a positive int, got {in_channels}")
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {', '.join(POOLS)}, got {pool!r}")
        check_transformer(dim, depth, heads, mlp_ratio)
        self.image_size, self.patch_size, self.in_channels, self.pool = image_size, patch_size, in_channels, pool
        self.grid = image_size // patch_size
        self.num_patches = self.grid * self.grid
        self.out_dim = dim
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_position_embedding(dim, self.grid).unsqueeze(0), persistent=False)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        nn.init.normal_(self.cls_token, std=0.02)
        self.apply(init_like_mae)

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` → patch tokens with positions ``(N, L, dim)``."""
        if images.ndim != 4 or tuple(images.shape[1:]) != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"images: expected (N, {self.in_channels}, {self.image_size}, {self.image_size}), got {tuple(images.shape)}"
            )
        tokens: torch.Tensor = self.patch_embed(images).flatten(2).transpose(1, 2)
        return tokens + self.pos_embed[:, 1:]

    def forward_tokens(self, images: torch.Tensor, keep_indices: torch.Tensor | None = None) -> torch.Tensor:
        """The normalised tokens ``(N, 1 + K, dim)`` of the class token and the patches
        ``keep_indices (N, K)`` (in that order; every patch when ``None``)."""
        tokens = self.embed_patches(images)
        if keep_indices is not None:
            tokens = tokens.gather(1, keep_indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.norm(x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.forward_tokens(images)
        return tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)


def vit_tiny(
    image_size: int = 32, patch_size: int = 4, dim: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0,
    in_channels: int = 3, pool: str = "cls",
) -> ViT:
    """A :class:`ViT` for 32-px images on a CPU: patch 4, dim 128, depth 4, 4 heads; ``out_dim = dim``."""
    return ViT(image_size, patch_size, dim, depth, heads, mlp_ratio, in_channels, pool)


@hookimpl
def selfsup_register_backbones(register: Register) -> None:
    register(vit_tiny, name="vit_tiny")
