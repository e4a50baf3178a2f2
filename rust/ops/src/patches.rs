//! Grids of patches: Noroozi & Favaro's jigsaw tiles, Doersch et al.'s
//! gapped grids and CPC's overlapping grids.
//!
//! A grid of `gy × gx` cells with origin `(oy, ox)` and step `cell` puts the
//! top-left of tile `(r, q)` at `(oy + r·cell + dy, ox + q·cell + dx)`, where
//! the offset `(dy, dx)` lies in `[0, cell − patch]` when cells are larger
//! than tiles (random with jitter, centred without) and is 0 for overlapping
//! grids (`cell < patch`, e.g. CPC's stride-32 grid of 64-px patches). The
//! grid spans `(g − 1)·cell + max(cell, patch)` pixels per axis; its origin is
//! random inside the image with jitter and centred without.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::error::{ensure, OpResult};
use crate::image::{copy_rect, ImageBatch};

/// Geometry of a patch grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSpec {
    pub gy: usize,
    pub gx: usize,
    /// Distance between the origins of neighbouring cells.
    pub cell: usize,
    /// Side of a square tile.
    pub patch: usize,
}

impl GridSpec {
    pub fn new(gy: usize, gx: usize, cell: usize, patch: usize) -> OpResult<Self> {
        ensure(gy > 0 && gx > 0, "grid", || format!("grid must be at least (1, 1), got ({gy}, {gx})"))?;
        ensure(patch > 0, "patch", || "patch must be positive".into())?;
        ensure(cell > 0, "cell", || "cell must be positive".into())?;
        Ok(Self { gy, gx, cell, patch })
    }

    pub fn tiles(&self) -> usize {
        self.gy.saturating_mul(self.gx)
    }

    /// Pixels the grid spans along an axis with `g` cells (saturating: a grid too large to
    /// count in `usize` spans more than any image and fails [`Self::check_fits`]).
    pub fn extent(&self, g: usize) -> usize {
        (g - 1).saturating_mul(self.cell).saturating_add(self.cell.max(self.patch))
    }

    /// Checks that the grid fits an `h × w` image.
    pub fn check_fits(&self, h: usize, w: usize) -> OpResult<()> {
        let (ey, ex) = (self.extent(self.gy), self.extent(self.gx));
        ensure(ey <= h && ex <= w, "patch", || {
            format!(
                "a {}x{} grid of {}-px tiles with cell {} spans {ey}x{ex} pixels, larger than the {h}x{w} images",
                self.gy, self.gx, self.patch, self.cell
            )
        })
    }

    /// Tile positions `(y, x)` in row-major order. Draw order: origin y,
    /// origin x, then `(dy, dx)` per tile.
    pub fn positions(&self, h: usize, w: usize, jitter: bool, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
        let slack_y = h - self.extent(self.gy);
        let slack_x = w - self.extent(self.gx);
        let play = self.cell.saturating_sub(self.patch);
        let (oy, ox) = if jitter {
            (rng.random_range(0..=slack_y), rng.random_range(0..=slack_x))
        } else {
            (slack_y / 2, slack_x / 2)
        };
        let mut out = Vec::with_capacity(self.tiles());
        for r in 0..self.gy {
            for q in 0..self.gx {
                let (dy, dx) = if jitter {
                    (rng.random_range(0..=play), rng.random_range(0..=play))
                } else {
                    (play / 2, play / 2)
                };
                out.push((oy + r * self.cell + dy, ox + q * self.cell + dx));
            }
        }
        out
    }
}

/// Checks explicit tile positions: `positions` holds `(y, x)` pairs of
/// tile top-left corners that must keep every tile inside the image.
pub fn check_positions(positions: &[i64], h: usize, w: usize, patch: usize) -> OpResult<()> {
    for pair in positions.chunks_exact(2) {
        let (y, x) = (pair[0], pair[1]);
        ensure(
            y >= 0 && x >= 0 && y as usize + patch <= h && x as usize + patch <= w,
            "positions",
            || format!("tile at ({y}, {x}) of size {patch} leaves the {h}x{w} image"),
        )?;
    }
    Ok(())
}

/// Copies the tiles at `positions` of an `(h, w, c)` image into
/// `(tiles, patch, patch, c)`.
pub fn extract(src: &[u8], w: usize, c: usize, positions: &[(usize, usize)], patch: usize, dst: &mut [u8]) {
    let tile = patch * patch * c;
    for (t, &(y, x)) in positions.iter().enumerate() {
        copy_rect(src, w, c, y, x, patch, patch, &mut dst[t * tile..(t + 1) * tile]);
    }
}

/// Reads the `(y, x)` pairs of sample `i` from a flat `(N, T, 2)` array.
pub fn positions_of(flat: &[i64], i: usize, tiles: usize) -> Vec<(usize, usize)> {
    flat[i * tiles * 2..(i + 1) * tiles * 2].chunks_exact(2).map(|p| (p[0] as usize, p[1] as usize)).collect()
}

/// Tiles of a whole batch: `out` is `(N, T, patch, patch, C)`, `positions_out`
/// is `(N, T, 2)` and receives the positions used.
pub fn patch_grid_batch(
    batch: &ImageBatch<'_>,
    spec: GridSpec,
    jitter: bool,
    rngs: &(dyn Fn(usize) -> ChaCha8Rng + Sync),
    explicit: Option<&[i64]>,
    parallel: bool,
    out: &mut [u8],
    positions_out: &mut [i64],
) {
    let s = batch.shape;
    let t = spec.tiles();
    crate::parallel::for_each_sample2(parallel, out, t * spec.patch * spec.patch * s.c, positions_out, t * 2, |i, dst, pos| {
        let positions = match explicit {
            Some(flat) => positions_of(flat, i, t),
            None => spec.positions(s.h, s.w, jitter, &mut rngs(i)),
        };
        for (k, &(y, x)) in positions.iter().enumerate() {
            pos[2 * k] = y as i64;
            pos[2 * k + 1] = x as i64;
        }
        extract(batch.sample(i), s.w, s.c, &positions, spec.patch, dst);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn noroozi_grid_on_255_crop() {
        let spec = GridSpec::new(3, 3, 85, 64).unwrap();
        assert_eq!(spec.extent(3), 255);
        spec.check_fits(255, 255).unwrap();
        assert!(spec.check_fits(254, 255).is_err());
        let p = spec.positions(255, 255, false, &mut sample_rng(0, 0, OpSalt::PatchGrid, 0));
        assert_eq!(p[0], (10, 10));
        assert_eq!(p[4], (95, 95));
        for _ in 0..100 {
            let p = spec.positions(256, 256, true, &mut sample_rng(3, 0, OpSalt::PatchGrid, 0));
            for (k, &(y, x)) in p.iter().enumerate() {
                let (r, q) = (k / 3, k % 3);
                // inside its own cell, given an origin of 0 or 1
                assert!(y >= r * 85 && y + 64 <= r * 85 + 85 + 1, "{y}");
                assert!(x >= q * 85 && x + 64 <= q * 85 + 85 + 1, "{x}");
            }
        }
    }

    #[test]
    fn overlapping_grid_has_stride_spacing() {
        let spec = GridSpec::new(7, 7, 32, 64).unwrap();
        assert_eq!(spec.extent(7), 256);
        let p = spec.positions(256, 256, true, &mut sample_rng(0, 0, OpSalt::PatchGrid, 0));
        assert_eq!(p[0], (0, 0));
        assert_eq!(p[8], (32, 32));
        assert_eq!(p[48], (192, 192));
    }

    #[test]
    fn extract_matches_slicing() {
        let (h, w, c) = (6, 7, 2);
        let src: Vec<u8> = (0..(h * w * c) as u32).map(|v| (v % 251) as u8).collect();
        let mut dst = vec![0u8; 2 * 3 * 3 * c];
        extract(&src, w, c, &[(1, 2), (3, 4)], 3, &mut dst);
        for (t, (y0, x0)) in [(1usize, 2usize), (3, 4)].into_iter().enumerate() {
            for y in 0..3 {
                for x in 0..3 {
                    for ch in 0..c {
                        assert_eq!(dst[((t * 3 + y) * 3 + x) * c + ch], src[((y0 + y) * w + x0 + x) * c + ch]);
                    }
                }
            }
        }
    }
}
