//! Thread-pool control exposed to Python.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::pool;

/// Number of threads the native ops use (1 in a forked worker).
#[pyfunction]
fn get_num_threads() -> PyResult<usize> {
    pool::num_threads().map_err(PyValueError::new_err)
}

/// Resizes the native thread pool.
#[pyfunction]
fn set_num_threads(threads: i64) -> PyResult<()> {
    if threads < 1 {
        return Err(PyValueError::new_err(format!("threads: expected a positive integer, got {threads}")));
    }
    pool::set_num_threads(threads as usize).map_err(PyRuntimeError::new_err)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    Ok(())
}
