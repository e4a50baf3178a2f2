"""The labelled colour set cut from scikit-image's photographs, and comparing on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfsup import plugins
from selfsup.data import PHOTO_NAMES, load_photo_patches, sample_photos
from selfsup.data.photo_patches import _patches


def test_splits_have_one_class_per_photo_and_are_repeatable() -> None:
    data = load_photo_patches(size=16, train_per_photo=5, test_per_photo=3)
    assert data.train.images.shape == (35, 16, 16, 3) and data.test.images.shape == (21, 16, 16, 3)
    assert data.train.images.dtype == np.uint8
    np.testing.assert_array_equal(data.train.labels, np.repeat(np.arange(len(PHOTO_NAMES)), 5))
    np.testing.assert_array_equal(data.test.labels, np.repeat(np.arange(len(PHOTO_NAMES)), 3))
    again = load_photo_patches(size=16, train_per_photo=5, test_per_photo=3)
    assert np.array_equal(data.train.images, again.train.images) and np.array_equal(data.test.images, again.test.images)
    assert not np.array_equal(data.train.images, load_photo_patches(size=16, train_per_photo=5, test_per_photo=3, seed=1).train.images)


def test_patches_stay_inside_their_columns_and_match_pillow() -> None:
    # each pixel encodes its own column: a patch's columns tell where it was cut
    columns = np.broadcast_to(np.arange(200, dtype=np.uint8)[None, :, None], (120, 200, 3)).copy()
    rng = np.random.default_rng(0)
    patches = _patches(columns, 50, (140, 200), 20, (20, 20), rng)
    # side 20 resized to 20 is the identity: the patch is the photo's own pixels
    assert patches.min() >= 140 and patches.max() <= 199
    assert all(np.array_equal(p[0, :, 0], np.arange(p[0, 0, 0], p[0, 0, 0] + 20)) for p in patches)
    photo = sample_photos(("chelsea",))[0]
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    patch = _patches(photo, 1, (0, 300), 32, (48, 128), rng_a)[0]
    side = int(rng_b.integers(48, 129))
    y, x = int(rng_b.integers(0, photo.shape[0] - side + 1)), int(rng_b.integers(0, 300 - side + 1))
    reference = np.asarray(Image.fromarray(photo[y : y + side, x : x + side]).resize((32, 32), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(patch, reference)


def test_registered_as_a_dataset() -> None:
    split = plugins.get("datasets", "photo_patches")()
    assert split.images.shape == (7 * 192, 32, 32, 3) and split.labels.max() == 6


@pytest.mark.parametrize(
    ("options", "argument"),
    [({"size": 4}, "size"), ({"train_per_photo": 0}, "train_per_photo"), ({"min_side": 200}, "min_side"),
     ({"test_fraction": 1.0}, "test_fraction"), ({"max_side": 300}, "max_side")],
)
def test_bad_options_name_the_argument(options: dict[str, float], argument: str) -> None:
    with pytest.raises(ValueError, match=f"^{argument}:"):
        load_photo_patches(**options)  # type: ignore[arg-type]


def test_compare_runs_on_the_photo_patches(tmp_path: Path) -> None:
    from selfsup.experiments.compare import RANDOM_INIT, CompareConfig, compare

    config = CompareConfig(steps=1, batch_size=8, width=4, shots=(10,), label_seeds=(0,), warmup_steps=0, dataset="photo_patches")
    report = compare(tmp_path, ["rotnet"], config, progress=False)
    assert report["dataset"] == {"name": "scikit-image photo patches 32x32, 7 photos", "train": 1344, "test": 504, "test_split": "held-out test"}
    assert set(report["results"]) == {RANDOM_INIT, "rotnet"}
    with pytest.raises(ValueError, match="^dataset:"):
        CompareConfig(dataset="cifar").validate()


def test_a_recipe_can_set_an_option_for_one_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfsup.experiments import compare as harness

    recipe = harness.Recipe("corruption", {"mask_weight": 1.0, "size": 0.25}, datasets={"digits": {"options": {"mask_weight": 100.0}}})
    assert recipe.on("digits").options == {"mask_weight": 100.0, "size": 0.25}
    assert recipe.on("photo_patches").options == {"mask_weight": 1.0, "size": 0.25}
    assert recipe.on("digits").datasets == {}
    monkeypatch.setattr(harness, "recipe_for", lambda name: recipe)
    config = harness.CompareConfig(steps=1, batch_size=8, width=4, shots=(10,), label_seeds=(0,), warmup_steps=0)
    for dataset, weight in (("digits", 100.0), ("photo_patches", 1.0)):
        config.dataset = dataset
        report = harness.compare(tmp_path / dataset, ["corruption"], config, progress=False)
        assert report["results"]["corruption"]["pretraining"]["options"]["mask_weight"] == weight
        first = report["results"]["corruption"]["pretraining"]["first"]
        assert first["loss"] == pytest.approx(first["loss_what"] + weight * first["loss_where"], rel=1e-5)
