"""Type stubs of the native extension ``selfsup._native`` (checked against it by mypy's stubtest).

The public, documented API is :mod:`selfsup.ops`; these are the raw entry points it calls.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

_U8 = npt.NDArray[np.uint8]
_I64 = npt.NDArray[np.int64]
_F32 = npt.NDArray[np.float32]

__all__ = [
    "AugmentPipeline",
    "__version__",
    "ab_bins",
    "apply_mask",
    "corrupt",
    "decode_images",
    "inpaint_masks",
    "decode_ab",
    "encode_ab",
    "finish_native_calls",
    "frame_motion",
    "get_num_threads",
    "jigsaw",
    "jigsaw_permutations",
    "lab_to_rgb",
    "nearest_ab_bin",
    "odd_one_out",
    "patch_grid",
    "relative_patches",
    "rgb_to_lab",
    "rho_clips",
    "rotations",
    "set_num_threads",
    "shuffle_learn_tuples",
    "standardize_tiles",
    "tcn_frames",
    "track_patches",
]

def finish_native_calls(timeout_s: float) -> bool: ...
def get_num_threads() -> int: ...
def decode_images(sources: list[Any], gray: str = "rgb", exif_orientation: bool = True, max_pixels: int | None = None) -> list[_U8 | str]: ...
def set_num_threads(threads: int) -> None: ...
def patch_grid(
    images: Any,
    grid: tuple[int, int],
    cell: int,
    patch: int,
    jitter: bool,
    seed: int,
    epoch: int,
    indices: Any = None,
    positions: Any = None,
) -> tuple[_U8, _I64]: ...
def jigsaw_permutations(count: int, tiles: int, seed: int, criterion: str) -> _I64: ...
def jigsaw(
    images: Any,
    permutations: Any,
    grid: tuple[int, int],
    cell: int,
    patch: int,
    jitter: bool,
    channel_jitter: int,
    seed: int,
    epoch: int,
    indices: Any = None,
    labels: Any = None,
    positions: Any = None,
) -> tuple[_U8, _I64, _I64]: ...
def standardize_tiles(tiles: Any) -> _F32: ...
def relative_patches(
    images: Any,
    patch: int,
    gap: int,
    jitter: int,
    drop_colors: bool,
    seed: int,
    epoch: int,
    indices: Any = None,
    labels: Any = None,
    positions: Any = None,
) -> tuple[_U8, _I64, _I64]: ...
def inpaint_masks(
    n: int,
    size: tuple[int, int],
    kind: str,
    fraction: float,
    blocks: int,
    seed: int,
    epoch: int,
    indices: Any = None,
) -> _U8: ...
def apply_mask(
    images: Any, masks: Any, fill: list[int], noise: bool, seed: int, epoch: int, indices: Any = None
) -> _U8: ...
def corrupt(
    images: Any, kinds: list[int], size: float, seed: int, epoch: int, indices: Any = None, labels: Any = None
) -> tuple[_U8, _I64, _U8, _I64]: ...
def frame_motion(clips: Any) -> _F32: ...
def shuffle_learn_tuples(
    clips: Any, window: int, top_fraction: float, positive_rate: float, seed: int, epoch: int, indices: Any = None
) -> tuple[_U8, _I64, _I64, _I64]: ...
def tcn_frames(
    clips: Any, anchors: int, pos_radius: int, neg_radius: int, seed: int, epoch: int, indices: Any = None
) -> tuple[_U8, _I64]: ...
def odd_one_out(clips: Any, questions: int, length: int, seed: int, epoch: int, indices: Any = None) -> tuple[_U8, _I64, _I64]: ...
def rho_clips(clips: Any, rho: int, length: int, stride: int, seed: int, epoch: int, indices: Any = None) -> tuple[_U8, _I64]: ...
def track_patches(
    clips: Any, patch: int, window: int, search: int, candidates: int, seed: int, epoch: int, indices: Any = None
) -> tuple[_U8, _I64, _I64]: ...
def rgb_to_lab(images: Any) -> _F32: ...
def lab_to_rgb(lab: Any) -> _F32: ...
def ab_bins(grid: int = 10) -> _F32: ...
def encode_ab(ab: Any, sigma: float = 5.0, neighbours: int = 5, grid: int = 10) -> _F32: ...
def nearest_ab_bin(ab: Any, grid: int = 10) -> _I64: ...
def decode_ab(probs: Any, temperature: float = 0.38, grid: int = 10) -> _F32: ...
def rotations(
    images: Any, mode: str, seed: int, epoch: int, indices: Any = None, k: Any = None
) -> tuple[_U8, _I64]: ...

from typing import final  # noqa: E402

_AugmentStep = tuple[str, float | None, bool, list[float]]

@final
class AugmentPipeline:
    def __new__(cls, views: list[list[_AugmentStep]]) -> AugmentPipeline: ...
    @property
    def n_views(self) -> int: ...
    def param_names(self, view: int) -> list[str]: ...
    def __call__(
        self, images: Any, seed: int, epoch: int, indices: Any = None, params: Any = None
    ) -> tuple[list[Any], list[npt.NDArray[np.float64]]]: ...
