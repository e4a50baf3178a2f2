"""Choosing recipes without the held-out split: a validation split carved from the training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfsup.data import load_digits, validation_splits


def rows(images: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() for image in images)


def test_the_validation_split_partitions_the_training_split_and_never_holds_test_images() -> None:
    data = load_digits()
    split = validation_splits(data, 200)
    assert split.test.images.shape == (200, 32, 32, 3) and split.train.images.shape == (len(data.train.labels) - 200, 32, 32, 3)
    assert rows(np.concatenate([split.train.images, split.test.images])) == rows(data.train.images)
    # every validation image carries its own label
    lookup = {image.tobytes(): label for image, label in zip(data.train.images, data.train.labels)}
    assert [lookup[image.tobytes()] for image in split.test.images] == split.test.labels.tolist()
    held_out = {image.tobytes() for image in data.test.images} - set(lookup)
    seen = {image.tobytes() for image in np.concatenate([split.train.images, split.test.images])}
    assert held_out and not held_out & seen
    again = validation_splits(data, 200)
    np.testing.assert_array_equal(again.test.images, split.test.images)
    assert set(split.test.labels.tolist()) == set(range(10))


@pytest.mark.parametrize("size", [0, -3, 1297])
def test_a_validation_size_outside_the_training_split_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="^size: expected a validation size of 1 to 1296 images"):
        validation_splits(load_digits(), size)


def test_compare_probes_on_the_validation_split(tmp_path: Path) -> None:
    from selfsup.experiments.compare import CompareConfig, compare

    config = CompareConfig(steps=1, batch_size=8, width=4, shots=(10,), label_seeds=(0,), warmup_steps=0, validation=300)
    report = compare(tmp_path, ["rotnet"], config, progress=False)
    assert report["dataset"]["train"] == 997 and report["dataset"]["test"] == 300
    assert report["dataset"]["test_split"] == "validation (held out of the training split)"
    with pytest.raises(ValueError, match="^validation: expected 0"):
        CompareConfig(validation=-1).validate()
