"""Temporal data: the native clip ops against numpy transcriptions of their rules, the generated
moving digits and their two cameras, clip sources, and Shuffle & Learn through the trainer."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_distributed import PREAMBLE

import selfsup.ops as ops
import selfsup.transforms as T
from selfsup.data.clips import ClipArraySource, FrameFolderSource, clip_squares
from selfsup.data.moving_digits import bounce, homography, moving_digits, two_camera
from selfsup.methods.shuffle_learn import ShuffleLearn
from selfsup.models import small_resnet


def random_clips(n: int = 6, t: int = 12, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, t, size, size, 3), dtype=np.uint8)


def test_frame_motion_is_the_mean_absolute_difference_of_consecutive_frames():
    clips = random_clips()
    expected = np.abs(np.diff(clips.astype(np.int64), axis=1)).mean(axis=(2, 3, 4))
    np.testing.assert_allclose(ops.frame_motion(clips), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="clips: expected clips of shape"):
        ops.frame_motion(clips[0])
    with pytest.raises(TypeError, match="clips: expected dtype uint8"):
        ops.frame_motion(clips.astype(np.float32))


def reference_windows(motion: np.ndarray, window: int, top_fraction: float) -> list[int]:
    """Window starts among the top share by summed motion (ties: the earlier start first)."""
    sums = [(float(motion[s : s + window - 1].sum()), s) for s in range(len(motion) + 2 - window)]
    ranked = [s for _, s in sorted(sums, key=lambda p: (-p[0], p[1]))]
    return ranked[: max(1, math.ceil(len(ranked) * top_fraction))]


def test_shuffle_learn_tuples_follow_the_papers_sampling_rule():
    clips = random_clips(400, t=16, size=4, seed=3)
    # a burst of motion in frames 8..13 of every clip: the top windows hold it
    clips[:, :8] = clips[:, :1]
    clips[:, 14:] = clips[:, 14:15]
    tuples = ops.shuffle_learn_tuples(clips, window=6, top_fraction=0.3, positive_rate=0.25, seed=5, epoch=2, indices=np.arange(400))
    motion = ops.frame_motion(clips)
    for n in range(400):
        a, b, c, d, e = tuples.five[n]
        assert a < b < c < d < e
        starts = reference_windows(motion[n], 6, 0.3)
        assert any(s <= a and e < s + 6 for s in starts)
        allowed = [[b, c, d], [d, c, b]] if tuples.labels[n] == 1 else [[b, a, d], [b, e, d]]
        assert tuples.shown[n].tolist() in allowed
        np.testing.assert_array_equal(tuples.frames[n], clips[n, tuples.shown[n]])
    assert 0.19 < tuples.labels.mean() < 0.31
    again = ops.shuffle_learn_tuples(clips, window=6, top_fraction=0.3, positive_rate=0.25, seed=5, epoch=2, indices=np.arange(400))
    np.testing.assert_array_equal(again.shown, tuples.shown)
    previous = ops.get_num_threads()
    ops.set_num_threads(1)
    try:
        serial = ops.shuffle_learn_tuples(clips, window=6, top_fraction=0.3, positive_rate=0.25, seed=5, epoch=2, indices=np.arange(400))
    finally:
        ops.set_num_threads(previous)
    np.testing.assert_array_equal(serial.frames, tuples.frames)
    one = ops.shuffle_learn_tuples(clips[7:8], window=6, top_fraction=0.3, positive_rate=0.25, seed=5, epoch=2, indices=np.array([7]))
    np.testing.assert_array_equal(one.shown[0], tuples.shown[7])  # a clip's tuple is its own, whatever the batch


@pytest.mark.parametrize(
    "options,message",
    [({"window": 4}, "window: expected at least 5"), ({"window": 13}, "window: expected at most the clip's 12 frames"),
     ({"top_fraction": 0.0}, "top_fraction"), ({"positive_rate": 1.5}, "positive_rate")],
)
def test_shuffle_learn_tuples_name_bad_options(options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        ops.shuffle_learn_tuples(random_clips(), **options)


def test_bounce_reflects_at_the_borders():
    positions, first = bounce(np.array([1.0, 9.0]), np.array([-2.0, 3.0]), 4, 10.0)
    # rows: 1 -> -1 (reflected to 1, moving +2) -> 3 -> 5; columns: 9 -> 12 (reflected to 8, moving -3) -> 5 -> 2
    np.testing.assert_allclose(positions, [[1, 9], [1, 8], [3, 5], [5, 2]])
    np.testing.assert_allclose(first, [2, -3])


def test_moving_digits_are_deterministic_and_move_in_their_labelled_direction():
    clips = moving_digits(24, frames=6, seed=4)
    again = moving_digits(24, frames=6, seed=4)
    np.testing.assert_array_equal(clips.clips, again.clips)
    assert not np.array_equal(clips.clips, moving_digits(24, frames=6, seed=5).clips)
    assert clips.clips.shape == (24, 6, 48, 48, 3) and set(clips.labels) <= set(range(10))
    for clip, direction in zip(clips.clips, clips.directions):
        digit = np.where(clip[..., 0] > 128, 1.0, 0.0)  # the bar is grey 128, the digit's core brighter
        ys, xs = np.indices(digit.shape[1:])
        mass = digit.sum(axis=(1, 2))
        centre = np.stack([(digit * ys).sum(axis=(1, 2)) / mass, (digit * xs).sum(axis=(1, 2)) / mass], axis=1)
        step = centre[1] - centre[0]
        angle = direction * np.pi / 4
        if np.linalg.norm(step) > 1 and mass[0] == mass[1]:  # unoccluded, not at a border
            assert step @ np.array([-np.sin(angle), np.cos(angle)]) > 0.7 * np.linalg.norm(step)
    with pytest.raises(ValueError, match="digit_size"):
        moving_digits(2, size=16, digit_size=20)


def test_homographies_map_the_corners_and_the_two_cameras_differ():
    source = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float64)
    target = source + np.array([[1, 0], [0, 2], [-1, 1], [0.5, -0.5]])
    h = homography(source, target)
    mapped = (h @ np.c_[source, np.ones(4)].T).T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], target, atol=1e-9)
    clips = moving_digits(2, frames=3, seed=0).clips
    cameras = two_camera(clips, seed=1)
    assert cameras.shape == (2, 2, 3, 48, 48, 3)
    assert not np.array_equal(cameras[:, 0], cameras[:, 1])
    np.testing.assert_array_equal(two_camera(clips, strength=0.0)[:, 0], clips)
    np.testing.assert_array_equal(cameras, two_camera(clips, seed=1))


def write_clip(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:04d}.png")


def test_frame_folders_load_evenly_spaced_frames_and_skip_bad_clips(tmp_path: Path):
    clips = random_clips(3, t=8, size=6)
    write_clip(tmp_path / "jump" / "a", clips[0])
    write_clip(tmp_path / "jump" / "b", clips[1][:3])
    write_clip(tmp_path / "walk" / "c", clips[2])
    (tmp_path / "walk" / "c" / "0005.png").write_bytes(b"broken")
    source = FrameFolderSource(tmp_path, frames=4)
    assert (len(source), source.classes, source.targets) == (3, ["jump", "walk"], [0, 0, 1])
    loaded = source.load([0, 1, 2])
    assert loaded.indices == [0] and [i for i, _, _ in loaded.skipped] == [1, 2]
    np.testing.assert_array_equal(loaded.images[0], clips[0][[0, 2, 5, 7]])
    squares = clip_squares(loaded.images, 4)
    assert squares.shape == (1, 4, 4, 4, 3)
    with pytest.raises(FileNotFoundError, match="holds no clip folders"):
        FrameFolderSource(tmp_path / "jump" / "a")


def test_shuffle_learn_augments_a_tuples_frames_with_one_draw():
    method = ShuffleLearn(small_resnet(width=8), window=6, image_size=8)
    clips = random_clips(4, t=10, size=12)
    clips[0] = clips[0, :1]  # a still clip: its three frames must come out identical
    batch = method.make_batch(clips, seed=1, epoch=0, indices=np.array([3, 4, 5, 6]))
    assert tuple(batch["frames"].shape) == (4, 3, 3, 8, 8)
    torch.testing.assert_close(batch["frames"][0, 0], batch["frames"][0, 2])
    tuples = ops.shuffle_learn_tuples(clips, window=6, top_fraction=0.5, positive_rate=0.25, seed=1, epoch=0, indices=np.array([3, 4, 5, 6]))
    expected = method.augmentation(8)(tuples.frames.reshape(12, 12, 12, 3), seed=1, epoch=0, indices=np.repeat([3, 4, 5, 6], 3))
    torch.testing.assert_close(batch["frames"], expected.view(4, 3, 3, 8, 8))
    assert batch["labels"].tolist() == tuples.labels.tolist()
    with pytest.raises(ValueError, match="window"):
        ShuffleLearn(small_resnet(width=8), window=3)


def test_shuffle_learn_trains_on_clips_and_image_methods_refuse_them(tmp_path: Path):
    from selfsup.run.build import build_trainer, resolve_run
    from selfsup.training import TrainConfig, Trainer

    config = resolve_run({"method": "shuffle_learn", "data": "moving_digits", "steps": 2, "batch_size": 8, "out": str(tmp_path / "sl"),
                          "backbone_options": {"width": 8}, "device": "cpu"})
    trainer = build_trainer(config, progress=False)
    assert isinstance(trainer.source, ClipArraySource)
    log = trainer.fit()
    assert math.isfinite(log[-1]["loss"])
    with pytest.raises(ValueError, match="data: method rotnet trains on images and the data holds clips"):
        Trainer(__import__("selfsup").plugins.get("methods", "rotnet")(small_resnet(width=8)), ClipArraySource(random_clips()),
                TrainConfig(steps=1, progress=False), tmp_path / "r")
    with pytest.raises(ValueError, match="data: method shuffle_learn trains on clips"):
        Trainer(ShuffleLearn(small_resnet(width=8)), np.zeros((4, 8, 8, 3), np.uint8), TrainConfig(steps=1, progress=False), tmp_path / "s")


# ---------------------------------------------------------------- time-contrastive networks


def reference_semihard(z: np.ndarray, labels: np.ndarray, margin: float) -> float:
    """TensorFlow's triplet_semihard_loss, transcribed with loops."""
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    losses = []
    for a in range(len(z)):
        for p in range(len(z)):
            if a == p or labels[a] != labels[p]:
                continue
            negatives = [d[a, n] for n in range(len(z)) if labels[n] != labels[a]]
            farther = [x for x in negatives if x > d[a, p]]
            chosen = min(farther) if farther else max(negatives)
            losses.append(max(d[a, p] - chosen + margin, 0.0))
    return float(np.mean(losses))


def test_triplet_semihard_loss_matches_the_reference_transcription():
    from selfsup.losses.metric import triplet_semihard_loss

    rng = np.random.default_rng(0)
    z = rng.normal(size=(12, 4))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5])
    got = triplet_semihard_loss(torch.from_numpy(z), torch.from_numpy(labels), margin=0.5)
    assert float(got) == pytest.approx(reference_semihard(z, labels, 0.5), rel=1e-6)
    with pytest.raises(ValueError, match="labels: expected at least two rows with one label"):
        triplet_semihard_loss(torch.randn(3, 2), torch.arange(3))
    with pytest.raises(ValueError, match="margin"):
        triplet_semihard_loss(torch.randn(3, 2), torch.zeros(3, dtype=torch.int64), margin=-1)


def test_npairs_loss_matches_the_reference_transcription():
    from selfsup.losses.metric import npairs_loss

    rng = np.random.default_rng(1)
    a, p = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    labels = np.array([0, 1, 2, 2, 3, 4])
    logits = a @ p.T
    targets = (labels[:, None] == labels[None, :]).astype(float)
    targets /= targets.sum(1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(targets * log_softmax).sum(1).mean() + 0.002 * 0.25 * ((a**2).sum(1).mean() + (p**2).sum(1).mean())
    got = npairs_loss(torch.from_numpy(a), torch.from_numpy(p), torch.from_numpy(labels))
    assert float(got) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="positives: expected the shape"):
        npairs_loss(torch.randn(4, 2), torch.randn(3, 2), torch.arange(4))


@pytest.mark.parametrize("cameras", [1, 2])
def test_tcn_frames_pair_each_anchor_with_its_positive(cameras: int):
    clips = random_clips(5, t=20, size=4, seed=2)
    data = clips if cameras == 1 else np.stack([clips, 255 - clips], axis=1)
    drawn = ops.tcn_frames(data, anchors=3, pos_radius=2, neg_radius=4, seed=1, indices=np.arange(5))
    for n in range(5):
        for k in range(3):
            anchor, positive = drawn.times[n, k]
            np.testing.assert_array_equal(drawn.frames[n, k, 0], clips[n, anchor])
            second = clips[n, positive] if cameras == 1 else 255 - clips[n, positive]
            np.testing.assert_array_equal(drawn.frames[n, k, 1], second)
            if cameras == 2:
                assert anchor == positive
            else:
                assert 0 < abs(int(anchor) - int(positive)) <= 2
            others = np.delete(drawn.times[n], k, axis=0).reshape(-1)
            assert np.all(np.abs(others - anchor) > 4)  # the other pairs' frames are beyond neg_radius
    with pytest.raises(ValueError, match="anchors: 4 anchors 7 frames apart need 22 frames"):
        ops.tcn_frames(clips, anchors=4, pos_radius=2, neg_radius=4)
    with pytest.raises(ValueError, match="neg_radius"):
        ops.tcn_frames(clips, anchors=1, pos_radius=3, neg_radius=2)


def test_tcn_augments_anchor_and_positive_independently_and_labels_each_pair():
    from selfsup.methods.tcn import TCN

    method = TCN(small_resnet(width=8), anchors=2, image_size=8)
    clips = random_clips(3, t=12, size=10)
    clips[:] = clips[:, :1]  # still clips: anchor and positive frames are the same picture
    batch = method.make_batch(clips, seed=0, epoch=0, indices=np.array([4, 5, 6]))
    assert tuple(batch["frames"].shape) == (6, 2, 3, 8, 8)
    assert batch["labels"].tolist() == [8, 9, 10, 11, 12, 13]
    assert not torch.equal(batch["frames"][0, 0], batch["frames"][0, 1])  # two draws, as two cameras
    out = method.training_step(batch)
    z = method.embed(batch["frames"].flatten(0, 1))
    from selfsup.losses.metric import triplet_semihard_loss

    torch.testing.assert_close(out["loss"], triplet_semihard_loss(z, batch["labels"].repeat_interleave(2), 0.2))
    with pytest.raises(ValueError, match="loss"):
        TCN(small_resnet(width=8), loss="contrastive")


DDP_SCRIPT = PREAMBLE + """
from selfsup.data.clips import ClipArraySource
from selfsup.methods.shuffle_learn import ShuffleLearn
from selfsup.methods.odd_one_out import OddOneOutNetwork
from selfsup.methods.tcn import TCN
from selfsup.methods.tracking import TrackingTriplets
from selfsup.training import TrainConfig, Trainer

clips = np.random.default_rng(1).integers(0, 256, (24, 12, 8, 8, 3), dtype=np.uint8)
BUILD = {"tcn_triplet": lambda: TCN(NoBatchStats(), anchors=2, embedding_dim=6),
         "tcn_npairs": lambda: TCN(NoBatchStats(), anchors=2, embedding_dim=6, loss="npairs"),
         "shuffle_learn": lambda: ShuffleLearn(NoBatchStats(), window=6, hidden_dim=8),
         "odd_one_out": lambda: OddOneOutNetwork(NoBatchStats(), questions=3, length=3),
         "tracking": lambda: TrackingTriplets(NoBatchStats(), patch=6, window=4, negatives=3, embedding_dim=6)}
for name in sys.argv[2].split(","):
    torch.manual_seed(0)
    method = BUILD[name]()
    data = ClipArraySource(np.stack([clips, 255 - clips], axis=1) if name == "tcn_triplet" else clips)
    trainer = Trainer(method, data, TrainConfig(steps=3, batch_size=8, lr=0.1, checkpoint_every=3, progress=False), sys.argv[1] + "/" + name)
    trainer.fit()
    if trainer.rank == 0:
        torch.save(method.state_dict(), sys.argv[1] + "/" + name + "/final.pt")
"""


def test_two_gloo_processes_train_the_temporal_methods_like_one(tmp_path: Path):
    from test_distributed import assert_two_ranks_train_like_one

    assert_two_ranks_train_like_one(tmp_path, DDP_SCRIPT, "tcn_triplet,tcn_npairs,shuffle_learn,odd_one_out,tracking")


RHO_SCRIPT = PREAMBLE + """
from selfsup import plugins
from selfsup.data.clips import ClipArraySource
from selfsup.training import TrainConfig, Trainer

class ClipNoBatchStats(nn.Module):
    # a clip encoder without BatchNorm: (N, 3, L, S, S) -> (N, 8)
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv3d(3, 8, 3, (1, 2, 2), 1), nn.ReLU())
        self.out_dim = 8
    def forward(self, x):
        return self.net(x).mean(dim=(2, 3, 4))

# SimCLR's negatives and MoCo's queue gathered from every rank; the heads' BatchNorm synchronised
# (MoCo's Shuffling BatchNorm off: its per-rank statistics differ from one process by design)
OPTIONS = {"rho_simclr": {"projection_dim": 6, "clip_length": 3},
           "rho_moco": {"projection_dim": 6, "queue_size": 32, "clip_length": 3, "shuffle_bn": False},
           "rho_byol": {"projection_dim": 6, "clip_length": 3}}
clips = np.random.default_rng(2).integers(0, 256, (24, 10, 12, 12, 3), dtype=np.uint8)
for name in sys.argv[2].split(","):
    torch.manual_seed(0)
    method = plugins.get("methods", name)(ClipNoBatchStats(), **OPTIONS[name])
    config = TrainConfig(steps=3, batch_size=8, lr=0.1, checkpoint_every=3, progress=False, sync_bn=True)
    trainer = Trainer(method, ClipArraySource(clips), config, sys.argv[1] + "/" + name)
    trainer.fit()
    if trainer.rank == 0:
        torch.save(method.state_dict(), sys.argv[1] + "/" + name + "/final.pt")
"""


def test_two_gloo_processes_train_the_rho_clip_methods_like_one(tmp_path: Path):
    from test_distributed import assert_two_ranks_train_like_one

    # synchronised BatchNorm sums its statistics in another order: 2·10⁻⁵ relative after 3 steps at
    # lr 0.1 (a missing gather is off by 10⁻¹)
    assert_two_ranks_train_like_one(tmp_path, RHO_SCRIPT, "rho_simclr,rho_moco,rho_byol", rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- odd-one-out


def reference_dynamic_image(frames: np.ndarray) -> np.ndarray:
    """Approximate rank pooling with α_t = 2t − T − 1 (t from 1), rescaled by its own range (halves rounded up)."""
    length = len(frames)
    alphas = 2 * np.arange(1, length + 1) - length - 1
    pooled = np.tensordot(alphas, frames.astype(np.int64), axes=1)
    low, high = pooled.min(), pooled.max()
    return np.full(pooled.shape, 128, np.uint8) if high == low else np.floor((pooled - low) * 255.0 / (high - low) + 0.5).astype(np.uint8)


def test_odd_one_out_questions_shuffle_one_subsequence_and_encode_dynamic_images():
    clips = random_clips(8, t=12, size=5, seed=4)
    drawn = ops.odd_one_out(clips, questions=5, length=4, seed=2, indices=np.arange(8))
    assert drawn.images.shape == (8, 5, 5, 5, 3)
    for n in range(8):
        for q in range(5):
            numbers = drawn.frames[n, q]
            in_order = bool(np.all(np.diff(numbers) == 1))
            assert in_order == (q != drawn.labels[n])
            assert np.array_equal(np.sort(numbers), np.arange(numbers.min(), numbers.min() + 4))
            assert not np.all(np.diff(numbers) == -1)
            np.testing.assert_array_equal(drawn.images[n, q], reference_dynamic_image(clips[n, numbers]))
    with pytest.raises(ValueError, match="length: expected at least 3"):
        ops.odd_one_out(clips, length=2)


def test_sum_of_differences_is_the_pairwise_sum():
    from selfsup.methods.odd_one_out import sum_of_differences

    features = torch.randn(2, 5, 3)
    expected = sum(features[:, i] - features[:, j] for i in range(5) for j in range(i + 1, 5))
    torch.testing.assert_close(sum_of_differences(features), expected)


def test_odd_one_out_network_trains_on_clips(tmp_path: Path):
    from selfsup.methods.odd_one_out import OddOneOutNetwork
    from selfsup.run.build import build_trainer, resolve_run

    method = OddOneOutNetwork(small_resnet(width=8), questions=3, length=3, image_size=8)
    still = random_clips(2, t=8, size=10)
    still[:] = still[:, :1]
    batch = method.make_batch(still, seed=0, epoch=0, indices=np.array([0, 1]))
    assert tuple(batch["images"].shape) == (2, 3, 3, 8, 8)
    torch.testing.assert_close(batch["images"][0, 0], batch["images"][0, 2])  # one draw for a question's subsequences
    config = resolve_run({"method": "o3n", "data": "moving_digits", "steps": 2, "batch_size": 8, "out": str(tmp_path / "o3n"),
                          "backbone_options": {"width": 8}, "device": "cpu"})
    log = build_trainer(config, progress=False).fit()
    assert math.isfinite(log[-1]["loss"])


# ---------------------------------------------------------------- video files


def write_video(path: Path, frames: np.ndarray) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.bit_rate = 4_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_files_decode_evenly_spaced_frames_and_skip_broken_ones(tmp_path: Path):
    from selfsup.data.clips import VideoFileSource, open_clips

    clips = moving_digits(3, frames=12, seed=2).clips
    write_video(tmp_path / "left" / "a.mp4", clips[0])
    write_video(tmp_path / "right" / "b.mp4", clips[1])
    write_video(tmp_path / "right" / "c.mp4", clips[2][:3])
    (tmp_path / "right" / "d.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    source = open_clips(tmp_path, frames=4)
    assert isinstance(source, VideoFileSource)
    assert (len(source), source.classes, source.targets) == (4, ["left", "right"], [0, 1, 1, 1])
    loaded = source.load([0, 1, 2, 3])
    assert loaded.indices == [0, 1] and [i for i, _, _ in loaded.skipped] == [2, 3]
    for clip, original in zip(loaded.images, clips[:2]):
        assert clip.shape == (4, 48, 48, 3)
        for k, t in enumerate([0, 4, 7, 11]):  # evenly spaced over 12 frames
            errors = [np.abs(clip[k].astype(int) - o.astype(int)).mean() for o in original]
            assert int(np.argmin(errors)) == t and errors[t] < 6


def test_shuffle_learn_trains_from_a_folder_of_videos(tmp_path: Path):
    from selfsup.run.build import build_trainer, resolve_run

    for i, clip in enumerate(moving_digits(4, frames=16, seed=3).clips):
        write_video(tmp_path / "videos" / f"{i}.mp4", clip)
    config = resolve_run({"method": "shuffle_learn", "data": str(tmp_path / "videos"), "steps": 2, "batch_size": 4, "image_size": 32,
                          "out": str(tmp_path / "run"), "backbone_options": {"width": 8}, "device": "cpu", "workers": 1})
    log = build_trainer(config, progress=False).fit()
    assert math.isfinite(log[-1]["loss"])


# ---------------------------------------------------------------- clip-level contrast


def test_rho_clips_cut_clips_at_independent_starts():
    clips = random_clips(6, t=20, size=4, seed=5)
    frames, starts = ops.rho_clips(clips, rho=3, length=4, stride=2, seed=1, indices=np.arange(6))
    assert frames.shape == (6, 3, 4, 4, 4, 3)
    for n in range(6):
        for r in range(3):
            assert 0 <= starts[n, r] <= 20 - 7
            np.testing.assert_array_equal(frames[n, r], clips[n, starts[n, r] + 2 * np.arange(4)])
    assert len(np.unique(starts)) > 3
    with pytest.raises(ValueError, match="length: 11 frames 2 apart span 21 frames"):
        ops.rho_clips(clips, length=11, stride=2)


def test_rho_methods_augment_each_clip_with_one_draw_and_train_a_clip_backbone(tmp_path: Path):
    from selfsup.methods.rho_clips import RhoBYOL, RhoSimCLR
    from selfsup.models.video import small_r2plus1d
    from selfsup.run.build import build_trainer, resolve_run

    backbone = small_r2plus1d(width=4)
    assert backbone(torch.zeros(2, 3, 8, 8)).shape == (2, 32) and backbone(torch.zeros(2, 3, 5, 8, 8)).shape == (2, 32)
    method = RhoSimCLR(backbone, clip_length=3, views=3, image_size=8)
    still = random_clips(2, t=10, size=10)
    still[:] = still[:, :1]
    views = method.make_batch(still, seed=0, epoch=0, indices=np.array([0, 1]))["views"]
    assert tuple(views.shape) == (3, 2, 3, 3, 8, 8)
    torch.testing.assert_close(views[0, 0, :, 0], views[0, 0, :, 2])  # the frames of a clip: one draw
    assert not torch.equal(views[0, 0], views[1, 0])  # two clips: two draws
    assert tuple(RhoBYOL(small_r2plus1d(width=4), clip_length=4).make_batch(still, seed=0, epoch=0, indices=np.arange(2))["views"].shape) == (2, 2, 3, 4, 10, 10)
    config = resolve_run({"method": "rho_byol", "data": "moving_digits", "steps": 2, "batch_size": 4, "out": str(tmp_path / "rho"),
                          "backbone_options": {"width": 4}, "device": "cpu"})
    trainer = build_trainer(config, progress=False)
    assert math.isfinite(trainer.fit()[-1]["loss"])
    from selfsup.run.restore import load_backbone

    restored = load_backbone(trainer.checkpoint_path)
    clip = torch.randn(1, 3, 4, 48, 48)
    trainer.method.backbone.eval()
    torch.testing.assert_close(restored(clip), trainer.method.backbone(clip))


def test_the_clip_augmentation_never_mirrors_and_keeps_most_of_the_frame():
    from selfsup.methods.rho_clips import RhoBYOL, RhoMoCo, RhoSimCLR
    from selfsup.models.video import small_r2plus1d

    # left half dark, right half bright: a mirrored view has its bright side on the left
    frames = np.zeros((200, 40, 40, 3), np.uint8)
    frames[:, :, 20:] = 255

    def mirrored(views: list[torch.Tensor]) -> int:
        return sum(int((v[..., :16].float().mean(dim=(1, 2, 3)) > v[..., -16:].float().mean(dim=(1, 2, 3))).sum()) for v in views)

    assert mirrored(T.clip(32, normalize=False)(frames, seed=0)) == 0
    assert 100 < mirrored(T.mocov2(32, normalize=False, blur=False)(frames, seed=0)) < 300  # the image views flip half
    # a crop of area s >= 0.6 and aspect >= 3/4 spans sqrt(s · 3/4) >= 0.67 of the width, 27 of the 40 columns, so
    # both halves are always in view: the left edge of every view is dark, the right edge bright
    columns = T.clip_view(32, normalize=False)(frames, seed=1).float().mean(dim=(1, 2))
    assert bool((columns[:, :4].mean(dim=1) < columns[:, -4:].mean(dim=1)).all())
    clips = random_clips(2, t=10, size=10)
    for cls in (RhoBYOL, RhoMoCo, RhoSimCLR):
        method = cls(small_r2plus1d(width=4), clip_length=3, augmentation="clip")
        views = method.make_batch(clips, seed=0, epoch=0, indices=np.arange(2))["views"]
        assert tuple(views.shape) == (2, 2, 3, 3, 10, 10)
    with pytest.raises(ValueError, match="views: augmentation 'clip' gives 2 views, got 3"):
        RhoSimCLR(small_r2plus1d(width=4), views=3, augmentation="clip")


# ---------------------------------------------------------------- tracking triplets


def test_block_matching_tracks_a_translating_texture():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    clips = np.stack([np.stack([texture[10 - t : 34 - t, 6 + 2 * t : 30 + 2 * t] for t in range(6)])])  # content moves down 1, left 2
    tracks = ops.track_patches(clips, patch=8, window=4, search=3, candidates=8, seed=0)
    start, positions = int(tracks.starts[0]), tracks.positions[0]
    np.testing.assert_array_equal(np.diff(positions, axis=0), np.tile([[1, -2]], (4, 1)))
    y, x = positions[0]
    np.testing.assert_array_equal(tracks.patches[0, 0], clips[0, start, y : y + 8, x : x + 8])
    y, x = positions[-1]
    np.testing.assert_array_equal(tracks.patches[0, 1], clips[0, start + 4, y : y + 8, x : x + 8])
    with pytest.raises(ValueError, match="window: expected 1 to 5 frames"):
        ops.track_patches(clips, patch=8, window=6)


def test_ranking_loss_and_mined_negatives_follow_the_paper():
    from selfsup.losses.metric import ranking_loss
    from selfsup.methods.tracking import mined_negatives

    rng = np.random.default_rng(2)
    a, p, n = (torch.from_numpy(rng.normal(size=shape)) for shape in ((3, 4), (3, 4), (3, 2, 4)))
    cos = lambda u, v: float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))  # noqa: E731
    expected = np.mean([max(0.0, (1 - cos(a[i].numpy(), p[i].numpy())) - (1 - cos(a[i].numpy(), n[i, k].numpy())) + 0.5)
                        for i in range(3) for k in range(2)])
    assert float(ranking_loss(a, p, n, 0.5)) == pytest.approx(expected, rel=1e-6)
    z = torch.from_numpy(rng.normal(size=(4, 2, 4)))
    candidates, owner = z.flatten(0, 1), torch.arange(4).repeat_interleave(2)
    chosen = mined_negatives(z[:, 0], z[:, 1], candidates, torch.arange(4), torch.arange(8), 2, 1, 7, 0.5)
    assert chosen.shape == (4, 3, 4)
    for i in range(4):
        others = [m for m in range(8) if owner[m] != i]
        losses = {m: (1 - cos(z[i, 0].numpy(), z[i, 1].numpy())) - (1 - cos(z[i, 0].numpy(), candidates[m].numpy())) for m in others}
        hardest = sorted(others, key=lambda m: -losses[m])[:2]
        picked = [int(np.flatnonzero((candidates == chosen[i, k]).all(1))[0]) for k in range(3)]
        assert picked[:2] == hardest and picked[2] in others and picked[2] not in hardest
    # the random choice follows the keys, not the rows: the same anchors laid out in another order choose the same rows
    order = torch.tensor([2, 0, 3, 1])
    rows = torch.stack([order * 2, order * 2 + 1], 1).reshape(-1)
    again = mined_negatives(z[order, 0], z[order, 1], candidates[rows], order, rows, 2, 1, 7, 0.5)
    torch.testing.assert_close(again, chosen[order])


# ---------------------------------------------------------------- the temporal experiment


def test_the_temporal_experiment_resumes_per_method_and_tunes_on_training_digits(tmp_path: Path):
    from selfsup.experiments.temporal import TemporalConfig, parse_option, run

    config = TemporalConfig(out=tmp_path, methods=("shuffle_learn",), steps=2, batch_size=4, width=4, train_clips=300, test_clips=20,
                            validation=20, options=(("shuffle_learn", "lr", "0.01"), ("shuffle_learn", "window", "6")))
    report = run(config)
    assert set(report["results"]) == {"shuffle_learn", "random init (SmallResNet)"}
    row = report["results"]["shuffle_learn"]
    assert row["options"] == {"lr": 0.01, "window": 6}
    assert row["digit"]["linear"]["all"]["mean"] >= 0 and row["direction"]["linear"]["10"]["runs"]
    saved = (tmp_path / "shuffle_learn" / "config.toml").read_text()
    assert "lr = 0.01" in saved and "window = 6" in saved
    # a rerun keeps the finished method: nothing is trained again
    stamp = (tmp_path / "shuffle_learn" / "checkpoint.pt").stat().st_mtime_ns
    assert run(config)["results"]["shuffle_learn"] == json.loads((tmp_path / "report.json").read_text())["results"]["shuffle_learn"]
    assert (tmp_path / "shuffle_learn" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert "| shuffle_learn |" in (tmp_path / "report.md").read_text()
    # probing again from the checkpoints: the same numbers, the training time kept, nothing trained
    again = run(replace(config, reprobe=True))["results"]
    assert again == report["results"]
    assert (tmp_path / "shuffle_learn" / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="METHOD:KEY=VALUE"):
        parse_option("lr=0.1")


def test_a_clip_backbone_sees_a_frame_as_a_still_clip_and_a_clip_as_its_first_frames():
    from selfsup.experiments.temporal import CLIP_FRAMES, clip_features, frame_features
    from selfsup.models.inputs import images_to_tensor
    from selfsup.models.video import SmallR2Plus1d

    torch.manual_seed(0)
    net = SmallR2Plus1d(width=4).eval()
    clips = moving_digits(3, split="test", seed=1).clips
    still = images_to_tensor(clips[:, 0])[:, :, None].expand(-1, -1, CLIP_FRAMES, -1, -1)
    moving = torch.stack([images_to_tensor(clips[:, t]) for t in range(CLIP_FRAMES)], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(frame_features(net, clips[:, 0]), net(still))
        torch.testing.assert_close(clip_features(net, clips), net(moving))
        assert not torch.allclose(net(still), net(images_to_tensor(clips[:, 0])))


def test_validation_clips_come_from_the_training_digits_not_the_held_out_ones():
    from selfsup.experiments.temporal import TemporalConfig, load_splits

    splits = load_splits(TemporalConfig(train_clips=10, validation=6))
    whole = moving_digits(16, split="train", seed=0)
    np.testing.assert_array_equal(splits.train.clips, whole.clips[:10])
    np.testing.assert_array_equal(splits.test.clips, whole.clips[10:])
    np.testing.assert_array_equal(splits.test.directions, whole.directions[10:])
