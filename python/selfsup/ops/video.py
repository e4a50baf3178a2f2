"""Clip ops: frame differencing and the tuples of frame-order verification (Shuffle & Learn)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from selfsup import _native
from selfsup.ops._common import as_array, as_int64, check_epoch, resolve_seed


def frame_motion(clips: Any) -> npt.NDArray[np.float32]:
    """Motion ``(N, T − 1)``: the mean absolute difference of each pair of consecutive frames of
    uint8 clips ``(N, T, H, W, C)`` — a stand-in for the optical-flow magnitude by which Misra et
    al. (2016) pick high-motion windows.

    Raises:
        TypeError: not uint8. ValueError: not ``(N, T, H, W, C)`` with ``T`` ≥ 2 and C in {1, 3}.

    Example:
        >>> import numpy as np
        >>> clips = np.zeros((1, 3, 2, 2, 1), np.uint8); clips[0, 1] = 8
        >>> frame_motion(clips).tolist()
        [[8.0, 8.0]]
    """
    return _native.frame_motion(as_array(clips))


class FrameTuples(NamedTuple):
    frames: npt.NDArray[np.uint8]
    """``(N, 3, H, W, C)``: the three frames shown, in the order shown."""
    labels: npt.NDArray[np.int64]
    """``(N,)``: 1 for a tuple in temporal order (forwards or backwards), 0 for a shuffled one."""
    shown: npt.NDArray[np.int64]
    """``(N, 3)``: the frame numbers shown."""
    five: npt.NDArray[np.int64]
    """``(N, 5)``: the frames a < b < c < d < e the tuple was made from."""


def shuffle_learn_tuples(
    clips: Any,
    *,
    window: int = 10,
    top_fraction: float = 0.5,
    positive_rate: float = 0.5,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
) -> FrameTuples:
    """One tuple per clip (Misra, Zitnick & Hebert 2016, "Shuffle and Learn", arXiv:1603.08561, §3.1).

    The windows of ``window`` consecutive frames are ranked by their motion (:func:`frame_motion`
    summed inside the window); one of the ``top_fraction`` with the most motion is drawn, and five
    distinct frames a < b < c < d < e in it. With probability ``positive_rate`` the tuple is a
    positive, (b, c, d) or its reverse (d, c, b); otherwise a negative, (b, a, d) or (b, e, d) —
    each form with probability 1/2. All draws come from ``(seed, epoch, indices[i])``.

    Raises:
        ValueError: bad clips; ``window`` < 5 or longer than the clips; ``top_fraction`` outside
            (0, 1]; ``positive_rate`` outside [0, 1].

    Example:
        >>> import numpy as np
        >>> clips = np.random.default_rng(0).integers(0, 255, (4, 12, 8, 8, 3), dtype=np.uint8)
        >>> tuples = shuffle_learn_tuples(clips, window=8, seed=0)
        >>> tuples.frames.shape, tuples.labels.shape
        ((4, 3, 8, 8, 3), (4,))
    """
    frames, labels, shown, five = _native.shuffle_learn_tuples(
        as_array(clips), int(window), float(top_fraction), float(positive_rate), resolve_seed(seed), check_epoch(epoch),
        as_int64(indices, "indices"),
    )
    return FrameTuples(frames, labels, shown, five)


class TcnFrames(NamedTuple):
    frames: npt.NDArray[np.uint8]
    """``(N, K, 2, H, W, C)``: per anchor, the anchor frame and its positive."""
    times: npt.NDArray[np.int64]
    """``(N, K, 2)``: their frame numbers."""


def tcn_frames(
    clips: Any,
    *,
    anchors: int = 2,
    pos_radius: int = 1,
    neg_radius: int = 3,
    seed: int | None = None,
    epoch: int = 0,
    indices: Any = None,
) -> TcnFrames:
    """Frames for time-contrastive networks (Sermanet et al. 2018, "Time-Contrastive Networks",
    arXiv:1704.06888, §3.1–3.2), ``anchors`` (K) per clip.

    Single-view clips ``(N, T, H, W, C)``: K anchor time steps, uniform over the placements at
    least ``neg_radius + pos_radius + 1`` frames apart, and for each a positive uniform within
    ``pos_radius`` frames of it (not the anchor itself), so every frame of another anchor's pair is
    beyond ``neg_radius`` of the anchor: the batch's other frames are its negatives. Two-camera
    clips ``(N, 2, T, H, W, C)``: anchors at least ``neg_radius + 1`` apart in the first camera,
    each positive the same time step seen by the second camera. Draws from ``(seed, epoch, indices[i])``.

    Raises:
        ValueError: clips of another shape; K < 1; ``pos_radius`` < 1 or ``neg_radius`` <
            ``pos_radius`` (single view); more anchors than the clips' length allows.

    Example:
        >>> import numpy as np
        >>> clips = np.zeros((3, 16, 8, 8, 3), np.uint8)
        >>> tcn_frames(clips, anchors=2, seed=0).frames.shape
        (3, 2, 2, 8, 8, 3)
    """
    frames, times = _native.tcn_frames(
        as_array(clips), int(anchors), int(pos_radius), int(neg_radius), resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices")
    )
    return TcnFrames(frames, times)


class OddOneOut(NamedTuple):
    images: npt.NDArray[np.uint8]
    """``(N, Q, H, W, C)``: the dynamic image of each subsequence, in the order shown."""
    labels: npt.NDArray[np.int64]
    """``(N,)``: the position of the shuffled subsequence."""
    frames: npt.NDArray[np.int64]
    """``(N, Q, L)``: the frame numbers of each subsequence, in the order shown."""


def odd_one_out(
    clips: Any, *, questions: int = 6, length: int = 4, seed: int | None = None, epoch: int = 0, indices: Any = None
) -> OddOneOut:
    """Odd-One-Out questions (Fernando, Bilen, Gavves & Gould 2017, "Self-Supervised Video
    Representation Learning With Odd-One-Out Networks", arXiv:1611.06646, §3): per clip,
    ``questions`` (N + 1) subsequences of ``length`` consecutive frames at uniform starts, all in
    order but one, whose frames are a uniform random permutation other than the identity and the
    reverse. Each subsequence is encoded as its dynamic image (Bilen et al. 2016, approximate rank
    pooling Σ_t α_t x_t with α_t = 2t − L − 1, rescaled to uint8 by its own range, halves rounded
    up), one of the
    encodings the paper evaluates. Draws from ``(seed, epoch, indices[i])``.

    Raises:
        ValueError: bad clips; ``questions`` < 2; ``length`` < 3 or longer than the clips.

    Example:
        >>> import numpy as np
        >>> clips = np.random.default_rng(0).integers(0, 255, (2, 10, 8, 8, 3), dtype=np.uint8)
        >>> odd_one_out(clips, questions=4, length=3, seed=0).images.shape
        (2, 4, 8, 8, 3)
    """
    images, labels, frames = _native.odd_one_out(
        as_array(clips), int(questions), int(length), resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices")
    )
    return OddOneOut(images, labels, frames)


def rho_clips(
    clips: Any, *, rho: int = 2, length: int = 8, stride: int = 1, seed: int | None = None, epoch: int = 0, indices: Any = None
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """``rho`` clips of ``length`` frames ``stride`` apart from every video ``(N, T, H, W, C)``,
    each start uniform over those that fit (ρBYOL / ρMoCo: Feichtenhofer, Fan, Xiong, Girshick &
    He 2021, "A Large-Scale Study on Unsupervised Spatiotemporal Representation Learning",
    arXiv:2104.14558, §3): frames ``(N, ρ, L, H, W, C)`` and starts ``(N, ρ)``, from
    ``(seed, epoch, indices[i])``.

    Raises:
        ValueError: bad clips; non-positive ``rho``, ``length`` or ``stride``; clips shorter than
            ``(length − 1)·stride + 1`` frames.

    Example:
        >>> import numpy as np
        >>> frames, starts = rho_clips(np.zeros((2, 12, 8, 8, 3), np.uint8), rho=3, length=4, seed=0)
        >>> frames.shape, starts.shape
        ((2, 3, 4, 8, 8, 3), (2, 3))
    """
    frames, starts = _native.rho_clips(
        as_array(clips), int(rho), int(length), int(stride), resolve_seed(seed), check_epoch(epoch), as_int64(indices, "indices")
    )
    return frames, starts


class Tracks(NamedTuple):
    patches: npt.NDArray[np.uint8]
    """``(N, 2, P, P, C)``: the patch where each track starts and where it ends."""
    starts: npt.NDArray[np.int64]
    """``(N,)``: the first frame of each track."""
    positions: npt.NDArray[np.int64]
    """``(N, window + 1, 2)``: the patch's top-left ``(row, column)`` in every frame of the track."""


def track_patches(
    clips: Any, *, patch: int = 24, window: int = 8, search: int = 4, candidates: int = 16, seed: int | None = None, epoch: int = 0,
    indices: Any = None,
) -> Tracks:
    """One tracked patch per clip (Wang & Gupta 2015, "Unsupervised Learning of Visual
    Representations using Videos", arXiv:1505.00687, §3.1), natively: a start frame uniform over
    those that leave ``window`` frames; among ``candidates`` uniform positions the patch that
    changes most to the next frame (the paper looks for moving patches with SURF and improved
    dense trajectories); then, frame by frame, block matching — the position within ±``search``
    pixels of the last whose patch has the least sum of squared differences to the last patch
    (ties to the nearest) — where the paper runs a KCF tracker. Draws from ``(seed, epoch, indices[i])``.

    Raises:
        ValueError: bad clips; ``patch`` outside [2, min(H, W)]; ``window`` outside [1, T − 1];
            ``candidates`` < 1.

    Example:
        >>> import numpy as np
        >>> clips = np.random.default_rng(0).integers(0, 255, (2, 10, 16, 16, 3), dtype=np.uint8)
        >>> track_patches(clips, patch=8, window=4, seed=0).patches.shape
        (2, 2, 8, 8, 3)
    """
    patches, starts, positions = _native.track_patches(
        as_array(clips), int(patch), int(window), int(search), int(candidates), resolve_seed(seed), check_epoch(epoch),
        as_int64(indices, "indices"),
    )
    return Tracks(patches, starts, positions)
