//! Colour spaces and the quantised ab space of colorization (Zhang, Isola & Efros 2016,
//! "Colorful Image Colorization", arXiv:1603.08511).
//!
//! sRGB ↔ CIE Lab (D65), with the constants and clipping of scikit-image's `rgb2lab`/`lab2rgb`.
//! The ab plane is cut into a grid of `grid`-unit cells; the *in-gamut* bins are the cells that
//! the ab coordinates of some 8-bit sRGB colour round into (all 256³ colours are converted).

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;

/// skimage's `xyz_from_rgb` (sRGB primaries, D65).
const XYZ_FROM_RGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];
/// D65 reference white, 2° observer.
const WHITE: [f64; 3] = [0.95047, 1.0, 1.08883];

fn linearize(c: f64) -> f64 {
    if c > 0.04045 {
        ((c + 0.055) / 1.055).powf(2.4)
    } else {
        c / 12.92
    }
}

/// Cube root of a positive normal f32: an exponent-thirding bit trick, then two Newton steps
/// (relative error below 2e-6 over the range Lab needs, i.e. under 3e-4 in L).
#[inline]
fn fast_cbrt(x: f32) -> f32 {
    let mut y = f32::from_bits(x.to_bits() / 3 + 709_921_077);
    y -= (y * y * y - x) / (3.0 * y * y);
    y -= (y * y * y - x) / (3.0 * y * y);
    y
}

#[inline]
fn lab_f(t: f32) -> f32 {
    if t > 0.008856 {
        fast_cbrt(t)
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

/// Linear-light values of the 256 sRGB levels, scaled by each XYZ row and divided by the white:
/// `M[i][ch]` turns a level into its contribution to X/Xn, Y/Yn, Z/Zn.
fn tables() -> &'static [[[f32; 256]; 3]; 3] {
    static T: OnceLock<[[[f32; 256]; 3]; 3]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [[[0f32; 256]; 3]; 3];
        for v in 0..256 {
            let lin = linearize(v as f64 / 255.0);
            for row in 0..3 {
                for ch in 0..3 {
                    t[row][ch][v] = (XYZ_FROM_RGB[row][ch] * lin / WHITE[row]) as f32;
                }
            }
        }
        t
    })
}

/// One 8-bit sRGB colour to Lab.
#[inline]
pub fn srgb8_to_lab(rgb: [u8; 3]) -> [f32; 3] {
    let t = tables();
    let mut xyz = [0f32; 3];
    for (row, out) in xyz.iter_mut().enumerate() {
        *out = t[row][0][rgb[0] as usize] + t[row][1][rgb[1] as usize] + t[row][2][rgb[2] as usize];
    }
    let (fx, fy, fz) = (lab_f(xyz[0]), lab_f(xyz[1]), lab_f(xyz[2]));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// 8-bit sRGB pixels `src (n·3)` to Lab `dst (n·3)`: [`srgb8_to_lab`] for a run of pixels, in
/// blocks whose cube roots are computed branch-free over arrays (both sides of `lab_f`, then a
/// select), so the compiler vectorises them; the same numbers as the per-pixel function.
pub fn srgb8_to_lab_into(src: &[u8], dst: &mut [f32]) {
    const BLOCK: usize = 16;
    let t = tables();
    for (s, d) in src.chunks(3 * BLOCK).zip(dst.chunks_mut(3 * BLOCK)) {
        let m = s.len() / 3;
        let mut xyz = [[0f32; BLOCK]; 3];
        for (k, p) in s.chunks_exact(3).enumerate() {
            for (row, values) in xyz.iter_mut().enumerate() {
                values[k] = t[row][0][p[0] as usize] + t[row][1][p[1] as usize] + t[row][2][p[2] as usize];
            }
        }
        let mut f = [[0f32; BLOCK]; 3];
        for (out, values) in f.iter_mut().zip(&xyz) {
            for (o, &v) in out.iter_mut().zip(values) {
                let root = fast_cbrt(v.max(f32::MIN_POSITIVE));
                let linear = 7.787 * v + 16.0 / 116.0;
                *o = if v > 0.008856 { root } else { linear };
            }
        }
        for (k, lab) in d.chunks_exact_mut(3).take(m).enumerate() {
            lab[0] = 116.0 * f[1][k] - 16.0;
            lab[1] = 500.0 * (f[0][k] - f[1][k]);
            lab[2] = 200.0 * (f[1][k] - f[2][k]);
        }
    }
}

/// One sRGB colour in [0, 1] to Lab (float input).
pub fn srgb_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    let lin = rgb.map(|c| linearize(c as f64));
    let mut f = [0f32; 3];
    for row in 0..3 {
        let v: f64 = (0..3).map(|ch| XYZ_FROM_RGB[row][ch] * lin[ch]).sum::<f64>() / WHITE[row];
        f[row] = lab_f(v as f32);
    }
    [116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])]
}

fn rgb_from_xyz() -> &'static [[f64; 3]; 3] {
    static INV: OnceLock<[[f64; 3]; 3]> = OnceLock::new();
    INV.get_or_init(|| {
        let m = XYZ_FROM_RGB;
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        let mut inv = [[0f64; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
                let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
                inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
            }
        }
        inv
    })
}

/// Lab to sRGB in [0, 1], as scikit-image's `lab2rgb`: negative z clipped to 0, the result of the
/// gamma curve clipped to [0, 1].
pub fn lab_to_srgb(lab: [f32; 3]) -> [f32; 3] {
    let [l, a, b] = lab.map(|v| v as f64);
    let fy = (l + 16.0) / 116.0;
    let fx = a / 500.0 + fy;
    let fz = (fy - b / 200.0).max(0.0);
    let inv_f = |t: f64| if t > 0.2068966 { t * t * t } else { (t - 16.0 / 116.0) / 7.787 };
    let xyz = [inv_f(fx) * WHITE[0], inv_f(fy) * WHITE[1], inv_f(fz) * WHITE[2]];
    let m = rgb_from_xyz();
    let mut out = [0f32; 3];
    for ch in 0..3 {
        let lin: f64 = (0..3).map(|k| m[ch][k] * xyz[k]).sum();
        let c = if lin > 0.0031308 { 1.055 * lin.powf(1.0 / 2.4) - 0.055 } else { 12.92 * lin };
        out[ch] = c.clamp(0.0, 1.0) as f32;
    }
    out
}

/// In-gamut ab bin centres for `grid`, sorted by (a, b); computed once per grid.
pub fn ab_bins(grid: u32) -> Vec<[f32; 2]> {
    static CACHE: Mutex<Vec<(u32, Vec<[f32; 2]>)>> = Mutex::new(Vec::new());
    if let Some((_, bins)) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(g, _)| *g == grid) {
        return bins.clone();
    }
    let g = grid as f32;
    let cells: BTreeSet<(i32, i32)> = (0..256u32)
        .into_par_iter()
        .map(|r| {
            let mut local = BTreeSet::new();
            for gr in 0..256u32 {
                for b in 0..256u32 {
                    let lab = srgb8_to_lab([r as u8, gr as u8, b as u8]);
                    local.insert(((lab[1] / g).round() as i32, (lab[2] / g).round() as i32));
                }
            }
            local
        })
        .reduce(BTreeSet::new, |mut a, b| {
            a.extend(b);
            a
        });
    let bins: Vec<[f32; 2]> = cells.into_iter().map(|(a, b)| [a as f32 * g, b as f32 * g]).collect();
    CACHE.lock().unwrap_or_else(|p| p.into_inner()).push((grid, bins.clone()));
    bins
}

/// Indices and squared distances of the `k` bins nearest to `ab`, nearest first.
pub fn nearest_bins(ab: [f32; 2], bins: &[[f32; 2]], k: usize, out: &mut Vec<(f32, usize)>) {
    out.clear();
    for (q, c) in bins.iter().enumerate() {
        let d = (ab[0] - c[0]).powi(2) + (ab[1] - c[1]).powi(2);
        if out.len() < k {
            out.push((d, q));
            out.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
        } else if d < out[k - 1].0 {
            out[k - 1] = (d, q);
            out.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
        }
    }
}

/// Soft encoding of one ab value over `bins` (eq. 2 of the paper's supplement): Gaussian
/// weights `exp(−d²/2σ²)` on the `k` nearest bins, normalised to sum 1; `dst` has one slot per bin.
pub fn encode_soft(ab: [f32; 2], bins: &[[f32; 2]], k: usize, sigma: f32, scratch: &mut Vec<(f32, usize)>, dst: &mut [f32]) {
    nearest_bins(ab, bins, k, scratch);
    dst.fill(0.0);
    let nearest = scratch[0].0;
    let mut total = 0.0;
    for &(d, q) in scratch.iter() {
        // shifting by the nearest distance keeps far points from underflowing to all zeros
        let w = (-(d - nearest) / (2.0 * sigma * sigma)).exp();
        dst[q] = w;
        total += w;
    }
    for &(_, q) in scratch.iter() {
        dst[q] /= total;
    }
}

/// Annealed mean (eq. 5): `f_T(z) = exp(log z / T) / Σ exp(log z / T)`, then Σ_q f_T(z)_q · bin_q.
pub fn annealed_mean(probs: &[f32], bins: &[[f32; 2]], temperature: f32) -> [f32; 2] {
    let logs: Vec<f32> = probs.iter().map(|&p| p.max(1e-30).ln() / temperature).collect();
    let top = logs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let (mut a, mut b, mut total) = (0f64, 0f64, 0f64);
    for (q, &l) in logs.iter().enumerate() {
        let w = ((l - top) as f64).exp();
        a += w * bins[q][0] as f64;
        b += w * bins[q][1] as f64;
        total += w;
    }
    [(a / total) as f32, (b / total) as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_black_and_primaries() {
        let w = srgb8_to_lab([255, 255, 255]);
        assert!((w[0] - 100.0).abs() < 1e-3 && w[1].abs() < 1e-2 && w[2].abs() < 1e-2);
        assert_eq!(srgb8_to_lab([0, 0, 0]), [0.0, 0.0, 0.0]);
        let red = srgb8_to_lab([255, 0, 0]);
        // well-known values of sRGB red in Lab
        assert!((red[0] - 53.24).abs() < 0.02 && (red[1] - 80.09).abs() < 0.05 && (red[2] - 67.20).abs() < 0.05, "{red:?}");
    }

    #[test]
    fn the_block_path_gives_the_per_pixel_numbers() {
        let src: Vec<u8> = (0..3 * 1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut dst = vec![0f32; src.len()];
        srgb8_to_lab_into(&src, &mut dst);
        for (p, lab) in src.chunks_exact(3).zip(dst.chunks_exact(3)) {
            assert_eq!(srgb8_to_lab([p[0], p[1], p[2]]), [lab[0], lab[1], lab[2]], "{p:?}");
        }
    }

    #[test]
    fn fast_cube_root_is_accurate() {
        let mut t = 0.008856f32;
        while t < 1.1 {
            assert!((fast_cbrt(t) - t.cbrt()).abs() <= 2e-6 * t.cbrt(), "{t}");
            t *= 1.0007;
        }
    }

    #[test]
    fn round_trip() {
        for rgb in [[12u8, 200, 99], [255, 128, 0], [3, 3, 3], [90, 10, 240]] {
            let back = lab_to_srgb(srgb8_to_lab(rgb));
            for ch in 0..3 {
                assert!((back[ch] * 255.0 - rgb[ch] as f32).abs() < 0.02, "{rgb:?} {back:?}");
            }
        }
    }

    #[test]
    fn bins_span_the_gamut() {
        let bins = ab_bins(10);
        let (amin, amax) = bins.iter().fold((f32::MAX, f32::MIN), |(lo, hi), b| (lo.min(b[0]), hi.max(b[0])));
        let (bmin, bmax) = bins.iter().fold((f32::MAX, f32::MIN), |(lo, hi), b| (lo.min(b[1]), hi.max(b[1])));
        assert_eq!((amin, amax, bmin, bmax), (-90.0, 100.0, -110.0, 90.0));
        assert!(bins.contains(&[0.0, 0.0]));
    }

    #[test]
    fn soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin() {
        let bins = ab_bins(10);
        let mut scratch = Vec::new();
        let mut dst = vec![0f32; bins.len()];
        encode_soft([12.0, -31.0], &bins, 5, 5.0, &mut scratch, &mut dst);
        let total: f32 = dst.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(dst.iter().filter(|&&w| w > 0.0).count(), 5);
        let best = dst.iter().enumerate().max_by(|a, b| a.1.partial_cmp(b.1).unwrap()).unwrap().0;
        assert_eq!(bins[best], [10.0, -30.0]);
    }
}
