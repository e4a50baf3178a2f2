"""The one data path: sources → batch pipeline → trainer, on arrays, folders, file lists and shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import (
    ArraySource,
    BatchPipeline,
    CorruptImageWarning,
    FileList,
    ImageFolder,
    StepBatchSampler,
    TarShards,
    TrainLoader,
    expand_pattern,
    open_source,
    write_shards,
)
from selfsup.data.pipeline import center_squares
from selfsup.methods.rotnet import RotNet
from selfsup.methods.simclr import SimCLR
from selfsup.models.backbones import small_resnet
from selfsup.training import TrainConfig, Trainer

RNG = np.random.default_rng(0)


def write_varied_folder(root: Path, count: int, classes: int = 2, seed: int = 0) -> list[Path]:
    """JPEGs and PNGs of different sizes and aspect ratios in ``classes`` class folders."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        y, x = np.mgrid[0:h, 0:w]
        image = np.stack([(x * 255 // w), (y * 255 // h), np.full_like(x, (i * 37) % 256)], -1).astype(np.uint8)
        image = np.clip(image.astype(int) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}.{'png' if i % 3 == 0 else 'jpg'}"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


# --- ordering ---------------------------------------------------------------------------------


def test_step_sampler_matches_the_epoch_permutation_and_splits_ranks():
    n, batch = 23, 8
    sampler = StepBatchSampler(n, batch, seed=5, stop=9)
    keys = list(sampler)
    assert len(keys) == 9 == len(sampler)
    for micro, batch_keys in enumerate(keys):
        epoch, position = divmod(micro, n // batch)
        order = np.random.default_rng([5, epoch]).permutation(n)
        assert batch_keys == [(epoch, int(i)) for i in order[position * batch : (position + 1) * batch]]
    ranks = [list(StepBatchSampler(n, batch, seed=5, rank=r, world=2, stop=9)) for r in range(2)]
    for micro in range(9):
        assert len(ranks[0][micro]) == len(ranks[1][micro]) == 4
        assert sorted(ranks[0][micro] + ranks[1][micro]) == sorted(keys[micro])
    assert list(StepBatchSampler(n, batch, seed=5, start=4, stop=9)) == keys[4:]


def test_step_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        StepBatchSampler(10, 5, world=2)
    with pytest.raises(ValueError, match="rank"):
        StepBatchSampler(10, 4, rank=2, world=2)
    with pytest.raises(ValueError, match="start"):
        StepBatchSampler(10, 4, start=-1)


# --- the trainer's batches are the method's data side on the same samples ------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_trainer_batches_are_make_batch_of_the_global_batch(tmp_path: Path, workers: int):
    images = RNG.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    method = SimCLR(small_resnet(width=4), projection_dim=8)
    trainer = Trainer(method, images, TrainConfig(steps=7, batch_size=12, workers=workers, progress=False), tmp_path)
    got = list(trainer.loader())
    assert len(got) == 7
    for micro, item in enumerate(got):
        epoch, indices = trainer.batch_indices(micro)
        expected = method.make_batch(images[indices], seed=0, epoch=epoch, indices=indices)
        assert item.epoch == epoch and item.size == 12
        for key, value in expected.items():
            torch.testing.assert_close(item.tensors[key], value, rtol=0, atol=0)


def test_folder_batches_are_the_same_with_workers_and_threads(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 30)
    folder = ImageFolder(tmp_path / "data")
    for method in (SimCLR(small_resnet(width=4), projection_dim=8, image_size=24), RotNet(small_resnet(width=4))):
        pipeline = BatchPipeline(method, seed=3, image_size=24, takes_originals=method.takes_originals)
        runs = [list(TrainLoader(folder, pipeline, 8, seed=3, stop=6, workers=w)) for w in (0, 2)]
        for a, b in zip(*runs):
            assert a.tensors.keys() == b.tensors.keys()
            for key in a.tensors:
                torch.testing.assert_close(a.tensors[key], b.tensors[key], rtol=0, atol=0)


def test_views_are_cut_from_the_originals_and_squares_match_torchvision(tmp_path: Path):
    paths = write_varied_folder(tmp_path / "data", 6)
    folder = ImageFolder(tmp_path / "data")
    loaded = folder.load(range(6))
    assert len({im.shape for im in loaded.images}) > 1
    method = SimCLR(small_resnet(width=4), projection_dim=8, image_size=20)
    batch = BatchPipeline(method, seed=0, image_size=20, takes_originals=True)(loaded.images, epoch=0, indices=loaded.indices)
    direct = method.view_pipeline(20)(loaded.images, seed=0, epoch=0, indices=np.asarray(loaded.indices))
    torch.testing.assert_close(batch["views"], torch.stack(direct), rtol=0, atol=0)
    # the squares other methods see: torchvision's Resize(size) + CenterCrop(size) up to crop rounding
    import torchvision.transforms.v2.functional as TF

    squares = center_squares(loaded.images, 20)
    for image, square in zip(loaded.images, squares):
        h, w = image.shape[:2]
        side = min(h, w)
        cropped = image[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        reference = TF.resize(torch.from_numpy(cropped).permute(2, 0, 1), [20, 20], antialias=True).permute(1, 2, 0).numpy()
        assert np.abs(reference.astype(int) - square.astype(int)).max() <= 1
    assert len(paths) == 6


# --- sources ------------------------------------------------------------------------------------


def test_file_lists_text_and_csv(tmp_path: Path):
    paths = write_varied_folder(tmp_path / "data", 6)
    (tmp_path / "list.txt").write_text("# images\n" + "\n".join(str(p.relative_to(tmp_path)) for p in paths) + "\n\n")
    listed = FileList(tmp_path / "list.txt")
    assert not listed.labeled and len(listed) == 6 and listed.targets == [-1] * 6
    np.testing.assert_array_equal(listed[3][0], np.asarray(Image.open(paths[3]).convert("RGB")))  # a PNG: exact
    (tmp_path / "named.csv").write_text("path,label\n" + "".join(f"{p},{'dog' if i % 2 else 'cat'}\n" for i, p in enumerate(paths)))
    named = FileList(tmp_path / "named.csv")
    assert named.labeled and named.classes == ["cat", "dog"] and named.targets == [0, 1, 0, 1, 0, 1]
    (tmp_path / "numbers.csv").write_text("".join(f"{p},{i % 3}\n" for i, p in enumerate(paths)))
    assert FileList(tmp_path / "numbers.csv").targets == [0, 1, 2, 0, 1, 2]
    (tmp_path / "mixed.csv").write_text(f"{paths[0]},1\n{paths[1]}\n")
    with pytest.raises(ValueError, match="row 2"):
        FileList(tmp_path / "mixed.csv")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no image"):
        FileList(tmp_path / "empty.txt")


def test_shards_round_trip_the_original_bytes_and_labels(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 11, classes=3)
    folder = ImageFolder(tmp_path / "data")
    written = write_shards(folder, tmp_path / "shards", shard_size=4)
    assert [p.name for p in written] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    shards = TarShards(str(tmp_path / "shards" / "train-{000000..000002}.tar"))
    assert len(shards) == 11 and shards.labeled and shards.targets == folder.targets
    for i in range(11):
        with open(folder.samples[i][0], "rb") as handle:
            assert shards.encoded([i])[0] == handle.read()
        np.testing.assert_array_equal(shards[i][0], folder[i][0])
    # the same shards again from the same files: byte for byte
    again = write_shards(folder, tmp_path / "again", shard_size=4)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]
    assert isinstance(open_source(str(tmp_path / "shards" / "train-*.tar")), TarShards)
    with pytest.raises(FileExistsError):
        write_shards(folder, tmp_path / "shards", shard_size=4)


def test_shards_written_by_webdataset_read_back_identically(tmp_path: Path):
    import webdataset as wds

    paths = write_varied_folder(tmp_path / "data", 7)
    with wds.TarWriter(str(tmp_path / "wds-000000.tar")) as sink:
        for i, path in enumerate(paths):
            ext = path.suffix.lstrip(".")
            sink.write({"__key__": f"sample{i:04d}", ext: path.read_bytes(), "cls": i % 4})
    shards = TarShards(str(tmp_path / "wds-000000.tar"))
    assert len(shards) == 7 and shards.labeled and shards.targets == [i % 4 for i in range(7)]
    assert shards.keys == [f"sample{i:04d}" for i in range(7)]
    for i, path in enumerate(paths):
        assert shards.encoded([i])[0] == path.read_bytes()
    # and webdataset reads our shards: the same keys, bytes and labels
    write_shards(FileList(_csv(tmp_path, paths)), tmp_path / "ours", shard_size=5)
    samples = list(wds.WebDataset(str(tmp_path / "ours" / "train-{000000..000001}.tar"), shardshuffle=False))
    assert [int(s["cls"]) for s in samples] == [i % 2 for i in range(7)]
    assert [s.get("jpg", s.get("png")) for s in samples] == [p.read_bytes() for p in paths]


def _csv(tmp_path: Path, paths: list[Path]) -> Path:
    out = tmp_path / "labels.csv"
    out.write_text("".join(f"{p},{i % 2}\n" for i, p in enumerate(paths)))
    return out


def test_truncated_and_broken_shards_name_the_shard_and_member(tmp_path: Path):
    paths = write_varied_folder(tmp_path / "data", 5, classes=1)
    write_shards(ImageFolder(tmp_path / "data", labeled=False), tmp_path / "s", shard_size=5)
    shard = tmp_path / "s" / "train-000000.tar"
    data = shard.read_bytes()
    last = TarShards(str(shard)).members[-1]
    (tmp_path / "cut.tar").write_bytes(data[: last.offset + last.size // 2])
    with pytest.warns(CorruptImageWarning, match="ends early after member '000000004.jpg'"):
        cut = TarShards(str(tmp_path / "cut.tar"))
    assert len(cut) == 5
    with pytest.warns(CorruptImageWarning, match="truncated shard: member 000000004"):
        loaded = cut.load(range(5))
    assert [i for i, _, _ in loaded.skipped] == [4] and "cut.tar:000000004" in loaded.skipped[0][1]
    (tmp_path / "junk.tar").write_bytes(b"\x01" * 700)
    with pytest.raises(ValueError, match="junk.tar"):
        TarShards(str(tmp_path / "junk.tar"))
    with pytest.raises(FileNotFoundError, match="no shard"):
        TarShards(str(tmp_path / "none-*.tar"))
    assert len(paths) == 5


def test_expand_pattern():
    assert expand_pattern("a-{008..011}.tar") == ["a-008.tar", "a-009.tar", "a-010.tar", "a-011.tar"]
    assert expand_pattern("{x,y}-{1..2}.tar") == ["x-1.tar", "x-2.tar", "y-1.tar", "y-2.tar"]
    with pytest.raises(ValueError, match="range"):
        expand_pattern("a-{3..1}.tar")


def test_folder_skips_special_files_and_visits_each_folder_once(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 4, classes=1)
    os.mkfifo(tmp_path / "data" / "class_0" / "pipe.jpg")
    os.symlink(tmp_path / "data", tmp_path / "data" / "class_0" / "loop")
    with pytest.warns(CorruptImageWarning, match="not a regular file"):
        folder = ImageFolder(tmp_path / "data")
    assert len(folder) == 4


# --- training from files --------------------------------------------------------------------------


def test_training_on_a_folder_replaces_and_counts_corrupt_files(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 24)
    (tmp_path / "data" / "class_0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (tmp_path / "data" / "class_1" / "empty.png").write_bytes(b"")
    folder = ImageFolder(tmp_path / "data")
    config = TrainConfig(steps=8, batch_size=8, lr=0.01, log_every=1, progress=False)
    with pytest.warns(CorruptImageWarning):
        trainer = Trainer(RotNet(small_resnet(width=4)), folder, config, tmp_path / "run", image_size=16)
        log = trainer.fit()
    assert set(trainer.skipped) == {str(tmp_path / "data" / "class_0" / "broken.jpg"), str(tmp_path / "data" / "class_1" / "empty.png")}
    assert log[-1]["skipped"] == 2
    assert all(np.isfinite(r["loss"]) for r in log)


def test_a_folder_run_killed_mid_epoch_resumes_with_the_same_batches(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 26)
    folder = ImageFolder(tmp_path / "data")

    def make(steps: int) -> SimCLR:
        torch.manual_seed(0)
        return SimCLR(small_resnet(width=4), projection_dim=8, image_size=16)

    config = TrainConfig(steps=6, batch_size=8, lr=0.05, checkpoint_every=2, progress=False, workers=2)
    straight = make(6)
    Trainer(straight, folder, config, tmp_path / "straight").fit()

    class Killed(SimCLR):
        calls = 0

        def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            Killed.calls += 1
            if Killed.calls == 5:  # step 5 of 6, the second of three batches of epoch 1
                raise KeyboardInterrupt
            return super().training_step(batch)

    torch.manual_seed(0)
    killed = Killed(small_resnet(width=4), projection_dim=8, image_size=16)
    with pytest.raises(KeyboardInterrupt):
        Trainer(killed, folder, config, tmp_path / "resumed").fit()
    resumed = make(6)
    trainer = Trainer(resumed, folder, config, tmp_path / "resumed")
    assert trainer.resume() and trainer.micro == 4
    trainer.fit()
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_training_memory_does_not_grow_with_the_folder(tmp_path: Path):
    """300 photos of 1100×1100: 1.09 GB as one array. A few steps stay far below that."""
    root = tmp_path / "big"
    root.mkdir()
    y, x = np.mgrid[0:1100, 0:1100]
    base = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    for i in range(300):
        Image.fromarray(np.roll(base, i * 7, axis=1)).save(root / f"{i:04d}.jpg", quality=70)
    script = (
        "import resource, sys, torch\n"
        "from selfsup.data import ImageFolder\n"
        "from selfsup.methods.simclr import SimCLR\n"
        "from selfsup.models.backbones import small_resnet\n"
        "from selfsup.training import TrainConfig, Trainer\n"
        "torch.set_num_threads(1)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "method = SimCLR(small_resnet(width=4), projection_dim=8, image_size=32)\n"
        "Trainer(method, ImageFolder(sys.argv[1]), TrainConfig(steps=4, batch_size=16, progress=False), sys.argv[2]).fit()\n"
        "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(root), str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before, after = (int(v) for v in done.stdout.split())
    assert (after - before) * 1024 < 400e6, f"peak RSS grew by {(after - before) / 1024:.0f} MB"


# --- the command line --------------------------------------------------------------------------


def selfsup(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "selfsup", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_cli_trains_on_a_folder_shards_and_a_list(tmp_path: Path):
    paths = write_varied_folder(tmp_path / "data", 20)
    done = selfsup("shard", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "shards"), "--shard-size", "8", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "train-{000000..000002}.tar" in done.stdout
    (tmp_path / "list.txt").write_text("\n".join(map(str, paths)))
    sources = {"folder": str(tmp_path / "data"), "shards": str(tmp_path / "shards" / "train-{000000..000002}.tar"), "list": str(tmp_path / "list.txt")}
    for name, data in sources.items():
        done = selfsup(
            "train", "--method", "simclr", "--data", data, "--image-size", "16", "--width", "4", "--steps", "2", "--batch-size", "8",
            "--workers", "1", "--out", str(tmp_path / name), "--quiet",
        )
        assert done.returncode == 0, (name, done.stderr)
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["step"] == 2 and records[-1]["skipped"] == 0
    state = torch.load(tmp_path / "folder" / "checkpoint.pt", weights_only=False)
    assert state["metadata"]["dataset_size"] == 20 and state["metadata"]["method_options"]["image_size"] == 16


def test_cli_refuses_missing_or_empty_sources_without_writing(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    for data, expected in ((str(tmp_path / "missing"), "missing"), (str(tmp_path / "empty"), "no file ending"),
                           (str(tmp_path / "none-{000000..000001}.tar"), "does not exist")):
        done = selfsup("train", "--method", "rotnet", "--data", data, "--steps", "1", "--out", str(tmp_path / "run"))
        assert done.returncode == 2 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "run").exists()


def test_array_sources_check_their_input():
    with pytest.raises(ValueError, match="images"):
        ArraySource(np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        ArraySource(np.zeros((3, 4, 4, 3), np.uint8), labels=[1, 2])
    with pytest.raises(ValueError, match="workers"):
        TrainLoader(ArraySource(np.zeros((3, 4, 4, 3), np.uint8)), BatchPipeline(RotNet(small_resnet(width=4)), 0), 2, seed=0, workers=-1)


def test_tar_members_of_other_kinds_are_ignored(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 3, classes=1)
    with tarfile.open(tmp_path / "mixed.tar", "w") as archive:
        for path in sorted((tmp_path / "data").rglob("*.*")):
            archive.add(path, arcname=f"{path.stem}.{path.suffix.lstrip('.')}")
        info = tarfile.TarInfo("folder")
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
        meta = tmp_path / "x.json"
        meta.write_text("{}")
        archive.add(meta, arcname="9999.json")
    shards = TarShards(str(tmp_path / "mixed.tar"))
    assert len(shards) == 3 and shards.without_image == 1 and not shards.labeled


def test_file_names_that_are_not_utf8_round_trip(tmp_path: Path):
    paths = write_varied_folder(tmp_path / "data", 3, classes=1)
    odd = os.fsdecode(os.fsencode(str(tmp_path / "data" / "class_0")) + b"/caf\xe9-latin1.png")
    os.rename(paths[0], odd)
    folder = ImageFolder(tmp_path / "data")
    assert odd in [p for p, _ in folder.samples]
    loaded = folder.load(range(3))
    assert not loaded.skipped and len(loaded.images) == 3
    position = [p for p, _ in folder.samples].index(odd)
    np.testing.assert_array_equal(loaded.images[position], np.asarray(Image.open(os.fsencode(odd)).convert("RGB")))
    os.remove(paths[1])
    with pytest.warns(CorruptImageWarning):
        assert [i for i, _, _ in folder.load(range(3)).skipped] == [[p for p, _ in folder.samples].index(str(paths[1]))]


def png_declaring(width: int, height: int) -> bytes:
    """74 bytes: a PNG whose header declares ``width``×``height`` RGB and whose data is empty."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_in_a_folder_is_skipped_not_fatal(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 8, classes=1)
    (tmp_path / "data" / "class_0" / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    config = TrainConfig(steps=2, batch_size=9, lr=0.01, progress=False)
    with pytest.warns(CorruptImageWarning, match="100000x100000"):
        trainer = Trainer(RotNet(small_resnet(width=4)), ImageFolder(tmp_path / "data"), config, tmp_path / "run", image_size=16)
        trainer.fit()
    assert list(trainer.skipped) == [str(tmp_path / "data" / "class_0" / "bomb.png")]
    assert "over the limit" in trainer.skipped[str(tmp_path / "data" / "class_0" / "bomb.png")]


def test_the_pixel_limit_is_configurable(tmp_path: Path):
    write_varied_folder(tmp_path / "data", 2, classes=1)
    strict = ImageFolder(tmp_path / "data", max_pixels=100)
    with pytest.warns(CorruptImageWarning, match="over the limit of 100"):
        assert len(strict.load(range(2)).skipped) == 2
    assert not ImageFolder(tmp_path / "data").load(range(2)).skipped
    with pytest.raises(ValueError, match="max_pixels"):
        ImageFolder(tmp_path / "data", max_pixels=0)
