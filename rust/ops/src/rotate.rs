//! Rotation by multiples of 90° (Gidaris, Singh & Komodakis 2018, RotNet).
//!
//! `k` quarter turns counter-clockwise, the convention of `numpy.rot90`:
//! for k = 1 the top row of the input becomes its left column, read bottom up.

use rand::RngExt;

use crate::error::{ensure, OpResult};
use crate::image::ImageBatch;
use crate::parallel::for_each_sample;
use crate::rng::{OpSalt, Streams};

/// Output `(height, width)` of an `h × w` image turned `k` quarter turns.
pub fn rotated_size(h: usize, w: usize, k: u8) -> (usize, usize) {
    if k % 2 == 0 {
        (h, w)
    } else {
        (w, h)
    }
}

/// Rotates one `(h, w, c)` image by `k` quarter turns counter-clockwise.
pub fn rot90(src: &[u8], h: usize, w: usize, c: usize, k: u8, dst: &mut [u8]) {
    let k = k % 4;
    let (oh, ow) = rotated_size(h, w, k);
    for i in 0..oh {
        for j in 0..ow {
            let (y, x) = match k {
                0 => (i, j),
                1 => (j, w - 1 - i),
                2 => (h - 1 - i, w - 1 - j),
                _ => (h - 1 - j, i),
            };
            let s = (y * w + x) * c;
            let d = (i * ow + j) * c;
            dst[d..d + c].copy_from_slice(&src[s..s + c]);
        }
    }
}

/// One quarter-turn count per sample, uniform in {0, 1, 2, 3}.
pub fn draw_turns(streams: &Streams<'_>) -> Vec<u8> {
    (0..streams.indices.len())
        .map(|i| streams.rng(OpSalt::Rotate, i).random_range(0..4u8))
        .collect()
}

/// Checks that all outputs share one shape; returns it.
pub fn output_size(h: usize, w: usize, turns: &[u8]) -> OpResult<(usize, usize)> {
    ensure(turns.iter().all(|&k| k < 4), "k", || "quarter turns must be in {0, 1, 2, 3}".into())?;
    let odd = turns.iter().any(|&k| k % 2 == 1);
    let even = turns.iter().any(|&k| k % 2 == 0);
    ensure(h == w || !(odd && even), "images", || {
        format!("rotating {h}x{w} images by both even and odd quarter turns gives mixed shapes; use square images")
    })?;
    Ok(if odd { (w, h) } else { (h, w) })
}

/// Output `o` is input `sources[o]` turned `turns[o]` times.
pub fn rotate_batch(batch: &ImageBatch<'_>, sources: &[usize], turns: &[u8], parallel: bool, out: &mut [u8]) {
    let s = batch.shape;
    for_each_sample(parallel, out, s.sample_len(), |o, dst| {
        rot90(batch.sample(sources[o]), s.h, s.w, s.c, turns[o], dst);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_turn_moves_top_row_to_left_column() {
        // 2x3 image, values = index
        let src: Vec<u8> = (0..6).collect();
        let mut dst = vec![0u8; 6];
        rot90(&src, 2, 3, 1, 1, &mut dst);
        // numpy.rot90([[0,1,2],[3,4,5]]) == [[2,5],[1,4],[0,3]]
        assert_eq!(dst, vec![2, 5, 1, 4, 0, 3]);
        rot90(&src, 2, 3, 1, 2, &mut dst);
        assert_eq!(dst, vec![5, 4, 3, 2, 1, 0]);
        rot90(&src, 2, 3, 1, 3, &mut dst);
        assert_eq!(dst, vec![3, 0, 4, 1, 5, 2]);
    }

    #[test]
    fn four_turns_are_identity() {
        let src: Vec<u8> = (0..60).collect();
        let mut a = vec![0u8; 60];
        let mut b = vec![0u8; 60];
        rot90(&src, 4, 5, 3, 1, &mut a);
        rot90(&a, 5, 4, 3, 3, &mut b);
        assert_eq!(b, src);
    }

    #[test]
    fn mixed_parity_on_non_square_is_an_error() {
        assert!(output_size(4, 5, &[0, 1]).is_err());
        assert_eq!(output_size(4, 5, &[1, 3]).unwrap(), (5, 4));
        assert_eq!(output_size(5, 5, &[0, 1]).unwrap(), (5, 5));
    }
}
