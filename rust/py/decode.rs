//! Wrapper of image decoding (`selfsup_ops::decode`).
//!
//! `decode_images(sources, gray, exif_orientation, max_pixels)` takes a list of `bytes`
//! (encoded images) or `str` (file paths), reads and decodes them with the
//! GIL released on the crate's pool, and returns one entry per source: a
//! uint8 `(H, W, C)` array, or a `str` saying why that source could not be
//! decoded. The Python facade turns those into warnings or exceptions.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use selfsup_ops::decode::{self, DecodeOptions, Gray, Input};

use super::arrays::{to_numpy, value_error};
use super::batch::run_blocks;

enum Owned<'py> {
    Bytes(Bound<'py, PyBytes>),
    Path(PathBuf),
}

#[pyfunction]
#[pyo3(signature = (sources, gray = "rgb", exif_orientation = true, max_pixels = None))]
fn decode_images<'py>(
    py: Python<'py>,
    sources: &Bound<'py, PyList>,
    gray: &str,
    exif_orientation: bool,
    max_pixels: Option<i64>,
) -> PyResult<Bound<'py, PyList>> {
    let max_pixels = match max_pixels {
        None => decode::DEFAULT_MAX_PIXELS,
        Some(n) if n > 0 => n as u64,
        Some(n) => return Err(value_error("max_pixels", format!("expected a positive int, got {n}"))),
    };
    let gray = match gray {
        "rgb" => Gray::Rgb,
        "keep" => Gray::Keep,
        other => return Err(value_error("gray", format!("expected 'rgb' or 'keep', got {other:?}"))),
    };
    let mut owned = Vec::with_capacity(sources.len());
    for (k, item) in sources.iter().enumerate() {
        if let Ok(b) = item.cast::<PyBytes>() {
            owned.push(Owned::Bytes(b.clone()));
        } else if let Ok(s) = item.cast::<PyString>() {
            owned.push(Owned::Path(PathBuf::from(s.to_str()?)));
        } else {
            let t = item.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            return Err(PyTypeError::new_err(format!("sources[{k}]: expected bytes or a path str, got {t}")));
        }
    }
    let inputs: Vec<Input<'_>> = owned
        .iter()
        .map(|o| match o {
            Owned::Bytes(b) => Input::Bytes(b.as_bytes()),
            Owned::Path(p) => Input::Path(p.as_path()),
        })
        .collect();
    let options = DecodeOptions { gray, exif_orientation, max_pixels, ..DecodeOptions::default() };
    let mut results = Vec::with_capacity(inputs.len());
    let inputs_ref = &inputs;
    run_blocks(py, inputs.len(), |range, parallel| {
        results.extend(decode::decode_many(&inputs_ref[range], &options, parallel));
    })?;
    let out = PyList::empty(py);
    for r in results {
        match r {
            Ok(d) => out.append(to_numpy(py, d.data, &[d.height, d.width, d.channels])?)?,
            Err(message) => out.append(message)?,
        }
    }
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_images, m)?)?;
    Ok(())
}
