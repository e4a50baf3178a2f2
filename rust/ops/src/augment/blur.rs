//! Gaussian blur (torchvision v2 semantics on uint8).
//!
//! Kernel: `k` taps (odd), weight of tap `d ∈ [−(k−1)/2, (k−1)/2]`
//! proportional to `exp(−d² / 2σ²)`, normalised to sum 1. The image is
//! padded by reflection (without repeating the edge pixel: index −1 reads
//! pixel 1), filtered separably in float32 (rows, then columns), rounded half
//! to even and clamped to uint8. Taps whose weight is below 1e−9 are skipped
//! (they cannot move a value by more than 1e−5 grey levels). Images smaller
//! than the padding are reflected repeatedly (torchvision rejects them).
//!
//! The kernel is symmetric, so each pass folds it in half — `w₀·x₀ +
//! Σ_d w_d·(x₋d + x₊d)` — with fused multiply–adds where the CPU has them,
//! over blocks of 64 outputs held in registers; the column pass walks strips
//! of 64 values down the image so the rows in reach stay in L1. The float
//! sums differ from torchvision's direct 2-D convolution by rounding only, so
//! the uint8 results differ at most by one level, where a value lies within
//! that rounding of a half-integer.

use crate::error::{ensure, OpResult};

/// Checks a kernel size: odd and positive.
pub fn check_kernel(k: usize) -> OpResult<()> {
    ensure(k > 0 && k % 2 == 1, "kernel_size", || format!("expected an odd positive integer, got {k}"))
}

/// Checks a σ range `0 < lo <= hi`.
pub fn check_sigma(lo: f64, hi: f64) -> OpResult<()> {
    ensure(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi, "sigma", || {
        format!("expected 0 < min <= max, got ({lo}, {hi})")
    })
}

/// Normalised 1-D weights of a `k`-tap kernel.
pub fn kernel(k: usize, sigma: f64) -> Vec<f32> {
    let half = (k as f64 - 1.0) / 2.0;
    let w: Vec<f64> = (0..k).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| (v / s) as f32).collect()
}

/// Reflects an index into `0..n` (period `2(n − 1)`).
#[inline]
pub fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m >= n as isize { period - m } else { m }) as usize
}

/// Scratch buffers reused across images.
#[derive(Default)]
pub struct BlurScratch {
    row: Vec<f32>,
    tmp: Vec<f32>,
    /// Reflected source column (border pixels) and row (all) indices.
    cols: Vec<usize>,
    rows: Vec<usize>,
}

/// `a·b + c`, fused into one rounding where the CPU has FMA.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Outputs computed together, held in registers.
const B: usize = 64;

/// Starts of the blocks covering `0..n` (`n ≥ B`): `0, B, 2B, …` and a last
/// one ending at `n`, overlapping its predecessor.
fn block_starts(n: usize) -> impl Iterator<Item = usize> {
    (0..n / B).map(|b| b * B).chain((n % B != 0).then_some(n - B))
}

/// `out[j] = w[0]·centre[i0 + j] + Σ_{d ≥ 1} w[d]·(lo_d[i0 + j] + hi_d[i0 + j])` for
/// `j < B`, with `(lo_d, hi_d) = pair(d)`: a symmetric kernel folded in half.
#[inline(always)]
fn fold_block<'s, const FMA: bool>(
    i0: usize,
    centre: &[f32],
    pair: impl Fn(usize) -> (&'s [f32], &'s [f32]),
    w: &[f32],
) -> [f32; B] {
    let c: &[f32; B] = centre[i0..i0 + B].try_into().expect("block of B");
    let mut acc = [0f32; B];
    for j in 0..B {
        acc[j] = w[0] * c[j];
    }
    for (d, &wd) in w.iter().enumerate().skip(1) {
        let (lo, hi) = pair(d);
        let lo: &[f32; B] = lo[i0..i0 + B].try_into().expect("block of B");
        let hi: &[f32; B] = hi[i0..i0 + B].try_into().expect("block of B");
        for j in 0..B {
            acc[j] = madd::<FMA>(wd, lo[j] + hi[j], acc[j]);
        }
    }
    acc
}

/// [`fold_block`] for one output (rows narrower than a block).
#[inline(always)]
fn fold_one<'s, const FMA: bool>(i: usize, centre: &[f32], pair: impl Fn(usize) -> (&'s [f32], &'s [f32]), w: &[f32]) -> f32 {
    let mut a = w[0] * centre[i];
    for (d, &wd) in w.iter().enumerate().skip(1) {
        let (lo, hi) = pair(d);
        a = madd::<FMA>(wd, lo[i] + hi[i], a);
    }
    a
}

/// Rounds half to even and saturates to uint8.
#[inline(always)]
fn to_u8(a: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds half to even
    let v = (a + MAGIC) - MAGIC;
    // SAFETY: finite and clamped to [0, 255]
    unsafe { v.clamp(0.0, 255.0).to_int_unchecked::<i32>() as u8 }
}

#[inline(always)]
fn blur_body<const FMA: bool>(img: &mut [u8], h: usize, w: usize, taps: &[f32], s: &mut BlurScratch) {
    let pad = taps.len() / 2;
    // the centre tap and the non-negligible half of the (symmetric) kernel
    let reach = (1..=pad).take_while(|&d| taps[pad + d] >= 1e-9).count();
    let half = &taps[pad..=pad + reach];
    let rw = w * 3;
    s.row.resize((w + 2 * reach) * 3, 0.0);
    s.tmp.resize(h * rw, 0.0);
    s.cols.clear();
    s.cols.extend((0..reach).chain(reach + w..w + 2 * reach).map(|x| reflect(x as isize - reach as isize, w)));
    s.rows.clear();
    s.rows.extend((0..h + 2 * reach).map(|y| reflect(y as isize - reach as isize, h) * rw));
    // rows: padded f32 copy of each row, then the folded kernel along it
    let c0 = reach * 3;
    for y in 0..h {
        let src = &img[y * rw..(y + 1) * rw];
        for (d, &v) in s.row[c0..c0 + rw].iter_mut().zip(src) {
            *d = v as f32;
        }
        for (xp, &x) in (0..reach).chain(reach + w..w + 2 * reach).zip(&s.cols) {
            for c in 0..3 {
                s.row[xp * 3 + c] = src[3 * x + c] as f32;
            }
        }
        let row = &s.row;
        let centre = &row[c0..c0 + rw];
        let pair = |d: usize| (&row[c0 - 3 * d..c0 - 3 * d + rw], &row[c0 + 3 * d..c0 + 3 * d + rw]);
        let out = &mut s.tmp[y * rw..(y + 1) * rw];
        if rw < B {
            for (i, o) in out.iter_mut().enumerate() {
                *o = fold_one::<FMA>(i, centre, pair, half);
            }
        } else {
            for i0 in block_starts(rw) {
                out[i0..i0 + B].copy_from_slice(&fold_block::<FMA>(i0, centre, pair, half));
            }
        }
    }
    // columns, in strips of B values so the rows in reach stay in L1
    let (tmp, rows) = (&s.tmp, &s.rows);
    let at = |y: usize| &tmp[rows[y]..rows[y] + rw];
    if rw < B {
        for y in 0..h {
            let pair = |d: usize| (at(y + reach - d), at(y + reach + d));
            for (i, o) in img[y * rw..(y + 1) * rw].iter_mut().enumerate() {
                *o = to_u8(fold_one::<FMA>(i, at(y + reach), pair, half));
            }
        }
        return;
    }
    for i0 in block_starts(rw) {
        for y in 0..h {
            let acc = fold_block::<FMA>(i0, at(y + reach), |d| (at(y + reach - d), at(y + reach + d)), half);
            for (o, &a) in img[y * rw + i0..y * rw + i0 + B].iter_mut().zip(&acc) {
                *o = to_u8(a);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blur_avx2_fma(img: &mut [u8], h: usize, w: usize, taps: &[f32], s: &mut BlurScratch) {
    blur_body::<true>(img, h, w, taps, s)
}

/// Blurs an `(h, w, 3)` image in place with the separable kernel `taps`
/// (odd length, symmetric). Sums use fused multiply–adds where the CPU has them.
pub fn gaussian_blur(img: &mut [u8], h: usize, w: usize, taps: &[f32], scratch: &mut BlurScratch) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the body is plain safe code.
            return unsafe { blur_avx2_fma(img, h, w, taps, scratch) };
        }
    }
    blur_body::<false>(img, h, w, taps, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_skips_the_edge() {
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(-2, 5), 2);
        assert_eq!(reflect(5, 5), 3);
        assert_eq!(reflect(9, 5), 1);
        assert_eq!(reflect(-7, 3), 1);
        assert_eq!(reflect(4, 1), 0);
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = kernel(23, 1.3);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(k[0], k[22]);
        assert!(k[11] > k[10]);
        assert!(check_kernel(4).is_err() && check_kernel(0).is_err() && check_kernel(3).is_ok());
        assert!(check_sigma(0.0, 1.0).is_err() && check_sigma(2.0, 1.0).is_err());
    }

    /// Direct 2-D convolution in f64 with reflect padding (torchvision's definition).
    fn reference(img: &[u8], h: usize, w: usize, k: usize, sigma: f64) -> Vec<u8> {
        let half = (k as f64 - 1.0) / 2.0;
        let g: Vec<f64> = (0..k).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
        let sum: f64 = g.iter().sum();
        let g: Vec<f64> = g.iter().map(|v| v / sum).collect();
        let pad = (k / 2) as isize;
        let mut out = vec![0u8; img.len()];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut a = 0f64;
                    for (i, gy) in g.iter().enumerate() {
                        for (j, gx) in g.iter().enumerate() {
                            let sy = reflect(y as isize + i as isize - pad, h);
                            let sx = reflect(x as isize + j as isize - pad, w);
                            a += gy * gx * img[(sy * w + sx) * 3 + c] as f64;
                        }
                    }
                    out[(y * w + x) * 3 + c] = a.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn matches_a_direct_2d_convolution_within_one_level() {
        let mut s = BlurScratch::default();
        // widths below one block, with a partial last block, and whole blocks
        for (h, w, k, sigma) in [(9, 15, 23, 2.0), (31, 29, 23, 1.7), (12, 64, 9, 0.9), (40, 48, 5, 0.4), (5, 7, 23, 2.0)] {
            let img: Vec<u8> = (0..h * w * 3).map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
            let expected = reference(&img, h, w, k, sigma);
            let mut out = img.clone();
            gaussian_blur(&mut out, h, w, &kernel(k, sigma), &mut s);
            let worst = out.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
            assert!(worst <= 1, "{h}x{w} k={k} sigma={sigma}: off by {worst}");
            // the portable (unfused) path agrees as closely
            let mut plain = img.clone();
            blur_body::<false>(&mut plain, h, w, &kernel(k, sigma), &mut s);
            assert!(plain.iter().zip(&expected).all(|(a, b)| a.abs_diff(*b) <= 1));
        }
    }

    #[test]
    fn constant_image_is_unchanged_and_impulse_spreads() {
        let mut s = BlurScratch::default();
        let mut img = vec![90u8; 9 * 7 * 3];
        gaussian_blur(&mut img, 9, 7, &kernel(5, 1.0), &mut s);
        assert!(img.iter().all(|&v| v == 90));
        let mut img = vec![0u8; 9 * 9 * 3];
        img[(4 * 9 + 4) * 3] = 255;
        gaussian_blur(&mut img, 9, 9, &kernel(3, 0.8), &mut s);
        let k = kernel(3, 0.8);
        assert_eq!(img[(4 * 9 + 4) * 3], (255.0 * k[1] * k[1]).round() as u8);
        assert_eq!(img[(4 * 9 + 5) * 3], (255.0 * k[1] * k[2]).round() as u8);
        assert_eq!(img[(4 * 9 + 4) * 3 + 1], 0);
    }
}
