"""RandAugment and Cutout against torchvision v2 (injected parameters), their samplers, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import InterpolationMode, v2

import selfsup.ops as ops
import selfsup.transforms as T
from selfsup.data import photo_crops

NAN = float("nan")
OPS = T.RANDAUGMENT_OPS
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}
NO_MAGNITUDE = {"Identity", "AutoContrast", "Equalize"}


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return photo_crops(64, 8, seed=1)


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.to(torch.int16) - b.to(torch.int16)).abs().max())


def reference(image: torch.Tensor, name: str, magnitude: float, fill: int | list[int] | None = None) -> torch.Tensor:
    """torchvision v2 RandAugment's own per-op function (nearest interpolation, ``fill``)."""
    ra = v2.RandAugment(fill=fill)
    return ra._apply_image_or_video_transform(image, name, magnitude, interpolation=InterpolationMode.NEAREST, fill=ra._fill)


def op_rows(n: int, *ops_: tuple[str, float]) -> np.ndarray:
    """Parameter rows of a RandAugment step applying ``ops_`` (name, signed magnitude) in order."""
    row = [1.0]
    for name, m in ops_:
        row += [OPS.index(name), NAN, -1.0 if math.copysign(1.0, m) < 0 else 1.0, m]
    return np.tile(row, (n, 1))


# ---------------------------------------------------------------- each op against torchvision, injected parameters

MAGNITUDES = [
    ("Identity", 0.0),
    ("ShearX", 0.09),
    ("ShearX", -0.2),  # x + m(y + ½) hits half-way points: same ties-to-even as grid_sample
    ("ShearX", 0.3),
    ("ShearY", 0.17),
    ("ShearY", -0.3),
    ("TranslateX", 3.9),  # int(m) = 3 pixels
    ("TranslateX", -14.2),
    ("TranslateY", 20.0),
    ("TranslateY", -5.5),
    ("Rotate", 9.0),
    ("Rotate", -30.0),
    ("Rotate", 17.3),
    ("Rotate", 0.0),
    ("Brightness", 0.27),
    ("Brightness", -0.9),
    ("Color", 0.5),
    ("Color", -0.63),
    ("Contrast", 0.9),
    ("Contrast", -0.33),
    ("Sharpness", 0.9),
    ("Sharpness", -0.9),
    ("Sharpness", 0.27),
    ("Posterize", 7.0),
    ("Posterize", 4.0),
    ("Posterize", 0.0),
    ("Posterize", 8.0),
    ("Solarize", 0.7),
    ("Solarize", 0.0),
    ("Solarize", 1.0),
    ("AutoContrast", 0.0),
    ("Equalize", 0.0),
]


@pytest.mark.parametrize("shape", [(64, 64), (48, 37)])
@pytest.mark.parametrize("fill", [0, (128, 10, 250)])
@pytest.mark.parametrize("name,magnitude", MAGNITUDES)
def test_each_op_matches_torchvision(photos, shape, fill, name, magnitude):
    # measured: every op, size and fill here is bit-exact (the geometric ops reproduce
    # torchvision's float32 sampling grid and grid_sample's ties to even); the bound is the
    # module's usual one grey level
    images = np.ascontiguousarray(photos[:, : shape[0], : shape[1]])
    t = T.Compose([T.RandAugment(num_ops=1, fill=fill)])
    out = t.run(images, params=op_rows(len(images), (name, magnitude))).views[0]
    tv_fill = list(fill) if isinstance(fill, tuple) else fill
    expected = torch.stack([reference(x, name, magnitude, tv_fill) for x in chw(images)])
    assert max_diff(out, expected) <= 1
    if name not in ("Contrast", "Color", "Brightness", "Sharpness"):
        assert torch.equal(out, expected)


def test_flat_and_tiny_images_match_torchvision():
    flat = np.full((2, 5, 6, 3), 77, np.uint8)
    tiny = np.arange(2 * 2 * 7 * 3, dtype=np.uint8).reshape(2, 2, 7, 3) * 3
    for images in (flat, tiny):
        for name, m in [("Equalize", 0.0), ("AutoContrast", 0.0), ("Sharpness", 0.8), ("Contrast", -0.5), ("Rotate", 12.0)]:
            out = T.Compose([T.RandAugment(num_ops=1)]).run(images, params=op_rows(2, (name, m))).views[0]
            expected = torch.stack([reference(x, name, m) for x in chw(images)])
            assert torch.equal(out, expected), name


def test_drawn_chains_replay_through_torchvision(photos):
    """Random RandAugment(3, random magnitude) draws, replayed op by op with torchvision."""
    images = np.concatenate([photos] * 8)
    t = T.Compose([T.RandAugment(num_ops=3, magnitude=None, fill=(127, 127, 127))])
    out, params = t.run(images, seed=3)
    out = out[0]
    names = t.param_names()
    ops_cols = [names.index(f"0.RandAugment.op{k}") for k in range(3)]
    mag_cols = [names.index(f"0.RandAugment.magnitude{k}") for k in range(3)]
    worst = 0
    for i, x in enumerate(chw(images)):
        for c_op, c_m in zip(ops_cols, mag_cols):
            x = reference(x, OPS[int(params[0][i, c_op])], float(params[0][i, c_m]), [127, 127, 127])
        worst = max(worst, max_diff(out[i], x))
    # one-grey-level differences of the blends can move a later op's threshold or histogram
    assert worst <= 1


# ---------------------------------------------------------------- magnitude tables and samplers


def table(name: str, bins: int, h: int, w: int) -> list[float] | None:
    fn, _ = v2.RandAugment._AUGMENTATION_SPACE[name]
    mags = fn(bins, h, w)
    return None if mags is None else [float(v) for v in mags]


@pytest.mark.parametrize("bins", [31, 10, 2])
def test_magnitudes_follow_torchvisions_tables(bins):
    n, h, w = 1200, 24, 40
    images = np.zeros((n, h, w, 3), np.uint8)
    for b in range(0, bins, max(1, bins // 4)):
        t = T.Compose([T.RandAugment(num_ops=2, magnitude=b, num_magnitude_bins=bins)])
        p = t.run(images, seed=b).params[0]
        for k in range(2):
            op, bin_, sign, m = p[:, 1 + 4 * k], p[:, 2 + 4 * k], p[:, 3 + 4 * k], p[:, 4 + 4 * k]
            assert (bin_ == b).all()
            for j, name in enumerate(OPS):
                rows = op == j
                ref = table(name, bins, h, w)
                expected = 0.0 if ref is None else ref[b]
                # float32 tables: torch.linspace's vectorised kernel may be one ulp away
                np.testing.assert_allclose(np.abs(m[rows]), abs(expected), rtol=1e-6, atol=1e-7, err_msg=name)
                if name in SIGNED and name not in NO_MAGNITUDE:
                    np.testing.assert_array_equal(np.sign(m[rows][m[rows] != 0]), sign[rows][m[rows] != 0])
                else:
                    assert (sign[rows] == 1).all(), name


def test_op_choice_bins_and_signs_are_uniform():
    n = 6000
    t = T.Compose([T.RandAugment(num_ops=2, magnitude=None)])
    p = t.run(np.zeros((n, 8, 8, 3), np.uint8), seed=11).params[0]
    ops_drawn = np.concatenate([p[:, 1], p[:, 5]]).astype(int)
    bins = np.concatenate([p[:, 2], p[:, 6]]).astype(int)
    signs = np.concatenate([p[:, 3], p[:, 7]])
    counts = np.bincount(ops_drawn, minlength=14)
    assert len(counts) == 14 and stats.chisquare(counts).pvalue > 1e-3, counts
    assert stats.chisquare(np.bincount(bins, minlength=31)).pvalue > 1e-3
    signed = np.isin(ops_drawn, [OPS.index(s) for s in SIGNED])
    neg = (signs[signed] < 0).mean()
    assert abs(neg - 0.5) < 4 * math.sqrt(0.25 / signed.sum()), neg
    # the two slots are independent: the pair (op0, op1) is uniform over 14 × 14
    pairs = np.bincount(p[:, 1].astype(int) * 14 + p[:, 5].astype(int), minlength=196)
    assert stats.chisquare(pairs).pvalue > 1e-3
    # a fixed magnitude draws no bin
    fixed = T.Compose([T.RandAugment(num_ops=2, magnitude=9)]).run(np.zeros((50, 8, 8, 3), np.uint8), seed=1).params[0]
    assert (fixed[:, 2] == 9).all() and (fixed[:, 6] == 9).all()


def test_zero_ops_is_identity(photos):
    out = T.Compose([T.RandAugment(num_ops=0)])(photos, seed=0)
    assert torch.equal(out, chw(photos))
    assert T.Compose([T.RandAugment(num_ops=0)]).param_names() == ["0.RandAugment.applied"]


# ---------------------------------------------------------------- Cutout


def test_cutout_box_statistics():
    # a wide image: the side follows min(H, W) = 30 and columns almost never clip
    n, h, w = 4000, 30, 4000
    t = T.Compose([T.Cutout(0.5)])
    p = t.run(np.zeros((n, h, w, 3), np.uint8), seed=5).params[0]
    top, left, bh, bw = p[:, 1], p[:, 2], p[:, 3], p[:, 4]
    assert ((top + bh <= h) & (left + bw <= w)).all()
    assert (bh <= 15).all() and (bw <= 15).all() and (bh <= bw).all()
    # width = floor(v·30), v ~ U(0, 0.5]: width + U[0, 1) is uniform on [0, 15]
    jitter = np.random.default_rng(0).random(n)
    assert stats.kstest((bw + jitter) / 15, stats.uniform(0, 1).cdf).pvalue > 1e-3
    # centres uniform over the image
    assert stats.kstest((left + bw / 2) / w, stats.uniform(0, 1).cdf).pvalue > 1e-3
    # rows: clipped at both borders, the box reaches every row
    assert top.min() == 0 and (top + bh).max() == h and (bh < bw).any()


def test_cutout_fills_only_its_box(photos):
    t = T.Compose([T.RandAugment(num_ops=0, cutout=0.5, cutout_fill=(1, 2, 3))])
    assert t.param_names()[-4:] == ["1.Cutout.top", "1.Cutout.left", "1.Cutout.height", "1.Cutout.width"]
    out, params = t.run(photos, seed=2)
    out, params = out[0], params[0]
    for i in range(len(photos)):
        top, left, bh, bw = params[i, -4:].astype(int)
        mask = torch.zeros(64, 64, dtype=torch.bool)
        mask[top : top + bh, left : left + bw] = True
        x = chw(photos[i : i + 1])[0]
        assert torch.equal(out[i][:, ~mask], x[:, ~mask])
        assert torch.equal(out[i][:, mask], torch.tensor([1, 2, 3], dtype=torch.uint8)[:, None].expand(3, int(mask.sum())))
    # injected box
    row = np.tile([1.0, 1.0, 0, 0, 64, 2], (len(photos), 1))
    out = t.run(photos, params=row).views[0]
    assert (out[:, 0, :, :2] == 1).all() and torch.equal(out[:, :, :, 2:], chw(photos)[:, :, :, 2:])


def test_cutout_probability():
    t = T.Compose([T.Cutout(0.3, p=0.25)])
    p = t.run(np.zeros((4000, 8, 8, 3), np.uint8), seed=0).params[0]
    assert abs(p[:, 0].mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)


# ---------------------------------------------------------------- determinism, composition


def test_same_bytes_for_any_thread_count(photos):
    pipe = T.MultiView([[T.RandomHorizontalFlip(), T.RandAugment(2, None, cutout=0.5)], [T.RandAugment(3, 14, fill=127), T.Normalize()]])
    images = np.concatenate([photos] * 12)
    indices = np.arange(100, 100 + len(images))
    before = ops.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 4):
            ops.set_num_threads(threads)
            results.append(pipe.run(images, seed=7, epoch=2, indices=indices))
    finally:
        ops.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(results[0].views, r.views):
            assert torch.equal(a, b)
        for a, b in zip(results[0].params, r.params):
            np.testing.assert_array_equal(a, b)
    # the same sample in another batch gives the same bytes; replaying the params too
    part = pipe.run(images[5:9], seed=7, epoch=2, indices=indices[5:9])
    assert torch.equal(part.views[0], results[0].views[0][5:9])
    replay = pipe.run(images, seed=99, params=results[0].params)
    assert torch.equal(replay.views[1], results[0].views[1])
    other = pipe.run(images, seed=7, epoch=3, indices=indices)
    assert not np.array_equal(other.params[0], results[0].params[0])


def test_composes_with_other_transforms(photos):
    strong = T.Compose([T.RandomResizedCrop(32), T.RandomHorizontalFlip(), T.RandAugment(2, None, cutout=0.5), T.Normalize()])
    out = strong(photos, seed=0)
    assert out.shape == (8, 3, 32, 32) and out.dtype == torch.float32
    wrapped = T.Compose([T.RandomApply([T.RandAugment(1, 5)], p=0.5), T.RandomErasing(0.5)])
    assert wrapped(photos, seed=1).shape == (8, 3, 64, 64)
    names = strong.param_names()
    assert "2.RandAugment.magnitude1" in names and "3.Cutout.width" in names


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"num_ops": -1}, "num_ops"),
        ({"num_ops": 1.5}, "num_ops"),
        ({"magnitude": 31}, "magnitude"),
        ({"magnitude": -1}, "magnitude"),
        ({"magnitude": 3, "num_magnitude_bins": 3}, "magnitude"),
        ({"num_magnitude_bins": 1}, "num_magnitude_bins"),
        ({"fill": 256}, "fill"),
        ({"fill": (1, 2)}, "fill"),
        ({"cutout": 0.0}, "cutout"),
        ({"cutout": 1.5}, "cutout"),
        ({"cutout": 0.5, "cutout_fill": -1}, "fill"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}:"):
        T.RandAugment(**kwargs)


def test_native_checks_name_the_argument():
    from selfsup import _native

    for args, arg in [([-1.0, 9.0, 31.0, 0, 0, 0], "num_ops"), ([2.0, 31.0, 31.0, 0, 0, 0], "magnitude"), ([2.0, 9.0, 1.0, 0, 0, 0], "num_magnitude_bins"), ([2.0, 9.0, 31.0, 0, 0, 300], "fill")]:
        with pytest.raises(ValueError, match=f"^{arg}:"):
            _native.AugmentPipeline([[("rand_augment", None, False, args)]])
    with pytest.raises(ValueError, match="^cutout:"):
        _native.AugmentPipeline([[("cutout", None, False, [0.0, 127, 127, 127])]])


@pytest.mark.parametrize(
    "row",
    [
        [1.0, 14, NAN, 1, 0.0],  # no such op
        [1.0, 2.5, NAN, 1, 0.0],
        [1.0, OPS.index("Posterize"), NAN, 1, 9.0],
        [1.0, OPS.index("Solarize"), NAN, 1, 1.5],
        [1.0, OPS.index("Brightness"), NAN, 1, -1.5],
        [1.0, OPS.index("Rotate"), NAN, 1, math.inf],
        [1.0, OPS.index("Rotate"), 31, 1, 3.0],  # bin outside the table
        [1.0, OPS.index("Rotate"), NAN, 0.5, 3.0],  # sign
        [0.5, 0, NAN, 1, 0.0],
    ],
)
def test_bad_params_rows_raise(photos, row):
    t = T.Compose([T.RandAugment(num_ops=1)])
    with pytest.raises(ValueError, match="^params:"):
        t.run(photos, params=np.tile(row, (len(photos), 1)))


def test_bad_cutout_box_raises(photos):
    t = T.Compose([T.Cutout()])
    with pytest.raises(ValueError, match="^params:"):
        t.run(photos, params=np.tile([1.0, 60, 0, 10, 4], (len(photos), 1)))


# ---------------------------------------------------------------- RandomCrop (pad + crop) and FixMatch's views


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("shape,size,padding", [((64, 64), 64, 8), ((48, 37), (40, 30), 5), ((20, 25), (24, 31), 4)])
def test_random_crop_matches_torchvision(photos, rng, mode, shape, size, padding):
    from torchvision.transforms.v2 import functional as F

    images = np.ascontiguousarray(photos[:, : shape[0], : shape[1]])
    t = T.Compose([T.RandomCrop(size, padding=padding, padding_mode=mode)])
    h, w = (size, size) if isinstance(size, int) else size
    tops = rng.integers(0, shape[0] + 2 * padding - h + 1, size=len(images))
    lefts = rng.integers(0, shape[1] + 2 * padding - w + 1, size=len(images))
    # the corners of the padded image are included
    tops[:2], lefts[:2] = 0, shape[1] + 2 * padding - w
    params = np.stack([np.ones(len(images)), tops, lefts], axis=1).astype(np.float64)
    out = t.run(images, params=params).views[0]
    for i, x in enumerate(chw(images)):
        padded = F.pad(x, [padding] * 4, padding_mode=mode)
        assert torch.equal(out[i], F.crop(padded, int(tops[i]), int(lefts[i]), h, w)), i


def test_random_crop_draws_and_errors(photos):
    t = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect")])
    p = t.run(np.zeros((4000, 32, 32, 3), np.uint8), seed=0).params[0]
    assert stats.chisquare(np.bincount(p[:, 1].astype(int), minlength=9)).pvalue > 1e-3
    assert stats.chisquare(np.bincount(p[:, 2].astype(int), minlength=9)).pvalue > 1e-3
    assert p[:, 1:].max() == 8
    with pytest.raises(ValueError, match="^images:"):
        T.Compose([T.RandomCrop(8, padding=10, padding_mode="reflect")])(photos[:, :9, :9].copy(), seed=0)
    with pytest.raises(ValueError, match="^images:"):
        T.Compose([T.RandomCrop(80, padding=2)])(photos, seed=0)
    with pytest.raises(ValueError, match="^padding:"):
        T.RandomCrop(8, padding=-1)
    with pytest.raises(ValueError, match="^padding_mode:"):
        T.RandomCrop(8, padding_mode="edge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^params:"):
        t.run(photos[:, :32, :32].copy(), params=np.tile([1.0, 9, 0], (8, 1)))


def test_fixmatch_views():
    images = photo_crops(32, 64, seed=4)
    pipe = T.fixmatch(32, normalize=False)
    weak, strong = pipe(images, seed=0)
    assert weak.shape == strong.shape == (64, 3, 32, 32) and weak.dtype == torch.uint8
    names = pipe.param_names(1)
    assert names[:5] == ["0.RandomCrop.applied", "0.RandomCrop.top", "0.RandomCrop.left", "1.HorizontalFlip.applied", "2.RandAugment.applied"]
    assert names[-4:] == ["3.Cutout.top", "3.Cutout.left", "3.Cutout.height", "3.Cutout.width"]
    # the strong view replays as: its weak part, then the ops through torchvision, then the box
    run = pipe.run(images, seed=0)
    p = run.params[1]
    weak_only = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip()])
    base = weak_only.run(images, params=p[:, :4]).views[0]
    for i in range(len(images)):
        x = base[i]
        for k in range(2):
            x = reference(x, OPS[int(p[i, 5 + 4 * k])], float(p[i, 8 + 4 * k]))
        top, left, bh, bw = p[i, -4:].astype(int)
        x = x.clone()
        x[:, top : top + bh, left : left + bw] = 127
        assert torch.equal(run.views[1][i], x), i
    normalized = T.fixmatch(32)(images, seed=0)
    assert normalized[0].dtype == torch.float32
