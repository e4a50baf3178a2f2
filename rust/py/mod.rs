//! Thin pyo3 wrappers around `selfsup_ops`.

use pyo3::prelude::*;

mod arrays;
mod augment;
mod batch;
mod color;
mod corrupt;
mod decode;
mod masks;
mod patches;
mod runtime;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    arrays::initialise_conversions(m.py())?;
    runtime::register(m)?;
    augment::register(m)?;
    patches::register(m)?;
    color::register(m)?;
    masks::register(m)?;
    corrupt::register(m)?;
    decode::register(m)?;
    Ok(())
}
