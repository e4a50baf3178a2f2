"""Semi-supervised data path and methods: the labelled/unlabelled source and sampler against
reference transcriptions of their sampling rules, each method's loss against a transcription of
its paper's equation, training through the trainer with exact resume, the run layer and DDP."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_distributed import PREAMBLE
from torch import nn

from selfsup import plugins
from selfsup.data import ArraySource, ImageFolder
from selfsup.data.sampler import SemiSupervisedBatchSampler, distinct_streams, epoch_order
from selfsup.data.semi import SemiSupervisedSource, SubsetSource, labels_per_class, semi_supervised_source
from selfsup.methods.fixmatch import FixMatch
from selfsup.methods.label_augmentation import LabelAugmentation
from selfsup.methods.mixmatch import MixMatch
from selfsup.methods.s4l import S4L, vat_loss
from selfsup.methods.semi_supervised import Supervised
from selfsup.methods.uda import UDA
from selfsup.models.inputs import CHANNEL_MEAN, CHANNEL_STD
from selfsup.training import TrainConfig, Trainer
from selfsup.transforms import Normalize, fixmatch


class Flat(nn.Module):
    """A backbone without batch statistics, so a reference forward of any subset gives the same rows."""

    def __init__(self, size: int = 8, out_dim: int = 12) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, out_dim), nn.Tanh())
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def toy_data(n: int = 40, classes: int = 4, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % classes


# ---------------------------------------------------------------- data


def test_labels_per_class_draws_nested_seeded_subsets():
    labels = np.repeat(np.arange(5), [7, 3, 9, 1, 4])
    five = labels_per_class(labels, 5, seed=3)
    counts = np.bincount(labels[five], minlength=5)
    assert counts.tolist() == [5, 3, 5, 1, 4]
    assert set(labels_per_class(labels, 1, seed=3)) <= set(five)
    assert np.array_equal(five, labels_per_class(labels, 5, seed=3))
    assert not np.array_equal(five, labels_per_class(labels, 5, seed=4))
    with pytest.raises(ValueError, match="labels_per_class"):
        labels_per_class(labels, 0, seed=0)
    with pytest.raises(ValueError, match="labels"):
        labels_per_class([0, -1, 1], 1, seed=0)


def test_semi_supervised_source_hides_the_pool_labels_and_loads_both_parts_in_order():
    images, labels = toy_data()
    source = ArraySource(images, labels)
    data = SemiSupervisedSource.from_labelled(source, per_class=2, seed=0)
    chosen = labels_per_class(labels, 2, seed=0)
    assert (data.labelled_count, data.unlabelled_count) == (8, 40)
    assert data.targets == labels[chosen].tolist() + [-1] * 40
    loaded = data.load([3, 0, 8 + 5, 8 + 39])
    assert loaded.indices == [3, 0, 13, 47]
    assert loaded.targets == [int(labels[chosen[3]]), int(labels[chosen[0]]), -1, -1]
    np.testing.assert_array_equal(loaded.images, images[[chosen[3], chosen[0], 5, 39]])
    rest = SemiSupervisedSource.from_labelled(source, per_class=2, seed=0, pool="rest")
    assert rest.unlabelled_count == 32
    np.testing.assert_array_equal(rest.unlabelled.indices, np.setdiff1d(np.arange(40), chosen))
    repeated = data.load([3, 3 + 48, 8 + 5 + 2 * 48])
    assert repeated.indices == [3, 51, 109]
    np.testing.assert_array_equal(repeated.images, images[[chosen[3], chosen[3], 5]])
    every = semi_supervised_source(images, labels)
    assert (every.labelled_count, every.unlabelled_count) == (40, 40)


def test_semi_supervised_source_refuses_what_it_cannot_use():
    images, labels = toy_data()
    with pytest.raises(ValueError, match="data: semi-supervised training needs labels"):
        SemiSupervisedSource.from_labelled(ArraySource(images))
    with pytest.raises(ValueError, match="pool: every sample is labelled"):
        SemiSupervisedSource.from_labelled(ArraySource(images, labels), pool="rest")
    with pytest.raises(ValueError, match="pool: expected"):
        SemiSupervisedSource.from_labelled(ArraySource(images, labels), pool="some")
    with pytest.raises(ValueError, match="labelled: expected a source with a class label"):
        SemiSupervisedSource(ArraySource(images), ArraySource(images))
    with pytest.raises(TypeError, match="unlabelled: expected a data source"):
        SemiSupervisedSource(ArraySource(images, labels), images)
    with pytest.raises(ValueError, match="indices"):
        SubsetSource(ArraySource(images, labels), [0, 40])
    with pytest.raises(ValueError, match="labels: semi-supervised training on an array"):
        semi_supervised_source(images)


def test_a_subset_of_a_folder_maps_unreadable_files_to_its_own_indices(tmp_path: Path):
    from PIL import Image

    for c, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12, 3), 40 * (c * 3 + i), np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "1.png").write_bytes(b"not an image")
    folder = ImageFolder(tmp_path)
    subset = SubsetSource(folder, [4, 0, 5], hide_labels=True)
    with pytest.warns(UserWarning):
        loaded = subset.load([0, 1, 2])
    assert loaded.indices == [1, 2]
    assert loaded.targets == [-1, -1]
    assert [i for i, _, _ in loaded.skipped] == [0]
    assert subset.targets == [-1, -1, -1]
    assert SubsetSource(folder, [4, 0]).targets == [1, 0]


def reference_stream(n: int, seed: int, stream: int, first: int, count: int) -> np.ndarray:
    """The draws ``[first, first + count)`` of epoch orders laid end to end, built naively."""
    epochs = (first + count) // n + 1
    return np.concatenate([epoch_order(n, seed, e, stream) for e in range(epochs)])[first : first + count]


@pytest.mark.parametrize("labelled,unlabelled,batch,ratio", [(10, 50, 4, 3), (3, 20, 8, 2), (12, 12, 6, 0)])
def test_the_sampler_draws_each_part_from_its_own_epoch_stream(labelled: int, unlabelled: int, batch: int, ratio: int):
    sampler = SemiSupervisedBatchSampler(labelled, unlabelled, batch, ratio, seed=7, stop=9)
    for micro, keys in enumerate(sampler):
        assert {e for e, _ in keys} == {micro}
        keys_of_batch = np.array([i for _, i in keys])
        assert len(set(keys_of_batch.tolist())) == len(keys_of_batch)  # repeats carry their draw number
        indices = keys_of_batch % (labelled + unlabelled)
        np.testing.assert_array_equal(indices[:batch], reference_stream(labelled, 7, 0, micro * batch, batch))
        pool = reference_stream(unlabelled, 7, 1, micro * batch * ratio, batch * ratio) + labelled
        np.testing.assert_array_equal(indices[batch:], pool)
    # every labelled image once per pass over the labelled set, whatever the batch
    drawn = np.concatenate([sampler.global_batch(m)[1][:batch] for m in range(labelled)]) % (labelled + unlabelled)
    assert np.bincount(drawn[: labelled * (len(drawn) // labelled)], minlength=labelled).std() == 0


def test_the_sampler_shares_ranks_and_resumes_at_any_micro_batch():
    whole = list(SemiSupervisedBatchSampler(10, 40, 4, 2, seed=1, stop=6))
    ranks = [list(SemiSupervisedBatchSampler(10, 40, 4, 2, seed=1, rank=r, world=2, stop=6)) for r in range(2)]
    for m, keys in enumerate(whole):
        labelled, pool = keys[:4], keys[4:]
        assert ranks[0][m] == labelled[0::2] + pool[0::2]
        assert ranks[1][m] == labelled[1::2] + pool[1::2]
    assert list(SemiSupervisedBatchSampler(10, 40, 4, 2, seed=1, start=3, stop=6)) == whole[3:]
    with pytest.raises(ValueError, match="batch_size: a labelled batch of 6 does not split over 4"):
        SemiSupervisedBatchSampler(10, 40, 6, 3, world=4)
    with pytest.raises(ValueError, match="ratio"):
        SemiSupervisedBatchSampler(10, 40, 2, -1)
    with pytest.raises(ValueError, match="unlabelled: a ratio"):
        SemiSupervisedBatchSampler(10, 0, 2, 1)


def test_distinct_streams_tell_repeated_draws_apart():
    index = np.array([4, 2, 4, 4, 9, 2])
    streams = distinct_streams(index, 10)
    assert streams.tolist() == [4, 2, 14, 24, 9, 12]
    assert np.array_equal(streams % 10, index)
    assert distinct_streams(np.arange(5), 5).tolist() == list(range(5))


# ---------------------------------------------------------------- batches


def bound(method_cls, size: int = 8, labels: np.ndarray | None = None, **options):
    torch.manual_seed(0)
    method = method_cls(Flat(size), classes=4, **options)
    method.bind_dataset(20, np.array([0, 1, 2, 3, 0, 1, 2, 3] + [-1] * 12) if labels is None else labels)
    return method


def test_make_batch_views_are_fixmatch_views_on_per_draw_streams():
    method = bound(FixMatch, flip=False)
    images = toy_data(6)[0]
    indices = np.array([1, 21, 3, 9, 29, 15])  # 21, 29: repeated draws of 1 and 9 (20 images bound)
    batch = method.make_batch(images, seed=5, epoch=2, indices=indices)
    assert batch["labels"].tolist() == [1, 1, 3]
    assert tuple(batch["labelled"].shape) == (3, 3, 8, 8) and tuple(batch["unlabelled"].shape) == (2, 3, 3, 8, 8)
    weak, strong = fixmatch(8, normalize=Normalize(mean=CHANNEL_MEAN, std=CHANNEL_STD), flip=False).views
    streams = np.array([1, 21, 3])
    from selfsup.transforms import MultiView

    expected = MultiView([weak])(images[:3], seed=5, epoch=2, indices=streams)[0]
    torch.testing.assert_close(batch["labelled"], expected)
    pool = MultiView([weak, strong])(images[3:], seed=5, epoch=2, indices=np.array([9, 29, 15]))
    torch.testing.assert_close(batch["unlabelled"], torch.stack(pool))
    assert not torch.equal(batch["labelled"][0], batch["labelled"][1])  # one image drawn twice, two augmentations


def test_bad_options_and_unbound_labels_are_named():
    with pytest.raises(ValueError, match="labels: fixmatch trains on labelled images"):
        FixMatch(Flat(), classes=3).make_batch(np.zeros((2, 8, 8, 3), np.uint8), seed=0, epoch=0, indices=np.arange(2))
    for cls, options, name in [
        (FixMatch, {"threshold": 1.5}, "threshold"), (FixMatch, {"mu": -1}, "mu"), (FixMatch, {"ema": 1.0}, "ema"),
        (UDA, {"tsa": "cosine"}, "tsa"), (UDA, {"temperature": 0}, "temperature"), (MixMatch, {"augmentations": 0}, "augmentations"),
        (MixMatch, {"alpha": -1}, "alpha"), (S4L, {"vat_epsilon": 0}, "vat_epsilon"), (S4L, {"rotation_weight": -1}, "rotation_weight"),
        (LabelAugmentation, {"inference": "vote"}, "inference"), (LabelAugmentation, {"ema": 0.9}, "ema"),
        (Supervised, {"classes": 1}, "classes"),
    ]:
        with pytest.raises(ValueError, match=name):
            cls(Flat(), **{"classes": 3, **options})
    method = bound(Supervised)
    with pytest.raises(ValueError, match="labels: expected class labels in"):
        method.bind_dataset(3, np.array([0, 5, -1]))


# ---------------------------------------------------------------- losses against the papers


def batch_for(method, n_images: int = 12, seed: int = 1):
    images = toy_data(n_images, seed=seed)[0]
    indices = np.array([0, 1, 2, 3] + list(range(8, 8 + n_images - 4)))
    return method.make_batch(images, seed=seed, epoch=0, indices=indices)


def test_fixmatch_loss_is_equation_4():
    method = bound(FixMatch, threshold=0.3, lambda_u=2.0)
    batch = batch_for(method)
    out = method.training_step(batch)
    model = method.classifier()
    supervised = F.cross_entropy(model(batch["labelled"]), batch["labels"])
    weak, strong = (model(v) for v in batch["unlabelled"])
    p = torch.softmax(weak.detach(), 1)
    terms = [(-torch.log_softmax(strong[b], 0)[p[b].argmax()] if p[b].max() >= 0.3 else strong.new_zeros(())) for b in range(len(p))]
    expected = supervised + 2.0 * torch.stack(terms).mean()
    torch.testing.assert_close(out["loss"], expected)
    assert 0 < float(out["mask"]) < 1


def test_uda_loss_applies_tsa_and_the_masked_sharpened_kl():
    method = bound(UDA, confidence=0.26, temperature=0.4, tsa="linear", lambda_u=1.5)
    method.on_step_end(30, 100)
    batch = batch_for(method)
    out = method.training_step(batch)
    model = method.classifier()
    logits = model(batch["labelled"])
    eta = 0.3 * (1 - 1 / 4) + 1 / 4
    p_true = torch.softmax(logits, 1)[torch.arange(4), batch["labels"]]
    kept = p_true < eta
    ce = F.cross_entropy(logits, batch["labels"], reduction="none")
    supervised = (ce * kept).sum() / max(int(kept.sum()), 1)
    original, augmented = (model(v) for v in batch["unlabelled"])
    target = torch.softmax(original / 0.4, 1)
    mask = torch.softmax(original, 1).max(1).values >= 0.26
    kl = (target * (target.log() - torch.log_softmax(augmented, 1))).sum(1)
    torch.testing.assert_close(out["loss"], supervised + 1.5 * (kl * mask).mean())


def test_mixmatch_loss_follows_algorithm_1():
    method = bound(MixMatch, augmentations=2, temperature=0.5, alpha=0.75, lambda_u=10.0, rampup=0.5)
    method.on_step_end(10, 100)
    batch = batch_for(method)
    out = method.training_step(batch)
    model = method.classifier()
    labelled, labels, pool = batch["labelled"], batch["labels"], batch["unlabelled"]
    q = (torch.softmax(model(pool[0]), 1) + torch.softmax(model(pool[1]), 1)) / 2
    q = q ** 2 / (q ** 2).sum(1, keepdim=True)
    x = torch.cat([labelled, pool[0], pool[1]])
    p = torch.cat([F.one_hot(labels, 4).float(), q, q])
    rng = np.random.default_rng([1, 0, 0x313])
    lam = rng.beta(0.75, 0.75)
    lam = max(lam, 1 - lam)
    order = torch.from_numpy(rng.permutation(len(x)))
    mixed_x, mixed_p = lam * x + (1 - lam) * x[order], lam * p + (1 - lam) * p[order]
    logits = model(mixed_x)
    l_x = -(mixed_p[:4] * torch.log_softmax(logits[:4], 1)).sum(1).mean()
    l_u = ((torch.softmax(logits[4:], 1) - mixed_p[4:]) ** 2).sum(1).mean() / 4
    torch.testing.assert_close(out["loss"], l_x + 10.0 * (10 / 50) * l_u)


def test_s4l_loss_is_supervised_plus_rotation_on_every_image():
    method = bound(S4L, rotation_weight=0.7, entropy_weight=0.2)
    batch = batch_for(method)
    out = method.training_step(batch)
    images = torch.cat([batch["labelled"], batch["unlabelled"][0]])
    rotation = 0.0
    for k in range(4):
        rotated = torch.rot90(images, k, dims=(2, 3))
        rotation = rotation + F.cross_entropy(method.rotation_head(method.backbone(rotated)), torch.full((len(images),), k)) / 4
    logits = method.head(method.backbone(images))
    supervised = F.cross_entropy(logits[:4], batch["labels"])
    p = torch.softmax(logits[4:], 1)
    entropy = -(p * p.log()).sum(1).mean()
    torch.testing.assert_close(out["loss"], supervised + 0.7 * rotation + 0.2 * entropy)


def test_vat_is_the_kl_at_the_adversarial_direction_of_one_power_iteration():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(5, 3, 2, 2)
    logits = model(x)
    torch.manual_seed(1)
    got = vat_loss(model, x, logits, epsilon=0.5, xi=1e-3)
    torch.manual_seed(1)
    d = torch.randn_like(x)
    d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    d.requires_grad_(True)
    p = torch.softmax(logits.detach(), 1)
    kl = lambda y: (p * (p.log() - torch.log_softmax(model(y), 1))).sum(1).mean()  # noqa: E731
    (g,) = torch.autograd.grad(kl(x + 1e-3 * d), d)
    r = 0.5 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(got, kl(x + r))


def test_vat_passes_normalise_by_their_batch_but_leave_the_running_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 3)).train()
    x = torch.randn(6, 3, 2, 2)
    logits = model(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    got = vat_loss(model, x, logits, epsilon=0.5, xi=1e-3)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)
    assert model[1].track_running_stats
    # the loss is the one of passes that update the statistics: training mode normalises by the batch
    import copy

    updating = copy.deepcopy(model)
    torch.manual_seed(1)
    d = torch.randn_like(x)
    d = (d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).requires_grad_(True)
    p = torch.softmax(logits.detach(), 1)
    kl = lambda y: (p * (p.log() - torch.log_softmax(updating(y), 1))).sum(1).mean()  # noqa: E731
    (g,) = torch.autograd.grad(kl(x + 1e-3 * d), d)
    torch.testing.assert_close(got, kl(x + 0.5 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)))
    assert not torch.equal(updating[1].running_mean, before["1.running_mean"])
    model(x)
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])


def test_label_augmentation_trains_joint_labels_and_distils_the_aggregate():
    method = bound(LabelAugmentation)
    batch = method.make_batch(toy_data(4)[0], seed=0, epoch=0, indices=np.arange(4))
    assert "unlabelled" not in batch
    out = method.training_step(batch)
    labelled, labels = batch["labelled"], batch["labels"]
    joint = torch.stack([method.joint_head(method.backbone(torch.rot90(labelled, k, dims=(2, 3)))) for k in range(4)])
    joint_loss = sum(F.cross_entropy(joint[k], labels * 4 + k) for k in range(4)) / 4
    aggregated = torch.stack([joint[:, n, :].view(4, 4, 4)[torch.arange(4), :, torch.arange(4)].mean(0) for n in range(4)])
    student = method.head(method.backbone(labelled))
    teacher = torch.softmax(aggregated, 1)
    kl = (teacher * (teacher.log() - torch.log_softmax(student, 1))).sum(1).mean()
    torch.testing.assert_close(out["loss"], joint_loss + kl + F.cross_entropy(student, labels))
    images = toy_data(3, seed=5)[0]
    from selfsup.models.inputs import images_to_tensor

    with torch.no_grad():
        x = images_to_tensor(images)
        joint = torch.stack([method.joint_head(method.backbone(torch.rot90(x, k, dims=(2, 3)))) for k in range(4)])
        expected = torch.stack([joint[:, n, :].view(4, 4, 4)[torch.arange(4), :, torch.arange(4)].mean(0) for n in range(3)]).argmax(1)
    assert method.predict(images).tolist() == expected.tolist()


# ---------------------------------------------------------------- training


def semi_trainer(tmp_path: Path, name: str, steps: int, method_cls=FixMatch, **options) -> Trainer:
    images, labels = toy_data(48, size=8)
    data = SemiSupervisedSource.from_labelled(ArraySource(images, labels), per_class=3, seed=0)
    torch.manual_seed(0)
    method = method_cls(Flat(8), mu=2, threshold=0.2, **options)
    config = TrainConfig(steps=steps, batch_size=4, lr=0.05, checkpoint_every=2, log_every=1, progress=False)
    return Trainer(method, data, config, tmp_path / name)


def test_a_killed_semi_supervised_run_resumes_to_the_same_weights(tmp_path: Path):
    straight = semi_trainer(tmp_path, "straight", 4)
    log = straight.fit()
    assert all(row["mask"] > 0 for row in log)
    first = semi_trainer(tmp_path, "resumed", 4)
    original = first.method.on_step_end

    def killed_after_the_checkpoint_at_step_2(step: int, total: int) -> None:
        original(step, total)
        if step == 3:
            raise KeyboardInterrupt

    first.method.on_step_end = killed_after_the_checkpoint_at_step_2  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed = semi_trainer(tmp_path, "resumed", 4)
    assert resumed.resume() and resumed.step == 2
    resumed.fit()
    for key, value in straight.method.state_dict().items():
        torch.testing.assert_close(resumed.method.state_dict()[key], value, msg=key)


def test_the_ema_is_the_averaged_classifier_and_what_predict_uses(tmp_path: Path):
    trainer = semi_trainer(tmp_path, "ema", 3, ema=0.5)
    snapshots = []
    original = trainer.method.on_step_end

    def record(step: int, total: int) -> None:
        snapshots.append([p.detach().clone() for p in trainer.method.classifier().parameters()])
        original(step, total)

    trainer.method.on_step_end = record  # type: ignore[method-assign]
    before = [p.detach().clone() for p in trainer.method.ema.parameters()]
    trainer.fit()
    expected = before
    for step, live in enumerate(snapshots, start=1):
        decay = min(0.5, (1 + step) / (10 + step))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, live)]
    for got, want in zip(trainer.method.ema.parameters(), expected):
        torch.testing.assert_close(got, want)
    images = toy_data(5, seed=9)[0]
    from selfsup.models.inputs import images_to_tensor

    with torch.no_grad():
        trainer.method.ema.eval()
        assert trainer.method.predict(images).tolist() == trainer.method.ema(images_to_tensor(images)).argmax(1).tolist()


def test_the_trainer_refuses_mixed_data_for_other_methods_and_wraps_arrays_for_semi_supervised_ones(tmp_path: Path):
    images, labels = toy_data(16)
    data = SemiSupervisedSource.from_labelled(ArraySource(images, labels), per_class=2)
    config = TrainConfig(steps=1, batch_size=4, progress=False)
    rotnet = plugins.get("methods", "rotnet")(Flat(8))
    with pytest.raises(ValueError, match="data: labelled \\+ unlabelled data is for the semi-supervised methods"):
        Trainer(rotnet, data, config, tmp_path / "r")
    trainer = Trainer(FixMatch(Flat(8), mu=1), images, config, tmp_path / "f", labels=labels)
    assert isinstance(trainer.source, SemiSupervisedSource) and trainer.source.labelled_count == 16
    with pytest.raises(ValueError, match="labels: semi-supervised training on an array"):
        Trainer(FixMatch(Flat(8), mu=1), images, config, tmp_path / "g")


def test_every_semi_supervised_method_trains_through_the_run_layer(tmp_path: Path):
    from selfsup.run.build import build_trainer, resolve_run
    from selfsup.run.restore import load_backbone

    for name in ("supervised", "fixmatch", "uda", "mixmatch", "s4l", "sla"):
        config = resolve_run({"method": name, "data": "digits", "labels_per_class": 1, "steps": 2, "batch_size": 10,
                              "out": str(tmp_path / name), "backbone_options": {"width": 8}, "device": "cpu"})
        trainer = build_trainer(config, progress=False)
        assert trainer.source.labelled_count == 10
        assert trainer.method.classes == 10
        log = trainer.fit()
        assert math.isfinite(log[-1]["loss"])
        assert "labels_per_class = 1" in (tmp_path / name / "config.toml").read_text()
        # eval, export and load_backbone take the backbone the run is evaluated with: the EMA's
        exported = load_backbone(trainer.checkpoint_path).state_dict()
        evaluated = trainer.method.ema.backbone if trainer.method.ema is not None else trainer.method.backbone
        for key, value in evaluated.state_dict().items():
            torch.testing.assert_close(exported[key], value, msg=key)
        assert trainer.method.ema is None or any(not torch.equal(exported[k], v) for k, v in trainer.method.backbone.state_dict().items())


def test_the_run_layer_names_semi_supervised_settings_where_they_do_not_apply(tmp_path: Path):
    from selfsup.run.build import build_trainer, resolve_run
    from selfsup.run.config import ConfigError

    with pytest.raises(ConfigError, match="labels_per_class, unlabelled: only the semi-supervised methods .*fixmatch"):
        build_trainer(resolve_run({"method": "rotnet", "labels_per_class": 4}), progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "a.png")
    with pytest.raises(ConfigError, match="data: method fixmatch trains on labelled and unlabelled images"):
        build_trainer(resolve_run({"method": "fixmatch", "data": str(flat)}), progress=False)
    with pytest.raises(ConfigError, match="unlabelled: "):
        build_trainer(resolve_run({"method": "fixmatch", "unlabelled": str(tmp_path / "missing")}), progress=False)
    with pytest.raises(ConfigError, match="labels_per_class: expected a positive int"):
        resolve_run({"method": "fixmatch", "labels_per_class": 0})


def test_pretraining_then_semi_supervised_fine_tuning_starts_from_the_pretrained_backbone(tmp_path: Path):
    from selfsup.run.build import build_trainer, resolve_run
    from selfsup.run.restore import load_backbone

    common = {"data": "digits", "steps": 1, "batch_size": 10, "backbone_options": {"width": 8}, "device": "cpu"}
    build_trainer(resolve_run({**common, "method": "rotnet", "out": str(tmp_path / "pre")}), progress=False).fit()
    checkpoint = tmp_path / "pre" / "checkpoint.pt"
    trainer = build_trainer(
        resolve_run({**common, "method": "fixmatch", "init": str(checkpoint), "labels_per_class": 1, "out": str(tmp_path / "fine")}),
        progress=False,
    )
    pretrained = load_backbone(checkpoint).state_dict()
    for key, value in trainer.method.backbone.state_dict().items():
        torch.testing.assert_close(value, pretrained[key], msg=key)


# ---------------------------------------------------------------- DDP

DDP_SCRIPT = PREAMBLE + textwrap.dedent(
    """
    from selfsup import plugins
    from selfsup.data import ArraySource
    from selfsup.data.semi import SemiSupervisedSource
    from selfsup.training import TrainConfig, Trainer

    OPTIONS = {"fixmatch": {"threshold": 0.3, "mu": 2}, "uda": {"confidence": 0.3, "mu": 2}, "s4l": {"mu": 1},
               "supervised": {}, "sla": {"inference": "distilled"}}
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (48, 8, 8, 3), dtype=np.uint8), np.arange(48) % 4
    for name in sys.argv[2].split(","):
        torch.manual_seed(0)
        method = plugins.get("methods", name)(NoBatchStats(), classes=4, **OPTIONS[name])
        data = SemiSupervisedSource.from_labelled(ArraySource(images, labels), per_class=3, seed=0)
        config = TrainConfig(steps=3, batch_size=8, lr=0.1, checkpoint_every=3, log_every=1, progress=False)
        trainer = Trainer(method, data, config, sys.argv[1] + "/" + name)
        trainer.fit()
        if trainer.rank == 0:
            torch.save(method.state_dict(), sys.argv[1] + "/" + name + "/final.pt")
    """
)


def test_two_gloo_processes_train_every_semi_supervised_method_like_one(tmp_path: Path):
    from test_distributed import assert_two_ranks_train_like_one

    assert_two_ranks_train_like_one(tmp_path, DDP_SCRIPT, "fixmatch,uda,s4l,supervised,sla")


def test_the_semi_supervised_comparison_scores_every_row_on_the_held_out_split(tmp_path: Path):
    from selfsup.experiments.semi import SemiConfig, read_rows, run
    from selfsup.data.labelled import HELD_OUT_SETS

    config = SemiConfig(out=tmp_path, datasets=("digits",), methods=("supervised", "rotnet>fixmatch"), labels=(1, None), seeds=(0,),
                        steps=2, batch_size=10, mu=1, width=8, pretrain_steps=1)
    text = run(config)
    rows = read_rows(tmp_path / "results.jsonl")
    assert [(r["method"], r["labels"]) for r in rows] == [("supervised", "1"), ("rotnet>fixmatch", "1"), ("supervised", "all"), ("rotnet>fixmatch", "all")]
    assert rows[0]["labelled"] == 10 and rows[2]["labelled"] == len(HELD_OUT_SETS["digits"][1]().train.labels)
    assert rows[1]["options"] == {"mu": 1}
    assert (tmp_path / "pretrain" / "digits-rotnet" / "checkpoint.pt").exists()
    assert "| rotnet>fixmatch |" in text and (tmp_path / "semi_digits.png").exists()
    # a row is the method's classifier on the held-out split: the same as scoring its checkpoint again
    from selfsup.run.restore import load_method

    method, _ = load_method(tmp_path / "runs" / "digits-supervised-1-0" / "checkpoint.pt")
    test = HELD_OUT_SETS["digits"][1]().test
    assert rows[0]["accuracy"] == pytest.approx(float(np.mean(method.predict(test.images) == test.labels)))
    assert run(config) == text  # finished rows are not trained again


def test_compare_semi_lists_the_same_rows_as_the_experiment_and_names_bad_methods(capsys: pytest.CaptureFixture[str]):
    from selfsup.cli import SEMI_METHODS, main
    from selfsup.experiments.semi import METHODS

    assert SEMI_METHODS == METHODS
    assert main(["compare-semi", "--methods", "simclr"]) == 2
    assert "--methods: simclr does not end in a semi-supervised method" in capsys.readouterr().err
    assert main(["compare-semi", "--methods", "simclr>fixmach"]) == 2
    assert "fixmatch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["compare-semi", "--datasets", "cifar"])
    assert exit_info.value.code == 2


def test_a_labelled_folder_and_unlabelled_shards_train_together_in_forked_workers(tmp_path: Path):
    import warnings

    from selfsup.data import ImageFolder, write_photo_folder, write_shards
    from selfsup.run.build import build_trainer, resolve_run

    write_photo_folder(tmp_path / "labelled", count=12, size=40, classes=3)
    write_photo_folder(tmp_path / "pool", count=5, size=48)
    write_shards(ImageFolder(tmp_path / "pool"), tmp_path / "shards", shard_size=2)
    (tmp_path / "pool" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    settings = {"method": "fixmatch", "data": str(tmp_path / "labelled"), "labels_per_class": 2, "steps": 2, "batch_size": 4,
                "image_size": 16, "backbone_options": {"width": 8}, "device": "cpu", "options": {"mu": 2}}
    for pool, workers in ((str(tmp_path / "shards" / "train-{000000..000002}.tar"), 1), (str(tmp_path / "pool"), 0)):
        out = tmp_path / f"run{workers}"
        trainer = build_trainer(resolve_run({**settings, "unlabelled": pool, "workers": workers, "out": str(out)}), progress=False)
        assert (trainer.source.labelled_count, trainer.method.classes) == (6, 3)
        assert trainer.source.unlabelled_count == (5 if workers else 6)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            log = trainer.fit()
        assert math.isfinite(log[-1]["loss"])
    # 8 pool draws a step from 6 pool images: the broken one is met, replaced and reported
    assert [Path(p).name for p in trainer.skipped] == ["broken.jpg"]
    assert log[-1]["skipped"] == 1


def test_batch_hard_triplet_loss_matches_the_reference_transcription():
    from selfsup.losses.metric import batch_hard_triplet_loss

    rng = np.random.default_rng(3)
    z = rng.normal(size=(9, 4))
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3])
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    expected = np.mean([
        max(0.5 + max(d[a, p] for p in range(9) if p != a and labels[p] == labels[a]) - min(d[a, n] for n in range(9) if labels[n] != labels[a]), 0)
        for a in range(9)
    ])
    assert float(batch_hard_triplet_loss(torch.from_numpy(z), torch.from_numpy(labels))) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="labels: expected every row to share its label"):
        batch_hard_triplet_loss(torch.randn(3, 2), torch.tensor([0, 0, 1]))


def test_s4l_exemplar_is_the_batch_hard_loss_on_the_copies_of_every_image():
    from selfsup.losses.metric import batch_hard_triplet_loss

    method = bound(S4L, task="exemplar", copies=3, exemplar_dim=5, rotation_weight=0.4)
    batch = batch_for(method)
    assert tuple(batch["labelled_more"].shape) == (3, 4, 3, 8, 8) and tuple(batch["unlabelled"].shape) == (4, 8, 3, 8, 8)
    out = method.training_step(batch)
    copies = torch.cat([batch["labelled_more"], batch["unlabelled"][1:]], dim=1)
    embeddings = method.exemplar_head(method.backbone(copies.flatten(0, 1)))
    identities = batch["keys"].repeat(3)
    logits = method.head(method.backbone(batch["labelled"]))
    expected = F.cross_entropy(logits, batch["labels"]) + 0.4 * batch_hard_triplet_loss(embeddings, identities, 0.5)
    torch.testing.assert_close(out["loss"], expected)
    with pytest.raises(ValueError, match="task"):
        S4L(Flat(), classes=3, task="jigsaw")


def test_s4l_pseudo_label_retraining_learns_the_teachers_predictions(tmp_path: Path):
    from selfsup.models import small_resnet
    from selfsup.run.build import build_trainer, resolve_run

    config = resolve_run({"method": "supervised", "data": "digits", "labels_per_class": 1, "steps": 1, "batch_size": 10,
                          "out": str(tmp_path / "teacher"), "backbone_options": {"width": 8}, "device": "cpu"})
    teacher = build_trainer(config, progress=False)
    teacher.fit()
    torch.manual_seed(0)
    method = S4L(small_resnet(width=8), classes=10, teacher=str(teacher.checkpoint_path), rotation_weight=0.0)
    method.bind_dataset(20, np.array([0, 1, 2, 3, 4, 5, 6, 7] + [-1] * 12))
    batch = batch_for(method)
    out = method.training_step(batch)
    pseudo = method._teacher[0].predict_logits(batch["unlabelled"][0]).argmax(1)
    images = torch.cat([batch["labelled"], batch["unlabelled"][0]])
    # the same pass as the method's (all four rotations, so BatchNorm sees the same batch)
    logits = method.head(method.backbone(torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)]))[: len(images)])
    expected = F.cross_entropy(logits[:4], batch["labels"]) + F.cross_entropy(logits[4:], pseudo)
    torch.testing.assert_close(out["loss"], expected)
    with pytest.raises(ValueError, match="teacher: .* classifies 10 classes, this run 4"):
        S4L(small_resnet(width=8), classes=4, teacher=str(teacher.checkpoint_path))
