//! RandomResizedCrop (Szegedy et al. 2015, "Going deeper with convolutions";
//! torchvision semantics) and horizontal flips.
//!
//! Parameters are drawn exactly as torchvision's `RandomResizedCrop`: up to
//! ten tries of an area fraction `s ~ U[scale]` and a log-uniform aspect
//! ratio `r = exp(U[ln ratio])`, giving `w = round(sqrt(s·A·r))`,
//! `h = round(sqrt(s·A/r))` (Python's round, ties to even); the first box that
//! fits is placed uniformly (`top ~ U{0..H−h}`, then `left ~ U{0..W−w}`).
//! If none fits, the largest centred box whose aspect ratio is clamped to
//! `ratio` is used. The box is cropped first and then resized with an
//! antialiased bilinear (triangle) filter — the filter of Pillow and of
//! torchvision's `antialias=True` — through fast_image_resize's SIMD
//! convolution; pixels outside the box never contribute. When the box has
//! fewer rows than the output, the rows are resized first (the order of
//! Pillow and torchvision, and the costly per-pixel row pass then covers
//! fewer rows); otherwise fast_image_resize's own order, columns first.
//! Either way each pass rounds to uint8.

use std::cell::RefCell;

use fast_image_resize::images::{CroppedImage, Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::error::{ensure, OpResult};

/// A crop box in pixels: `(top, left, height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl CropBox {
    pub fn full(h: usize, w: usize) -> Self {
        Self { top: 0, left: 0, height: h, width: w }
    }

    /// Checks that the box is non-empty and inside an `h × w` image.
    pub fn check(&self, h: usize, w: usize, arg: &'static str) -> OpResult<()> {
        ensure(
            self.height > 0
                && self.width > 0
                && self.top.checked_add(self.height).is_some_and(|bottom| bottom <= h)
                && self.left.checked_add(self.width).is_some_and(|right| right <= w),
            arg,
            || {
                format!(
                    "crop box (top={}, left={}, height={}, width={}) is empty or leaves the {h}x{w} image",
                    self.top, self.left, self.height, self.width
                )
            },
        )
    }
}

/// Validated `scale` and `ratio` ranges of a RandomResizedCrop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRanges {
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
}

impl CropRanges {
    pub fn new(scale: (f64, f64), ratio: (f64, f64)) -> OpResult<Self> {
        ensure(
            scale.0.is_finite() && scale.1.is_finite() && 0.0 < scale.0 && scale.0 <= scale.1,
            "scale",
            || format!("expected 0 < min <= max, got ({}, {})", scale.0, scale.1),
        )?;
        ensure(
            ratio.0.is_finite() && ratio.1.is_finite() && 0.0 < ratio.0 && ratio.0 <= ratio.1,
            "ratio",
            || format!("expected 0 < min <= max, got ({}, {})", ratio.0, ratio.1),
        )?;
        Ok(Self { scale, ratio })
    }
}

/// Draws a crop box of an `h × w` image. Draw order per try: area fraction,
/// log aspect ratio, and only for a box that fits: top, then left.
pub fn draw_box(ranges: &CropRanges, h: usize, w: usize, rng: &mut ChaCha8Rng) -> CropBox {
    let area = (h * w) as f64;
    let (lr0, lr1) = (ranges.ratio.0.ln(), ranges.ratio.1.ln());
    for _ in 0..10 {
        let target = area * uniform(rng, ranges.scale.0, ranges.scale.1);
        let aspect = uniform(rng, lr0, lr1).exp();
        let cw = (target * aspect).sqrt().round_ties_even();
        let ch = (target / aspect).sqrt().round_ties_even();
        if cw > 0.0 && cw <= w as f64 && ch > 0.0 && ch <= h as f64 {
            let (ch, cw) = (ch as usize, cw as usize);
            let top = rng.random_range(0..=h - ch);
            let left = rng.random_range(0..=w - cw);
            return CropBox { top, left, height: ch, width: cw };
        }
    }
    centre_fallback(ranges, h, w)
}

/// torchvision's fallback: the whole image with its aspect ratio clamped to `ratio`, centred.
pub fn centre_fallback(ranges: &CropRanges, h: usize, w: usize) -> CropBox {
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < ranges.ratio.0 {
        (((w as f64) / ranges.ratio.0).round_ties_even() as usize, w)
    } else if in_ratio > ranges.ratio.1 {
        (h, ((h as f64) * ranges.ratio.1).round_ties_even() as usize)
    } else {
        (h, w)
    };
    let (ch, cw) = (ch.clamp(1, h), cw.clamp(1, w));
    CropBox { top: (h - ch) / 2, left: (w - cw) / 2, height: ch, width: cw }
}

/// `U[lo, hi)` from one 53-bit draw.
pub fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

thread_local! {
    /// The resizer and an intermediate image buffer.
    static RESIZER: RefCell<(Resizer, Vec<u8>)> = RefCell::new((Resizer::new(), Vec::new()));
}

/// Crops `bx` out of an `(h, w, 3)` image and resizes it to `(oh, ow, 3)`
/// with the antialiased bilinear filter.
pub fn resized_crop(src: &[u8], h: usize, w: usize, bx: CropBox, dst: &mut [u8], oh: usize, ow: usize) {
    debug_assert!(bx.top + bx.height <= h && bx.left + bx.width <= w);
    if bx.height == oh && bx.width == ow {
        crate::image::copy_rect(src, w, 3, bx.top, bx.left, oh, ow, dst);
        return;
    }
    let src_img = ImageRef::new(w as u32, h as u32, src, PixelType::U8x3).expect("buffer sized by the caller");
    let cropped = CroppedImage::new(&src_img, bx.left as u32, bx.top as u32, bx.width as u32, bx.height as u32)
        .expect("box checked by the caller");
    let mut dst_img = Image::from_slice_u8(ow as u32, oh as u32, &mut dst[..oh * ow * 3], PixelType::U8x3)
        .expect("buffer sized by the caller");
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    RESIZER.with(|r| {
        let (resizer, mid) = &mut *r.borrow_mut();
        if bx.height < oh && bx.width != ow {
            // Rows first, over the box's rows only (fewer than the output has): the
            // per-pixel row pass is the costly one. The passes round to uint8 in
            // between, as Pillow's and torchvision's do (in this order).
            mid.resize(ow * bx.height * 3, 0);
            let mut mid_img =
                Image::from_slice_u8(ow as u32, bx.height as u32, mid, PixelType::U8x3).expect("sized above");
            resizer.resize(&cropped, &mut mid_img, &options).expect("same pixel types");
            resizer.resize(&mid_img, &mut dst_img, &options).expect("same pixel types");
        } else {
            resizer.resize(&cropped, &mut dst_img, &options).expect("same pixel types");
        }
    });
}

/// Mirrors an `(h, w, 3)` image left–right in place.
pub fn flip_horizontal(img: &mut [u8], h: usize, w: usize) {
    let mut tmp = vec![0u8; w * 3];
    for row in img.chunks_exact_mut(w * 3).take(h) {
        tmp.copy_from_slice(row);
        for (d, s) in row.chunks_exact_mut(3).zip(tmp.chunks_exact(3).rev()) {
            d.copy_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn drawn_boxes_fit_and_follow_the_ranges() {
        let ranges = CropRanges::new((0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0)).unwrap();
        let mut fallbacks = 0;
        for i in 0..2000 {
            let mut rng = sample_rng(3, 0, OpSalt::Augment, i);
            let b = draw_box(&ranges, 120, 160, &mut rng);
            b.check(120, 160, "box").unwrap();
            let frac = (b.height * b.width) as f64 / (120.0 * 160.0);
            if b == centre_fallback(&ranges, 120, 160) {
                fallbacks += 1;
            } else {
                assert!(frac > 0.06 && frac < 1.05, "{frac}");
            }
        }
        assert!(fallbacks < 100);
    }

    #[test]
    fn fallback_clamps_the_aspect_ratio() {
        let ranges = CropRanges::new((0.08, 1.0), (0.75, 4.0 / 3.0)).unwrap();
        assert_eq!(centre_fallback(&ranges, 100, 400), CropBox { top: 0, left: 133, height: 100, width: 133 });
        assert_eq!(centre_fallback(&ranges, 400, 100), CropBox { top: 133, left: 0, height: 133, width: 100 });
        assert_eq!(centre_fallback(&ranges, 100, 110), CropBox::full(100, 110));
        assert!(CropRanges::new((0.0, 1.0), (1.0, 1.0)).is_err());
        assert!(CropRanges::new((0.5, 0.4), (1.0, 1.0)).is_err());
        assert!(CropRanges::new((0.5, 1.0), (-1.0, 1.0)).is_err());
    }

    #[test]
    fn resize_of_a_constant_image_is_constant_and_identity_is_a_copy() {
        let src = vec![77u8; 50 * 40 * 3];
        let mut dst = vec![0u8; 17 * 23 * 3];
        resized_crop(&src, 50, 40, CropBox { top: 3, left: 5, height: 30, width: 31 }, &mut dst, 17, 23);
        assert!(dst.iter().all(|&v| v == 77));
        // an upscaled box (rows resized first)
        let mut dst = vec![0u8; 40 * 45 * 3];
        resized_crop(&src, 50, 40, CropBox { top: 7, left: 2, height: 20, width: 30 }, &mut dst, 40, 45);
        assert!(dst.iter().all(|&v| v == 77));
        // a horizontal ramp upscaled in both directions stays a non-decreasing ramp in every row
        let ramp: Vec<u8> = (0..50 * 40).flat_map(|i| [(i % 40 * 6) as u8; 3]).collect();
        resized_crop(&ramp, 50, 40, CropBox { top: 7, left: 2, height: 20, width: 30 }, &mut dst, 40, 45);
        for row in dst.chunks_exact(45 * 3) {
            assert!(row.chunks_exact(3).zip(row.chunks_exact(3).skip(1)).all(|(a, b)| a[0] <= b[0] && a[0] == a[2]));
            assert!(row[0] <= 2 * 6 + 3 && row[44 * 3] >= 31 * 6 - 3, "{} {}", row[0], row[44 * 3]);
        }
        let src: Vec<u8> = (0..6 * 5 * 3).map(|v| v as u8).collect();
        let mut dst = vec![0u8; 2 * 3 * 3];
        resized_crop(&src, 6, 5, CropBox { top: 1, left: 2, height: 2, width: 3 }, &mut dst, 2, 3);
        assert_eq!(&dst[..9], &src[(5 + 2) * 3..(5 + 5) * 3]);
    }

    #[test]
    fn flip_twice_is_identity() {
        let src: Vec<u8> = (0..4 * 5 * 3).map(|v| v as u8).collect();
        let mut a = src.clone();
        flip_horizontal(&mut a, 4, 5);
        assert_eq!(&a[0..3], &src[12..15]);
        flip_horizontal(&mut a, 4, 5);
        assert_eq!(a, src);
    }
}
