//! RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data
//! augmentation with a reduced search space", arXiv:1909.13719) and Cutout
//! (DeVries & Taylor 2017, arXiv:1708.04552) as FixMatch (Sohn et al. 2020,
//! arXiv:2001.07685) and UDA use them, on uint8 RGB with torchvision v2's
//! semantics per operation (`torchvision.transforms.v2.RandAugment` and its
//! `_apply_image_or_video_transform`).
//!
//! The fourteen operations, in torchvision's order (the op index), with the
//! value `m` torchvision's `_apply_image_or_video_transform` receives:
//!
//! | op | name | action on uint8 | magnitude table (bin `b` of `n`) | signed |
//! |---|---|---|---|---|
//! | 0 | Identity | — | — | no |
//! | 1 | ShearX | affine, shear `(degrees(atan m), 0)`, centre top-left | `linspace(0, 0.3)` | yes |
//! | 2 | ShearY | affine, shear `(0, degrees(atan m))`, centre top-left | `linspace(0, 0.3)` | yes |
//! | 3 | TranslateX | affine, translate `(int(m), 0)` | `linspace(0, 150/331·W)` | yes |
//! | 4 | TranslateY | affine, translate `(0, int(m))` | `linspace(0, 150/331·H)` | yes |
//! | 5 | Rotate | rotate by `m` degrees (counter-clockwise), centre of the image | `linspace(0, 30)` | yes |
//! | 6 | Brightness | `adjust_brightness(1 + m)` | `linspace(0, 0.9)` | yes |
//! | 7 | Color | `adjust_saturation(1 + m)` | `linspace(0, 0.9)` | yes |
//! | 8 | Contrast | `adjust_contrast(1 + m)` | `linspace(0, 0.9)` | yes |
//! | 9 | Sharpness | `adjust_sharpness(1 + m)` | `linspace(0, 0.9)` | yes |
//! | 10 | Posterize | keep `int(m)` high bits | `round(8 − b/((n−1)/4))` | no |
//! | 11 | Solarize | `x ≥ 255·m → 255 − x` | `linspace(1, 0)` | no |
//! | 12 | AutoContrast | per channel `(x − min)·255/(max − min)` | — | no |
//! | 13 | Equalize | per channel histogram equalisation (PIL's LUT) | — | no |
//!
//! Geometric operations sample with nearest interpolation as torchvision's
//! `affine`/`rotate` do (a float32 sampling grid, `grid_sample` with
//! `align_corners=False`, ties to even), pixels that fall outside get `fill`.
//! Tables hold float32 values as torchvision's (see [`linspace_f32`]).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::color::Pw;
use super::crop::uniform;

/// Number of operations.
pub const N_OPS: usize = 14;

/// Operation names, indexed by op index (torchvision's order).
pub const OP_NAMES: [&str; N_OPS] = [
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
];

const SIGNED: [bool; N_OPS] = [false, true, true, true, true, true, true, true, true, true, false, false, false, false];

/// Whether op `op` draws a random sign.
pub fn signed(op: usize) -> bool {
    SIGNED[op]
}

/// Element `i` of `linspace(start, end, steps)`, computed in float64 and
/// rounded to float32 (the dtype of torchvision's tables). `torch.linspace`'s
/// vectorised kernel can land one float32 ulp away from this value; that only
/// matters where a table value times 255 is a whole grey level (Solarize at
/// some bins), where it decides whether that one grey level is inverted.
pub fn linspace_f32(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    if steps <= 1 {
        return start;
    }
    let t = i as f64 / (steps - 1) as f64;
    (start as f64 + (end as f64 - start as f64) * t) as f32
}

/// Unsigned magnitude of op `op` at bin `bin` of `bins` for an `h × w` image
/// (torchvision's `_augmentation_space`); `0.0` for ops without magnitude.
pub fn magnitude(op: usize, bin: usize, bins: usize, h: usize, w: usize) -> f64 {
    let lin = |lo: f32, hi: f32| linspace_f32(lo, hi, bins, bin) as f64;
    match op {
        1 | 2 => lin(0.0, 0.3),
        3 => lin(0.0, (150.0 / 331.0 * w as f64) as f32),
        4 => lin(0.0, (150.0 / 331.0 * h as f64) as f32),
        5 => lin(0.0, 30.0),
        6..=9 => lin(0.0, 0.9),
        10 => {
            // (8 - (arange(n) / ((n - 1) / 4))).round().int(), in float32
            let d = ((bins - 1) as f64 / 4.0) as f32;
            (8.0 - bin as f32 / d).round_ties_even() as f64
        }
        11 => lin(1.0, 0.0),
        _ => 0.0,
    }
}

/// Parameters of one RandAugment op: `(op, bin, sign, signed magnitude)`.
pub fn draw_op(rng: &mut ChaCha8Rng, fixed_bin: Option<usize>, bins: usize, h: usize, w: usize) -> [f64; 4] {
    let op = rng.random_range(0..N_OPS);
    let bin = match fixed_bin {
        Some(b) => b,
        None => rng.random_range(0..bins),
    };
    let has_magnitude = !matches!(op, 0 | 12 | 13);
    let sign = if has_magnitude && signed(op) && rng.random::<f64>() < 0.5 { -1.0 } else { 1.0 };
    let m = magnitude(op, bin, bins, h, w);
    [op as f64, bin as f64, sign, sign * m]
}

/// Why a replayed `(op, magnitude)` is invalid, if it is.
pub fn check_op(op: f64, m: f64) -> Option<String> {
    if !(op.fract() == 0.0 && (0.0..N_OPS as f64).contains(&op)) {
        return Some(format!("op must be an integer in 0..{}, got {op}", N_OPS - 1));
    }
    if !(m.is_finite() && m.abs() < 1e9) {
        return Some(format!("magnitude must be finite (|m| < 1e9), got {m}"));
    }
    let name = OP_NAMES[op as usize];
    match op as usize {
        6..=9 if m < -1.0 => Some(format!("{name} magnitude must be >= -1 (factor 1 + m >= 0), got {m}")),
        10 if !(0.0..9.0).contains(&m) => Some(format!("Posterize magnitude (bits) must be in [0, 9), got {m}")),
        11 if m > 1.0 => Some(format!("Solarize magnitude must be <= 1 (threshold 255·m), got {m}")),
        _ => None,
    }
}

/// Cutout box `[top, left, height, width]` of an `h × w` image (FixMatch's
/// `CutoutAbs`): side `s = v·min(h, w)` with `v ~ U(0, max_fraction]`, centre
/// `(y, x) ~ U[0, h) × U[0, w)`, `top = int(max(0, y − s/2))`,
/// `bottom = int(min(h, top + s))` (likewise columns).
pub fn draw_cutout(rng: &mut ChaCha8Rng, max_fraction: f64, h: usize, w: usize) -> [usize; 4] {
    let v = max_fraction * (1.0 - rng.random::<f64>());
    let side = v * h.min(w) as f64;
    let cy = uniform(rng, 0.0, h as f64);
    let cx = uniform(rng, 0.0, w as f64);
    let y0 = (cy - side / 2.0).max(0.0) as usize;
    let x0 = (cx - side / 2.0).max(0.0) as usize;
    let y1 = (y0 as f64 + side).min(h as f64) as usize;
    let x1 = (x0 as f64 + side).min(w as f64) as usize;
    [y0, x0, y1.saturating_sub(y0), x1.saturating_sub(x0)]
}

/// Fills `[top, left, height, width]` of an `(h, w, 3)` image with `fill`.
pub fn fill_box(img: &mut [u8], w: usize, bx: [usize; 4], fill: [u8; 3]) {
    let [top, left, bh, bw] = bx;
    for r in top..top + bh {
        for px in img[(r * w + left) * 3..(r * w + left + bw) * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&fill);
        }
    }
}

/// The point-wise step of op `op` with magnitude `m`, if it is point-wise.
pub fn pointwise(op: usize, m: f64) -> Option<Option<Pw>> {
    let factor = (1.0 + m) as f32;
    Some(match op {
        0 => None,
        6 => Some(Pw::Brightness(factor)),
        7 => Some(Pw::saturation(1.0 + m)),
        8 => Some(Pw::contrast(1.0 + m)),
        10 => {
            let bits = m as u32; // int(m), m in [0, 9)
            if bits >= 8 {
                None
            } else {
                Some(Pw::Posterize((((1u32 << bits) - 1) << (8 - bits)) as u8))
            }
        }
        11 => Some(Pw::Solarize((255.0 * m) as f32)),
        _ => return None,
    })
}

/// torchvision's `_get_inverse_affine_matrix(center, angle, translate, 1.0, shear)`.
pub fn inverse_affine(center: (f64, f64), angle: f64, translate: (f64, f64), shear: (f64, f64)) -> [f64; 6] {
    let rot = angle.to_radians();
    let sx = shear.0.to_radians();
    let sy = shear.1.to_radians();
    let (cx, cy) = center;
    let (tx, ty) = translate;
    let cos_sy = sy.cos();
    let tan_sx = sx.tan();
    let rot_minus_sy = rot - sy;
    let cx_plus_tx = cx + tx;
    let cy_plus_ty = cy + ty;
    let a = rot_minus_sy.cos() / cos_sy;
    let b = -(a * tan_sx + rot.sin());
    let c = rot_minus_sy.sin() / cos_sy;
    let d = rot.cos() - c * tan_sx;
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * -cx_plus_tx + m[1] * -cy_plus_ty;
    m[5] += m[3] * -cx_plus_tx + m[4] * -cy_plus_ty;
    m[2] += cx;
    m[5] += cy;
    m
}

/// Python's `math.degrees(math.atan(m))`.
fn shear_degrees(m: f64) -> f64 {
    m.atan().to_degrees()
}

/// Coordinates are clamped to ±`LIMIT` before rounding: still outside any image, and exact for [`rint`].
const LIMIT: f32 = 4_194_304.0; // 2^22

/// Round half to even of `|x| <= 2^22` (`grid_sample`'s `nearbyint`): adding and subtracting
/// 1.5·2^23 rounds in the default rounding mode, without a libm call on baseline x86-64.
#[inline(always)]
fn rint(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (x + MAGIC) - MAGIC
}

/// Samples an `(h, w, 3)` image through the inverse matrix `m` (output pixel
/// → input pixel, centred coordinates) with nearest interpolation, as
/// torchvision's `_affine_grid` + `grid_sample(mode="nearest",
/// align_corners=False)` in float32; outside pixels get `fill`.
pub fn affine_nearest(src: &[u8], h: usize, w: usize, m: &[f64; 6], fill: [u8; 3], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); the body is plain safe code.
            return unsafe { affine_avx2(src, h, w, m, fill, dst) };
        }
    }
    affine_body(src, h, w, m, fill, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn affine_avx2(src: &[u8], h: usize, w: usize, m: &[f64; 6], fill: [u8; 3], dst: &mut [u8]) {
    affine_body(src, h, w, m, fill, dst)
}

#[inline(always)]
fn affine_body(src: &[u8], h: usize, w: usize, m: &[f64; 6], fill: [u8; 3], dst: &mut [u8]) {
    let (hw, hh) = ((0.5 * w as f64) as f32, (0.5 * h as f64) as f32);
    let t = m.map(|v| v as f32);
    let (rx0, rx1, rx2) = (t[0] / hw, t[1] / hw, t[2] / hw);
    let (ry0, ry1, ry2) = (t[3] / hh, t[4] / hh, t[5] / hh);
    let (sw, sh) = (w as f32 / 2.0, h as f32 / 2.0);
    let (x0, y0) = ((1.0 - w as f32) * 0.5, (1.0 - h as f32) * 0.5);
    let (wf, hf) = (w as f32, h as f32);
    // per row: source column and row of every output pixel (−1: outside), then the gather
    let mut cols = vec![0i32; w];
    let mut rows = vec![0i32; w];
    for r in 0..h {
        let by = y0 + r as f32;
        let (py, qy) = (by * rx1, by * ry1);
        for c in 0..w {
            let bx = x0 + c as f32;
            let gx = bx * rx0 + py + rx2;
            let gy = bx * ry0 + qy + ry2;
            let ix = rint(((gx + 1.0) * sw - 0.5).clamp(-LIMIT, LIMIT));
            let iy = rint(((gy + 1.0) * sh - 0.5).clamp(-LIMIT, LIMIT));
            let inside = ix >= 0.0 && ix < wf && iy >= 0.0 && iy < hf;
            // SAFETY: |ix|, |iy| <= 2^22 after the clamp, integral: exact in i32.
            cols[c] = if inside { unsafe { ix.to_int_unchecked::<i32>() } } else { -1 };
            rows[c] = unsafe { iy.to_int_unchecked::<i32>() };
        }
        let row = &mut dst[r * w * 3..(r + 1) * w * 3];
        for (c, out) in row.chunks_exact_mut(3).enumerate() {
            if cols[c] >= 0 {
                let s = (rows[c] as usize * w + cols[c] as usize) * 3;
                out.copy_from_slice(&src[s..s + 3]);
            } else {
                out.copy_from_slice(&fill);
            }
        }
    }
}

/// Shifts an `(h, w, 3)` image by whole pixels (`dx` right, `dy` down), `fill` where uncovered.
pub fn translate(src: &[u8], h: usize, w: usize, dx: i64, dy: i64, fill: [u8; 3], dst: &mut [u8]) {
    let (hi, wi) = (h as i64, w as i64);
    // output columns [c0, c1) read input columns [c0 − dx, c1 − dx)
    let c0 = dx.clamp(0, wi) as usize;
    let c1 = (wi + dx).clamp(0, wi) as usize;
    for r in 0..h {
        let row = &mut dst[r * w * 3..(r + 1) * w * 3];
        let sr = r as i64 - dy;
        if sr < 0 || sr >= hi || c0 >= c1 {
            row.chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&fill));
            continue;
        }
        row[..c0 * 3].chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&fill));
        row[c1 * 3..].chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&fill));
        let s = (sr as usize * w + (c0 as i64 - dx) as usize) * 3;
        row[c0 * 3..c1 * 3].copy_from_slice(&src[s..s + (c1 - c0) * 3]);
    }
}

/// torchvision v2's `adjust_sharpness` on an `(h, w, 3)` image: the interior
/// blends toward `round((Σ8 neighbours + 5·centre)/13)` with `x + (1 − f)(b − x)`
/// (fused multiply–add in float32), clamped and truncated; the border rows and
/// columns are kept. Images with a side of at most 2 are returned unchanged.
pub fn sharpness(src: &[u8], h: usize, w: usize, factor: f64, dst: &mut [u8]) {
    dst.copy_from_slice(&src[..h * w * 3]);
    if h <= 2 || w <= 2 {
        return;
    }
    let alpha = (1.0 - factor) as f32;
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the body is plain safe code.
            return unsafe { sharpness_fma(src, h, w, alpha, dst) };
        }
    }
    sharpness_body(src, h, w, alpha, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sharpness_fma(src: &[u8], h: usize, w: usize, alpha: f32, dst: &mut [u8]) {
    sharpness_body(src, h, w, alpha, dst)
}

#[inline(always)]
fn sharpness_body(src: &[u8], h: usize, w: usize, alpha: f32, dst: &mut [u8]) {
    let stride = w * 3;
    let n = stride - 6; // interior values of a row
    for r in 1..h - 1 {
        let (up, mid, down) = (&src[(r - 1) * stride..r * stride], &src[r * stride..(r + 1) * stride], &src[(r + 1) * stride..(r + 2) * stride]);
        let (u0, u1, u2) = (&up[..n], &up[3..3 + n], &up[6..6 + n]);
        let (m0, m1, m2) = (&mid[..n], &mid[3..3 + n], &mid[6..6 + n]);
        let (d0, d1, d2) = (&down[..n], &down[3..3 + n], &down[6..6 + n]);
        let out = &mut dst[r * stride + 3..r * stride + 3 + n];
        for i in 0..n {
            let ring = u0[i] as u32 + u1[i] as u32 + u2[i] as u32 + m0[i] as u32 + m2[i] as u32 + d0[i] as u32 + d1[i] as u32 + d2[i] as u32;
            let x = m1[i] as f32;
            // round((ring + 5x)/13): never half-way (13 is odd), so float32 rounding is exact
            let blurred = rint((ring + 5 * m1[i] as u32) as f32 / 13.0);
            let v = alpha.mul_add(blurred - x, x);
            out[i] = v.clamp(0.0, 255.0) as u8;
        }
    }
}

/// torchvision v2's `autocontrast` on an `(h, w, 3)` image, in place: per
/// channel `trunc(clamp((x − min) / ((max − min)·(1/255)), 0, 255))` in float32,
/// unchanged where `max == min`.
pub fn autocontrast(img: &mut [u8]) {
    // lane j of the 48-byte accumulators holds channel j mod 3 (vectorises)
    let mut lo48 = [255u8; 48];
    let mut hi48 = [0u8; 48];
    let mut blocks = img.chunks_exact(48);
    for block in &mut blocks {
        for j in 0..48 {
            lo48[j] = lo48[j].min(block[j]);
            hi48[j] = hi48[j].max(block[j]);
        }
    }
    for (j, &v) in blocks.remainder().iter().enumerate() {
        lo48[j] = lo48[j].min(v);
        hi48[j] = hi48[j].max(v);
    }
    let mut lo = [255u8; 3];
    let mut hi = [0u8; 3];
    for j in 0..48 {
        lo[j % 3] = lo[j % 3].min(lo48[j]);
        hi[j % 3] = hi[j % 3].max(hi48[j]);
    }
    let mut lut = [[0u8; 256]; 3];
    let inv255 = (1.0f64 / 255.0) as f32;
    for c in 0..3 {
        let (min, scale) = if lo[c] == hi[c] { (0.0, 1.0) } else { (lo[c] as f32, (hi[c] - lo[c]) as f32 * inv255) };
        for (v, e) in lut[c].iter_mut().enumerate() {
            *e = ((v as f32 - min) / scale).clamp(0.0, 255.0) as u8;
        }
    }
    apply_luts(img, &lut);
}

/// torchvision v2's `equalize` on an `(h, w, 3)` image, in place: per channel
/// PIL's lookup table `lut[k] = min(255, (cum[k−1] + step/2) / step)` with
/// `step = (N − count of the largest value) / 255`; a channel with `step == 0`
/// is unchanged.
pub fn equalize(img: &mut [u8]) {
    let mut hist = [[0u32; 256]; 3];
    for px in img.chunks_exact(3) {
        for c in 0..3 {
            hist[c][px[c] as usize] += 1;
        }
    }
    let n = (img.len() / 3) as u64;
    let mut lut = [[0u8; 256]; 3];
    for c in 0..3 {
        let last = (0..256).rev().find(|&v| hist[c][v] > 0).unwrap_or(0);
        let step = (n - hist[c][last] as u64) / 255;
        if step == 0 {
            for (v, e) in lut[c].iter_mut().enumerate() {
                *e = v as u8;
            }
            continue;
        }
        let mut cum = 0u64;
        for v in 1..256 {
            cum += hist[c][v - 1] as u64;
            lut[c][v] = ((cum + step / 2) / step).min(255) as u8;
        }
    }
    apply_luts(img, &lut);
}

fn apply_luts(img: &mut [u8], lut: &[[u8; 256]; 3]) {
    for px in img.chunks_exact_mut(3) {
        px[0] = lut[0][px[0] as usize];
        px[1] = lut[1][px[1] as usize];
        px[2] = lut[2][px[2] as usize];
    }
}

/// Runs a non-point-wise op `op` with magnitude `m` on the `(h, w, 3)` image
/// in `buf`, using `tmp` as working memory.
pub fn apply_spatial(op: usize, m: f64, buf: &mut Vec<u8>, tmp: &mut Vec<u8>, h: usize, w: usize, fill: [u8; 3]) {
    let n = h * w * 3;
    match op {
        12 => return autocontrast(&mut buf[..n]),
        13 => return equalize(&mut buf[..n]),
        _ => {}
    }
    tmp.resize(n, 0);
    match op {
        1 | 2 => {
            let s = shear_degrees(m);
            let shear = if op == 1 { (s, 0.0) } else { (0.0, s) };
            // centre [0, 0] (the top-left corner): centred coordinates (−W/2, −H/2)
            let mat = inverse_affine((-0.5 * w as f64, -0.5 * h as f64), 0.0, (0.0, 0.0), shear);
            affine_nearest(buf, h, w, &mat, fill, tmp);
        }
        3 | 4 => {
            let t = m.trunc() as i64; // int(m)
            let (dx, dy) = if op == 3 { (t, 0) } else { (0, t) };
            translate(buf, h, w, dx, dy, fill, tmp);
        }
        5 => {
            let angle = m.rem_euclid(360.0);
            if angle == 0.0 {
                return;
            }
            let mat = inverse_affine((0.0, 0.0), -angle, (0.0, 0.0), (0.0, 0.0));
            affine_nearest(buf, h, w, &mat, fill, tmp);
        }
        9 => sharpness(buf, h, w, 1.0 + m, tmp),
        _ => unreachable!("op {op} is point-wise"),
    }
    std::mem::swap(buf, tmp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    fn image(h: usize, w: usize) -> Vec<u8> {
        (0..h * w * 3).map(|i| ((i * 7919) % 251) as u8).collect()
    }

    #[test]
    fn tables_follow_torchvision() {
        assert_eq!(magnitude(1, 30, 31, 32, 32), 0.30000001192092896);
        assert_eq!(magnitude(5, 0, 31, 32, 32), 0.0);
        assert_eq!(magnitude(10, 0, 31, 32, 32), 8.0);
        assert_eq!(magnitude(10, 9, 31, 32, 32), 7.0);
        assert_eq!(magnitude(10, 30, 31, 32, 32), 4.0);
        assert_eq!(magnitude(11, 0, 31, 32, 32), 1.0);
        assert_eq!(magnitude(11, 30, 31, 32, 32), 0.0);
        assert!((magnitude(3, 30, 31, 10, 331) - 150.0).abs() < 1e-4);
        assert_eq!(magnitude(12, 5, 31, 10, 10), 0.0);
    }

    #[test]
    fn translate_equals_the_affine_path() {
        let (h, w) = (7, 9);
        let src = image(h, w);
        for (dx, dy) in [(0, 0), (3, 0), (-4, 0), (0, 2), (0, -6), (20, 0)] {
            let mut a = vec![0u8; h * w * 3];
            let mut b = vec![0u8; h * w * 3];
            translate(&src, h, w, dx, dy, [1, 2, 3], &mut a);
            let m = inverse_affine((0.0, 0.0), 0.0, (dx as f64, dy as f64), (0.0, 0.0));
            affine_nearest(&src, h, w, &m, [1, 2, 3], &mut b);
            assert_eq!(a, b, "{dx} {dy}");
        }
    }

    #[test]
    fn equalize_and_autocontrast_leave_flat_images() {
        let mut img = vec![77u8; 30];
        equalize(&mut img);
        assert_eq!(img, vec![77u8; 30]);
        autocontrast(&mut img);
        assert_eq!(img, vec![77u8; 30]);
        // torchvision's float32 arithmetic: 100 / (100 · f32(1/255)) = 254.99998 → 254
        let mut img = vec![10, 20, 30, 110, 120, 130];
        autocontrast(&mut img);
        assert_eq!(img, vec![0, 0, 0, 254, 254, 254]);
    }

    #[test]
    fn draws_are_in_range_and_cutout_fits() {
        let mut seen = [0usize; N_OPS];
        for i in 0..2000 {
            let mut rng = sample_rng(3, 0, OpSalt::Augment, i);
            let [op, bin, sign, m] = draw_op(&mut rng, None, 31, 32, 32);
            seen[op as usize] += 1;
            assert!((0.0..31.0).contains(&bin) && (sign == 1.0 || sign == -1.0));
            assert!(check_op(op, m).is_none(), "{op} {m}");
            let [t, l, bh, bw] = draw_cutout(&mut rng, 0.5, 20, 30);
            assert!(t + bh <= 20 && l + bw <= 30 && bh <= 10 && bw <= 10);
        }
        assert!(seen.iter().all(|&c| c > 80), "{seen:?}");
    }

    #[test]
    fn rint_rounds_half_to_even() {
        for x in [-3.5f32, -2.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, 7.2, -7.7, 1000.5, 4_194_303.5] {
            assert_eq!(rint(x), x.round_ties_even(), "{x}");
        }
    }

    #[test]
    fn sharpness_one_is_identity() {
        let src = image(6, 5);
        let mut dst = vec![0u8; src.len()];
        sharpness(&src, 6, 5, 1.0, &mut dst);
        assert_eq!(dst, src);
    }
}
