//! Wrappers of the geometric pretext ops: patch grids, jigsaw, relative
//! patches, rotations.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use selfsup_ops::jigsaw::{self as jigsaw_ops, Criterion, JigsawSpec};
use selfsup_ops::patches::{self, GridSpec};
use selfsup_ops::relative::{self, RelativeSpec};
use selfsup_ops::rng::{OpSalt, Streams};
use selfsup_ops::rotate;

use super::arrays::{alloc, array_arg, images_arg, indices_arg, op_err, opt_i64_arg, to_numpy, value_error};
use super::batch::{run_blocks, run_detached, run_interruptible};

fn positive(v: i64, arg: &str) -> PyResult<usize> {
    if v > 0 {
        Ok(v as usize)
    } else {
        Err(value_error(arg, format!("expected a positive integer, got {v}")))
    }
}

fn non_negative(v: i64, arg: &str) -> PyResult<usize> {
    if v >= 0 {
        Ok(v as usize)
    } else {
        Err(value_error(arg, format!("expected a non-negative integer, got {v}")))
    }
}

fn grid_spec(grid: (i64, i64), cell: i64, patch: i64) -> PyResult<GridSpec> {
    let gy = positive(grid.0, "grid")?;
    let gx = positive(grid.1, "grid")?;
    GridSpec::new(gy, gx, positive(cell, "cell")?, positive(patch, "patch")?).map_err(op_err)
}

/// Tiles of a patch grid: `(N, gy·gx, patch, patch, C)` uint8 and the tile
/// positions `(N, gy·gx, 2)` int64.
#[pyfunction]
#[pyo3(signature = (images, grid, cell, patch, jitter, seed, epoch, indices=None, positions=None))]
#[allow(clippy::too_many_arguments)]
fn patch_grid<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    grid: (i64, i64),
    cell: i64,
    patch: i64,
    jitter: bool,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
    positions: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    let spec = grid_spec(grid, cell, patch)?;
    let t = spec.tiles();
    let explicit = opt_i64_arg(positions, &[s.n, t, 2], "positions")?;
    match &explicit {
        Some(p) => patches::check_positions(p, s.h, s.w, spec.patch).map_err(op_err)?,
        None => spec.check_fits(s.h, s.w).map_err(op_err)?,
    }
    let indices = indices_arg(indices, s.n, "indices")?;
    let tile_len = t * spec.patch * spec.patch * s.c;
    let mut out = alloc::<u8>(&[s.n, tile_len], "images")?;
    let mut pos = alloc::<i64>(&[s.n, t, 2], "images")?;
    run_blocks(py, s.n, |r, parallel| {
        let sub = batch.rows(r.clone());
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let rngs = |i: usize| streams.rng(OpSalt::PatchGrid, i);
        let exp = explicit.as_deref().map(|p| &p[r.start * t * 2..r.end * t * 2]);
        patches::patch_grid_batch(&sub, spec, jitter, &rngs, exp, parallel, &mut out[r.start * tile_len..r.end * tile_len], &mut pos[r.start * t * 2..r.end * t * 2]);
    })?;
    let p = spec.patch;
    let tiles = to_numpy(py, out, &[s.n, t, p, p, s.c])?;
    let pos = to_numpy(py, pos, &[s.n, t, 2])?;
    PyTuple::new(py, [tiles.into_any(), pos.into_any()])
}

/// Greedy maximal-Hamming permutation set `(count, tiles)` int64.
#[pyfunction]
#[pyo3(signature = (count, tiles, seed, criterion))]
fn jigsaw_permutations<'py>(py: Python<'py>, count: i64, tiles: i64, seed: u64, criterion: &str) -> PyResult<Bound<'py, PyAny>> {
    let count = positive(count, "count")?;
    let tiles = positive(tiles, "tiles")?;
    let criterion = match criterion {
        "maxmin" => Criterion::MaxMin,
        "maxmean" => Criterion::MaxMean,
        other => return Err(value_error("criterion", format!("expected 'maxmin' or 'maxmean', got {other:?}"))),
    };
    let set = run_interruptible(py, |parallel, stop| {
        jigsaw_ops::permutation_set_until(count, tiles, seed, criterion, parallel, &|| stop.load(std::sync::atomic::Ordering::Relaxed))
    })?
    .map_err(op_err)?;
    let set: Vec<i64> = set.into_iter().map(i64::from).collect();
    Ok(to_numpy(py, set, &[count, tiles])?.into_any())
}

/// Shuffled jigsaw tiles `(N, T, patch, patch, C)` uint8, labels `(N,)`,
/// positions `(N, T, 2)` (of the unshuffled tiles, row-major).
#[pyfunction]
#[pyo3(signature = (images, permutations, grid, cell, patch, jitter, channel_jitter, seed, epoch, indices=None, labels=None, positions=None))]
#[allow(clippy::too_many_arguments)]
fn jigsaw<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    permutations: &Bound<'py, PyAny>,
    grid: (i64, i64),
    cell: i64,
    patch: i64,
    jitter: bool,
    channel_jitter: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
    labels: Option<&Bound<'py, PyAny>>,
    positions: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    let spec = JigsawSpec { grid: grid_spec(grid, cell, patch)?, jitter, channel_jitter: non_negative(channel_jitter, "channel_jitter")? };
    let t = spec.grid.tiles();
    let perms = array_arg::<i64>(permutations, "permutations", "int64")?;
    if perms.shape.len() != 2 || perms.shape[1] != t {
        return Err(value_error("permutations", format!("expected shape (count, {t}) for a {}x{} grid, got {:?}", spec.grid.gy, spec.grid.gx, perms.shape)));
    }
    let perms: Vec<i64> = perms.data().to_vec();
    jigsaw_ops::check_permutations(&perms, t).map_err(op_err)?;
    let count = perms.len() / t;
    let explicit_labels = opt_i64_arg(labels, &[s.n], "labels")?;
    if let Some(ls) = &explicit_labels {
        if let Some(bad) = ls.iter().find(|&&l| l < 0 || l as usize >= count) {
            return Err(value_error("labels", format!("expected permutation indices in [0, {count}), got {bad}")));
        }
    }
    let explicit_positions = opt_i64_arg(positions, &[s.n, t, 2], "positions")?;
    match &explicit_positions {
        Some(p) => patches::check_positions(p, s.h, s.w, spec.grid.patch).map_err(op_err)?,
        None => spec.grid.check_fits(s.h, s.w).map_err(op_err)?,
    }
    let indices = indices_arg(indices, s.n, "indices")?;
    let p = spec.grid.patch;
    let tile_len = t * p * p * s.c;
    let mut out = alloc::<u8>(&[s.n, tile_len], "images")?;
    let mut lab = alloc::<i64>(&[s.n], "images")?;
    let mut pos = alloc::<i64>(&[s.n, t, 2], "images")?;
    run_blocks(py, s.n, |r, parallel| {
        let sub = batch.rows(r.clone());
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let rngs = |i: usize| streams.rng(OpSalt::Jigsaw, i);
        jigsaw_ops::jigsaw_batch(
            &sub,
            &spec,
            &perms,
            &rngs,
            explicit_labels.as_deref().map(|l| &l[r.clone()]),
            explicit_positions.as_deref().map(|q| &q[r.start * t * 2..r.end * t * 2]),
            parallel,
            &mut out[r.start * tile_len..r.end * tile_len],
            &mut lab[r.clone()],
            &mut pos[r.start * t * 2..r.end * t * 2],
        );
    })?;
    let tiles = to_numpy(py, out, &[s.n, t, p, p, s.c])?;
    PyTuple::new(py, [tiles.into_any(), to_numpy(py, lab, &[s.n])?.into_any(), to_numpy(py, pos, &[s.n, t, 2])?.into_any()])
}

/// Per-tile, per-channel standardisation of uint8 tiles `(..., P, P, C)` to float32.
#[pyfunction]
fn standardize_tiles<'py>(py: Python<'py>, tiles: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let arr = array_arg::<u8>(tiles, "tiles", "uint8")?;
    let shape = arr.shape.clone();
    if shape.len() < 3 || shape.iter().any(|&d| d == 0) {
        return Err(value_error("tiles", format!("expected a non-empty array (..., P, P, C), got {shape:?}")));
    }
    let c = shape[shape.len() - 1];
    let tile_len = c * shape[shape.len() - 2] * shape[shape.len() - 3];
    let data = arr.data();
    let mut out = alloc::<f32>(&[data.len()], "images")?;
    run_detached(py, |_| jigsaw_ops::standardize_tiles(data, tile_len, c, &mut out))?;
    Ok(to_numpy(py, out, &shape)?.into_any())
}

/// Relative-position pairs: `(N, 2, patch, patch, C)` uint8 (centre, neighbour),
/// labels `(N,)`, positions `(N, 2, 2)`.
#[pyfunction]
#[pyo3(signature = (images, patch, gap, jitter, drop_colors, seed, epoch, indices=None, labels=None, positions=None))]
#[allow(clippy::too_many_arguments)]
fn relative_patches<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    patch: i64,
    gap: i64,
    jitter: i64,
    drop_colors: bool,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
    labels: Option<&Bound<'py, PyAny>>,
    positions: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    let spec = RelativeSpec { patch: positive(patch, "patch")?, gap: non_negative(gap, "gap")?, jitter: non_negative(jitter, "jitter")?, drop_colors };
    let explicit_labels = opt_i64_arg(labels, &[s.n], "labels")?;
    if let Some(ls) = &explicit_labels {
        if let Some(bad) = ls.iter().find(|&&l| !(0..8).contains(&l)) {
            return Err(value_error("labels", format!("expected labels in [0, 8), got {bad}")));
        }
    }
    let explicit_positions = opt_i64_arg(positions, &[s.n, 2, 2], "positions")?;
    match &explicit_positions {
        Some(p) => {
            patches::check_positions(p, s.h, s.w, spec.patch).map_err(op_err)?;
            if drop_colors && s.c != 3 {
                return Err(value_error("drop_colors", format!("colour dropping needs 3 channels, got {}", s.c)));
            }
        }
        None => spec.check(s.h, s.w, s.c).map_err(op_err)?,
    }
    let indices = indices_arg(indices, s.n, "indices")?;
    let p = spec.patch;
    let pair_len = 2 * p * p * s.c;
    let mut out = alloc::<u8>(&[s.n, pair_len], "images")?;
    let mut lab = alloc::<i64>(&[s.n], "images")?;
    let mut pos = alloc::<i64>(&[s.n, 4], "images")?;
    run_blocks(py, s.n, |r, parallel| {
        let sub = batch.rows(r.clone());
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let rngs = |i: usize| streams.rng(OpSalt::Relative, i);
        relative::relative_batch(
            &sub,
            &spec,
            &rngs,
            explicit_labels.as_deref().map(|l| &l[r.clone()]),
            explicit_positions.as_deref().map(|q| &q[r.start * 4..r.end * 4]),
            parallel,
            &mut out[r.start * pair_len..r.end * pair_len],
            &mut lab[r.clone()],
            &mut pos[r.start * 4..r.end * 4],
        );
    })?;
    let pairs = to_numpy(py, out, &[s.n, 2, p, p, s.c])?;
    PyTuple::new(py, [pairs.into_any(), to_numpy(py, lab, &[s.n])?.into_any(), to_numpy(py, pos, &[s.n, 2, 2])?.into_any()])
}

/// Rotated images and labels. `mode` is "random" (one turn per image),
/// "all" (four outputs per image, turns 0..3 in order) or "given" (`k`).
#[pyfunction]
#[pyo3(signature = (images, mode, seed, epoch, indices=None, k=None))]
fn rotations<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    mode: &str,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
    k: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    let (sources, turns): (Vec<usize>, Vec<u8>) = match mode {
        "random" => {
            let indices = indices_arg(indices, s.n, "indices")?;
            ((0..s.n).collect(), rotate::draw_turns(&Streams { seed, epoch, indices: &indices }))
        }
        "all" => ((0..4 * s.n).map(|o| o / 4).collect(), (0..4 * s.n).map(|o| (o % 4) as u8).collect()),
        "given" => {
            let Some(ks) = opt_i64_arg(k, &[s.n], "k")? else {
                return Err(value_error("k", "mode 'given' needs k, one quarter-turn count per image"));
            };
            if let Some(bad) = ks.iter().find(|&&v| !(0..4).contains(&v)) {
                return Err(value_error("k", format!("quarter turns must be in {{0, 1, 2, 3}}, got {bad}")));
            }
            ((0..s.n).collect(), ks.iter().map(|&v| v as u8).collect())
        }
        other => return Err(value_error("mode", format!("expected 'random', 'all' or 'given', got {other:?}"))),
    };
    let (oh, ow) = rotate::output_size(s.h, s.w, &turns).map_err(op_err)?;
    let m = turns.len();
    let mut out = alloc::<u8>(&[m, s.sample_len()], "images")?;
    let len = s.sample_len();
    run_blocks(py, m, |r, parallel| {
        rotate::rotate_batch(&batch, &sources[r.clone()], &turns[r.clone()], parallel, &mut out[r.start * len..r.end * len]);
    })?;
    let labels: Vec<i64> = turns.iter().map(|&t| t as i64).collect();
    PyTuple::new(py, [to_numpy(py, out, &[m, oh, ow, s.c])?.into_any(), to_numpy(py, labels, &[m])?.into_any()])
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(patch_grid, m)?)?;
    m.add_function(wrap_pyfunction!(jigsaw_permutations, m)?)?;
    m.add_function(wrap_pyfunction!(jigsaw, m)?)?;
    m.add_function(wrap_pyfunction!(standardize_tiles, m)?)?;
    m.add_function(wrap_pyfunction!(relative_patches, m)?)?;
    m.add_function(wrap_pyfunction!(rotations, m)?)?;
    Ok(())
}
