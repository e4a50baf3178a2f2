"""Moving digits: generated video clips for the temporal methods, and a two-camera variant.

Each clip shows one of scikit-learn's digits, upscaled, moving over a black canvas at a constant
speed and bouncing off the borders (the velocity component across a border is reflected), behind
a static grey bar that occludes part of its path. The clips of the training split use the digit
images of :func:`~selfsup.data.digits.load_digits`'s training split, the held-out clips those of
its test split, so no digit image is in both. Labels: the digit, and the direction of motion from
the first frame to the second (after a bounce there, the reflected one), one of eight compass
directions (0: right, counting counter-clockwise in steps of 45°; later bounces change it). Everything is a function of the seed.

The two-camera variant (:func:`two_camera`) films each clip through two random homographies —
the corners of the frame moved by up to ``strength`` of its side — the same scene from two
viewpoints, as multi-view TCN needs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image

from selfsup.hookspecs import Register, hookimpl

DIRECTIONS = 8


class Clips(NamedTuple):
    clips: npt.NDArray[np.uint8]
    """``(N, T, S, S, 3)`` uint8 frames."""
    labels: npt.NDArray[np.int64]
    """``(N,)`` the digit shown."""
    directions: npt.NDArray[np.int64]
    """``(N,)`` the direction of motion from the first frame to the second, 0–7 (0: right, counter-clockwise)."""


class ClipSplits(NamedTuple):
    train: Clips
    test: Clips


def bounce(
    start: npt.NDArray[np.float64], velocity: npt.NDArray[np.float64], frames: int, span: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Positions ``(frames, 2)`` of a point starting at ``start`` with ``velocity`` (per frame)
    inside ``[0, span]`` on both axes, reflected at the borders, and the velocity after the first
    move (reflected where that move met a border)."""
    positions = np.empty((frames, 2))
    position, step = start.astype(np.float64).copy(), velocity.astype(np.float64).copy()
    first = step.copy()
    for t in range(frames):
        positions[t] = position
        position = position + step
        for axis in range(2):
            while position[axis] < 0 or position[axis] > span:
                if position[axis] < 0:
                    position[axis] = -position[axis]
                else:
                    position[axis] = 2 * span - position[axis]
                step[axis] = -step[axis]
        if t == 0:
            first = step.copy()
    return positions, first


def render_clip(
    digit: npt.NDArray[np.uint8], rng: np.random.Generator, *, frames: int, size: int, speed: tuple[float, float]
) -> tuple[npt.NDArray[np.uint8], int]:
    """One clip ``(frames, size, size, 3)`` of the grey ``digit`` ``(d, d)`` and its direction label."""
    side = digit.shape[0]
    span = float(size - side)
    direction = int(rng.integers(DIRECTIONS))
    angle = direction * 2 * np.pi / DIRECTIONS
    magnitude = rng.uniform(*speed)
    velocity = magnitude * np.array([-np.sin(angle), np.cos(angle)])  # (row, column): up is -row
    positions, moved = bounce(rng.uniform(0, span, 2), velocity, frames, span)
    direction = int(np.rint(np.arctan2(-moved[0], moved[1]) / (2 * np.pi / DIRECTIONS))) % DIRECTIONS
    horizontal = bool(rng.integers(2))
    thickness = max(2, size // 10)
    offset = int(rng.integers(0, size - thickness))
    clip = np.zeros((frames, size, size), np.uint8)
    for t, (y, x) in enumerate(np.rint(positions).astype(int)):
        window = clip[t, y : y + side, x : x + side]
        np.maximum(window, digit, out=window)
        if horizontal:
            clip[t, offset : offset + thickness, :] = 128
        else:
            clip[t, :, offset : offset + thickness] = 128
    return np.repeat(clip[..., None], 3, axis=-1), direction


def _grey_digits(images: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    grey = images[..., 0]
    return np.stack([np.asarray(Image.fromarray(g).resize((side, side), Image.Resampling.BILINEAR)) for g in grey])


def moving_digits(
    count: int, *, frames: int = 16, size: int = 48, digit_size: int = 20, speed: tuple[float, float] = (1.5, 3.0),
    split: str = "train", seed: int = 0,
) -> Clips:
    """``count`` clips of ``frames`` frames of ``size`` × ``size`` (module docstring), the digits
    drawn from the ``split`` ("train" or "test") of the embedded digits.

    Raises:
        ValueError: ``count`` < 1, ``frames`` < 2, a digit that does not fit, a bad speed or split.
    """
    from selfsup.data.digits import load_digits

    if count < 1 or frames < 2:
        raise ValueError(f"count, frames: expected >= 1 and >= 2, got {count}, {frames}")
    if not 4 <= digit_size < size:
        raise ValueError(f"digit_size: expected 4 to size - 1 ({size - 1}), got {digit_size}")
    if not 0 < speed[0] <= speed[1]:
        raise ValueError(f"speed: expected 0 < low <= high pixels per frame, got {speed}")
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    source = getattr(load_digits(32), split)
    digits = _grey_digits(source.images, digit_size)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    chosen = rng.integers(len(digits), size=count)
    clips = np.empty((count, frames, size, size, 3), np.uint8)
    directions = np.empty(count, np.int64)
    for i, k in enumerate(chosen):
        clips[i], directions[i] = render_clip(digits[k], np.random.default_rng([seed, i, 7 if split == "train" else 8]),
                                              frames=frames, size=size, speed=speed)
    return Clips(clips, source.labels[chosen].astype(np.int64), directions)


def load_moving_digits(train: int = 600, test: int = 200, *, frames: int = 16, size: int = 48, seed: int = 0) -> ClipSplits:
    """The training clips and the held-out clips (digits of the held-out digit images)."""
    return ClipSplits(
        moving_digits(train, frames=frames, size=size, split="train", seed=seed),
        moving_digits(test, frames=frames, size=size, split="test", seed=seed),
    )


def homography(source: npt.NDArray[np.float64], target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The 3 × 3 matrix H (H[2, 2] = 1) mapping the four ``source`` points ``(4, 2)`` (x, y) onto ``target``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def random_homography(size: int, strength: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A camera: the frame's corners each moved by up to ``strength`` · ``size`` pixels."""
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    return homography(corners, corners + rng.uniform(-strength, strength, (4, 2)) * size)


def warp(frames: npt.NDArray[np.uint8], matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """``frames`` ``(T, S, S, 3)`` seen through the homography ``matrix`` (bilinear, black outside)."""
    inverse = np.linalg.inv(matrix)
    inverse = inverse / inverse[2, 2]
    size = frames.shape[2], frames.shape[1]
    coefficients = tuple(inverse.reshape(-1)[:8])
    return np.stack([np.asarray(Image.fromarray(f).transform(size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR))
                     for f in frames])


def two_camera(clips: npt.NDArray[np.uint8], *, strength: float = 0.12, seed: int = 0) -> npt.NDArray[np.uint8]:
    """``(N, 2, T, S, S, 3)``: every clip ``(N, T, S, S, 3)`` through two random homographies of its own.

    Raises:
        ValueError: not ``(N, T, S, S, 3)`` uint8; ``strength`` outside [0, 0.25].
    """
    if clips.ndim != 5 or clips.dtype != np.uint8 or clips.shape[-1] != 3:
        raise ValueError(f"clips: expected uint8 (N, T, S, S, 3), got {clips.dtype} {clips.shape}")
    if not 0 <= strength <= 0.25:
        raise ValueError(f"strength: expected a share of the side in [0, 0.25], got {strength}")
    out = np.empty((len(clips), 2, *clips.shape[1:]), np.uint8)
    for i, clip in enumerate(clips):
        rng = np.random.default_rng([seed, i, 0xCA3])
        for camera in range(2):
            out[i, camera] = warp(clip, random_homography(clips.shape[2], strength, rng))
    return out


def moving_digits_train() -> Clips:
    """The registered dataset ``moving_digits``: the 600 training clips."""
    return load_moving_digits(train=600, test=1).train


class TwoCameraClips(NamedTuple):
    clips: npt.NDArray[np.uint8]
    """``(N, 2, T, S, S, 3)``: every clip through two cameras."""
    labels: npt.NDArray[np.int64]


def moving_digits_two_camera_train() -> TwoCameraClips:
    """The registered dataset ``moving_digits_two_camera``: the training clips through two cameras."""
    train = moving_digits_train()
    return TwoCameraClips(two_camera(train.clips), train.labels)


@hookimpl
def selfsup_register_datasets(register: Register) -> None:
    register(moving_digits_train, name="moving_digits")
    register(moving_digits_two_camera_train, name="moving_digits_two_camera")
