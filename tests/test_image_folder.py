"""selfsup.data.ImageFolder against torchvision's ImageFolder; the multi-view loader in both modes."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

import selfsup.transforms as T
from selfsup.data import (
    CorruptImageWarning,
    EpochBatchSampler,
    ImageFolder,
    ViewLoader,
    photo_crops,
    write_photo_folder,
)
from selfsup.ops import DecodeError


@pytest.fixture(scope="module")
def labeled_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labeled")
    write_photo_folder(root, count=18, size=40, classes=3, image_format="JPEG")
    # nested files, other formats, upper-case endings, files to ignore
    crops = photo_crops(36, 3, seed=9)
    os.makedirs(root / "class_1" / "deeper" / "deepest")
    Image.fromarray(crops[0]).save(root / "class_1" / "deeper" / "x.PNG")
    Image.fromarray(crops[1]).save(root / "class_1" / "deeper" / "deepest" / "y.webp", lossless=True)
    Image.fromarray(crops[2]).save(root / "class_2" / "z.JPEG")
    (root / "class_0" / "notes.txt").write_text("not an image")
    return root


def test_scan_matches_torchvision_image_folder(labeled_root: Path):
    ours = ImageFolder(labeled_root)
    ref = datasets.DatasetFolder(str(labeled_root), datasets.folder.pil_loader, extensions=(".jpg", ".jpeg", ".png", ".webp"))
    assert ours.labeled
    assert ours.classes == ref.classes and ours.class_to_idx == ref.class_to_idx
    assert ours.samples == [(p, t) for p, t in ref.samples]
    assert ours.targets == ref.targets
    for i in (0, 7, len(ours) - 1):
        image, target = ours[i]
        pil = np.asarray(ref.loader(ref.samples[i][0]))
        assert target == ref.targets[i] and image.shape == pil.shape
        assert np.abs(image.astype(int) - pil).mean() < 0.5


def test_unlabeled_auto_and_extension_filter(labeled_root: Path, tmp_path: Path):
    flat = ImageFolder(labeled_root, labeled=False)
    assert not flat.labeled and len(flat) == 21 and set(flat.targets) == {-1}
    paths = [p for p, _ in flat.samples]
    assert paths == sorted(paths, key=lambda p: (os.path.dirname(p), os.path.basename(p)))
    pngs = ImageFolder(labeled_root, labeled=False, extensions=[".png"])
    assert [Path(p).name for p, _ in pngs.samples] == ["x.PNG"]
    write_photo_folder(tmp_path, count=3, size=16, image_format="PNG")
    os.makedirs(tmp_path / "sub")
    Image.fromarray(photo_crops(16, 1)[0]).save(tmp_path / "sub" / "a.png")
    auto = ImageFolder(tmp_path)  # images at the top level: unlabeled, recursive
    assert not auto.labeled and len(auto) == 4
    assert [Path(p).name for p, _ in auto.samples] == ["000000.png", "000001.png", "000002.png", "a.png"]


def test_empty_and_missing_folders_are_clear_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="^root: .* is not a folder"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="^root: no file ending in"):
        ImageFolder(tmp_path)
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "x.png")
    with pytest.raises(FileNotFoundError, match="class folder.* b "):
        ImageFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="^root: no class sub-folder"):
        ImageFolder(tmp_path / "a", labeled=True)
    with pytest.raises(ValueError, match="^extensions"):
        ImageFolder(tmp_path, extensions=".png")
    with pytest.raises(ValueError, match="^labeled"):
        ImageFolder(tmp_path, labeled="yes")  # type: ignore[arg-type]
    folder = ImageFolder(tmp_path / "a")
    with pytest.raises(IndexError, match="^index"):
        folder[1]


@pytest.fixture()
def corrupt_root(tmp_path: Path) -> Path:
    paths = write_photo_folder(tmp_path, count=12, size=48, classes=2, image_format="JPEG")
    data = Path(paths[3]).read_bytes()
    Path(paths[3]).write_bytes(data[: len(data) // 3])  # truncated
    Path(paths[8]).write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt
    return tmp_path


def test_corrupt_files_are_skipped_with_a_warning_and_counted(corrupt_root: Path):
    folder = ImageFolder(corrupt_root)
    with pytest.warns(CorruptImageWarning) as record:
        images = list(folder)
    messages = " | ".join(str(w.message) for w in record)
    assert len(record) == 2 and "000003.jpg: truncated JPEG" in messages and "000008.jpg: " in messages
    assert len(images) == 10 and folder.num_skipped == 2
    assert sorted(Path(p).name for p in folder.skipped) == ["000003.jpg", "000008.jpg"]
    bad = folder.samples.index((str(corrupt_root / "class_1" / "000003.jpg"), 1))
    with pytest.raises(DecodeError, match="truncated"):
        folder[bad]
    loaded = folder.load(range(len(folder)))
    assert len(loaded.images) == 10 and [s[0] for s in loaded.skipped] == sorted(s[0] for s in loaded.skipped)


def views_of(loader: ViewLoader, epoch: int) -> dict[int, list[torch.Tensor]]:
    loader.set_epoch(epoch)
    out: dict[int, list[torch.Tensor]] = {}
    for batch in loader:
        for k, i in enumerate(batch.indices.tolist()):
            out[i] = [v[k] for v in batch.views]
    return out


def test_main_process_and_worker_modes_give_identical_bytes(corrupt_root: Path):
    recipe = T.simclr(24)
    folder = ImageFolder(corrupt_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        main = ViewLoader(folder, recipe, batch_size=5, seed=3)
        a = views_of(main, epoch=2)
        workers_folder = ImageFolder(corrupt_root)
        workers = ViewLoader(workers_folder, recipe, batch_size=4, seed=3, num_workers=2)
        b = views_of(workers, epoch=2)
        c = views_of(main, epoch=3)
    assert sorted(a) == sorted(b) and len(a) == 10
    for i in a:
        for x, y in zip(a[i], b[i]):
            assert torch.equal(x, y), i
    assert not torch.equal(a[0][0], c[0][0])
    # skipped files reported by the workers are counted in the main process
    assert workers_folder.num_skipped == 2 and folder.num_skipped == 2
    # the same bytes as the recipe run directly on the decoded images
    idx = sorted(a)
    direct = recipe.run([folder[i][0] for i in idx], seed=3, epoch=2, indices=idx)
    for k, i in enumerate(idx):
        assert torch.equal(direct.views[1][k], a[i][1])


def test_batches_carry_targets_and_the_epoch_order(labeled_root: Path):
    folder = ImageFolder(labeled_root)
    loader = ViewLoader(folder, T.Compose([T.CenterCrop(16)]), batch_size=8, seed=1, drop_last=True)
    assert len(loader) == len(folder) // 8
    loader.set_epoch(4)
    batches = list(loader)
    order = loader.sampler.order()
    seen = torch.cat([b.indices for b in batches]).numpy()
    np.testing.assert_array_equal(seen, order[: len(seen)])
    for b in batches:
        assert b.views[0].shape == (8, 3, 16, 16) and b.views[0].dtype == torch.uint8
        assert b.targets.tolist() == [folder.targets[i] for i in b.indices.tolist()]
    loader.set_epoch(5)
    assert not np.array_equal(loader.sampler.order(), order)
    assert list(EpochBatchSampler(5, 2, shuffle=False)) == [[(0, 0), (0, 1)], [(0, 2), (0, 3)], [(0, 4)]]


def test_a_batch_without_readable_images_is_empty_not_an_error(tmp_path: Path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff broken")
    folder = ImageFolder(tmp_path)
    with pytest.warns(CorruptImageWarning):
        batch = next(iter(ViewLoader(folder, T.simclr(16), batch_size=4)))
    assert [tuple(v.shape) for v in batch.views] == [(0, 3, 16, 16)] * 2
    assert batch.indices.tolist() == [] and len(batch.skipped) == 1
    with pytest.raises(ValueError, match="^batch_size"):
        ViewLoader(folder, T.simclr(16), batch_size=0)
    with pytest.raises(ValueError, match="^num_workers"):
        ViewLoader(folder, T.simclr(16), batch_size=2, num_workers=-1)
