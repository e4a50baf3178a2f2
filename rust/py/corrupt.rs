//! Wrapper of the image corruptions.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rand::RngExt;
use selfsup_ops::corrupt::{self as corrupt_ops, KINDS};
use selfsup_ops::parallel::for_each_sample3;
use selfsup_ops::rng::{OpSalt, Streams};

use super::arrays::{alloc, images_arg, indices_arg, opt_i64_arg, to_numpy, value_error};
use super::batch::run_blocks;

/// Corrupted images, labels `(N,)`, masks `(N, H, W)`, regions `(N, 2, 2)` (top-left of the
/// region and of the swap partner, −1 when unused).
#[pyfunction]
#[pyo3(signature = (images, kinds, size, seed, epoch, indices=None, labels=None))]
#[allow(clippy::too_many_arguments)]
fn corrupt<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    kinds: Vec<i64>,
    size: f64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
    labels: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    if kinds.is_empty() || kinds.iter().any(|&k| !(0..KINDS as i64).contains(&k)) {
        return Err(value_error("kinds", format!("expected a non-empty list of corruptions in 0..{KINDS}, got {kinds:?}")));
    }
    if !(size > 0.0 && size <= 0.5) {
        return Err(value_error("size", format!("expected a fraction of the shorter side in (0, 0.5], got {size}")));
    }
    let side = ((s.h.min(s.w) as f64) * size).round().max(1.0) as usize;
    let explicit = opt_i64_arg(labels, &[s.n], "labels")?;
    if let Some(ls) = &explicit {
        if let Some(bad) = ls.iter().find(|&&l| !(0..KINDS as i64).contains(&l)) {
            return Err(value_error("labels", format!("expected labels in 0..{KINDS}, got {bad}")));
        }
    }
    let indices = indices_arg(indices, s.n, "indices")?;
    let len = s.sample_len();
    let mut out = alloc::<u8>(&[s.n, len], "images")?;
    let mut masks = alloc::<u8>(&[s.n, s.h, s.w], "images")?;
    let mut meta = alloc::<i64>(&[s.n, 5], "images")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        let explicit = explicit.as_deref();
        for_each_sample3(
            parallel,
            &mut out[r.start * len..r.end * len],
            len,
            &mut masks[r.start * s.h * s.w..r.end * s.h * s.w],
            s.h * s.w,
            &mut meta[r.start * 5..r.end * 5],
            5,
            |i, dst, mask, info| {
                let g = start + i;
                let mut rng = streams.rng(OpSalt::Corrupt, i);
                let label = match explicit {
                    Some(ls) => ls[g] as usize,
                    None => kinds[rng.random_range(0..kinds.len())] as usize,
                };
                let regions = corrupt_ops::corrupt_one(batch.sample(g), s.h, s.w, s.c, side, label, &mut rng, dst, mask);
                let second = regions.second.map_or((-1, -1), |(y, x)| (y as i64, x as i64));
                info.copy_from_slice(&[label as i64, regions.first.0 as i64, regions.first.1 as i64, second.0, second.1]);
            },
        );
    })?;
    let labels: Vec<i64> = meta.chunks_exact(5).map(|m| m[0]).collect();
    let regions: Vec<i64> = meta.chunks_exact(5).flat_map(|m| m[1..].to_vec()).collect();
    PyTuple::new(
        py,
        [
            to_numpy(py, out, &[s.n, s.h, s.w, s.c])?.into_any(),
            to_numpy(py, labels, &[s.n])?.into_any(),
            to_numpy(py, masks, &[s.n, s.h, s.w])?.into_any(),
            to_numpy(py, regions, &[s.n, 2, 2])?.into_any(),
        ],
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(corrupt, m)?)?;
    Ok(())
}
