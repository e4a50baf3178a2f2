"""selfsup.transforms against torchvision v2 (injected parameters), its samplers, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import selfsup.ops as ops
import selfsup.transforms as T
from selfsup.data import photo_crops

NAN = float("nan")


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return photo_crops(96, 8, seed=1)


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.to(torch.int16) - b.to(torch.int16)).abs().max())


def jitter_params(n: int, order: tuple[int, ...], b=NAN, c=NAN, s=NAN, h=NAN) -> np.ndarray:
    return np.tile([1.0, *order, b, c, s, h], (n, 1))


JITTER = T.Compose([T.ColorJitter(0.5, 0.5, 0.5, 0.2)])


# ---------------------------------------------------------------- against torchvision, injected parameters


def test_resized_crop_matches_torchvision(photos, rng):
    size = 40
    t = T.Compose([T.RandomResizedCrop(size)])
    n = len(photos)
    boxes = []
    for _ in range(n):
        h, w = rng.integers(8, 96, size=2)
        boxes.append([1, rng.integers(0, 96 - h + 1), rng.integers(0, 96 - w + 1), h, w])
    out = t.run(photos, params=np.array(boxes, np.float64)).views[0]
    for i, (_, top, left, h, w) in enumerate(boxes):
        ref = F.resized_crop(chw(photos[i : i + 1]), int(top), int(left), int(h), int(w), [size, size], antialias=True)
        assert max_diff(out[i : i + 1], ref) <= 1, (top, left, h, w)


def test_upscaling_crop_matches_torchvision(photos):
    t = T.Compose([T.RandomResizedCrop((50, 70))])
    out = t.run(photos[:2], params=np.array([[1, 10, 20, 30, 25]] * 2, np.float64)).views[0]
    ref = F.resized_crop(chw(photos[:2]), 10, 20, 30, 25, [50, 70], antialias=True)
    assert max_diff(out, ref) <= 1


def test_flip_is_exact(photos):
    out = T.Compose([T.RandomHorizontalFlip(1.0)])(photos, seed=0)
    assert torch.equal(out, F.horizontal_flip(chw(photos)))
    assert torch.equal(T.Compose([T.RandomHorizontalFlip(0.0)])(photos, seed=0), chw(photos))


@pytest.mark.parametrize(
    "slot,factor,ref",
    [
        (0, 0.3, lambda x, f: F.adjust_brightness(x, f)),
        (0, 1.37, lambda x, f: F.adjust_brightness(x, f)),
        (1, 0.55, lambda x, f: F.adjust_contrast(x, f)),
        (1, 1.4, lambda x, f: F.adjust_contrast(x, f)),
        (2, 0.0, lambda x, f: F.adjust_saturation(x, f)),
        (2, 1.6, lambda x, f: F.adjust_saturation(x, f)),
        (3, 0.1, lambda x, f: F.adjust_hue(x, f)),
        (3, -0.45, lambda x, f: F.adjust_hue(x, f)),
    ],
)
def test_each_colour_op_matches_torchvision(photos, slot, factor, ref):
    factors = [NAN] * 4
    factors[slot] = factor
    out = JITTER.run(photos, params=jitter_params(len(photos), (0, 1, 2, 3), *factors)).views[0]
    expected = torch.stack([ref(x, factor) for x in chw(photos)])
    assert max_diff(out, expected) <= 1


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1), (1, 3, 0, 2)])
def test_jitter_in_any_order_matches_torchvision(photos, order):
    f = {0: 1.3, 1: 0.7, 2: 1.5, 3: -0.08}
    out = JITTER.run(photos, params=jitter_params(len(photos), order, f[0], f[1], f[2], f[3])).views[0]
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    x = chw(photos)
    for k in order:
        x = torch.stack([fns[k](img, f[k]) for img in x])
    assert max_diff(out, x) <= 1


def test_grayscale_and_solarize_match_torchvision(photos):
    gray = T.Compose([T.RandomGrayscale(1.0)])(photos, seed=0)
    assert max_diff(gray, F.rgb_to_grayscale(chw(photos), num_output_channels=3)) <= 1
    sol = T.Compose([T.RandomSolarize(128, p=1.0)])(photos, seed=0)
    assert torch.equal(sol, F.solarize(chw(photos), 128))


@pytest.mark.parametrize("kernel,sigma", [(23, 2.0), (23, 0.1), (9, 1.3), (5, 0.7)])
def test_blur_matches_torchvision(photos, kernel, sigma):
    t = T.Compose([T.GaussianBlur(kernel)])
    out = t.run(photos, params=np.tile([1.0, sigma], (len(photos), 1))).views[0]
    assert max_diff(out, F.gaussian_blur(chw(photos), [kernel, kernel], [sigma, sigma])) <= 1


def test_normalize_output(photos):
    out = T.Compose([T.Normalize()])(photos, seed=0)
    ref = F.normalize(F.to_dtype(chw(photos), torch.float32, scale=True), list(T.IMAGENET_MEAN), list(T.IMAGENET_STD))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_whole_simclr_view_replayed_through_torchvision(photos):
    """Run the SimCLR view, then replay its drawn parameters with torchvision's functionals."""
    view = T.simclr(48, normalize=False).views[0]
    out, params = view.run(photos, seed=11)
    names = view.param_names()
    col = {n: k for k, n in enumerate(names)}
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for i, x in enumerate(chw(photos)):
        p = params[0][i]
        box = [int(p[col[f"0.RandomResizedCrop.{k}"]]) for k in ("top", "left", "height", "width")]
        x = F.resized_crop(x, *box, [48, 48], antialias=True)
        if p[col["1.HorizontalFlip.applied"]]:
            x = F.horizontal_flip(x)
        if p[col["2.ColorJitter.applied"]]:
            factors = [p[col[f"2.ColorJitter.{k}"]] for k in ("brightness", "contrast", "saturation", "hue")]
            for k in range(4):
                op = int(p[col[f"2.ColorJitter.order{k}"]])
                x = fns[op](x, float(factors[op]))
        if p[col["3.Grayscale.applied"]]:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        if p[col["4.GaussianBlur.applied"]]:
            s = float(p[col["4.GaussianBlur.sigma"]])
            x = F.gaussian_blur(x, [5, 5], [s, s])
        # each step may differ by one grey level and later steps (contrast > 1, hue) can amplify it
        diff = (out[0][i].to(torch.int16) - x.to(torch.int16)).abs()
        assert float(diff.float().mean()) < 0.3 and int(diff.max()) <= 8, (i, float(diff.float().mean()), int(diff.max()))


def test_mocov1_view_replayed_through_torchvision(photos):
    """MoCo v1's view (the official code: RandomResizedCrop(0.2, 1), RandomGrayscale(0.2),
    ColorJitter(0.4, 0.4, 0.4, 0.4), flip), its drawn parameters replayed with torchvision's
    functionals in that order. The replay starts from our crop (within one grey level of
    torchvision's, tested above), which the always-on jitter could amplify by up to (1.4)³."""
    recipe = T.mocov1(40, normalize=False)
    view = recipe.views[0]
    out, params = view.run(photos, seed=4)
    col = {n: k for k, n in enumerate(view.param_names())}
    crops = T.Compose([T.RandomResizedCrop(40)]).run(photos, params=np.ascontiguousarray(params[0][:, :5])).views[0]
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for i, x in enumerate(crops):
        p = params[0][i]
        if p[col["1.Grayscale.applied"]]:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        factors = [p[col[f"2.ColorJitter.{k}"]] for k in ("brightness", "contrast", "saturation", "hue")]
        for k in range(4):
            op = int(p[col[f"2.ColorJitter.order{k}"]])
            x = fns[op](x, float(factors[op]))
        if p[col["3.HorizontalFlip.applied"]]:
            x = F.horizontal_flip(x)
        diff = (out[0][i].to(torch.int16) - x.to(torch.int16)).abs()
        assert float(diff.float().mean()) < 0.05 and int(diff.max()) <= 3, (i, float(diff.float().mean()), int(diff.max()))
    # v1's sampler: every image jittered, hue in [-0.4, 0.4], gray 20%, crops of 20-100% of the area, no blur
    drawn = recipe.run(np.zeros((3000, 20, 20, 3), np.uint8), seed=2).params[1]
    assert (drawn[:, col["2.ColorJitter.applied"]] == 1).all()
    assert stats.kstest(drawn[:, col["2.ColorJitter.hue"]], stats.uniform(-0.4, 0.8).cdf).pvalue > 1e-3
    assert stats.kstest(drawn[:, col["2.ColorJitter.contrast"]], stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3
    assert abs(drawn[:, col["1.Grayscale.applied"]].mean() - 0.2) < 4 * math.sqrt(0.16 / 3000)
    area = drawn[:, 3] * drawn[:, 4] / 400
    assert area.min() > 0.2 * 0.8 and not any("Blur" in n for n in col)


# ---------------------------------------------------------------- sampled parameters vs torchvision's samplers


def test_crop_parameters_follow_torchvision_distribution():
    n = 4000
    ours = T.Compose([T.RandomResizedCrop(8)]).run(np.zeros((n, 60, 90, 3), np.uint8), seed=3).params[0]
    area_ours = ours[:, 3] * ours[:, 4] / (60 * 90)
    ratio_ours = ours[:, 4] / ours[:, 3]
    torch.manual_seed(0)
    img = torch.zeros(3, 60, 90)
    ref = np.array([v2.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)], np.float64)
    area_ref = ref[:, 2] * ref[:, 3] / (60 * 90)
    ratio_ref = ref[:, 3] / ref[:, 2]
    assert stats.ks_2samp(area_ours, area_ref).pvalue > 1e-3
    assert stats.ks_2samp(ratio_ours, ratio_ref).pvalue > 1e-3
    assert stats.ks_2samp(ours[:, 1] / 60, ref[:, 0] / 60).pvalue > 1e-3


def test_jitter_parameters_are_uniform_and_orders_cover_all_permutations():
    n = 4000
    p = T.Compose([T.ColorJitter(0.4, 0.3, 0.2, 0.1)]).run(np.zeros((n, 2, 2, 3), np.uint8), seed=5).params[0]
    for k, (lo, hi) in zip(range(5, 9), [(0.6, 1.4), (0.7, 1.3), (0.8, 1.2), (-0.1, 0.1)]):
        assert stats.kstest(p[:, k], stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    perms = [tuple(r) for r in p[:, 1:5].astype(int)]
    counts = np.array([perms.count(q) for q in set(perms)])
    assert len(counts) == 24
    assert stats.chisquare(counts).pvalue > 1e-3


def test_coins_follow_their_probabilities():
    view = T.simclr(8).views[0]
    p = view.run(np.zeros((4000, 10, 10, 3), np.uint8), seed=9).params[0]
    col = {n: k for k, n in enumerate(view.param_names())}
    for name, prob in [("1.HorizontalFlip", 0.5), ("2.ColorJitter", 0.8), ("3.Grayscale", 0.2), ("4.GaussianBlur", 0.5)]:
        rate = p[:, col[f"{name}.applied"]].mean()
        assert abs(rate - prob) < 4 * math.sqrt(prob * (1 - prob) / 4000), (name, rate)


# ---------------------------------------------------------------- determinism, views, inputs


def test_same_bytes_for_any_thread_count(photos):
    pipe = T.simclr(32)
    images = np.concatenate([photos] * 20)
    before = ops.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            ops.set_num_threads(threads)
            results.append(pipe.run(images, seed=7, epoch=2))
    finally:
        ops.set_num_threads(before)
    for a, b in zip(results[0].views, results[1].views):
        assert torch.equal(a, b)


def test_sample_depends_only_on_seed_epoch_index(photos):
    pipe = T.byol(24)
    idx = np.arange(100, 108)
    full = pipe.run(photos, seed=1, epoch=4, indices=idx)
    one = pipe.run(photos[3:4], seed=1, epoch=4, indices=idx[3:4])
    for a, b in zip(full.views, one.views):
        assert torch.equal(a[3:4], b)
    other = pipe.run(photos, seed=1, epoch=5, indices=idx)
    assert not torch.equal(full.views[0], other.views[0])
    assert not torch.equal(full.views[0], full.views[1])
    replay = pipe.run(photos[::-1].copy(), seed=99, params=[p[::-1] for p in full.params])
    for a, b in zip(full.views, replay.views):
        assert torch.equal(a.flip(0), b)


def test_list_of_images_of_different_sizes(photos):
    pipe = T.simclr(16)
    images = [photos[0][:50, :70].copy(), photos[1], photos[2][:33, :90]]
    out = pipe.run(images, seed=0)
    assert [tuple(v.shape) for v in out.views] == [(3, 3, 16, 16)] * 2
    alone = pipe.run(images[2:], seed=0, indices=[2])
    assert torch.equal(out.views[1][2:], alone.views[1])
    with pytest.raises(ValueError, match="images"):
        T.Compose([T.RandomGrayscale(0.5)])(images, seed=0)


def test_uint8_output_and_torch_input(photos):
    out = T.Compose([T.RandomResizedCrop(20), T.RandomHorizontalFlip()])(torch.from_numpy(photos), seed=0)
    assert out.dtype == torch.uint8 and out.shape == (8, 3, 20, 20)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "images,exc,arg",
    [
        (np.zeros((2, 8, 8, 3), np.float32), TypeError, "images"),
        (np.zeros((2, 0, 8, 3), np.uint8), ValueError, "images"),
        (np.zeros((0, 8, 8, 3), np.uint8), ValueError, "images"),
        (np.zeros((2, 8, 8, 2), np.uint8), ValueError, "images"),
        (np.zeros((8, 8, 3), np.uint8), ValueError, "images"),
        ([np.zeros((8, 8, 2), np.uint8)], ValueError, r"images\[0\]"),
        ("not an image", TypeError, "images"),
    ],
)
def test_bad_images_name_the_argument(images, exc, arg):
    with pytest.raises(exc, match=f"^{arg}"):
        T.simclr(8)(images, seed=0)


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: T.RandomResizedCrop(0), "size"),
        (lambda: T.RandomResizedCrop(-3), "size"),
        (lambda: T.RandomResizedCrop(8, scale=(0.5, 0.1)), "scale"),
        (lambda: T.RandomResizedCrop(8, ratio=(0.0, 1.0)), "ratio"),
        (lambda: T.RandomHorizontalFlip(1.5), "p"),
        (lambda: T.RandomGrayscale(-0.1), "p"),
        (lambda: T.RandomApply([T.GaussianBlur(3)], p=2.0), "p"),
        (lambda: T.GaussianBlur(3, sigma=0.0), "sigma"),
        (lambda: T.GaussianBlur(3, sigma=(-1.0, 1.0)), "sigma"),
        (lambda: T.GaussianBlur(4), "kernel_size"),
        (lambda: T.ColorJitter(brightness=-0.1), "brightness"),
        (lambda: T.ColorJitter(hue=0.7), "hue"),
        (lambda: T.Compose([T.RandomGrayscale(), T.RandomResizedCrop(8)]), "transforms"),
        (lambda: T.Compose([T.Normalize(), T.RandomGrayscale()]), "transforms"),
    ],
)
def test_bad_arguments_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        make()


def test_bad_native_arguments_are_caught_there_too():
    from selfsup import _native

    with pytest.raises(ValueError, match="^p"):
        _native.AugmentPipeline([[("grayscale", 1.5, False, [])]])
    with pytest.raises(ValueError, match="^sigma"):
        _native.AugmentPipeline([[("gaussian_blur", None, False, [3, 0.0, 1.0])]])
    with pytest.raises(ValueError, match="^size"):
        _native.AugmentPipeline([[("random_resized_crop", None, False, [0, 8, 0.1, 1, 1, 1])]])


def test_bad_params_are_rejected(photos):
    t = T.Compose([T.RandomResizedCrop(8)])
    with pytest.raises(ValueError, match="^params"):
        t.run(photos, params=np.tile([1.0, 0, 0, 97, 10], (8, 1)))
    with pytest.raises(ValueError, match="^params"):
        t.run(photos, params=np.zeros((8, 3)))
    with pytest.raises(ValueError, match="^params"):
        JITTER.run(photos, params=jitter_params(8, (0, 0, 1, 2), 1.0))
    with pytest.raises(ValueError, match="^params"):
        T.Compose([T.GaussianBlur(3)]).run(photos, params=np.tile([1.0, -1.0], (8, 1)))
