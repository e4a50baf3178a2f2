"""Native data ops behind the pretext tasks (implemented in Rust, see ``selfsup._native``)."""

from selfsup._native import get_num_threads, set_num_threads
from selfsup.ops.color import (
    ab_bins,
    ab_prior,
    decode_ab,
    encode_ab,
    lab_to_rgb,
    nearest_ab_bin,
    rebalance_weights,
    rgb_to_lab,
)
from selfsup.ops.decode import DecodeError, decode_images
from selfsup.ops.video import FrameTuples, OddOneOut, TcnFrames, frame_motion, odd_one_out, rho_clips, shuffle_learn_tuples, tcn_frames
from selfsup.ops.inpainting import CORRUPTIONS, Corrupted, apply_mask, corrupt, inpaint_masks
from selfsup.ops.geometry import (
    Jigsaw,
    PatchGrid,
    RelativePair,
    Rotated,
    jigsaw,
    jigsaw_permutations,
    patch_grid,
    relative_patches,
    rotations,
    standardize_tiles,
)

__all__ = [
    "CORRUPTIONS",
    "Corrupted",
    "DecodeError",
    "FrameTuples",
    "frame_motion",
    "shuffle_learn_tuples",
    "TcnFrames",
    "tcn_frames",
    "OddOneOut",
    "odd_one_out",
    "rho_clips",
    "apply_mask",
    "corrupt",
    "inpaint_masks",
    "ab_bins",
    "ab_prior",
    "decode_ab",
    "decode_images",
    "encode_ab",
    "lab_to_rgb",
    "nearest_ab_bin",
    "rebalance_weights",
    "rgb_to_lab",
    "Jigsaw",
    "PatchGrid",
    "RelativePair",
    "Rotated",
    "get_num_threads",
    "jigsaw",
    "jigsaw_permutations",
    "patch_grid",
    "relative_patches",
    "rotations",
    "set_num_threads",
    "standardize_tiles",
]
