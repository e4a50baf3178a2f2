"""SwAV and SupCon: Sinkhorn-Knopp and the swapped prediction against numpy transcriptions of the
paper, the queue, frozen and normalised prototypes, checkpoints; SupCon's eq. 2 and label plumbing
from the dataset through the trainer and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import selfsup.transforms as T
from selfsup import cli, plugins
from selfsup.data import load_digits
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.methods.supcon import SupCon
from selfsup.losses.sinkhorn import sinkhorn, swapped_prediction_loss
from selfsup.models import small_resnet
from selfsup.data.sources import open_data
from selfsup.training import TrainConfig, Trainer
from conftest import fixed_batch_losses

DIGITS = load_digits().train
IMAGES = DIGITS.images[:64]


def method(name: str, **options):
    torch.manual_seed(0)
    return plugins.get("methods", name)(small_resnet(width=8), **options)


def swav(**options):
    defaults = {"prototypes": 20, "projection_dim": 16, "local_crops": 2, "local_size": 16, "freeze_prototypes_steps": 0}
    return method("swav", **{**defaults, **options})


def batch_of(m, count: int = 8, start: int = 0):
    return m.make_batch(IMAGES[start : start + count], seed=1, epoch=0, indices=np.arange(start, start + count))


def numpy_sinkhorn(scores: np.ndarray, epsilon: float, iterations: int) -> np.ndarray:
    """Algorithm 1 of the paper (appendix): scaling vectors u (prototypes, target r = 1/K) and
    columns (samples, target c = 1/B), then each column rescaled to a distribution."""
    q = np.exp(scores / epsilon).T
    q /= q.sum()
    k, b = q.shape
    r, c = np.full(k, 1.0 / k), np.full(b, 1.0 / b)
    for _ in range(iterations):
        u = q.sum(1)
        q *= (r / u)[:, None]
        q *= (c / q.sum(0))[None, :]
    return (q / q.sum(0, keepdims=True)).T


def numpy_log_softmax(x: np.ndarray) -> np.ndarray:
    top = x.max(-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(-1, keepdims=True))


def numpy_swav_loss(scores: np.ndarray, codes: list[np.ndarray], temperature: float) -> float:
    """L = (1/G) Σ_s (1/(V − 1)) Σ_{t≠s} mean_b −Σ_k q_s log softmax(z_tᵀC/τ)."""
    log_p = numpy_log_softmax(scores / temperature)
    views = scores.shape[0]
    per_code = [np.mean([-(q * log_p[t]).sum(-1).mean() for t in range(views) if t != s]) for s, q in enumerate(codes)]
    return float(np.mean(per_code))


def embeddings(m, batch) -> tuple[np.ndarray, np.ndarray]:
    """z ``(V, N, D)`` and the prototypes ``(K, D)`` as float64, without gradient."""
    with torch.no_grad():
        return m.embed(batch).double().numpy(), m.prototypes.weight.double().numpy()


# ---------------------------------------------------------------- Sinkhorn-Knopp


@pytest.mark.parametrize("epsilon, iterations", [(0.05, 3), (0.1, 1), (0.03, 7)])
def test_sinkhorn_matches_the_papers_algorithm(epsilon: float, iterations: int):
    rng = np.random.default_rng(0)
    scores = np.tanh(rng.normal(size=(12, 5)))
    codes = sinkhorn(torch.from_numpy(scores).float(), epsilon, iterations)
    assert codes.dtype == torch.float32 and codes.shape == (12, 5)
    np.testing.assert_allclose(codes.numpy(), numpy_sinkhorn(scores.astype(np.float32).astype(np.float64), epsilon, iterations), rtol=1e-5, atol=1e-7)


def test_sinkhorn_converges_to_equipartition():
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(np.tanh(rng.normal(size=(40, 8))))
    codes = sinkhorn(scores, 0.05, 200).double()
    np.testing.assert_allclose(codes.sum(1).numpy(), 1.0, atol=1e-6)  # every sample: a distribution
    np.testing.assert_allclose(codes.sum(0).numpy(), 40 / 8, rtol=1e-3)  # every prototype: B/K samples
    few = sinkhorn(scores, 0.05, 3).double()
    assert np.abs(few.sum(0).numpy() - 5).max() > np.abs(codes.sum(0).numpy() - 5).max()
    # sharper for smaller ε: mean entropy falls
    entropy = [float(-(c * c.clamp_min(1e-30).log()).sum(1).mean()) for c in (sinkhorn(scores, e, 3) for e in (0.5, 0.05))]
    assert entropy[1] < entropy[0]


def test_sinkhorn_is_stable_for_large_scores_and_counts_shared_rows_once_alone():
    scores = torch.tensor([[30.0, -30.0, 0.0], [0.0, 30.0, -30.0], [-30.0, 0.0, 30.0], [30.0, 30.0, 30.0]])
    codes = sinkhorn(scores, 0.01, 3)
    assert torch.isfinite(codes).all()
    np.testing.assert_allclose(codes.numpy(), numpy_sinkhorn((scores.double() - 30).numpy(), 0.01, 3), atol=1e-6)
    # in one process the shared (queue) rows are plain rows
    torch.testing.assert_close(sinkhorn(scores / 30, shared_rows=2), sinkhorn(scores / 30))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [({"epsilon": 0.0}, "epsilon: expected > 0"), ({"iterations": 0}, "iterations: expected at least 1"), ({"shared_rows": 9}, "shared_rows")],
)
def test_sinkhorn_bad_arguments(kwargs: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        sinkhorn(torch.zeros(4, 3), **kwargs)


# ---------------------------------------------------------------- SwAV


def test_views_are_two_global_and_local_crops_of_the_swav_recipe():
    m = swav(local_crops=3, local_size=12)
    batch = batch_of(m, 4)
    assert batch["views"].shape == (2, 4, 3, 32, 32) and batch["local"].shape == (3, 4, 3, 12, 12)
    recipe = T.swav((32, 12), (2, 3), (0.14, 0.05), (1.0, 0.14), normalize=T.Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD), blur=False)
    expected = recipe(IMAGES[:4], seed=1, epoch=0, indices=np.arange(4))
    torch.testing.assert_close(batch["views"], torch.stack(expected[:2]))
    torch.testing.assert_close(batch["local"], torch.stack(expected[2:]))
    assert "GaussianBlur" not in str(m.view_pipeline(32).views[0].transforms), "no blur below 64 px"
    assert "GaussianBlur" in str(m.view_pipeline(96).views[0].transforms)
    assert "local" not in batch_of(swav(local_crops=0), 4)


def test_loss_is_the_swapped_prediction_of_sinkhorn_codes():
    m = swav(temperature=0.1, epsilon=0.05)
    batch = batch_of(m)
    out = m.training_step(batch)
    z, c = embeddings(m, batch)
    scores = z @ c.T
    codes = [numpy_sinkhorn(scores[s], 0.05, 3) for s in (0, 1)]
    assert out["loss"].item() == pytest.approx(numpy_swav_loss(scores, codes, 0.1), rel=1e-5)
    assert out["queue_used"].item() == 0.0
    # the codes carry no gradient: the loss's gradient only comes through the predictions
    scores_t = torch.from_numpy(scores).requires_grad_(True)
    loss = swapped_prediction_loss(scores_t, torch.from_numpy(np.stack(codes)), 0.1)
    loss.backward()
    expected = np.zeros_like(scores)
    p = np.exp(numpy_log_softmax(scores / 0.1))
    for s in (0, 1):
        for t in (u for u in range(4) if u != s):
            expected[t] += (p[t] - codes[s]) / (0.1 * 8 * 3 * 2)
    np.testing.assert_allclose(scores_t.grad.numpy(), expected, atol=1e-12)


def test_prototypes_are_normalised_before_every_forward():
    m = swav()
    np.testing.assert_allclose(m.prototypes.weight.norm(dim=1).detach().numpy(), 1.0, rtol=1e-6)
    with torch.no_grad():
        m.prototypes.weight.mul_(torch.linspace(0.5, 3.0, 20)[:, None])
    direction = torch.nn.functional.normalize(m.prototypes.weight.detach().clone(), dim=1)
    m.training_step(batch_of(m))
    torch.testing.assert_close(m.prototypes.weight.detach(), direction)


def test_prototypes_are_frozen_for_the_first_steps():
    m = swav(freeze_prototypes_steps=2)
    batch = batch_of(m)
    for step in range(3):
        m.zero_grad()
        m.training_step(batch)["loss"].backward()
        grad = m.prototypes.weight.grad
        assert grad is not None
        assert (grad.abs().sum().item() == 0.0) == (step < 2), step
        assert m.head.net[0].weight.grad.abs().sum() > 0
        m.on_step_end(step + 1, 3)


def test_queue_fills_from_its_start_step_and_joins_sinkhorn_once_full():
    m = swav(queue_size=12, queue_start_step=1)
    first, second, third = batch_of(m, 8, 0), batch_of(m, 8, 8), batch_of(m, 8, 16)
    m.training_step(first)
    assert int(m.queue_filled) == 0, "nothing enqueued before queue_start_step"
    m.on_step_end(1, 10)
    m.training_step(first)
    z1, _ = embeddings(m, first)
    assert int(m.queue_filled) == 8 and int(m.queue_pointer) == 8
    np.testing.assert_allclose(m.queue[:8].numpy(), z1[:2].transpose(1, 0, 2), atol=1e-6)
    out = m.training_step(second)
    z2, _ = embeddings(m, second)
    assert out["queue_used"].item() == 0.0, "used only once full"
    assert int(m.queue_filled) == 12 and int(m.queue_pointer) == 4
    np.testing.assert_allclose(m.queue[8:].numpy(), z2[:2, :4].transpose(1, 0, 2), atol=1e-6)
    np.testing.assert_allclose(m.queue[:4].numpy(), z2[:2, 4:].transpose(1, 0, 2), atol=1e-6)
    queue = m.queue.double().numpy()
    out = m.training_step(third)
    assert out["queue_used"].item() == 1.0
    z, c = embeddings(m, third)
    scores = z @ c.T
    codes = [numpy_sinkhorn(np.concatenate([queue[:, s] @ c.T, scores[s]]), 0.05, 3)[12:] for s in (0, 1)]
    assert out["loss"].item() == pytest.approx(numpy_swav_loss(scores, codes, 0.1), rel=1e-5)
    without_queue = [numpy_sinkhorn(scores[s], 0.05, 3) for s in (0, 1)]
    assert abs(numpy_swav_loss(scores, without_queue, 0.1) - out["loss"].item()) > 1e-4


def test_a_few_steps_reduce_the_loss():
    # on one fixed batch, with the method's own end-of-step updates
    m = swav(prototypes=30)
    batch = batch_of(m, 16)
    optimizer = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = fixed_batch_losses(m, batch, optimizer, 10)
    assert losses[-1] < losses[0] - 0.1 * abs(losses[0]), losses


def test_state_survives_a_checkpoint_and_resume_continues_identically(tmp_path: Path):
    options = {"queue_size": 24, "queue_start_step": 1, "freeze_prototypes_steps": 2, "local_crops": 1}
    config = TrainConfig(steps=4, batch_size=16, lr=0.05, log_every=1, progress=False, checkpoint_every=2, warmup_steps=0)
    straight = swav(**options)
    Trainer(straight, IMAGES, config, tmp_path / "straight").fit()
    first = swav(**options)
    calls = []

    def killed_at_step_3(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        calls.append(1)
        if len(calls) == 3:  # after the step-2 checkpoint
            raise KeyboardInterrupt
        return type(first).training_step(first, batch)

    first.training_step = killed_at_step_3  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        Trainer(first, IMAGES, config, tmp_path / "resumed").fit()
    restored = swav(**options)
    restored.load_state_dict(torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["model"])
    torch.testing.assert_close(restored.queue, first.queue)
    assert int(restored.queue_pointer) == 16 and int(restored.queue_filled) == 16 and int(restored.steps_done) == 2
    resumed = swav(**options)
    again = Trainer(resumed, IMAGES, config, tmp_path / "resumed")
    assert again.resume() and again.step == 2
    again.fit()
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_same_seed_same_loss():
    a, b = swav(), swav()
    assert a.training_step(batch_of(a))["loss"].item() == b.training_step(batch_of(b))["loss"].item()


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"epsilon": 0.0}, "epsilon: expected > 0"),
        ({"epsilon": -0.1}, "epsilon: expected > 0"),
        ({"sinkhorn_iterations": 0}, "sinkhorn_iterations: expected at least 1"),
        ({"prototypes": 1}, "prototypes: expected at least 2"),
        ({"temperature": 0.0}, "temperature: expected > 0"),
        ({"queue_size": -1}, "queue_size: expected >= 0"),
        ({"freeze_prototypes_steps": -1}, "freeze_prototypes_steps: expected >= 0"),
        ({"local_crops": -1}, "local_crops: expected >= 0"),
        ({"local_size": 4}, "local_size: expected at least 8"),
    ],
)
def test_swav_bad_options(options: dict, pattern: str):
    with pytest.raises(ValueError, match=pattern):
        swav(**options)


# ---------------------------------------------------------------- SupCon


def numpy_sup_con(z: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Eq. 2 of Khosla et al.: z ``(V, N, D)``, anchors every view, positives every other view of
    the same class, the mean over anchors of −1/|P(i)| Σ_p log softmax_{a≠i}(z_i·z_a/τ)_p."""
    views, n, _ = z.shape
    flat = z.reshape(views * n, -1).astype(np.float64)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    y = np.tile(labels, views)
    losses = []
    for i in range(views * n):
        others = [a for a in range(views * n) if a != i]
        logits = flat[others] @ flat[i] / temperature
        log_denominator = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
        positives = [k for k, a in enumerate(others) if y[a] == y[i]]
        losses.append(-np.mean([logits[k] - log_denominator for k in positives]))
    return float(np.mean(losses))


def supcon(**options):
    m = method("supcon", **options)
    m.bind_dataset(len(DIGITS.labels), DIGITS.labels)
    return m


def test_supcon_loss_is_eq_2_with_the_dataset_labels():
    m = supcon(temperature=0.1, projection_dim=16)
    indices = np.array([3, 40, 7, 100, 12, 3 + 64, 55, 9])
    batch = m.make_batch(DIGITS.images[indices], seed=0, epoch=0, indices=indices)
    np.testing.assert_array_equal(batch["labels"].numpy(), DIGITS.labels[indices])
    out = m.training_step(batch)
    with torch.no_grad():
        z = m.project(batch["views"]).numpy()
    assert out["loss"].item() == pytest.approx(numpy_sup_con(z, DIGITS.labels[indices], 0.1), rel=1e-5)
    assert len(set(DIGITS.labels[indices])) < len(indices), "some anchors have positives of other images"
    # unlike SimCLR's instance positives
    instance = numpy_sup_con(z, np.arange(8), 0.1)
    assert abs(instance - out["loss"].item()) > 1e-3


def test_supcon_batches_carry_the_labels_the_trainer_binds(tmp_path: Path):
    m = method("supcon", projection_dim=8)
    labels = (np.arange(len(IMAGES)) * 7) % 5
    trainer = Trainer(m, IMAGES, TrainConfig(steps=1, batch_size=16, progress=False), tmp_path, labels=labels)
    epoch, indices = trainer.batch_indices(3)
    batch = m.make_batch(IMAGES[indices], seed=0, epoch=epoch, indices=indices)
    np.testing.assert_array_equal(batch["labels"].numpy(), labels[indices])
    trainer.fit()
    assert "labels" not in m.state_dict(), "labels are the dataset's, not checkpointed state"


def test_supcon_without_labels_names_them(tmp_path: Path):
    with pytest.raises(ValueError, match="^labels: method supcon trains on class labels"):
        Trainer(method("supcon"), IMAGES, TrainConfig(steps=1, progress=False), tmp_path)
    m = method("supcon")
    with pytest.raises(ValueError, match="^labels: supcon trains on class labels"):
        m.make_batch(IMAGES[:4], seed=0, epoch=0, indices=np.arange(4))
    m.bind_dataset(4, np.arange(4))
    with pytest.raises(ValueError, match="^indices"):
        m.make_batch(IMAGES[:4], seed=0, epoch=0, indices=np.arange(2, 6))
    with pytest.raises(ValueError, match="^labels: expected 5 integer"):
        m.bind_dataset(5, np.arange(4))


def test_cli_trains_supcon_on_digits_with_their_labels(tmp_path: Path):
    out = tmp_path / "run"
    args = ["train", "--method", "supcon", "--data", "digits", "--steps", "2", "--batch-size", "16", "--width", "4", "--out", str(out), "--quiet"]
    assert cli.main(args) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["method"] == "supcon" and state["metadata"]["dataset_size"] == len(DIGITS.labels)


def write_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((12, 12, 3), 20 * i, np.uint8)).save(folder / f"{i}.png")


def test_cli_refuses_supcon_on_a_folder_without_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    write_images(tmp_path / "flat", 4)
    args = ["train", "--method", "supcon", "--data", str(tmp_path / "flat"), "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"]
    assert cli.main(args) == 2
    assert "--data: method supcon trains on class labels" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_class_folders_give_the_labels_of_the_readable_images(tmp_path: Path):
    from selfsup.data.folder import load_folder_array

    write_images(tmp_path / "data" / "a", 2)
    write_images(tmp_path / "data" / "b", 3)
    (tmp_path / "data" / "a" / "9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.warns(UserWarning):
        images, folder = load_folder_array(tmp_path / "data", 8)
    assert len(images) == 5
    np.testing.assert_array_equal(folder.readable_targets(), [0, 0, 1, 1, 1])
    # streamed: every file keeps its class label; the broken one is replaced in its batch by a
    # readable sample, which brings its own label
    source = open_data(str(tmp_path / "data"))
    assert source.labeled and source.targets == [0, 0, 0, 1, 1, 1]
    method = SupCon(small_resnet(width=4), head_layers=1, projection_dim=8, image_size=8)
    trainer = Trainer(method, source, TrainConfig(steps=1, batch_size=6, progress=False), tmp_path / "run")
    with pytest.warns(UserWarning, match="9_broken.png"):
        item = next(iter(trainer.loader()))
    labels = item.tensors["labels"].tolist()
    assert item.size == 6 and labels.count(0) >= 2 and labels.count(1) >= 3
    write_images(tmp_path / "flat", 2)
    assert not open_data(str(tmp_path / "flat")).labeled
