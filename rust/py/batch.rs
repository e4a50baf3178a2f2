//! The one place where batches leave the GIL.
//!
//! A batch is cut into blocks; each block runs with the GIL released on the
//! crate's pool, and between blocks pending signals are checked so Ctrl-C
//! interrupts a long call.
//!
//! Interpreter exit: a daemon thread still inside a native call when the
//! interpreter finalises would be torn down as it takes the GIL back, in the
//! middle of Rust frames (the process crashed). So every call that leaves the
//! GIL is counted, and an `atexit` hook ([`finish_native_calls`]) refuses new
//! calls and waits, GIL released, until the running ones have returned.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::pool;

static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static CLOSING: AtomicBool = AtomicBool::new(false);

/// A native call in progress; counted from [`enter`] until dropped.
pub struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a call that is about to leave the GIL; refused once the interpreter is exiting.
pub fn enter() -> PyResult<Active> {
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    let active = Active(());
    if CLOSING.load(Ordering::SeqCst) {
        return Err(PyRuntimeError::new_err("selfsup: the interpreter is exiting; no new native calls"));
    }
    Ok(active)
}

/// The `atexit` hook: refuses new native calls and waits up to `timeout_s` seconds, GIL
/// released, for the running ones to return. Returns whether they all did.
#[pyfunction]
pub fn finish_native_calls(py: Python<'_>, timeout_s: f64) -> bool {
    CLOSING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs_f64(timeout_s.clamp(0.0, 3600.0));
    py.detach(|| {
        while ACTIVE.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    })
}

/// Runs `f(samples, parallel)` over `0..n` in blocks, GIL released.
pub fn run_blocks<F>(py: Python<'_>, n: usize, mut f: F) -> PyResult<()>
where
    F: FnMut(Range<usize>, bool) + Send,
{
    let _active = enter()?;
    let threads = pool::num_threads().map_err(PyValueError::new_err)?;
    let block = (threads * 16).max(64);
    let mut start = 0;
    while start < n {
        if CLOSING.load(Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("selfsup: the interpreter is exiting; the native call was stopped"));
        }
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
    let _active = enter()?;
    py.detach(move || pool::run(f)).map_err(PyValueError::new_err)
}

/// Runs a long serial job on a worker thread, GIL released, while this thread checks for
/// signals every 50 ms: on Ctrl-C the job's `stop` flag is raised, the job is awaited (it
/// checks the flag between steps) and the signal's exception is returned.
pub fn run_interruptible<R: Send>(py: Python<'_>, f: impl FnOnce(bool, &AtomicBool) -> R + Send) -> PyResult<R> {
    let _active = enter()?;
    let stop = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let out = pool::run(|parallel| f(parallel, &stop));
            done.store(true, Ordering::SeqCst);
            out
        });
        loop {
            py.detach(|| {
                let until = Instant::now() + Duration::from_millis(50);
                while !done.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            if done.load(Ordering::SeqCst) {
                break;
            }
            if let Err(signal) = py.check_signals() {
                stop.store(true, Ordering::SeqCst);
                py.detach(|| while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                });
                let _ = worker.join();
                return Err(signal);
            }
        }
        match worker.join() {
            Ok(result) => result.map_err(PyValueError::new_err),
            Err(_) => Err(PyRuntimeError::new_err("selfsup: a native job failed unexpectedly")),
        }
    })
}
