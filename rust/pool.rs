//! The crate's own rayon pool, its size, and fork safety.
//!
//! The pool is built on first use with `SELFSUP_NUM_THREADS` threads (default:
//! the number of cores) and can be resized with `set_num_threads`. A forked
//! child (a DataLoader worker) inherits no threads, so a `pthread_atfork`
//! child hook marks the pool unusable there and batches run serially, unless
//! the child sizes a pool of its own with `set_num_threads`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

use rayon::{ThreadPool, ThreadPoolBuilder};

static POOL: Mutex<Option<Arc<ThreadPool>>> = Mutex::new(None);
static FORKED: AtomicBool = AtomicBool::new(false);
static FORK_HOOK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Installs the fork hook once per process.
pub fn register_fork_hook() {
    FORK_HOOK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
    });
}

/// Threads requested by `SELFSUP_NUM_THREADS`, or the number of cores.
pub fn default_num_threads() -> Result<usize, String> {
    match std::env::var("SELFSUP_NUM_THREADS") {
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("SELFSUP_NUM_THREADS: expected a positive integer, got {text:?}")),
        },
        Err(_) => Ok(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    }
}

fn build(threads: usize) -> Result<Arc<ThreadPool>, String> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("selfsup-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| format!("could not start {threads} threads: {e}"))
}

/// The pool, or `None` in a forked child that has not built its own.
fn current() -> Result<Option<Arc<ThreadPool>>, String> {
    if FORKED.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(build(default_num_threads()?)?);
    }
    Ok(guard.clone())
}

/// Replaces the pool by one of `threads` threads (also valid in a forked child).
pub fn set_num_threads(threads: usize) -> Result<(), String> {
    let pool = build(threads)?;
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if FORKED.swap(false, Ordering::SeqCst) {
        // The parent's pool has no threads in this process: never touch it.
        std::mem::forget(guard.take());
    }
    *guard = Some(pool);
    Ok(())
}

/// Threads a batch will use now (1 in a forked child without its own pool).
pub fn num_threads() -> Result<usize, String> {
    Ok(current()?.map_or(1, |p| p.current_num_threads()))
}

/// Runs `f(parallel)` inside the pool, or serially where there is none.
pub fn run<R: Send>(f: impl FnOnce(bool) -> R + Send) -> Result<R, String> {
    Ok(match current()? {
        Some(pool) if pool.current_num_threads() > 1 => pool.install(|| f(true)),
        _ => f(false),
    })
}
