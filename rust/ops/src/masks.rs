//! Inpainting masks (Pathak et al. 2016, "Context Encoders: Feature Learning by Inpainting",
//! arXiv:1604.07379, §3.3): 1 marks a missing pixel.
//!
//! - `Center`: a centred rectangle covering `fraction` of the area (¼ in the paper: half the side).
//! - `Blocks`: up to `blocks` random rectangles with sides in [H/8, H/4] × [W/8, W/4], drawn until
//!   `fraction` of the image is covered.
//! - `Region`: an arbitrary smooth shape: a 6×6 field of uniform noise, bilinearly upsampled, with
//!   the `fraction` of highest pixels masked (the paper used PASCAL segmentation shapes, which
//!   cannot ship here).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskKind {
    Center,
    Blocks { blocks: usize },
    Region,
}

/// Fills `mask` (`h × w`, zeros on entry not required) for one sample.
pub fn make_mask(kind: MaskKind, h: usize, w: usize, fraction: f32, rng: &mut ChaCha8Rng, mask: &mut [u8]) {
    mask.fill(0);
    let target = (fraction * (h * w) as f32).round() as usize;
    match kind {
        MaskKind::Center => {
            let side = fraction.sqrt();
            let (mh, mw) = (((h as f32) * side).round() as usize, ((w as f32) * side).round() as usize);
            let (y0, x0) = ((h - mh) / 2, (w - mw) / 2);
            for y in y0..y0 + mh {
                mask[y * w + x0..y * w + x0 + mw].fill(1);
            }
        }
        MaskKind::Blocks { blocks } => {
            let mut covered = 0;
            for _ in 0..blocks {
                if covered >= target {
                    break;
                }
                let bh = rng.random_range((h / 8).max(1)..=(h / 4).max(1));
                let bw = rng.random_range((w / 8).max(1)..=(w / 4).max(1));
                let y0 = rng.random_range(0..=h - bh);
                let x0 = rng.random_range(0..=w - bw);
                for y in y0..y0 + bh {
                    for m in &mut mask[y * w + x0..y * w + x0 + bw] {
                        covered += (*m == 0) as usize;
                        *m = 1;
                    }
                }
            }
        }
        MaskKind::Region => {
            const G: usize = 6;
            let field: Vec<f32> = (0..G * G).map(|_| rng.random::<f32>()).collect();
            let mut values: Vec<(f32, usize)> = Vec::with_capacity(h * w);
            for y in 0..h {
                let fy = (y as f32 + 0.5) / h as f32 * (G - 1) as f32;
                let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
                let y1 = (y0 + 1).min(G - 1);
                for x in 0..w {
                    let fx = (x as f32 + 0.5) / w as f32 * (G - 1) as f32;
                    let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
                    let x1 = (x0 + 1).min(G - 1);
                    let top = field[y0 * G + x0] * (1.0 - tx) + field[y0 * G + x1] * tx;
                    let bottom = field[y1 * G + x0] * (1.0 - tx) + field[y1 * G + x1] * tx;
                    values.push((top * (1.0 - ty) + bottom * ty, y * w + x));
                }
            }
            values.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
            for &(_, p) in values.iter().take(target) {
                mask[p] = 1;
            }
        }
    }
}

/// How masked pixels are filled.
#[derive(Debug, Clone)]
pub enum Fill {
    /// One value per channel.
    Colour(Vec<u8>),
    /// Uniform random values.
    Noise,
}

/// Copies an `(h, w, c)` image into `dst`, replacing masked pixels.
pub fn apply_mask(src: &[u8], mask: &[u8], c: usize, fill: &Fill, rng: &mut ChaCha8Rng, dst: &mut [u8]) {
    dst.copy_from_slice(src);
    for (p, &m) in mask.iter().enumerate() {
        if m != 0 {
            let px = &mut dst[p * c..(p + 1) * c];
            match fill {
                Fill::Colour(v) => px.copy_from_slice(v),
                Fill::Noise => px.iter_mut().for_each(|v| *v = rng.random::<u8>()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn centre_mask_is_half_the_side() {
        let mut m = vec![0u8; 64 * 64];
        make_mask(MaskKind::Center, 64, 64, 0.25, &mut sample_rng(0, 0, OpSalt::Masks, 0), &mut m);
        assert_eq!(m.iter().map(|&v| v as usize).sum::<usize>(), 32 * 32);
        assert_eq!(m[16 * 64 + 16], 1);
        assert_eq!(m[15 * 64 + 16], 0);
    }

    #[test]
    fn region_and_blocks_cover_about_the_fraction() {
        for kind in [MaskKind::Region, MaskKind::Blocks { blocks: 50 }] {
            let mut m = vec![0u8; 80 * 60];
            make_mask(kind, 80, 60, 0.25, &mut sample_rng(1, 0, OpSalt::Masks, 3), &mut m);
            let cover = m.iter().map(|&v| v as f32).sum::<f32>() / (80.0 * 60.0);
            assert!((0.24..0.45).contains(&cover), "{kind:?} {cover}");
        }
    }
}
