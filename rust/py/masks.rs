//! Wrappers of the inpainting masks.

use pyo3::prelude::*;
use selfsup_ops::masks::{self, Fill, MaskKind};
use selfsup_ops::parallel::for_each_sample;
use selfsup_ops::rng::{OpSalt, Streams};

use super::arrays::{alloc, array_arg, images_arg, indices_arg, to_numpy, value_error};
use super::batch::run_blocks;

fn fraction_arg(fraction: f64) -> PyResult<f32> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(value_error("fraction", format!("expected a value in (0, 1], got {fraction}")));
    }
    Ok(fraction as f32)
}

/// Masks `(n, h, w)` uint8, 1 = missing.
#[pyfunction]
#[pyo3(signature = (n, size, kind, fraction, blocks, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn inpaint_masks<'py>(
    py: Python<'py>,
    n: i64,
    size: (i64, i64),
    kind: &str,
    fraction: f64,
    blocks: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if n < 1 {
        return Err(value_error("n", format!("expected a positive number of masks, got {n}")));
    }
    if size.0 < 1 || size.1 < 1 {
        return Err(value_error("size", format!("expected a positive (H, W), got {size:?}")));
    }
    let fraction = fraction_arg(fraction)?;
    let kind = match kind {
        "center" => MaskKind::Center,
        "blocks" if blocks >= 1 => MaskKind::Blocks { blocks: blocks as usize },
        "blocks" => return Err(value_error("blocks", format!("expected a positive count, got {blocks}"))),
        "region" => MaskKind::Region,
        other => return Err(value_error("kind", format!("expected 'center', 'blocks' or 'region', got {other:?}"))),
    };
    let (n, h, w) = (n as usize, size.0 as usize, size.1 as usize);
    let indices = indices_arg(indices, n, "indices")?;
    let mut out = alloc::<u8>(&[n, h, w], "n, size")?;
    run_blocks(py, n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        for_each_sample(parallel, &mut out[r.start * h * w..r.end * h * w], h * w, |i, m| {
            masks::make_mask(kind, h, w, fraction, &mut streams.rng(OpSalt::Masks, i), m);
        });
    })?;
    Ok(to_numpy(py, out, &[n, h, w])?.into_any())
}

/// Images with masked pixels replaced by `fill` (one value per channel) or uniform noise.
#[pyfunction]
#[pyo3(signature = (images, masks, fill, noise, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn apply_mask<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    masks: &Bound<'py, PyAny>,
    fill: Vec<i64>,
    noise: bool,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let images = images_arg(images, "images", &[1, 3])?;
    let batch = images.batch();
    let s = batch.shape;
    let m = array_arg::<u8>(masks, "masks", "uint8")?;
    if m.shape != [s.n, s.h, s.w] {
        return Err(value_error("masks", format!("expected shape ({}, {}, {}), got {:?}", s.n, s.h, s.w, m.shape)));
    }
    let fill = if noise {
        Fill::Noise
    } else {
        if fill.len() != s.c || fill.iter().any(|v| !(0..=255).contains(v)) {
            return Err(value_error("fill", format!("expected {} values in 0..=255, got {fill:?}", s.c)));
        }
        Fill::Colour(fill.iter().map(|&v| v as u8).collect())
    };
    let indices = indices_arg(indices, s.n, "indices")?;
    let mask_data = m.data();
    let len = s.sample_len();
    let mut out = alloc::<u8>(&[s.n, len], "images")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample(parallel, &mut out[r.start * len..r.end * len], len, |i, dst| {
            let g = start + i;
            let mask = &mask_data[g * s.h * s.w..(g + 1) * s.h * s.w];
            masks::apply_mask(batch.sample(g), mask, s.c, &fill, &mut streams.rng(OpSalt::Masks, i), dst);
        });
    })?;
    Ok(to_numpy(py, out, &[s.n, s.h, s.w, s.c])?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(inpaint_masks, m)?)?;
    m.add_function(wrap_pyfunction!(apply_mask, m)?)?;
    Ok(())
}
