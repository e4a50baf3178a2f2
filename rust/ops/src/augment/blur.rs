//! Gaussian blur (torchvision v2 semantics on uint8).
//!
//! Kernel: `k` taps (odd), weight of tap `d ∈ [−(k−1)/2, (k−1)/2]`
//! proportional to `exp(−d² / 2σ²)`, normalised to sum 1. The image is
//! padded by reflection (without repeating the edge pixel: index −1 reads
//! pixel 1), filtered separably in float32 (rows, then columns), rounded half
//! to even and clamped to uint8. Taps whose weight is below 1e−9 are skipped
//! (they cannot move a value by more than 1e−5 grey levels). Images smaller
//! than the padding are reflected repeatedly (torchvision rejects them).

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
    acc: Vec<f32>,
}

/// `out[i] = Σ_t taps[t] · src(first + t, i)`, accumulated in registers over
/// blocks of 16 outputs (taps in order, so the sum is the same as a plain loop).
#[inline(always)]
fn dot_rows<'s>(out: &mut [f32], src: impl Fn(usize) -> &'s [f32], taps: &[f32], first: usize) {
    const B: usize = 16;
    let n = out.len();
    let full = n / B * B;
    for i0 in (0..full).step_by(B) {
        let mut acc = [0f32; B];
        for (t, &wt) in taps.iter().enumerate() {
            let s: &[f32; B] = src(first + t)[i0..i0 + B].try_into().expect("block of B");
            for j in 0..B {
                acc[j] += wt * s[j];
            }
        }
        out[i0..i0 + B].copy_from_slice(&acc);
    }
    for i in full..n {
        let mut a = 0f32;
        for (t, &wt) in taps.iter().enumerate() {
            a += wt * src(first + t)[i];
        }
        out[i] = a;
    }
}

#[inline(always)]
fn blur_body(img: &mut [u8], h: usize, w: usize, taps: &[f32], s: &mut BlurScratch) {
    let k = taps.len();
    let pad = k / 2;
    // the non-negligible taps
    let first = taps.iter().position(|&t| t >= 1e-9).unwrap_or(0);
    let last = taps.iter().rposition(|&t| t >= 1e-9).unwrap_or(k - 1);
    let rw = w * 3;
    s.row.resize((w + 2 * pad) * 3, 0.0);
    s.tmp.resize(h * rw, 0.0);
    s.acc.resize(rw, 0.0);
    // rows
    for y in 0..h {
        let src = &img[y * rw..(y + 1) * rw];
        // interior: a straight conversion; only the borders are reflected
        for (d, &v) in s.row[pad * 3..pad * 3 + rw].iter_mut().zip(src) {
            *d = v as f32;
        }
        for xp in (0..pad).chain(pad + w..w + 2 * pad) {
            let x = reflect(xp as isize - pad as isize, w);
            for c in 0..3 {
                s.row[xp * 3 + c] = src[3 * x + c] as f32;
            }
        }
        let out = &mut s.tmp[y * rw..(y + 1) * rw];
        let row = &s.row;
        dot_rows(out, |t| &row[t * 3..t * 3 + rw], &taps[first..=last], first);
    }
    // columns
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds half to even
    for y in 0..h {
        let rows: Vec<usize> =
            (0..k).map(|t| reflect(y as isize + t as isize - pad as isize, h) * rw).collect();
        let tmp = &s.tmp;
        dot_rows(&mut s.acc, |t| &tmp[rows[t]..rows[t] + rw], &taps[first..=last], first);
        let dst = &mut img[y * rw..(y + 1) * rw];
        for i in 0..rw {
            let v = (s.acc[i] + MAGIC) - MAGIC;
            dst[i] = v.max(0.0).min(255.0) as u8;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn blur_avx2(img: &mut [u8], h: usize, w: usize, taps: &[f32], s: &mut BlurScratch) {
    blur_body(img, h, w, taps, s)
}

/// Blurs an `(h, w, 3)` image in place with the separable kernel `taps`.
pub fn gaussian_blur(img: &mut [u8], h: usize, w: usize, taps: &[f32], scratch: &mut BlurScratch) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); the body is plain safe code.
            return unsafe { blur_avx2(img, h, w, taps, scratch) };
        }
    }
    blur_body(img, h, w, taps, scratch)
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
