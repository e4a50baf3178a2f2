//! Relative patch position (Doersch, Gupta & Efros 2015, "Unsupervised
//! Visual Representation Learning by Context Prediction", arXiv:1505.05192).
//!
//! A centre patch and one of its 8 neighbours in a 3×3 layout of `patch`-px
//! patches separated by `gap` px, each patch jittered by up to `jitter` px;
//! the label says where the neighbour lies:
//!
//! ```text
//! 0 1 2
//! 3 · 4
//! 5 6 7
//! ```
//! Colour dropping keeps one random channel of each patch and replaces the
//! other two by Gaussian noise around the kept channel's mean with 1/100 of
//! its standard deviation, so chromatic aberration cannot give the answer.

use rand::RngExt;

use crate::error::{ensure, OpResult};
use crate::image::{copy_rect, ImageBatch};
use crate::rng::{standard_normal, ChaCha8Rng};

/// `(row, column)` of each label in the 3×3 layout.
pub const NEIGHBOURS: [(usize, usize); 8] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelativeSpec {
    pub patch: usize,
    pub gap: usize,
    pub jitter: usize,
    pub drop_colors: bool,
}

impl RelativeSpec {
    /// Pixels the layout needs along each axis.
    pub fn extent(&self) -> usize {
        self.patch.saturating_mul(3).saturating_add(self.gap.saturating_mul(2)).saturating_add(self.jitter.saturating_mul(2))
    }

    pub fn check(&self, h: usize, w: usize, c: usize) -> OpResult<()> {
        ensure(self.patch > 0, "patch", || "patch must be positive".into())?;
        let e = self.extent();
        ensure(h >= e && w >= e, "images", || {
            format!(
                "patch={}, gap={}, jitter={} need images of at least {e}x{e}, got {h}x{w}",
                self.patch, self.gap, self.jitter
            )
        })?;
        ensure(!self.drop_colors || c == 3, "drop_colors", || format!("colour dropping needs 3 channels, got {c}"))
    }

    /// Positions of the centre and neighbour patches for `label`.
    /// Draw order: origin y, origin x, centre (dy, dx), neighbour (dy, dx).
    pub fn positions(&self, h: usize, w: usize, label: usize, rng: &mut ChaCha8Rng) -> [(usize, usize); 2] {
        let step = self.patch + self.gap;
        let span = 3 * self.patch + 2 * self.gap;
        let j = self.jitter;
        let oy = rng.random_range(j..=h - span - j);
        let ox = rng.random_range(j..=w - span - j);
        let mut place = |r: usize, q: usize| {
            let dy = rng.random_range(0..=2 * j);
            let dx = rng.random_range(0..=2 * j);
            (oy + r * step + dy - j, ox + q * step + dx - j)
        };
        let centre = place(1, 1);
        let (r, q) = NEIGHBOURS[label];
        let neighbour = place(r, q);
        [centre, neighbour]
    }
}

/// Keeps channel `keep` of a `(p, p, 3)` patch and fills the others with
/// noise N(mean, (std/100)²) of the kept channel, rounded and clamped.
pub fn drop_colors(patch: &mut [u8], keep: usize, rng: &mut ChaCha8Rng) {
    let n = patch.len() / 3;
    let (mut s, mut s2) = (0f64, 0f64);
    for px in patch.chunks_exact(3) {
        let v = px[keep] as f64;
        s += v;
        s2 += v * v;
    }
    let mean = s / n as f64;
    let std = (s2 / n as f64 - mean * mean).max(0.0).sqrt();
    let sigma = (std / 100.0) as f32;
    for px in patch.chunks_exact_mut(3) {
        for ch in (0..3).filter(|&ch| ch != keep) {
            px[ch] = (mean as f32 + sigma * standard_normal(rng)).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// A batch of pairs: `centres` and `neighbours` are `(N, patch, patch, C)`,
/// `labels` `(N,)`, `positions_out` `(N, 2, 2)`.
#[allow(clippy::too_many_arguments)]
pub fn relative_batch(
    batch: &ImageBatch<'_>,
    spec: &RelativeSpec,
    rngs: &(dyn Fn(usize) -> ChaCha8Rng + Sync),
    explicit_labels: Option<&[i64]>,
    explicit_positions: Option<&[i64]>,
    parallel: bool,
    pairs_out: &mut [u8],
    labels_out: &mut [i64],
    positions_out: &mut [i64],
) {
    let s = batch.shape;
    let p = spec.patch;
    let patch_len = p * p * s.c;
    crate::parallel::for_each_sample3(parallel, pairs_out, 2 * patch_len, labels_out, 1, positions_out, 4, |i, dst, label, pos| {
        let mut rng = rngs(i);
        let l = match explicit_labels {
            Some(ls) => ls[i] as usize,
            None => rng.random_range(0..8usize),
        };
        label[0] = l as i64;
        let places = match explicit_positions {
            Some(flat) => [(flat[4 * i] as usize, flat[4 * i + 1] as usize), (flat[4 * i + 2] as usize, flat[4 * i + 3] as usize)],
            None => spec.positions(s.h, s.w, l, &mut rng),
        };
        for (k, &(y, x)) in places.iter().enumerate() {
            pos[2 * k] = y as i64;
            pos[2 * k + 1] = x as i64;
            let out = &mut dst[k * patch_len..(k + 1) * patch_len];
            copy_rect(batch.sample(i), s.w, s.c, y, x, p, p, out);
        }
        if spec.drop_colors {
            for k in 0..2 {
                let keep = rng.random_range(0..3usize);
                drop_colors(&mut dst[k * patch_len..(k + 1) * patch_len], keep, &mut rng);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn neighbour_lies_in_its_cell() {
        let spec = RelativeSpec { patch: 96, gap: 48, jitter: 7, drop_colors: false };
        assert_eq!(spec.extent(), 398);
        for label in 0..8 {
            for idx in 0..50 {
                let [c, n] = spec.positions(420, 400, label, &mut sample_rng(0, 0, OpSalt::Relative, idx));
                let (r, q) = NEIGHBOURS[label];
                let dy = n.0 as i64 - c.0 as i64 - (r as i64 - 1) * 144;
                let dx = n.1 as i64 - c.1 as i64 - (q as i64 - 1) * 144;
                assert!(dy.abs() <= 14 && dx.abs() <= 14, "{label}: {dy} {dx}");
                assert!(n.0 + 96 <= 420 && n.1 + 96 <= 400 && c.0 + 96 <= 420);
            }
        }
        assert!(spec.check(397, 400, 3).is_err());
        assert!(spec.check(398, 398, 1).is_ok());
    }

    #[test]
    fn colour_dropping_keeps_one_channel() {
        let mut patch: Vec<u8> = (0..300).map(|v| (v * 7 % 256) as u8).collect();
        let original = patch.clone();
        drop_colors(&mut patch, 1, &mut sample_rng(0, 0, OpSalt::Relative, 0));
        for (a, b) in patch.chunks_exact(3).zip(original.chunks_exact(3)) {
            assert_eq!(a[1], b[1]);
        }
        let mean = original.chunks_exact(3).map(|p| p[1] as f64).sum::<f64>() / 100.0;
        for px in patch.chunks_exact(3) {
            assert!((px[0] as f64 - mean).abs() <= 5.0);
        }
    }
}
