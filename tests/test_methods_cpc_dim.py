"""CPC v1/v2 and Deep InfoMax: the patch grid against numpy slicing, the context network's causality,
the CPC loss against explicit logits, the DIM bounds against numpy formulas, learning, checkpoints,
bad options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfsup import plugins
from selfsup.run.restore import load_backbone, load_method
from selfsup.data import load_digits
from selfsup.models.inputs import images_to_tensor
from selfsup.methods.cpc import CPC, CausalConv2d
from selfsup.methods.infomax import DeepInfoMax
from selfsup.losses.mutual_information import mi_bound, pair_scores
from selfsup.models import small_resnet
from selfsup.training import TrainConfig, Trainer
from conftest import fixed_batch_losses

DIGITS = load_digits().train.images[:64]
DIGIT_GRID = {"grid": 7, "patch": 8, "stride": 4, "offsets": 3, "context_layers": 2}


class NoBatchStats(nn.Module):
    """Conv features without BatchNorm: every patch's code depends on that patch alone."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, 2, 1), nn.ReLU())
        self.out_dim = 12

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))


def cpc(backbone: nn.Module | None = None, **options) -> CPC:
    torch.manual_seed(0)
    return plugins.get("methods", "cpc")(backbone if backbone is not None else small_resnet(width=4), **{**DIGIT_GRID, **options})


def dim(**options) -> DeepInfoMax:
    torch.manual_seed(0)
    return plugins.get("methods", "deep_infomax")(small_resnet(width=4), **{"score_dim": 16, **options})


def batch_of(m, count: int = 8, seed: int = 1):
    return m.make_batch(DIGITS[:count], seed=seed, epoch=0, indices=np.arange(count))


# ---------------------------------------------------------------- CPC: data side


def test_patch_grid_is_the_overlapping_numpy_slices():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    m = cpc(grid=4, patch=8, stride=4, offsets=2, jitter=False)
    patches = m.make_batch(images, seed=0, epoch=0, indices=np.arange(3))["patches"]
    assert patches.shape == (3, 16, 3, 8, 8)
    origin = (20 - m.grid_span()) // 2  # the 20-px grid sits centred without jitter: origin 0
    for n in range(3):
        for r in range(4):
            for q in range(4):
                y, x = origin + 4 * r, origin + 4 * q
                expected = images_to_tensor(images[n : n + 1, y : y + 8, x : x + 8])[0]
                torch.testing.assert_close(patches[n, 4 * r + q], expected)


def test_jittered_grid_stays_inside_larger_images_and_is_seeded():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    m = cpc()
    a, b = m.make_batch(images, seed=3, epoch=0, indices=np.arange(4)), m.make_batch(images, seed=3, epoch=0, indices=np.arange(4))
    torch.testing.assert_close(a["patches"], b["patches"])
    # each grid is the 32-px crop at some origin: find it by slicing
    for n in range(4):
        found = [
            (y, x) for y in range(9) for x in range(9)
            if torch.equal(images_to_tensor(images[n : n + 1, y : y + 8, x : x + 8])[0], a["patches"][n, 0])
        ]
        assert found, n
        y, x = found[0]
        torch.testing.assert_close(a["patches"][n, 48], images_to_tensor(images[n : n + 1, y + 24 : y + 32, x + 24 : x + 32])[0])


def test_v2_augments_every_patch_on_its_own_stream():
    m = cpc(version=2)
    plain = cpc(version=1).make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))["patches"]
    a = m.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))["patches"]
    torch.testing.assert_close(a, m.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))["patches"])
    assert not torch.equal(a, m.make_batch(DIGITS[:4], seed=1, epoch=0, indices=np.arange(4))["patches"])
    # the same image at another batch position gets the same patches (streams follow dataset indices)
    shifted = m.make_batch(DIGITS[[9, 2]], seed=0, epoch=0, indices=np.array([9, 2]))["patches"]
    torch.testing.assert_close(shifted[1], a[2])
    changed = (a != plain).flatten(2).any(2)
    assert 0.3 < changed.float().mean() < 1.0  # some patches untouched (no flip, no jitter on blank digits' borders)


# ---------------------------------------------------------------- CPC: context and loss


def test_causal_convolution_sees_only_rows_above():
    conv = CausalConv2d(1, 1, 3)
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 3, 2] = 1.0
    with torch.no_grad():
        out = conv(x) - conv(torch.zeros_like(x))
    touched = (out[0, 0].abs() > 0).nonzero().tolist()
    assert touched and all(3 <= r <= 5 and 1 <= c <= 3 for r, c in touched)


@pytest.mark.parametrize("direction", ["down", "up", "right", "left"])
def test_context_network_is_causal(direction: str):
    m = cpc(context_layers=3, directions=(direction,), grid=6, offsets=2)
    z = torch.randn(2, m.feature_dim, 6, 6, generator=torch.Generator().manual_seed(0))
    _, base = m.predictions(z, direction)
    for r in range(6):
        perturbed = z.clone()
        perturbed[:, :, r] += torch.randn(2, m.feature_dim, 6)  # row r of the grid (or column r)
        if direction in ("right", "left"):
            perturbed = z.clone()
            perturbed[:, :, :, r] += torch.randn(2, m.feature_dim, 6)
        _, out = m.predictions(perturbed, direction)
        # in oriented coordinates the perturbed line is line r ("down", "right") or 5 − r ("up", "left")
        line = r if direction in ("down", "right") else 5 - r
        torch.testing.assert_close(out[:, :line], base[:, :line], rtol=0, atol=0)
        assert not torch.allclose(out[:, line], base[:, line])


def reference_cpc_loss(z: np.ndarray, predicted: np.ndarray, offsets: int) -> list[float]:
    """Explicit logits + cross-entropy per offset. ``z (N, G, G, D)`` oriented codes,
    ``predicted (N, G, G, K, D)``; the candidates for offset k are every patch in rows k..G−1."""
    n, g = z.shape[:2]
    out = []
    for k in range(1, offsets + 1):
        candidates = [(a, i, j) for a in range(n) for i in range(k, g) for j in range(g)]
        keys = np.stack([z[a, i, j] for a, i, j in candidates])
        losses = []
        for a in range(n):
            for i in range(g - k):
                for j in range(g):
                    logits = torch.from_numpy(keys @ predicted[a, i, j, k - 1])
                    target = torch.tensor(candidates.index((a, i + k, j)))
                    losses.append(F.cross_entropy(logits[None], target[None]).item())
        out.append(float(np.mean(losses)))
    return out


@pytest.mark.parametrize("version", [1, 2])
def test_cpc_loss_is_infonce_over_the_patches_below(version: int):
    m = cpc(NoBatchStats(), version=version, grid=4, patch=8, stride=8, offsets=2, context_layers=1)
    batch = batch_of(m, 3)
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.encode_patches(batch["patches"])
        expected = np.zeros(2)
        for direction in m.directions:
            oriented = z.flip(2) if direction == "up" else z
            context = m.context[direction](oriented)
            predicted = torch.einsum("ec,ncij->nije", m.predictors[direction].weight, context).unflatten(-1, (2, -1))
            expected += reference_cpc_loss(oriented.permute(0, 2, 3, 1).double().numpy(), predicted.double().numpy(), 2)
        expected /= len(m.directions)
    assert m.directions == (("down",) if version == 1 else ("down", "up"))
    assert cpc(directions="up, left").directions == ("up", "left")
    for k in range(2):
        assert out[f"offset{k + 1}"].item() == pytest.approx(expected[k], rel=1e-4)
    assert out["loss"].item() == pytest.approx(expected.mean(), rel=1e-4)


def test_v2_patch_encoder_uses_layer_norm_and_loads_back(tmp_path: Path):
    m = cpc(version=2)
    assert not any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.backbone.modules())
    assert any(isinstance(x, nn.GroupNorm) and x.num_groups == 1 for x in m.backbone.modules())
    # a whole image through the patch encoder: the probe's features
    assert m.backbone(images_to_tensor(DIGITS[:2])).shape == (2, m.feature_dim)
    config = TrainConfig(steps=2, batch_size=8, lr=1e-3, log_every=1, progress=False, checkpoint_every=2)
    metadata = {"backbone": {"name": "small_resnet", "options": {"width": 4}}, "method_options": {**DIGIT_GRID, "version": 2}}
    Trainer(m, DIGITS[:16], config, tmp_path, metadata=metadata).fit()
    restored, _ = load_method(tmp_path / "checkpoint.pt")
    batch = batch_of(m)
    m.eval(), restored.eval()
    with torch.no_grad():
        assert restored.training_step(batch)["loss"].item() == pytest.approx(m.training_step(batch)["loss"].item(), rel=1e-6)
        backbone = load_backbone(tmp_path / "checkpoint.pt")
        torch.testing.assert_close(backbone.eval()(batch["patches"][:, 0]), m.backbone(batch["patches"][:, 0]))


# ---------------------------------------------------------------- DIM: bounds


def numpy_bounds(scores: np.ndarray) -> dict[str, float]:
    """Scores (M, N, N), [i, n, m] = T(C_n^{(i)}, y_m): the three estimators of the paper."""
    m, n, _ = scores.shape
    diagonal = np.eye(n, dtype=bool)
    positive = np.concatenate([s[diagonal] for s in scores])
    negative = np.concatenate([s[~diagonal] for s in scores])
    softplus = lambda t: np.log1p(np.exp(t))  # noqa: E731
    log_softmax = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    return {
        "jsd": float(np.mean(-softplus(-positive)) - np.mean(softplus(negative))),
        "dv": float(np.mean(positive) - np.log(np.mean(np.exp(negative)))),
        "infonce": float(np.mean([log_softmax[i][diagonal] for i in range(m)])),
    }


@pytest.mark.parametrize("estimator", ["jsd", "dv", "infonce"])
def test_dim_bounds_match_the_papers_formulas_on_given_scores(estimator: str):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 6, 6)) * 2
    # local[n, i] · global[m] = scores[i, n, m] with one-hot global features
    local, global_ = torch.from_numpy(scores.transpose(1, 0, 2).copy()), torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(pair_scores(local, global_), torch.from_numpy(scores))
    value = mi_bound(local.float(), global_.float(), estimator).item()
    assert value == pytest.approx(numpy_bounds(scores)[estimator], rel=1e-5)


@pytest.mark.parametrize("estimator", ["jsd", "dv", "infonce"])
def test_dim_loss_scores_local_features_against_global_ones(estimator: str):
    m = dim(estimator=estimator, gamma=0.0, alpha=0.5, beta=2.0)
    batch = batch_of(m)
    out = m.training_step(batch)
    with torch.no_grad():
        local_map, y = m.features(batch["images"])
        assert local_map.shape == (8, 16, 8, 8)  # the third stage of small_resnet(width=4): 8×8 for 32 px
        phi = m.local_scores.block(local_map) + m.local_scores.shortcut(local_map)
        phi = phi.flatten(2).double().numpy()  # (N, S, M)
        psi = m.global_scores(y).double().numpy()
        local_scores = np.einsum("nsi,ms->inm", phi, psi)
        assert m.global_local is not None and m.global_global is not None
        global_scores = (m.global_local(local_map).double().numpy() @ m.global_global(y).double().numpy().T)[None]
    local_mi, global_mi = numpy_bounds(local_scores)[estimator], numpy_bounds(global_scores)[estimator]
    assert out["local_mi"].item() == pytest.approx(local_mi, rel=1e-4, abs=1e-5)
    assert out["loss"].item() == pytest.approx(-2.0 * local_mi - 0.5 * global_mi, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("encoder_loss", ["non_saturating", "minimax"])
def test_prior_matching_is_the_papers_min_max_with_separated_gradients(encoder_loss: str):
    m = dim(gamma=0.5, encoder_loss=encoder_loss)
    batch = batch_of(m)
    assert float(batch["prior"].min()) >= 0 and float(batch["prior"].max()) <= 1
    _, y = m.features(batch["images"])
    loss_d, loss_e = m.prior_losses(y, batch["prior"])
    assert m.discriminator is not None and m.prior_code is not None
    with torch.no_grad():
        real = torch.sigmoid(m.discriminator(batch["prior"])).double().numpy()
        fake = torch.sigmoid(m.discriminator(torch.sigmoid(m.prior_code(y)))).double().numpy()
    assert loss_d.item() == pytest.approx(float(-np.log(real).mean() - np.log(1 - fake).mean()), rel=1e-5)
    expected_e = -np.log(fake).mean() if encoder_loss == "non_saturating" else np.log(1 - fake).mean()
    assert loss_e.item() == pytest.approx(float(expected_e), rel=1e-5)
    discriminator = list(m.discriminator.parameters())
    encoder = list(m.prior_code.parameters()) + list(m.backbone.parameters())
    grads_e = torch.autograd.grad(loss_e, discriminator + encoder, retain_graph=True, allow_unused=True)
    assert all(g is None for g in grads_e[: len(discriminator)]) and all(g is not None for g in grads_e[len(discriminator) :])
    grads_d = torch.autograd.grad(loss_d, discriminator + encoder, allow_unused=True)
    assert all(g is not None for g in grads_d[: len(discriminator)]) and all(g is None for g in grads_d[len(discriminator) :])
    out = m.training_step(batch)
    assert out["loss"].item() == pytest.approx(-out["local_mi"].item() + 0.5 * (out["prior_d"].item() + out["prior_e"].item()), rel=1e-5)


def test_dim_reads_the_local_map_of_a_named_layer():
    torch.manual_seed(0)
    m = DeepInfoMax(NoBatchStats(), local_layer="net.1", score_dim=8, gamma=0.0)
    local_map, y = m.features(images_to_tensor(DIGITS[:2]))
    assert local_map.shape == (2, 8, 16, 16) and y.shape == (2, 12)
    assert not m.backbone.net[1]._forward_hooks  # the hook lives only during the forward


# ---------------------------------------------------------------- learning, checkpoints, options


@pytest.mark.parametrize(
    "make, options",
    [
        (cpc, {"version": 1}),
        (cpc, {"version": 2}),
        (dim, {"estimator": "jsd", "gamma": 0.0}),
        (dim, {"estimator": "infonce", "gamma": 0.0}),
        (dim, {"estimator": "dv", "gamma": 0.0, "alpha": 0.5}),
    ],
)
def test_a_few_steps_reduce_the_loss(make, options: dict):
    m = make(**options)
    batch = batch_of(m, 8)
    optimizer = torch.optim.Adam(m.parameters(), lr=2e-3)
    losses = fixed_batch_losses(m, batch, optimizer, 10, end_of_step=False)
    assert losses[-1] < losses[0] - 0.1 * abs(losses[0]) - 0.02, losses


def test_dim_state_survives_a_checkpoint(tmp_path: Path):
    m = dim(alpha=0.5, gamma=0.1)
    config = TrainConfig(steps=2, batch_size=16, lr=1e-3, log_every=1, progress=False, checkpoint_every=2)
    metadata = {"backbone": {"name": "small_resnet", "options": {"width": 4}}, "method_options": {"score_dim": 16, "alpha": 0.5}}
    Trainer(m, DIGITS[:32], config, tmp_path, metadata=metadata).fit()
    restored, _ = load_method(tmp_path / "checkpoint.pt")
    batch = batch_of(m)
    m.eval(), restored.eval()
    with torch.no_grad():
        expected, actual = m.training_step(batch), restored.training_step(batch)
    for key in expected:
        assert actual[key].item() == pytest.approx(expected[key].item(), rel=1e-6), key


@pytest.mark.parametrize(
    "make, options, pattern",
    [
        (cpc, {"offsets": 7}, "offsets: expected 1 <= offsets < grid = 7"),
        (cpc, {"offsets": 0}, "offsets"),
        (cpc, {"version": 3}, "version: expected 1 or 2"),
        (cpc, {"grid": 1, "offsets": 1}, "grid: expected at least 2"),
        (cpc, {"stride": 0}, "stride: expected a positive int"),
        (cpc, {"directions": ("down", "sideways")}, "directions: expected distinct names"),
        (cpc, {"norm": "instance"}, "norm: expected one of"),
        (dim, {"estimator": "nwj"}, "estimator: expected one of"),
        (dim, {"alpha": -0.1}, "alpha: expected a weight >= 0"),
        (dim, {"beta": -1.0}, "beta: expected a weight >= 0"),
        (dim, {"gamma": -0.5}, "gamma: expected a weight >= 0"),
        (dim, {"beta": 0.0}, "alpha, beta: expected at least one"),
        (dim, {"local_layer": "stages.9"}, "local_layer: SmallResNet has no submodule"),
        (dim, {"score_dim": 0}, "score_dim: expected a positive int"),
        (dim, {"encoder_loss": "wasserstein"}, "encoder_loss: expected one of"),
    ],
)
def test_bad_options(make, options: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        make(**options)


def test_a_grid_larger_than_the_images_is_refused():
    m = cpc()
    with pytest.raises(ValueError, match="grid: 7x7 patches of 8 px at stride 4 span 32 px, larger than the 24x24 images"):
        m.make_batch(np.zeros((2, 24, 24, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
    with pytest.raises(ValueError, match="images: patch augmentation needs RGB"):
        cpc(version=2).make_batch(np.zeros((2, 32, 32, 1), np.uint8), seed=0, epoch=0, indices=np.arange(2))
    unused = NoBatchStats()
    unused.flat = nn.Flatten()  # never called by forward
    with pytest.raises(ValueError, match="local_layer: 'flat' must run once per forward and output"):
        DeepInfoMax(unused, local_layer="flat", score_dim=8)
