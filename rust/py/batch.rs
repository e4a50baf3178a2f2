//! The one place where batches leave the GIL.
//!
//! A batch is cut into blocks; each block runs with the GIL released on the
//! crate's pool, and between blocks pending signals are checked so Ctrl-C
//! interrupts a long call.

use std::ops::Range;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::pool;

/// Runs `f(samples, parallel)` over `0..n` in blocks, GIL released.
pub fn run_blocks<F>(py: Python<'_>, n: usize, mut f: F) -> PyResult<()>
where
    F: FnMut(Range<usize>, bool) + Send,
{
    let threads = pool::num_threads().map_err(PyValueError::new_err)?;
    let block = (threads * 16).max(64);
    let mut start = 0;
    while start < n {
        let end = (start + block).min(n);
        let f_ref = &mut f;
        py.detach(move || pool::run(move |parallel| f_ref(start..end, parallel)))
            .map_err(PyValueError::new_err)?;
        py.check_signals()?;
        start = end;
    }
    Ok(())
}

/// Runs one whole job with the GIL released on the pool (for work that is
/// not a loop over samples).
pub fn run_detached<R: Send>(py: Python<'_>, f: impl FnOnce(bool) -> R + Send) -> PyResult<R> {
    py.detach(move || pool::run(f)).map_err(PyValueError::new_err)
}
