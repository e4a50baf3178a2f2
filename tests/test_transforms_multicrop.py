"""CenterCrop, RandomVerticalFlip, RandomErasing against torchvision v2; DINO and SwAV multi-crop recipes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import selfsup.transforms as T
from selfsup.data import photo_crops


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return photo_crops(64, 6, seed=3)


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def col(view: T.Compose | T.MultiView, name: str, v: int = 0) -> int:
    names = view.param_names() if isinstance(view, T.Compose) else view.param_names(v)
    return names.index(name)


# ---------------------------------------------------------------- CenterCrop, vertical flip


@pytest.mark.parametrize("size", [(32, 32), (31, 40), (63, 1), (80, 70), (64, 90), (9, 100), (65, 65)])
def test_center_crop_matches_torchvision_including_padding(photos, size):
    out = T.Compose([T.CenterCrop(size)])(photos, seed=0)
    assert torch.equal(out, F.center_crop(chw(photos), list(size)))


def test_center_crop_after_resize_and_on_images_of_different_sizes(photos):
    images = [photos[0], photos[1][:50, :37].copy(), photos[2][:20, :64].copy()]
    out = T.Compose([T.CenterCrop(30), T.RandomHorizontalFlip(0.0)])(images, seed=0)
    for k, image in enumerate(images):
        assert torch.equal(out[k], F.center_crop(chw(image[None])[0], [30, 30]))
    t = T.Compose([T.Resize(48), T.CenterCrop(40), T.CenterCrop((20, 30))])
    resized = T.Compose([T.Resize(48)])(photos, seed=0)
    assert torch.equal(t(photos, seed=0), F.center_crop(F.center_crop(resized, [40, 40]), [20, 30]))


def test_vertical_flip_is_exact_and_follows_its_coin(photos):
    assert torch.equal(T.Compose([T.RandomVerticalFlip(1.0)])(photos, seed=0), F.vertical_flip(chw(photos)))
    t = T.Compose([T.RandomVerticalFlip(0.3)])
    p = t.run(np.zeros((4000, 2, 2, 3), np.uint8), seed=4).params[0][:, 0]
    assert abs(p.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)


# ---------------------------------------------------------------- RandomErasing


def erase_params(n: int, box: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    return np.tile([1.0, *box, seed], (n, 1))


@pytest.mark.parametrize("box", [(3, 5, 10, 20), (0, 0, 63, 63), (10, 40, 0, 7)])
def test_erasing_uint8_matches_torchvision(photos, box):
    t = T.Compose([T.RandomErasing(1.0, value=(10, 200, 0))])
    out = t.run(photos, params=erase_params(len(photos), box)).views[0]
    ref = F.erase(chw(photos), *box, v=torch.tensor([10, 200, 0], dtype=torch.uint8)[:, None, None])
    assert torch.equal(out, ref)


def test_erasing_after_normalize_matches_torchvision(photos):
    t = T.Compose([T.Normalize(), T.RandomErasing(1.0, value=0)])
    box = (7, 2, 30, 12)
    out = t.run(photos, params=erase_params(len(photos), box)).views[0]
    x = F.normalize(F.to_dtype(chw(photos), torch.float32, scale=True), list(T.IMAGENET_MEAN), list(T.IMAGENET_STD))
    torch.testing.assert_close(out, F.erase(x, *box, v=torch.zeros(3, 1, 1)), atol=1e-5, rtol=1e-5)


def test_random_erasing_noise_is_standard_normal_inside_the_box_only(photos):
    t = T.Compose([T.RandomResizedCrop(48), T.Normalize(), T.RandomErasing(1.0, value="random")])
    plain = T.Compose([T.RandomResizedCrop(48), T.Normalize()])
    run = t.run(photos, seed=8)
    base = plain.run(photos, params=run.params[0][:, :5]).views[0]
    c = col(t, "1.RandomErasing.top")
    noise = []
    for i in range(len(photos)):
        top, left, h, w = (int(v) for v in run.params[0][i, c : c + 4])
        inside = torch.zeros(48, 48, dtype=torch.bool)
        inside[top : top + h, left : left + w] = True
        assert torch.equal(run.views[0][i][:, ~inside], base[i][:, ~inside])
        noise.append(run.views[0][i][:, inside].flatten())
    values = torch.cat(noise).double().numpy()
    assert len(values) > 500
    assert stats.kstest(values, "norm").pvalue > 1e-3
    again = t.run(photos, seed=8)
    assert torch.equal(again.views[0], run.views[0])


def test_erasing_boxes_follow_torchvision_sampler():
    n = 3000
    t = T.Compose([T.RandomErasing(1.0)])
    ours = t.run(np.zeros((n, 40, 60, 3), np.uint8), seed=2).params[0]
    torch.manual_seed(0)
    sampler = v2.RandomErasing(p=1.0, value=0)
    ref = []
    for _ in range(n):
        p = sampler.make_params([torch.zeros(3, 40, 60)])
        if p["v"] is not None:
            ref.append([p["i"], p["j"], p["h"], p["w"]])
    ref_a = np.array(ref, np.float64)
    fitted = ours[ours[:, 3] * ours[:, 4] > 0]
    for k in range(4):
        assert stats.ks_2samp(fitted[:, 1 + k], ref_a[:, k]).pvalue > 1e-3, k
    area = lambda a, c: a[:, c] * a[:, c + 1] / 2400  # noqa: E731
    assert stats.ks_2samp(area(fitted, 3), area(ref_a, 2)).pvalue > 1e-3
    coin = T.Compose([T.RandomErasing(0.25)]).run(np.zeros((4000, 8, 8, 3), np.uint8), seed=1).params[0][:, 0]
    assert abs(coin.mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)


def test_erasing_that_never_fits_erases_nothing(photos):
    t = T.Compose([T.RandomErasing(1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0), value=0)])
    assert torch.equal(t(photos, seed=0), chw(photos))


# ---------------------------------------------------------------- recipes: DINO and SwAV multi-crop


def test_dino_views_sizes_and_asymmetric_blur_solarize(photos):
    recipe = T.dino(32, 16, n_local=4)
    images = [photos[0], photos[1][:40, :57].copy(), photos[2][:33, :64].copy()]
    views = recipe(images, seed=0)
    assert [tuple(v.shape) for v in views] == [(3, 3, 32, 32)] * 2 + [(3, 3, 16, 16)] * 4
    assert all(v.dtype == torch.float32 for v in views)
    run = recipe.run(np.zeros((4000, 24, 24, 3), np.uint8), seed=1)
    rates = {}
    for v, name in [(0, "4.GaussianBlur"), (1, "4.GaussianBlur"), (1, "5.Solarize"), (2, "4.GaussianBlur"), (5, "4.GaussianBlur")]:
        rates[(v, name)] = run.params[v][:, col(recipe, f"{name}.applied", v)].mean()
    for (v, name), p in {(0, "4.GaussianBlur"): 1.0, (1, "4.GaussianBlur"): 0.1, (1, "5.Solarize"): 0.2,
                         (2, "4.GaussianBlur"): 0.5, (5, "4.GaussianBlur"): 0.5}.items():
        assert abs(rates[(v, name)] - p) <= 4 * math.sqrt(p * (1 - p) / 4000) + 1e-12, (v, name, rates[(v, name)])
    assert "5.Solarize.applied" not in recipe.param_names(0)
    # global crops cover 40-100% of the image, local ones 5-40%
    for v, (lo, hi) in [(0, (0.4, 1.0)), (3, (0.05, 0.4))]:
        p = run.params[v]
        frac = p[:, 3] * p[:, 4] / (24 * 24)
        assert frac.min() > lo * 0.8 and frac.max() < hi * 1.25 + 0.05
    # local views are independent draws
    assert not np.array_equal(run.params[2], run.params[3])


def test_dino_views_replay_through_torchvision(photos):
    recipe = T.dino(32, 16, n_local=1, normalize=False)
    run = recipe.run(photos, seed=5)
    fns = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue]
    for v, size in [(1, 32), (2, 16)]:
        names = recipe.param_names(v)
        c = {n: k for k, n in enumerate(names)}
        for i, x in enumerate(chw(photos)):
            p = run.params[v][i]
            box = [int(p[c[f"0.RandomResizedCrop.{k}"]]) for k in ("top", "left", "height", "width")]
            x = F.resized_crop(x, *box, [size, size], antialias=True)
            if p[c["1.HorizontalFlip.applied"]]:
                x = F.horizontal_flip(x)
            if p[c["2.ColorJitter.applied"]]:
                f = [p[c[f"2.ColorJitter.{k}"]] for k in ("brightness", "contrast", "saturation", "hue")]
                for k in range(4):
                    op = int(p[c[f"2.ColorJitter.order{k}"]])
                    x = fns[op](x, float(f[op]))
            if p[c["3.Grayscale.applied"]]:
                x = F.rgb_to_grayscale(x, num_output_channels=3)
            if p[c["4.GaussianBlur.applied"]]:
                s = float(p[c["4.GaussianBlur.sigma"]])
                x = F.gaussian_blur(x, [13, 13], [s, s])
            if "5.Solarize.applied" in c and p[c["5.Solarize.applied"]]:
                x = F.solarize(x, 128)
            diff = (run.views[v][i].to(torch.int16) - x.to(torch.int16)).abs()
            assert float(diff.float().mean()) < 0.3 and int(diff.max()) <= 8, (v, i)


def test_swav_groups_and_parameters(photos):
    recipe = T.swav((32, 16), (2, 3), (0.14, 0.05), (1.0, 0.14))
    views = recipe(photos, seed=0)
    assert [tuple(v.shape) for v in views] == [(6, 3, 32, 32)] * 2 + [(6, 3, 16, 16)] * 3
    p = recipe.run(np.zeros((3000, 20, 20, 3), np.uint8), seed=3).params
    jitter = p[0][p[0][:, col(recipe, "2.ColorJitter.applied")] == 1]
    b = jitter[:, col(recipe, "2.ColorJitter.brightness")]
    assert stats.kstest(b, stats.uniform(0.2, 1.6).cdf).pvalue > 1e-3  # ColorJitter(0.8): U[0.2, 1.8]
    local = p[4][:, 3] * p[4][:, 4] / 400
    assert local.max() < 0.14 * 1.3 + 0.02
    with pytest.raises(ValueError, match="size_crops"):
        T.swav((32, 16), (2,), (0.14, 0.05), (1.0, 0.14))
    with pytest.raises(ValueError, match="n_crops"):
        T.swav((32,), (0,), (0.14,), (1.0,))


def test_recipes_are_deterministic_per_sample(photos):
    recipe = T.dino(24, 12, n_local=2)
    idx = np.arange(50, 56)
    full = recipe.run(photos, seed=3, epoch=1, indices=idx)
    part = recipe.run(photos[2:4], seed=3, epoch=1, indices=idx[2:4])
    for a, b in zip(full.views, part.views):
        assert torch.equal(a[2:4], b)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make,arg",
    [
        (lambda: T.CenterCrop(0), "size"),
        (lambda: T.CenterCrop((4, -1)), "size"),
        (lambda: T.RandomVerticalFlip(-0.5), "p"),
        (lambda: T.RandomErasing(1.2), "p"),
        (lambda: T.RandomErasing(scale=(0.2, 1.5)), "scale"),
        (lambda: T.RandomErasing(scale=(0.5, 0.2)), "scale"),
        (lambda: T.RandomErasing(ratio=(0.0, 1.0)), "ratio"),
        (lambda: T.RandomErasing(value="noise"), "value"),  # type: ignore[arg-type]
        (lambda: T.RandomErasing(value=(1, 2)), "value"),  # type: ignore[arg-type]
        (lambda: T.Compose([T.RandomErasing(value=0.5)]), "value"),
        (lambda: T.Compose([T.RandomErasing(value=300)]), "value"),
        (lambda: T.Compose([T.RandomGrayscale(), T.CenterCrop(8)]), "transforms"),
        (lambda: T.Compose([T.RandomErasing(), T.RandomGrayscale()]), "transforms"),
        (lambda: T.Compose([T.RandomErasing(), T.Normalize()]), "transforms"),
        (lambda: T.Compose([T.RandomApply([T.CenterCrop(8)])]), "transforms"),
        (lambda: T.dino(n_local=-1), "n_local"),
        (lambda: T.dino(global_size=0), "size"),
    ],
)
def test_bad_arguments_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        make()


def test_bad_erasing_params_are_rejected(photos):
    t = T.Compose([T.RandomErasing(1.0)])
    with pytest.raises(ValueError, match="^params"):
        t.run(photos, params=erase_params(len(photos), (60, 0, 10, 10)))
    with pytest.raises(ValueError, match="^params"):
        t.run(photos, params=erase_params(len(photos), (0, 0, 10, 10), seed=-1))
