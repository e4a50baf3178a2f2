//! Wrappers of the colour ops: sRGB ↔ Lab and the quantised ab space.

use numpy::prelude::*;
use numpy::PyUntypedArray;
use pyo3::prelude::*;
use selfsup_ops::color;

use super::arrays::{alloc, array_arg, float_arg, to_numpy, value_error};
use super::batch::run_detached;

fn last_dim(shape: &[usize], want: usize, arg: &str) -> PyResult<usize> {
    if shape.is_empty() || shape[shape.len() - 1] != want {
        return Err(value_error(arg, format!("expected a last dimension of {want}, got shape {shape:?}")));
    }
    if shape.iter().any(|&d| d == 0) {
        return Err(value_error(arg, format!("the array is empty, shape {shape:?}")));
    }
    Ok(shape.iter().product::<usize>() / want)
}

/// A float array with last dimension `want` and only finite values: `(data, shape, rows)`.
fn finite_floats(obj: &Bound<'_, PyAny>, arg: &str, want: usize) -> PyResult<(Vec<f32>, Vec<usize>, usize)> {
    let (data, shape) = float_arg(obj, arg)?;
    let rows = last_dim(&shape, want, arg)?;
    if data.iter().any(|v| !v.is_finite()) {
        return Err(value_error(arg, "contains NaN or infinity"));
    }
    Ok((data, shape, rows))
}

/// Applies `f` to every 3-value pixel of `data` on the pool, GIL released.
fn map_pixels<T: Copy + Sync>(py: Python<'_>, data: &[T], f: impl Fn(&[T]) -> [f32; 3] + Sync + Send) -> PyResult<Vec<f32>> {
    let mut out = alloc::<f32>(&[data.len()], "pixels")?;
    run_detached(py, |parallel| {
        use rayon::prelude::*;
        let work = |(src, dst): (&[T], &mut [f32])| {
            for (s, d) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
                d.copy_from_slice(&f(s));
            }
        };
        if parallel {
            data.par_chunks(3 * 4096).zip(out.par_chunks_mut(3 * 4096)).for_each(work);
        } else {
            work((data, &mut out));
        }
    })?;
    Ok(out)
}

fn grid_bins(grid: i64) -> PyResult<Vec<[f32; 2]>> {
    if !(1..=110).contains(&grid) {
        return Err(value_error("grid", format!("expected 1 to 110 ab units, got {grid}")));
    }
    Ok(color::ab_bins(grid as u32))
}

/// sRGB → Lab: uint8 `(..., 3)` or float32/float64 in [0, 1] → float32 `(..., 3)`.
#[pyfunction]
fn rgb_to_lab<'py>(py: Python<'py>, images: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let is_u8 = images.cast::<PyUntypedArray>().map(|a| a.dtype().is_equiv_to(&numpy::dtype::<u8>(py))).unwrap_or(false);
    if is_u8 {
        let arr = array_arg::<u8>(images, "images", "uint8")?;
        let shape = arr.shape.clone();
        last_dim(&shape, 3, "images")?;
        let data = arr.data();
        let mut out = alloc::<f32>(&[data.len()], "images")?;
        run_detached(py, |parallel| {
            use rayon::prelude::*;
            if parallel {
                data.par_chunks(3 * 4096).zip(out.par_chunks_mut(3 * 4096)).for_each(|(s, d)| color::srgb8_to_lab_into(s, d));
            } else {
                color::srgb8_to_lab_into(data, &mut out);
            }
        })?;
        return Ok(to_numpy(py, out, &shape)?.into_any());
    }
    let (data, shape, _) = finite_floats(images, "images", 3)?;
    let out = map_pixels(py, &data, |p| color::srgb_to_lab([p[0], p[1], p[2]]))?;
    Ok(to_numpy(py, out, &shape)?.into_any())
}

/// Lab → sRGB in [0, 1]: float `(..., 3)` → float32 `(..., 3)`.
#[pyfunction]
fn lab_to_rgb<'py>(py: Python<'py>, lab: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let (data, shape, _) = finite_floats(lab, "lab", 3)?;
    let out = map_pixels(py, &data, |p| color::lab_to_srgb([p[0], p[1], p[2]]))?;
    Ok(to_numpy(py, out, &shape)?.into_any())
}

/// In-gamut ab bin centres `(Q, 2)` float32 for a grid of `grid` units.
#[pyfunction]
#[pyo3(signature = (grid=10))]
fn ab_bins<'py>(py: Python<'py>, grid: i64) -> PyResult<Bound<'py, PyAny>> {
    let _active = super::batch::enter()?;
    let bins = py.detach(|| grid_bins(grid))?;
    let q = bins.len();
    Ok(to_numpy(py, bins.into_iter().flatten().collect(), &[q, 2])?.into_any())
}

/// Soft encoding of ab values `(..., 2)` over the bins: float32 `(..., Q)`.
#[pyfunction]
#[pyo3(signature = (ab, sigma=5.0, neighbours=5, grid=10))]
fn encode_ab<'py>(py: Python<'py>, ab: &Bound<'py, PyAny>, sigma: f64, neighbours: i64, grid: i64) -> PyResult<Bound<'py, PyAny>> {
    let (data, shape, n) = finite_floats(ab, "ab", 2)?;
    if !(sigma > 0.0) || !sigma.is_finite() {
        return Err(value_error("sigma", format!("expected > 0, got {sigma}")));
    }
    let bins = grid_bins(grid)?;
    let q = bins.len();
    if neighbours < 1 || neighbours as usize > q {
        return Err(value_error("neighbours", format!("expected 1 to {q}, got {neighbours}")));
    }
    let k = neighbours as usize;
    let mut out = alloc::<f32>(&[n, q], "ab")?;
    run_detached(py, |parallel| {
        use rayon::prelude::*;
        let work = |(src, dst): (&[f32], &mut [f32])| {
            let mut scratch = Vec::with_capacity(k);
            for (s, d) in src.chunks_exact(2).zip(dst.chunks_exact_mut(q)) {
                color::encode_soft([s[0], s[1]], &bins, k, sigma as f32, &mut scratch, d);
            }
        };
        if parallel {
            data.par_chunks(2 * 256).zip(out.par_chunks_mut(q * 256)).for_each(work);
        } else {
            work((&data, &mut out));
        }
    })?;
    let mut out_shape = shape[..shape.len() - 1].to_vec();
    out_shape.push(q);
    Ok(to_numpy(py, out, &out_shape)?.into_any())
}

/// Index of the nearest bin of each ab value `(..., 2)`: int64 `(...)`.
#[pyfunction]
#[pyo3(signature = (ab, grid=10))]
fn nearest_ab_bin<'py>(py: Python<'py>, ab: &Bound<'py, PyAny>, grid: i64) -> PyResult<Bound<'py, PyAny>> {
    let (data, shape, n) = finite_floats(ab, "ab", 2)?;
    let bins = grid_bins(grid)?;
    let mut out = alloc::<i64>(&[n], "ab")?;
    run_detached(py, |_| {
        let mut scratch = Vec::with_capacity(1);
        for (s, d) in data.chunks_exact(2).zip(out.iter_mut()) {
            color::nearest_bins([s[0], s[1]], &bins, 1, &mut scratch);
            *d = scratch[0].1 as i64;
        }
    })?;
    Ok(to_numpy(py, out, &shape[..shape.len() - 1])?.into_any())
}

/// Annealed-mean decoding of bin probabilities `(..., Q)` to ab `(..., 2)`.
#[pyfunction]
#[pyo3(signature = (probs, temperature=0.38, grid=10))]
fn decode_ab<'py>(py: Python<'py>, probs: &Bound<'py, PyAny>, temperature: f64, grid: i64) -> PyResult<Bound<'py, PyAny>> {
    let (data, shape) = float_arg(probs, "probs")?;
    let bins = grid_bins(grid)?;
    let q = bins.len();
    let n = last_dim(&shape, q, "probs")?;
    if !(temperature > 0.0) || !temperature.is_finite() {
        return Err(value_error("temperature", format!("expected > 0, got {temperature}")));
    }
    if data.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(value_error("probs", "expected finite non-negative probabilities"));
    }
    let mut out = alloc::<f32>(&[n, 2], "probs")?;
    run_detached(py, |_| {
        for (p, d) in data.chunks_exact(q).zip(out.chunks_exact_mut(2)) {
            d.copy_from_slice(&color::annealed_mean(p, &bins, temperature as f32));
        }
    })?;
    let mut out_shape = shape[..shape.len() - 1].to_vec();
    out_shape.push(2);
    Ok(to_numpy(py, out, &out_shape)?.into_any())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rgb_to_lab, m)?)?;
    m.add_function(wrap_pyfunction!(lab_to_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(ab_bins, m)?)?;
    m.add_function(wrap_pyfunction!(encode_ab, m)?)?;
    m.add_function(wrap_pyfunction!(nearest_ab_bin, m)?)?;
    m.add_function(wrap_pyfunction!(decode_ab, m)?)?;
    Ok(())
}
