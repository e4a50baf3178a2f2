//! CenterCrop, RandomCrop's padded window, vertical flips and RandomErasing (torchvision v2 semantics).
//!
//! - CenterCrop: the crop's top-left corner is `round((H − h)/2)`,
//!   `round((W − w)/2)` (ties to even, as Python's `round`); along a side
//!   where the crop is larger than the image the image is zero-padded by
//!   `⌊(h − H)/2⌋` before and `⌈(h − H)/2⌉` after, as torchvision does.
//! - RandomErasing (Zhong et al. 2020, "Random Erasing Data Augmentation",
//!   arXiv:1708.04896): up to ten tries of an area fraction `s ~ U[scale]`
//!   and a log-uniform aspect ratio `r`, giving `h = round(√(s·A·r))`,
//!   `w = round(√(s·A/r))` (note: the reverse of RandomResizedCrop); the first
//!   box with `h < H` and `w < W` is placed at `top ~ U{0..H−h}`, then
//!   `left ~ U{0..W−w}`. When no try fits, nothing is erased. The box is
//!   filled with a constant per channel or per-pixel noise.

use rand::RngExt;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::crop::uniform;
use crate::error::{ensure, OpResult};
use crate::rng::standard_normal;

/// Top-left corner of a centred `ch × cw` crop of an `h × w` image; negative
/// along a side where the crop is larger (the zero padding before the image).
pub fn center_anchor(h: usize, w: usize, ch: usize, cw: usize) -> (isize, isize) {
    let anchor = |size: usize, crop: usize| -> isize {
        if crop > size {
            -(((crop - size) / 2) as isize)
        } else {
            ((size - crop) as f64 / 2.0).round_ties_even() as isize
        }
    };
    (anchor(h, ch), anchor(w, cw))
}

/// Writes the centred `ch × cw` crop of an `(h, w, 3)` image to `dst`,
/// zero where the crop leaves the image.
pub fn center_crop(src: &[u8], h: usize, w: usize, ch: usize, cw: usize, dst: &mut [u8]) {
    let (top, left) = center_anchor(h, w, ch, cw);
    // the columns of the crop that fall inside the image
    let c0 = (-left).max(0) as usize;
    let c1 = ((w as isize - left).min(cw as isize)).max(c0 as isize) as usize;
    for r in 0..ch {
        let row = &mut dst[r * cw * 3..(r + 1) * cw * 3];
        let sr = top + r as isize;
        if sr < 0 || sr >= h as isize {
            row.fill(0);
            continue;
        }
        row[..c0 * 3].fill(0);
        row[c1 * 3..].fill(0);
        let s = (sr as usize * w + (left + c0 as isize) as usize) * 3;
        row[c0 * 3..c1 * 3].copy_from_slice(&src[s..s + (c1 - c0) * 3]);
    }
}

/// Writes the `ch × cw` window at `(top, left)` of an `(h, w, 3)` image to
/// `dst`; outside the image it reads the reflection (`−1 → 1`, `h → h − 2`,
/// torch's `reflect` padding, which needs the window within one image size of
/// the border) or zeros.
#[allow(clippy::too_many_arguments)]
pub fn padded_crop(src: &[u8], h: usize, w: usize, top: isize, left: isize, ch: usize, cw: usize, reflect: bool, dst: &mut [u8]) {
    let (hi, wi) = (h as isize, w as isize);
    let fold = |i: isize, n: isize| -> Option<usize> {
        if (0..n).contains(&i) {
            Some(i as usize)
        } else if reflect {
            let r = if i < 0 { -i } else { 2 * (n - 1) - i };
            Some(r.clamp(0, n - 1) as usize)
        } else {
            None
        }
    };
    // the columns of the window inside the image: a straight copy
    let c0 = (-left).clamp(0, cw as isize) as usize;
    let c1 = (wi - left).clamp(c0 as isize, cw as isize) as usize;
    for r in 0..ch {
        let row = &mut dst[r * cw * 3..(r + 1) * cw * 3];
        let Some(sr) = fold(top + r as isize, hi) else {
            row.fill(0);
            continue;
        };
        let srow = &src[sr * w * 3..(sr + 1) * w * 3];
        for c in (0..c0).chain(c1..cw) {
            match fold(left + c as isize, wi) {
                Some(sc) => row[c * 3..c * 3 + 3].copy_from_slice(&srow[sc * 3..sc * 3 + 3]),
                None => row[c * 3..c * 3 + 3].fill(0),
            }
        }
        if c1 > c0 {
            let s = (left + c0 as isize) as usize * 3;
            row[c0 * 3..c1 * 3].copy_from_slice(&srow[s..s + (c1 - c0) * 3]);
        }
    }
}

/// Mirrors an `(h, w, 3)` image top–bottom in place.
pub fn flip_vertical(img: &mut [u8], h: usize, w: usize) {
    let row = w * 3;
    for r in 0..h / 2 {
        let (a, b) = img.split_at_mut((h - 1 - r) * row);
        a[r * row..(r + 1) * row].swap_with_slice(&mut b[..row]);
    }
}

/// What RandomErasing writes into the box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EraseValue {
    /// One value per channel, in the units of the output (normalised units
    /// after Normalize, grey levels otherwise).
    Constant([f64; 3]),
    /// Per-pixel noise: standard normal after Normalize (torchvision's
    /// `value="random"`), uniform grey levels 0..=255 on uint8 output.
    Random,
}

/// Validated `scale` and `ratio` of a RandomErasing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EraseRanges {
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
}

impl EraseRanges {
    pub fn new(scale: (f64, f64), ratio: (f64, f64)) -> OpResult<Self> {
        ensure(scale.0.is_finite() && scale.1.is_finite() && 0.0 <= scale.0 && scale.0 <= scale.1 && scale.1 <= 1.0, "scale", || {
            format!("expected 0 <= min <= max <= 1, got ({}, {})", scale.0, scale.1)
        })?;
        ensure(ratio.0.is_finite() && ratio.1.is_finite() && 0.0 < ratio.0 && ratio.0 <= ratio.1, "ratio", || {
            format!("expected 0 < min <= max, got ({}, {})", ratio.0, ratio.1)
        })?;
        Ok(Self { scale, ratio })
    }
}

/// An erased box `(top, left, height, width)`; `None` when no try fits.
pub fn draw_erase_box(ranges: &EraseRanges, h: usize, w: usize, rng: &mut ChaCha8Rng) -> Option<[usize; 4]> {
    let area = (h * w) as f64;
    let (lr0, lr1) = (ranges.ratio.0.ln(), ranges.ratio.1.ln());
    for _ in 0..10 {
        let target = area * uniform(rng, ranges.scale.0, ranges.scale.1);
        let aspect = uniform(rng, lr0, lr1).exp();
        let eh = (target * aspect).sqrt().round_ties_even();
        let ew = (target / aspect).sqrt().round_ties_even();
        if !(eh < h as f64 && ew < w as f64) {
            continue;
        }
        let (eh, ew) = (eh as usize, ew as usize);
        let top = rng.random_range(0..=h - eh);
        let left = rng.random_range(0..=w - ew);
        return Some([top, left, eh, ew]);
    }
    None
}

/// The noise generator of one erased box.
pub fn noise_rng(noise_seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(noise_seed)
}

/// A pixel type an erased box can be filled with: a constant, or noise from the box's generator.
pub trait ErasedPixel: Copy {
    /// The fill for a constant `value` (a grey level for uint8, a standardised value for float32).
    fn constant(value: f64) -> Self;
    /// Fills `row` with noise: standard normal values for float32, uniform grey levels for uint8.
    fn noise(row: &mut [Self], rng: &mut ChaCha8Rng);
}

impl ErasedPixel for f32 {
    fn constant(value: f64) -> Self {
        value as f32
    }
    fn noise(row: &mut [Self], rng: &mut ChaCha8Rng) {
        row.iter_mut().for_each(|x| *x = standard_normal(rng));
    }
}

impl ErasedPixel for u8 {
    fn constant(value: f64) -> Self {
        value as u8
    }
    fn noise(row: &mut [Self], rng: &mut ChaCha8Rng) {
        rng.fill(row);
    }
}

/// Erases `bx` of CHW planes `(3, h, w)`; noise is drawn channel by channel, row by row.
pub fn erase<T: ErasedPixel>(out: &mut [T], h: usize, w: usize, bx: [usize; 4], value: EraseValue, noise_seed: u64) {
    let [top, left, eh, ew] = bx;
    let mut rng = noise_rng(noise_seed);
    for (c, plane) in out.chunks_exact_mut(h * w).take(3).enumerate() {
        for r in top..top + eh {
            let row = &mut plane[r * w + left..r * w + left + ew];
            match value {
                EraseValue::Constant(v) => row.fill(T::constant(v[c])),
                EraseValue::Random => T::noise(row, &mut rng),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    fn image(h: usize, w: usize) -> Vec<u8> {
        (0..h * w * 3).map(|i| (i % 251) as u8).collect()
    }

    fn pixel(img: &[u8], w: usize, r: usize, c: usize) -> &[u8] {
        &img[(r * w + c) * 3..(r * w + c) * 3 + 3]
    }

    #[test]
    fn center_crop_anchor_rounds_half_to_even_and_pads_with_zeros() {
        assert_eq!(center_anchor(10, 10, 4, 4), (3, 3));
        assert_eq!(center_anchor(9, 10, 4, 5), (2, 2)); // 2.5 -> 2, 2.5 -> 2
        assert_eq!(center_anchor(11, 8, 4, 5), (4, 2)); // 3.5 -> 4, 1.5 -> 2
        assert_eq!(center_anchor(4, 5, 7, 8), (-1, -1));
        let src = image(4, 5);
        let mut dst = vec![9u8; 7 * 8 * 3];
        center_crop(&src, 4, 5, 7, 8, &mut dst);
        for r in 0..7 {
            for c in 0..8 {
                let (sr, sc) = (r as isize - 1, c as isize - 1);
                let expected = if (0..4).contains(&sr) && (0..5).contains(&sc) {
                    pixel(&src, 5, sr as usize, sc as usize).to_vec()
                } else {
                    vec![0, 0, 0]
                };
                assert_eq!(pixel(&dst, 8, r, c), &expected[..], "{r} {c}");
            }
        }
        // larger along one side only: padded rows, centred columns
        let mut dst = vec![9u8; 6 * 3 * 3];
        center_crop(&src, 4, 5, 6, 3, &mut dst);
        assert_eq!(pixel(&dst, 3, 0, 0), &[0, 0, 0]);
        assert_eq!(pixel(&dst, 3, 1, 0), pixel(&src, 5, 0, 1));
    }

    #[test]
    fn vertical_flip_twice_is_identity() {
        let src = image(5, 3);
        let mut a = src.clone();
        flip_vertical(&mut a, 5, 3);
        assert_eq!(pixel(&a, 3, 0, 1), pixel(&src, 3, 4, 1));
        assert_eq!(pixel(&a, 3, 2, 2), pixel(&src, 3, 2, 2));
        flip_vertical(&mut a, 5, 3);
        assert_eq!(a, src);
    }

    #[test]
    fn erase_boxes_fit_strictly_and_follow_the_scale() {
        let ranges = EraseRanges::new((0.02, 0.33), (0.3, 3.3)).unwrap();
        let mut fitted = 0;
        for i in 0..1000 {
            if let Some([t, l, eh, ew]) = draw_erase_box(&ranges, 40, 60, &mut sample_rng(1, 0, OpSalt::Augment, i)) {
                assert!(eh < 40 && ew < 60 && t + eh <= 40 && l + ew <= 60);
                let frac = (eh * ew) as f64 / 2400.0;
                assert!((0.005..0.4).contains(&frac), "{frac}");
                fitted += 1;
            }
        }
        assert!(fitted > 990);
        assert!(draw_erase_box(&EraseRanges::new((1.0, 1.0), (1.0, 1.0)).unwrap(), 8, 8, &mut sample_rng(0, 0, OpSalt::Augment, 0)).is_none());
        assert!(EraseRanges::new((0.1, 1.5), (1.0, 1.0)).is_err());
        assert!(EraseRanges::new((0.1, 0.5), (0.0, 1.0)).is_err());
    }

    #[test]
    fn erasing_fills_only_the_box() {
        let (h, w) = (6, 7);
        let mut out = vec![0.5f32; 3 * h * w];
        erase(&mut out, h, w, [1, 2, 3, 4], EraseValue::Constant([1.0, 2.0, 3.0]), 0);
        for c in 0..3 {
            for r in 0..h {
                for x in 0..w {
                    let inside = (1..4).contains(&r) && (2..6).contains(&x);
                    assert_eq!(out[c * h * w + r * w + x], if inside { (c + 1) as f32 } else { 0.5 });
                }
            }
        }
        let mut a = vec![7u8; 3 * h * w];
        erase(&mut a, h, w, [0, 0, 6, 7], EraseValue::Random, 3);
        let mut b = vec![7u8; 3 * h * w];
        erase(&mut b, h, w, [0, 0, 6, 7], EraseValue::Random, 3);
        assert_eq!(a, b);
        assert!(a.iter().filter(|&&v| v != 7).count() > 100);
    }
}
