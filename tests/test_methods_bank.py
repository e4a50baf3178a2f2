"""InstDisc and Local Aggregation: losses against numpy transcriptions of the papers' equations,
k-means against sklearn and a numpy Lloyd loop, the bank's weighted kNN, learning, checkpoints,
the command line, determinism and bad options."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from selfsup import cli, plugins
from selfsup.data import load_digits
from selfsup.methods.instdisc import InstDisc
from selfsup.losses.nce import instance_softmax_loss
from selfsup.models.kmeans import kmeans
from selfsup.methods.local_aggregation import LocalAggregation
from selfsup.losses.local_aggregation import local_aggregation_loss
from selfsup.run.restore import load_method
from selfsup.training import TrainConfig, Trainer
from selfsup.transforms import instdisc
from conftest import fixed_batch_losses

DIGITS = load_digits().train.images[:64, ::2, ::2].copy()  # 16 px


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.out_dim = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))


def make(name: str = "instdisc", size: int | None = 64, **options) -> InstDisc:
    torch.manual_seed(0)
    method = plugins.get("methods", name)(Tiny(), **options)
    if size is not None:
        method.bind_dataset(size)
    return method


def batch_of(method: InstDisc, indices: np.ndarray) -> dict[str, torch.Tensor]:
    return method.make_batch(DIGITS[indices], seed=1, epoch=0, indices=indices)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    top = x.max(axis, keepdims=True)
    return np.log(np.exp(x - top).sum(axis)) + top.squeeze(axis)


def embeddings(method: InstDisc, batch: dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return method.embed(batch["views"][0]).double().numpy()


# ---------------------------------------------------------------- InstDisc


def numpy_softmax_loss(q: np.ndarray, bank: np.ndarray, indices: np.ndarray, tau: float) -> float:
    """Eq. 2: −log exp(v_iᵀq/τ) / Σ_{j=1}^{n} exp(v_jᵀq/τ), every bank row once."""
    logits = q @ bank.T / tau
    return float(np.mean(logsumexp(logits) - logits[np.arange(len(q)), indices]))


def test_softmax_loss_counts_every_bank_row_once():
    rng = np.random.default_rng(0)
    bank, q = unit(rng.normal(size=(40, 8))), unit(rng.normal(size=(6, 8)))
    indices = np.array([3, 0, 39, 17, 3, 8])
    ours = instance_softmax_loss(torch.tensor(q), torch.tensor(bank[indices]), torch.tensor(bank), 0.1)
    assert ours.item() == pytest.approx(numpy_softmax_loss(q, bank, indices, 0.1), rel=1e-6)  # the kernel accumulates in fp32
    # the gradient is that of eq. 2 as well
    qt = torch.tensor(q, requires_grad=True)
    instance_softmax_loss(qt, torch.tensor(bank[indices]), torch.tensor(bank), 0.1).backward()
    qr = torch.tensor(q, requires_grad=True)
    logits = torch.nn.functional.normalize(qr, dim=1) @ torch.tensor(bank).T / 0.1  # the kernel normalises its inputs
    (torch.logsumexp(logits, 1) - logits[torch.arange(6), torch.tensor(indices)]).mean().backward()
    np.testing.assert_allclose(qt.grad.numpy(), qr.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_instdisc_softmax_step_matches_the_paper_then_updates_the_bank():
    method = make(proximal=30.0)
    bank = method.bank().bank.clone().double().numpy()
    indices = np.array([5, 0, 63, 12, 40, 7, 22, 31])
    batch = batch_of(method, indices)
    out = method.training_step(batch)
    q = embeddings(method, batch)
    proximal = float(np.mean(((q - bank[indices]) ** 2).sum(1)))
    instance = numpy_softmax_loss(q, bank, indices, 0.07)
    assert out["instance_loss"].item() == pytest.approx(instance, rel=1e-5)
    assert out["proximal"].item() == pytest.approx(proximal, rel=1e-5)
    assert out["loss"].item() == pytest.approx(instance + 30.0 * proximal, rel=1e-5)
    expected = bank.copy()
    expected[indices] = unit(0.5 * bank[indices] + 0.5 * q)  # the official code's momentum 0.5
    np.testing.assert_allclose(method.bank().bank.numpy(), expected, atol=1e-6)


def numpy_nce(q: np.ndarray, positives: np.ndarray, noise: np.ndarray, z: float, n: int, tau: float) -> float:
    """Eqs. 5–7: h = P/(P + m/n), P = exp(vᵀf/τ)/Z; −log h(data) − Σ log(1 − h(noise))."""
    m = len(noise)
    p_data = np.exp((q * positives).sum(1) / tau) / z
    p_noise = np.exp(q @ noise.T / tau) / z
    h_data = p_data / (p_data + m / n)
    h_noise = p_noise / (p_noise + m / n)
    return float(np.mean(-np.log(h_data) - np.log(1 - h_noise).sum(1)))


def test_instdisc_nce_estimates_z_once_from_the_first_batch():
    method = make(loss="nce", negatives=16, proximal=0.0)
    losses, zs = [], []
    for step, indices in enumerate([np.arange(8), np.arange(8, 16)]):
        bank = method.bank().bank.clone().double().numpy()
        batch = batch_of(method, indices)
        out = method.training_step(batch)
        q = embeddings(method, batch)
        noise = bank[method.bank().sample(16, step=step, seed=0).numpy()]
        if step == 0:
            zs.append(64 * float(np.mean(np.exp(q @ noise.T / 0.07))))  # eq. 8
        losses.append((out["loss"].item(), numpy_nce(q, bank[indices], noise, zs[0], 64, 0.07)))
        method.on_step_end(step + 1, 2)
    assert float(method.nce_normalizer) == pytest.approx(zs[0], rel=1e-5)
    for ours, expected in losses:
        assert ours == pytest.approx(expected, rel=1e-5)


def test_nce_negatives_are_clipped_to_the_bank():
    method = make(loss="nce", size=16, negatives=4096)
    out = method.training_step(batch_of(method, np.arange(8)))
    assert torch.isfinite(out["loss"])


def numpy_knn(bank: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Wu et al. §3.4: the k most cosine-similar bank rows vote with weight exp(s/τ)."""
    similarity = unit(test) @ unit(bank).T
    predictions = []
    for row in similarity:
        top = np.argsort(-row)[:k]
        votes = np.zeros(labels.max() + 1)
        np.add.at(votes, labels[top], np.exp(row[top] / tau))
        predictions.append(votes.argmax())
    return np.array(predictions)


def test_knn_predict_votes_with_the_bank_rows():
    method = make()
    rng = np.random.default_rng(3)
    with torch.no_grad():
        method.bank().bank.copy_(torch.tensor(unit(rng.normal(size=(64, 128))), dtype=torch.float32))
    labels = rng.integers(0, 5, 64)
    method.bind_dataset(64, labels)  # same size: keeps the bank, takes the labels
    test_images = DIGITS[:10]
    with torch.no_grad():
        method.eval()
        from selfsup.models.inputs import images_to_tensor

        test = method.embed(images_to_tensor(test_images)).double().numpy()
        method.train()
    expected = numpy_knn(method.bank().bank.double().numpy(), labels, test, 7, 0.07)
    np.testing.assert_array_equal(method.knn_predict(test_images, k=7).numpy(), expected)
    np.testing.assert_array_equal(method.knn_predict(test_images, labels, k=7).numpy(), expected)
    with pytest.raises(ValueError, match="labels"):
        method.knn_predict(test_images, labels[:5])


def test_instdisc_recipe_is_one_view_of_the_papers_augmentation():
    recipe = instdisc(16)
    views = recipe(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))
    assert len(views) == 1 and views[0].shape == (4, 3, 16, 16)
    assert batch_of(make(), np.arange(4))["views"].shape == (1, 4, 3, 16, 16)


# ---------------------------------------------------------------- k-means


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 6)) * 10
    truth = np.repeat(np.arange(4), 15)
    return (centres[truth] + rng.normal(size=(60, 6)) * 0.3).astype(np.float32), truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :]))


def test_kmeans_finds_sklearns_partition_of_separated_blobs():
    from sklearn.cluster import KMeans

    points, truth = blobs()
    theirs = KMeans(4, n_init=10, random_state=0).fit_predict(points)
    for seed in range(3):
        labels, _ = kmeans(torch.tensor(points), 4, seed=seed)
        assert same_partition(labels.numpy(), theirs), seed
    assert same_partition(theirs, truth)


def test_kmeans_is_lloyds_algorithm_from_its_initial_centroids():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(80, 5)).astype(np.float32)  # no clear clusters: many iterations
    init = points[[3, 50, 17, 70, 9]].copy()
    centroids = init.astype(np.float64)
    for _ in range(20):
        labels = ((points[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
        centroids = np.stack([points[labels == c].mean(0) if (labels == c).any() else centroids[c] for c in range(5)])
    labels = ((points[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    ours, ours_centroids = kmeans(torch.tensor(points), 5, init=torch.tensor(init))
    np.testing.assert_array_equal(ours.numpy(), labels)
    np.testing.assert_allclose(ours_centroids.numpy(), centroids, atol=1e-5)
    again, _ = kmeans(torch.tensor(points), 5, seed=4)
    np.testing.assert_array_equal(again.numpy(), kmeans(torch.tensor(points), 5, seed=4)[0].numpy())
    with pytest.raises(ValueError, match="clusters"):
        kmeans(torch.tensor(points), 81)


# ---------------------------------------------------------------- Local Aggregation


def numpy_local_aggregation(q: np.ndarray, bank: np.ndarray, clusters: np.ndarray, indices: np.ndarray, k: int, tau: float) -> float:
    """−log(P(C_i ∩ B_i | v)/P(B_i | v) + 1e−7), B_i the k nearest rows, C_i sharing any cluster."""
    losses = []
    for v, i in zip(q, indices):
        similarity = np.exp(bank @ v / tau)
        background = np.argsort(-(bank @ v))[:k]
        close = np.flatnonzero((clusters == clusters[:, [i]]).any(0))
        both = np.intersect1d(background, close)
        losses.append(-np.log(similarity[both].sum() / similarity[background].sum() + 1e-7))
    return float(np.mean(losses))


def test_local_aggregation_loss_matches_the_paper():
    rng = np.random.default_rng(2)
    bank, q = unit(rng.normal(size=(50, 8))), unit(rng.normal(size=(7, 8)))
    clusters = rng.integers(0, 6, size=(2, 50))
    indices = np.array([0, 4, 49, 13, 22, 4, 31])
    ours = local_aggregation_loss(torch.tensor(q), torch.tensor(bank), torch.tensor(clusters), torch.tensor(indices), 12, 0.1, chunk=3)
    assert ours.item() == pytest.approx(numpy_local_aggregation(q, bank, clusters, indices, 12, 0.1), rel=1e-6)
    # a sample with no close neighbour among its background costs log 1e7 and no gradient
    lonely = np.full((1, 50), 1)
    lonely[0, 0] = 0
    far = torch.tensor(-bank[:1], requires_grad=True)
    loss = local_aggregation_loss(far, torch.tensor(bank), torch.tensor(lonely), torch.tensor([0]), 5, 0.1)
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(1e-7)) and torch.equal(far.grad, torch.zeros_like(far))


def test_local_aggregation_clusters_the_bank_then_aggregates():
    method = make("local_aggregation", background=20, clusters=5)
    assert method.cluster_labels.shape == (3, 64) and int(method.clustered_at) == -1
    bank = method.bank().bank.clone()
    indices = np.arange(16, 32)
    batch = batch_of(method, indices)
    out = method.training_step(batch)
    expected_clusters = np.stack([kmeans(bank, 5, seed=h)[0].numpy() for h in range(3)])
    np.testing.assert_array_equal(method.cluster_labels.numpy(), expected_clusters)
    q = embeddings(method, batch)
    assert out["loss"].item() == pytest.approx(numpy_local_aggregation(q, bank.double().numpy(), expected_clusters, indices, 20, 0.07), rel=1e-5)


def test_local_aggregation_warms_up_with_instance_discrimination_and_reclusters_on_schedule():
    method = make("local_aggregation", background=20, clusters=5, warmup_steps=2, cluster_every=3)
    clustered = []
    for step in range(7):
        out = method.training_step(batch_of(method, np.arange(8 * (step % 8), 8 * (step % 8) + 8)))
        assert ("instance_loss" in out) == (step < 2)
        clustered.append(int(method.clustered_at))
        method.on_step_end(step + 1, 7)
    assert clustered == [-1, -1, 2, 2, 2, 5, 5]
    # default: once per pass over the data (64 images, batches of 8)
    method = make("local_aggregation", background=20, clusters=5)
    assert not method.clusters_due(64, 8) or int(method.clustered_at) < 0
    method.clustered_at.fill_(0)
    method.steps.fill_(7)
    assert not method.clusters_due(64, 8)
    method.steps.fill_(8)
    assert method.clusters_due(64, 8)


# ---------------------------------------------------------------- learning, state, CLI


@pytest.mark.parametrize(
    "name, options, fixed_bank",
    [
        ("instdisc", {}, False),
        ("instdisc", {"loss": "nce", "negatives": 32, "proximal": 0.0}, True),
        ("local_aggregation", {"background": 32, "clusters": 8}, False),
    ],
)
def test_a_few_steps_reduce_the_loss(name: str, options: dict, fixed_bank: bool):
    # one fixed batch, the bank updated after every step as in training; NCE's Z is fixed at the
    # first batch, so its loss first climbs while the bank fills with the (still similar) embeddings
    # of this batch, and its learning is checked against a fixed bank
    method = make(name, **options)
    batch = batch_of(method, np.arange(32))
    bank = method.bank().bank.clone()
    optimizer = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    hold_bank = (lambda: method.bank().bank.copy_(bank)) if fixed_bank else None
    losses = fixed_batch_losses(method, batch, optimizer, 15, after_loss=hold_bank)
    assert losses[-1] < losses[0] - 0.1 * abs(losses[0]) - 0.02, losses


def train(method: InstDisc, out: Path, resume: bool = False, stop_after: int | None = None) -> Trainer:
    """4 steps of 16 (a checkpoint every 2); ``stop_after`` interrupts the run after that step."""
    config = TrainConfig(steps=4, batch_size=16, lr=0.05, checkpoint_every=2, log_every=1, progress=False)
    trainer = Trainer(method, DIGITS[:48], config, out)
    if resume:
        assert trainer.resume()
    if stop_after is not None:
        end_of_step = method.on_step_end

        def interrupt(step: int, total: int) -> None:
            end_of_step(step, total)
            if step == stop_after:
                raise KeyboardInterrupt

        method.on_step_end = interrupt  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
    else:
        trainer.fit()
    return trainer


@pytest.mark.parametrize(
    "name, options", [("instdisc", {"loss": "nce", "negatives": 16}), ("local_aggregation", {"background": 16, "clusters": 4, "warmup_steps": 1, "cluster_every": 2})]
)
def test_state_survives_a_checkpoint_and_resume_continues_identically(tmp_path: Path, name: str, options: dict):
    straight = make(name, size=None, **options)
    train(straight, tmp_path / "straight")
    train(make(name, size=None, **options), tmp_path / "resumed", stop_after=3)  # the checkpoint of step 2 remains
    resumed = make(name, size=None, **options)
    train(resumed, tmp_path / "resumed", resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    restored = make(name, size=None, **options)
    restored.load_state_dict(torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"])
    assert len(restored.bank()) == 48
    assert torch.equal(restored.bank().bank, straight.bank().bank)
    assert int(restored.steps) == 4
    if name == "local_aggregation":
        assert torch.equal(restored.cluster_labels, straight.cluster_labels)
        assert int(restored.clustered_at) == 3 and (restored.cluster_labels >= 0).all()
    else:
        assert float(restored.nce_normalizer) == float(straight.nce_normalizer) > 0


def test_train_then_load_and_export_from_the_command_line(tmp_path: Path, capsys):
    run = tmp_path / "run"
    args = ["train", "--method", "instdisc", "--steps", "2", "--batch-size", "16", "--width", "4", "--out", str(run), "--quiet"]
    assert cli.main([*args, "--option", "loss=nce", "--option", "negatives=64"]) == 0
    method, _ = load_method(run / "checkpoint.pt")
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert isinstance(method, InstDisc) and method.loss == "nce" and len(method.bank()) == state["metadata"]["dataset_size"]
    assert torch.equal(method.bank().bank, state["model"]["banks.embedding.bank"])
    assert float(method.nce_normalizer) > 0 and int(method.steps) == 2
    assert cli.main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path / "backbone.pt")]) == 0
    assert set(torch.load(tmp_path / "backbone.pt")["state_dict"]) == {k[len("backbone.") :] for k in state["model"] if k.startswith("backbone.")}


def test_training_is_deterministic_given_the_seed():
    def run() -> tuple[list[float], torch.Tensor]:
        method = make("local_aggregation", background=16, clusters=4, warmup_steps=1)
        optimizer = torch.optim.SGD(method.parameters(), lr=0.05)
        losses = []
        for step in range(3):
            loss = method.training_step(batch_of(method, np.arange(16 * step, 16 * step + 16)))["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            method.on_step_end(step + 1, 3)
            losses.append(loss.item())
        return losses, method.bank().bank.clone()

    (a, bank_a), (b, bank_b) = run(), run()
    assert a == b and torch.equal(bank_a, bank_b)


def test_training_needs_a_bound_dataset_and_indices():
    method = make(size=None)
    batch = method.make_batch(DIGITS[:4], seed=0, epoch=0, indices=np.arange(4))
    with pytest.raises(RuntimeError, match="bind_dataset"):
        method.training_step(batch)
    method.bind_dataset(8)
    with pytest.raises(ValueError, match="batch: expected 'indices'"):
        method.training_step({"views": batch["views"]})


@pytest.mark.parametrize(
    "name, options, pattern",
    [
        ("instdisc", {"loss": "hinge"}, "loss: expected one of softmax, nce"),
        ("instdisc", {"negatives": 0}, "negatives: expected > 0"),
        ("instdisc", {"temperature": 0.0}, "temperature: expected > 0"),
        ("instdisc", {"proximal": -1.0}, "proximal: expected >= 0"),
        ("instdisc", {"bank_momentum": 1.0}, r"bank_momentum: expected a value in \[0, 1\)"),
        ("local_aggregation", {"background": 0}, "background: expected > 0"),
        ("local_aggregation", {"clusterings": 0}, "clusterings: expected > 0"),
        ("local_aggregation", {"cluster_every": 0}, "cluster_every: expected > 0"),
        ("local_aggregation", {"warmup_steps": -1}, "warmup_steps: expected >= 0"),
        ("local_aggregation", {"clusters": 100}, "clusters: expected at most the dataset size 64"),
    ],
)
def test_bad_options(name: str, options: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        make(name, **options)
