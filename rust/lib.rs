//! `selfsup._native`: registration of the native data path only.
//! The algorithms live in the pyo3-free `selfsup-ops` crate; `py/` holds the
//! thin wrappers that validate, convert, release the GIL and wrap results.

use pyo3::prelude::*;

mod pool;
mod py;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pool::register_fork_hook();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    py::register(m)
}
