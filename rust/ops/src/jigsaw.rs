//! Jigsaw puzzles (Noroozi & Favaro 2016, "Unsupervised Learning of Visual
//! Representations by Solving Jigsaw Puzzles", arXiv:1603.09246).
//!
//! A permutation set is chosen greedily for large Hamming distances, tiles
//! are cut with a [`GridSpec`](crate::patches::GridSpec) and put in the order
//! of one permutation of the set; the network predicts its index.
//! Convention: slot `k` of the shuffled puzzle holds source tile `perm[k]`.

use rand::RngExt;
use rayon::prelude::*;

use crate::error::{ensure, OpError, OpResult};
use crate::image::ImageBatch;
use crate::patches::{positions_of, GridSpec};
use crate::rng::{sample_rng, ChaCha8Rng, OpSalt};

/// Largest tile count whose permutations are enumerated (10! = 3 628 800).
pub const MAX_TILES: usize = 10;

/// How the next permutation is chosen among the remaining ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Maximise the minimum Hamming distance to the chosen set, ties broken
    /// by the larger total distance, then by lexicographic order.
    MaxMin,
    /// Maximise the mean Hamming distance to the chosen set (the selection of
    /// Noroozi & Favaro's released code).
    MaxMean,
}

fn factorial(n: usize) -> usize {
    (1..=n).product()
}

/// All permutations of `0..n` in lexicographic order, flat `(n!, n)`.
pub fn all_permutations(n: usize) -> Vec<u8> {
    let total = factorial(n);
    let mut out = Vec::with_capacity(total * n);
    let mut p: Vec<u8> = (0..n as u8).collect();
    loop {
        out.extend_from_slice(&p);
        // next lexicographic permutation
        let Some(i) = (0..n.saturating_sub(1)).rev().find(|&i| p[i] < p[i + 1]) else { break };
        let j = (i + 1..n).rev().find(|&j| p[j] > p[i]).expect("exists");
        p.swap(i, j);
        p[i + 1..].reverse();
    }
    out
}

fn hamming(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u32
}

/// Greedy maximal-Hamming permutation set: `count` permutations of `tiles`,
/// flat `(count, tiles)`. The first is drawn from `seed`; each next one is
/// the best remaining one under `criterion`.
pub fn permutation_set(count: usize, tiles: usize, seed: u64, criterion: Criterion, parallel: bool) -> OpResult<Vec<u8>> {
    permutation_set_until(count, tiles, seed, criterion, parallel, &|| false)
}

/// [`permutation_set`] that gives up between two picks once `stop()` is true
/// (an `OpError` on `count`): with 10 tiles each pick scans 3.6 million permutations.
pub fn permutation_set_until(
    count: usize,
    tiles: usize,
    seed: u64,
    criterion: Criterion,
    parallel: bool,
    stop: &(dyn Fn() -> bool + Sync),
) -> OpResult<Vec<u8>> {
    ensure((2..=MAX_TILES).contains(&tiles), "tiles", || {
        format!("expected 2 to {MAX_TILES} tiles, got {tiles}")
    })?;
    let total = factorial(tiles);
    ensure(count >= 1, "count", || format!("expected at least 1 permutation, got {count}"))?;
    ensure(count <= total, "count", || format!("{tiles} tiles have only {total} permutations, {count} were asked for"))?;
    let all = all_permutations(tiles);
    let mut min_d = vec![u32::MAX; total];
    let mut sum_d = vec![0u32; total];
    let mut used = vec![false; total];
    let mut chosen = Vec::with_capacity(count * tiles);
    let mut next = sample_rng(seed, 0, OpSalt::Permutations, 0).random_range(0..total);
    for _ in 0..count {
        if stop() {
            return Err(OpError::new("count", "interrupted"));
        }
        used[next] = true;
        let pick = &all[next * tiles..(next + 1) * tiles];
        chosen.extend_from_slice(pick);
        let update = |(j, (m, s)): (usize, (&mut u32, &mut u32))| {
            let d = hamming(&all[j * tiles..(j + 1) * tiles], pick);
            *m = (*m).min(d);
            *s += d;
        };
        if parallel {
            min_d.par_iter_mut().zip(sum_d.par_iter_mut()).enumerate().for_each(update);
        } else {
            min_d.iter_mut().zip(sum_d.iter_mut()).enumerate().for_each(update);
        }
        let key = |j: usize| -> (u64, u64) {
            match criterion {
                Criterion::MaxMin => (min_d[j] as u64, sum_d[j] as u64),
                Criterion::MaxMean => (sum_d[j] as u64, 0),
            }
        };
        let mut best: Option<(usize, (u64, u64))> = None;
        for j in (0..total).filter(|&j| !used[j]) {
            let k = key(j);
            if best.is_none_or(|(_, bk)| k > bk) {
                best = Some((j, k));
            }
        }
        match best {
            Some((j, _)) => next = j,
            None => break,
        }
    }
    Ok(chosen)
}

/// Checks a user-supplied permutation set `(count, tiles)`.
pub fn check_permutations(perms: &[i64], tiles: usize) -> OpResult<()> {
    ensure(!perms.is_empty(), "permutations", || "the permutation set is empty".into())?;
    for (r, p) in perms.chunks_exact(tiles).enumerate() {
        let mut seen = vec![false; tiles];
        for &v in p {
            ensure(v >= 0 && (v as usize) < tiles && !seen[v as usize], "permutations", || {
                format!("row {r} is not a permutation of 0..{tiles}: {p:?}")
            })?;
            seen[v as usize] = true;
        }
    }
    Ok(())
}

/// Options of a jigsaw batch.
#[derive(Debug, Clone, Copy)]
pub struct JigsawSpec {
    pub grid: GridSpec,
    pub jitter: bool,
    /// Each colour channel of a tile is read from a position shifted by up to
    /// this many pixels (clamped to the image), against chromatic-aberration
    /// shortcuts.
    pub channel_jitter: usize,
}

/// Builds the puzzle of one image: `dst` is `(T, patch, patch, C)`.
/// Draw order: grid positions, then per tile and channel `(dy, dx)`.
pub fn puzzle(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    spec: &JigsawSpec,
    perm: &[i64],
    positions: &[(usize, usize)],
    rng: &mut ChaCha8Rng,
    dst: &mut [u8],
) {
    let p = spec.grid.patch;
    let tile_len = p * p * c;
    let j = spec.channel_jitter as i64;
    for (slot, &source) in perm.iter().enumerate() {
        let (y0, x0) = positions[source as usize];
        let out = &mut dst[slot * tile_len..(slot + 1) * tile_len];
        if j == 0 {
            crate::image::copy_rect(src, w, c, y0, x0, p, p, out);
            continue;
        }
        for ch in 0..c {
            let (dy, dx) = if j > 0 { (rng.random_range(-j..=j), rng.random_range(-j..=j)) } else { (0, 0) };
            let y = (y0 as i64 + dy).clamp(0, (h - p) as i64) as usize;
            let x = (x0 as i64 + dx).clamp(0, (w - p) as i64) as usize;
            for r in 0..p {
                let srow = ((y + r) * w + x) * c + ch;
                let drow = r * p * c + ch;
                for q in 0..p {
                    out[drow + q * c] = src[srow + q * c];
                }
            }
        }
    }
}

/// Per-tile, per-channel standardisation `(x − mean) / std` (population std,
/// 1 where a channel is constant), as in Noroozi & Favaro's training code.
pub fn standardize_tiles(tiles: &[u8], tile_len: usize, c: usize, out: &mut [f32]) {
    for (src, dst) in tiles.chunks_exact(tile_len).zip(out.chunks_exact_mut(tile_len)) {
        for ch in 0..c {
            let values = src.iter().skip(ch).step_by(c);
            let count = (tile_len / c) as f64;
            let (mut s, mut s2) = (0f64, 0f64);
            for &v in values {
                s += v as f64;
                s2 += (v as f64) * (v as f64);
            }
            let mean = s / count;
            let var = (s2 / count - mean * mean).max(0.0);
            let std = if var > 1e-12 { var.sqrt() } else { 1.0 };
            for k in (ch..tile_len).step_by(c) {
                dst[k] = ((src[k] as f64 - mean) / std) as f32;
            }
        }
    }
}

/// A batch of puzzles. `labels[i]` is the permutation index of sample `i`
/// (drawn when `explicit_labels` is `None`); `positions_out` is `(N, T, 2)`.
pub fn jigsaw_batch(
    batch: &ImageBatch<'_>,
    spec: &JigsawSpec,
    perms: &[i64],
    rngs: &(dyn Fn(usize) -> ChaCha8Rng + Sync),
    explicit_labels: Option<&[i64]>,
    explicit_positions: Option<&[i64]>,
    parallel: bool,
    tiles_out: &mut [u8],
    labels_out: &mut [i64],
    positions_out: &mut [i64],
) {
    let s = batch.shape;
    let t = spec.grid.tiles();
    let count = perms.len() / t;
    crate::parallel::for_each_sample3(
        parallel,
        tiles_out,
        t * spec.grid.patch * spec.grid.patch * s.c,
        labels_out,
        1,
        positions_out,
        t * 2,
        |i, dst, label, pos| {
            let mut rng = rngs(i);
            let l = match explicit_labels {
                Some(ls) => ls[i] as usize,
                None => rng.random_range(0..count),
            };
            label[0] = l as i64;
            let positions = match explicit_positions {
                Some(flat) => positions_of(flat, i, t),
                None => spec.grid.positions(s.h, s.w, spec.jitter, &mut rng),
            };
            for (k, &(y, x)) in positions.iter().enumerate() {
                pos[2 * k] = y as i64;
                pos[2 * k + 1] = x as i64;
            }
            puzzle(batch.sample(i), s.h, s.w, s.c, spec, &perms[l * t..(l + 1) * t], &positions, &mut rng, dst);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(set: &[u8], tiles: usize) -> (f64, u32) {
        let rows: Vec<&[u8]> = set.chunks_exact(tiles).collect();
        let (mut sum, mut n, mut min) = (0u64, 0u64, u32::MAX);
        for a in 0..rows.len() {
            for b in a + 1..rows.len() {
                let d = hamming(rows[a], rows[b]);
                sum += d as u64;
                n += 1;
                min = min.min(d);
            }
        }
        (sum as f64 / n as f64, min)
    }

    #[test]
    fn lexicographic_enumeration() {
        let all = all_permutations(3);
        assert_eq!(all, vec![0, 1, 2, 0, 2, 1, 1, 0, 2, 1, 2, 0, 2, 0, 1, 2, 1, 0]);
        assert_eq!(all_permutations(5).len(), 120 * 5);
    }

    #[test]
    fn hundred_permutations_of_nine_are_far_apart() {
        let set = permutation_set(100, 9, 0, Criterion::MaxMin, true).unwrap();
        let (mean, min) = stats(&set, 9);
        assert!(mean >= 8.0, "mean {mean}");
        assert!(min >= 2, "min {min}");
        let mut rows: Vec<&[u8]> = set.chunks_exact(9).collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 100);
        let serial = permutation_set(100, 9, 0, Criterion::MaxMin, false).unwrap();
        assert_eq!(set, serial);
    }

    #[test]
    fn all_permutations_can_be_selected() {
        let set = permutation_set(24, 4, 1, Criterion::MaxMean, false).unwrap();
        let mut rows: Vec<&[u8]> = set.chunks_exact(4).collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 24);
        assert!(permutation_set(25, 4, 1, Criterion::MaxMin, false).is_err());
        assert!(permutation_set(0, 4, 1, Criterion::MaxMin, false).is_err());
        assert!(permutation_set(5, 11, 1, Criterion::MaxMin, false).is_err());
    }

    #[test]
    fn rejects_non_permutations() {
        assert!(check_permutations(&[0, 1, 2, 2, 1, 0], 3).is_ok());
        assert!(check_permutations(&[0, 1, 1], 3).is_err());
        assert!(check_permutations(&[0, 1, 3], 3).is_err());
    }
}
