"""Video clips as data-path sources: in-memory clip arrays, folders of frames (one folder per
clip) and video files (decoded with PyAV, whose wheels bundle FFmpeg: ``pip install "selfsup[video]"``).

A clip source is a :class:`~selfsup.data.pipeline.Source` whose samples are clips: ``load`` gives
uint8 ``(T, H, W, 3)`` arrays (one ``(N, T, S, S, 3)`` array for in-memory clips), decoded per
batch, so a run over many clips holds only the batch in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from selfsup.data.folder import IMG_EXTENSIONS, Loaded

U8Array = npt.NDArray[np.uint8]


class ClipArraySource:
    """In-memory clips ``(N, T, H, W, C)`` uint8 — or two-camera clips ``(N, 2, T, H, W, C)`` — with
    optional integer labels ``(N,)``.

    Raises:
        ValueError: not a non-empty uint8 5-D array with at least 2 frames; labels of another length.
    """

    def __init__(self, clips: U8Array, labels: npt.ArrayLike | None = None) -> None:
        ok = isinstance(clips, np.ndarray) and clips.dtype == np.uint8 and len(clips) > 0
        if not ok or not (clips.ndim == 5 or (clips.ndim == 6 and clips.shape[1] == 2)) or clips.shape[-4] < 2:
            shape = getattr(clips, "shape", type(clips).__name__)
            raise ValueError(
                f"clips: expected a non-empty uint8 (N, T, H, W, C) or (N, 2, T, H, W, C) array of T >= 2 frames, got {getattr(clips, 'dtype', '')} {shape}"
            )
        self.clips = clips
        self.labels = None if labels is None else np.asarray(labels)
        if self.labels is not None and self.labels.shape != (len(clips),):
            raise ValueError(f"labels: expected {len(clips)} integer labels, got shape {self.labels.shape}")
        self.labeled = self.labels is not None
        self.skipped: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def targets(self) -> list[int]:
        return [-1] * len(self.clips) if self.labels is None else [int(t) for t in self.labels]

    def load(self, indices: Sequence[int]) -> Loaded:
        idx = np.asarray(indices, dtype=np.int64)
        targets = [-1] * len(idx) if self.labels is None else [int(t) for t in self.labels[idx]]
        batch: Any = np.ascontiguousarray(self.clips[idx])
        return Loaded(batch, targets, idx.tolist(), [])

    def __repr__(self) -> str:
        t, h, w, c = self.clips.shape[-4:]
        cameras = " seen by 2 cameras" if self.clips.ndim == 6 else ""
        return f"ClipArraySource({len(self.clips)} clips of {t} frames of {h}x{w}x{c}{cameras})"


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)


class _FileClips:
    """What the file-backed clip sources share: ``paths`` (one per clip), their labels (``-1``
    without), and a per-batch ``load`` that reads each clip with :meth:`read_clip`, skipping and
    recording the ones it cannot read."""

    paths: list[Path]
    frames: int
    _labels: list[int]
    labeled: bool
    skipped: dict[str, str]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def targets(self) -> list[int]:
        return list(self._labels)

    def read_clip(self, path: Path) -> U8Array:
        """``frames`` frames ``(frames, H, W, 3)`` of the clip at ``path``; ValueError or OSError with the reason."""
        raise NotImplementedError

    def load(self, indices: Sequence[int]) -> Loaded:
        images: list[U8Array] = []
        targets: list[int] = []
        kept: list[int] = []
        skipped: list[tuple[int, str, str]] = []
        for index in indices:
            path = self.paths[int(index)]
            try:
                images.append(self.read_clip(path))
            except (ValueError, OSError) as error:
                skipped.append((int(index), str(path), str(error)))
                continue
            targets.append(self._labels[int(index)])
            kept.append(int(index))
        for _, path_text, reason in skipped:
            self.skipped.setdefault(path_text, reason)
        return Loaded(images, targets, kept, skipped)


class FrameFolderSource(_FileClips):
    """Clips stored as folders of frames, the frames of a clip in file-name order: ``root/clip/…``
    (unlabelled) or ``root/class/clip/…`` (class sub-folders give labels, sorted by name).
    ``frames`` frames are taken from each clip, evenly spaced over it; a clip with fewer frames,
    or with a frame that cannot be decoded, is skipped in its batch and recorded in ``skipped``.

    Raises:
        FileNotFoundError: ``root`` is not a folder or holds no clip folder. ValueError: ``frames`` < 2.
    """

    def __init__(self, root: str | os.PathLike[str], frames: int = 16) -> None:
        self.root = Path(root)
        if frames < 2:
            raise ValueError(f"frames: expected at least 2 frames per clip, got {frames}")
        if not self.root.is_dir():
            raise FileNotFoundError(f"data: {self.root} is not a folder")
        self.frames = int(frames)
        children = sorted(p for p in self.root.iterdir() if p.is_dir())
        nested = bool(children) and all(not _frame_files(c) and any(g.is_dir() for g in c.iterdir()) for c in children)
        self.classes: list[str] = [c.name for c in children] if nested else []
        self.paths = []
        labels: list[int] = []
        for label, parent in enumerate(children if nested else [self.root]):
            for clip in sorted(p for p in parent.iterdir() if p.is_dir()):
                self.paths.append(clip)
                labels.append(label if nested else -1)
        if not self.paths:
            raise FileNotFoundError(f"data: {self.root} holds no clip folders (one folder of frames per clip)")
        self._labels = labels
        self.labeled = nested
        self.skipped = {}

    @property
    def clip_folders(self) -> list[Path]:
        return self.paths

    def read_clip(self, path: Path) -> U8Array:
        from selfsup import _native

        files = _frame_files(path)
        if len(files) < self.frames:
            raise ValueError(f"{len(files)} frames, {self.frames} needed")
        chosen = [files[round(k)] for k in np.linspace(0, len(files) - 1, self.frames)]
        decoded = _native.decode_images([str(p) for p in chosen], "rgb")
        problem = next((d for d in decoded if isinstance(d, str)), None)
        if problem is not None:
            raise ValueError(problem)
        sizes = {d.shape for d in decoded if not isinstance(d, str)}
        if len(sizes) != 1:
            raise ValueError(f"frames of different sizes {sorted(sizes)}")
        return np.stack(decoded)

    def __repr__(self) -> str:
        return f"FrameFolderSource({self.root}, {len(self)} clips, {self.frames} frames each)"


def clip_squares(clips: Sequence[U8Array] | U8Array, size: int) -> U8Array:
    """Clips ``(T, H, W, 3)`` of any frame size as one ``(N, T, size, size, 3)`` array: every frame
    cut to its central square and resized like :func:`~selfsup.data.folder.center_squares`."""
    from selfsup.data.folder import center_squares

    if isinstance(clips, np.ndarray) and clips.ndim == 5 and clips.shape[2:4] == (size, size):
        return clips
    frames = [frame for clip in clips for frame in clip]
    squares = center_squares(frames, size)
    return squares.reshape(len(clips), -1, size, size, squares.shape[-1])


VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
MAX_FRAME_PIXELS = 1 << 26
"""Frames larger than this (64 Mpx) are refused before decoding: a hostile header cannot make
the decoder allocate without bound."""


def _video_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def decode_video(path: str | os.PathLike[str], frames: int) -> U8Array:
    """``frames`` RGB frames ``(frames, H, W, 3)`` evenly spaced over the video at ``path``.

    Raises:
        ImportError: PyAV is not installed. ValueError: no video stream, fewer frames than asked,
            frames above :data:`MAX_FRAME_PIXELS`, or a file FFmpeg cannot decode.
    """
    try:
        import av
    except ImportError:
        raise ImportError('video files need PyAV: pip install "selfsup[video]"') from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > MAX_FRAME_PIXELS:
                raise ValueError(f"frames of {width}x{height} exceed {MAX_FRAME_PIXELS} pixels")
            stream.thread_type = "AUTO"
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.FFmpegError as error:
        raise ValueError(f"cannot decode: {error}") from None
    if len(decoded) < frames:
        raise ValueError(f"{len(decoded)} frames, {frames} needed")
    chosen = [decoded[round(k)] for k in np.linspace(0, len(decoded) - 1, frames)]
    return np.stack(chosen)


class VideoFileSource(_FileClips):
    """Video files as clips: ``root/*.mp4`` (unlabelled) or ``root/class/*.mp4`` (class
    sub-folders give labels), or a list of paths. Each clip is ``frames`` frames evenly spaced
    over its video, decoded per batch with PyAV; a file that cannot be decoded or is too short is
    skipped in its batch and recorded in ``skipped``.

    Raises:
        FileNotFoundError: no video file. ValueError: ``frames`` < 2.
    """

    def __init__(self, root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], frames: int = 16) -> None:
        if frames < 2:
            raise ValueError(f"frames: expected at least 2 frames per clip, got {frames}")
        self.frames = int(frames)
        self.classes: list[str] = []
        self.paths: list[Path] = []
        labels: list[int] = []
        if isinstance(root, (str, os.PathLike)):
            top = Path(root)
            if not top.is_dir():
                raise FileNotFoundError(f"data: {top} is not a folder")
            children = sorted(p for p in top.iterdir() if p.is_dir() and _video_files(p))
            if children and not _video_files(top):
                self.classes = [c.name for c in children]
                self.paths = [f for c in children for f in _video_files(c)]
                labels = [k for k, c in enumerate(children) for _ in _video_files(c)]
            else:
                self.paths = _video_files(top)
        else:
            self.paths = [Path(p) for p in root]
        if not self.paths:
            raise FileNotFoundError(f"data: no video files ({', '.join(VIDEO_EXTENSIONS)}) in {root}")
        self._labels = labels or [-1] * len(self.paths)
        self.labeled = bool(labels)
        self.skipped = {}

    def read_clip(self, path: Path) -> U8Array:
        return decode_video(path, self.frames)

    def __repr__(self) -> str:
        return f"VideoFileSource({len(self)} videos, {self.frames} frames each)"


def open_clips(spec: str | os.PathLike[str], frames: int = 16) -> VideoFileSource | FrameFolderSource:
    """The clip source a path names: video files (a folder of them, with or without class
    sub-folders) or folders of frames.

    Raises:
        FileNotFoundError: neither.
    """
    top = Path(spec)
    if top.is_dir() and (_video_files(top) or any(c.is_dir() and _video_files(c) for c in top.iterdir())):
        return VideoFileSource(top, frames=frames)
    return FrameFolderSource(top, frames=frames)
