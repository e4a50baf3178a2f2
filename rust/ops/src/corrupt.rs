//! Image corruptions for "spot the artifacts" (Jenni & Favaro 2018, "Self-Supervised Feature
//! Learning by Learning to Spot Artifacts", arXiv:1806.05024), applied in image space to a square
//! region of side `size` at a random position; the label says which corruption, the mask where.
//!
//! | label | corruption |
//! |---|---|
//! | 0 | none |
//! | 1 | patch swap: the region and a second, non-overlapping one exchange their pixels |
//! | 2 | Gaussian noise, σ = 25 grey levels |
//! | 3 | blur: 5×5 box mean of the image (edges replicated), rounded |
//! | 4 | block artifacts: each 8×8 block of the image grid replaced by its rounded mean |
//! | 5 | colour shift: one offset per channel, ±(20..=60), saturating |
//!
//! Draw order per sample: label (when not given), region y, x, then the corruption's own draws
//! (second region for a swap: up to 20 tries; noise values; channel offsets).

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::rng::standard_normal;

pub const KINDS: usize = 6;

/// Region boxes `(y, x, side)`; the second is used by a swap only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regions {
    pub first: (usize, usize),
    pub second: Option<(usize, usize)>,
    pub side: usize,
}

fn overlaps(a: (usize, usize), b: (usize, usize), side: usize) -> bool {
    a.0 < b.0 + side && b.0 < a.0 + side && a.1 < b.1 + side && b.1 < a.1 + side
}

/// Corrupts one `(h, w, c)` image with `label`, writing the image into `dst` and the changed
/// region into `mask`. Returns the regions used.
pub fn corrupt_one(src: &[u8], h: usize, w: usize, c: usize, side: usize, label: usize, rng: &mut ChaCha8Rng, dst: &mut [u8], mask: &mut [u8]) -> Regions {
    dst.copy_from_slice(src);
    mask.fill(0);
    let first = (rng.random_range(0..=h - side), rng.random_range(0..=w - side));
    let mut regions = Regions { first, second: None, side };
    if label == 0 {
        return regions;
    }
    let mark = |(y0, x0): (usize, usize), mask: &mut [u8]| {
        for y in y0..y0 + side {
            mask[y * w + x0..y * w + x0 + side].fill(1);
        }
    };
    mark(first, mask);
    let region_pixels = |(y0, x0): (usize, usize)| (y0..y0 + side).flat_map(move |y| (x0..x0 + side).map(move |x| y * w + x));
    match label {
        1 => {
            let mut second = None;
            for _ in 0..20 {
                let cand = (rng.random_range(0..=h - side), rng.random_range(0..=w - side));
                if !overlaps(first, cand, side) {
                    second = Some(cand);
                    break;
                }
            }
            // with no room for a disjoint region, swap with the opposite corner's region
            let second = second.unwrap_or((h - side - first.0, w - side - first.1));
            regions.second = Some(second);
            mark(second, mask);
            for (p, q) in region_pixels(first).zip(region_pixels(second)) {
                dst[p * c..(p + 1) * c].copy_from_slice(&src[q * c..(q + 1) * c]);
                dst[q * c..(q + 1) * c].copy_from_slice(&src[p * c..(p + 1) * c]);
            }
        }
        2 => {
            for p in region_pixels(first) {
                for ch in 0..c {
                    let v = src[p * c + ch] as f32 + 25.0 * standard_normal(rng);
                    dst[p * c + ch] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        3 => {
            for p in region_pixels(first) {
                let (y, x) = (p / w, p % w);
                for ch in 0..c {
                    let mut total = 0u32;
                    for dy in -2i64..=2 {
                        for dx in -2i64..=2 {
                            let yy = (y as i64 + dy).clamp(0, h as i64 - 1) as usize;
                            let xx = (x as i64 + dx).clamp(0, w as i64 - 1) as usize;
                            total += src[(yy * w + xx) * c + ch] as u32;
                        }
                    }
                    dst[p * c + ch] = ((total + 12) / 25) as u8;
                }
            }
        }
        4 => {
            for p in region_pixels(first) {
                let (y, x) = (p / w, p % w);
                let (by, bx) = (y / 8 * 8, x / 8 * 8);
                let (ey, ex) = ((by + 8).min(h), (bx + 8).min(w));
                let count = ((ey - by) * (ex - bx)) as u32;
                for ch in 0..c {
                    let mut total = 0u32;
                    for yy in by..ey {
                        for xx in bx..ex {
                            total += src[(yy * w + xx) * c + ch] as u32;
                        }
                    }
                    dst[p * c + ch] = ((total + count / 2) / count) as u8;
                }
            }
        }
        _ => {
            let offsets: Vec<i32> = (0..c)
                .map(|_| {
                    let magnitude = rng.random_range(20..=60);
                    if rng.random::<bool>() { magnitude } else { -magnitude }
                })
                .collect();
            for p in region_pixels(first) {
                for ch in 0..c {
                    dst[p * c + ch] = (src[p * c + ch] as i32 + offsets[ch]).clamp(0, 255) as u8;
                }
            }
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn swap_exchanges_two_disjoint_regions() {
        let (h, w, c, side) = (40, 40, 1, 10);
        let src: Vec<u8> = (0..h * w).map(|v| (v % 251) as u8).collect();
        let mut dst = vec![0u8; h * w * c];
        let mut mask = vec![0u8; h * w];
        let r = corrupt_one(&src, h, w, c, side, 1, &mut sample_rng(0, 0, OpSalt::Corrupt, 1), &mut dst, &mut mask);
        let second = r.second.unwrap();
        assert!(!overlaps(r.first, second, side));
        assert_eq!(mask.iter().map(|&m| m as usize).sum::<usize>(), 2 * side * side);
        assert_eq!(dst[r.first.0 * w + r.first.1], src[second.0 * w + second.1]);
    }

    #[test]
    fn clean_label_changes_nothing() {
        let src = vec![9u8; 20 * 20 * 3];
        let mut dst = vec![0u8; src.len()];
        let mut mask = vec![1u8; 400];
        corrupt_one(&src, 20, 20, 3, 5, 0, &mut sample_rng(0, 0, OpSalt::Corrupt, 0), &mut dst, &mut mask);
        assert_eq!(dst, src);
        assert!(mask.iter().all(|&m| m == 0));
    }
}
