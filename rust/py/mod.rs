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
mod video;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    arrays::initialise_conversions(m.py())?;
    let finish = wrap_pyfunction!(batch::finish_native_calls, m)?;
    m.add_function(finish.clone())?;
    m.py().import("atexit")?.call_method1("register", (finish, 30.0))?;
    runtime::register(m)?;
    augment::register(m)?;
    patches::register(m)?;
    color::register(m)?;
    masks::register(m)?;
    corrupt::register(m)?;
    decode::register(m)?;
    video::register(m)?;
    Ok(())
}
