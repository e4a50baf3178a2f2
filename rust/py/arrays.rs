//! Argument conversion: numpy arrays in, numpy arrays out.
//!
//! Arrays are taken untyped and checked here (dtype, ndim, shape) so every
//! error names the argument and says what was expected. Non-contiguous input
//! is copied into C order, never rejected.

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::prelude::*;
use numpy::{Element, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArray};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use selfsup_ops::{ImageBatch, OpError};

/// Maps an ops error to `ValueError("<arg>: <message>")`.
pub fn op_err(e: OpError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

pub fn value_error(arg: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{arg}: {message}"))
}

/// A numpy array argument of element type `T`, borrowed when C-contiguous, otherwise (strided,
/// negative strides, Fortran order, broadcast) copied in index order.
pub struct ArrayArg<'py, T: Element> {
    borrowed: Option<PyReadonlyArrayDyn<'py, T>>,
    owned: Vec<T>,
    pub shape: Vec<usize>,
}

impl<'py, T: Element + Copy> ArrayArg<'py, T> {
    pub fn data(&self) -> &[T] {
        match &self.borrowed {
            Some(view) => view.as_slice().expect("checked contiguous"),
            None => &self.owned,
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Takes `obj` as an array of exactly dtype `T` (`dtype_name` for messages).
pub fn array_arg<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    dtype_name: &str,
) -> PyResult<ArrayArg<'py, T>> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("{arg}: expected a numpy.ndarray of dtype {dtype_name}, got {}", type_name(obj)))
    })?;
    let py = obj.py();
    if !untyped.dtype().is_equiv_to(&numpy::dtype::<T>(py)) {
        return Err(PyTypeError::new_err(format!(
            "{arg}: expected dtype {dtype_name}, got {}",
            untyped.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into())
        )));
    }
    let typed = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!("{arg}: expected a numpy.ndarray of dtype {dtype_name}"))
    })?;
    let view = typed.try_readonly().map_err(|e| value_error(arg, format!("cannot read the array: {e}")))?;
    let shape = view.shape().to_vec();
    // Only C order can be borrowed as a slice: rust-numpy's `as_slice` also accepts Fortran-ordered
    // arrays, whose memory order is not the index order the ops read.
    if untyped.is_c_contiguous() && view.as_slice().is_ok() {
        Ok(ArrayArg { borrowed: Some(view), owned: Vec::new(), shape })
    } else {
        let owned: Vec<T> = view.as_array().iter().copied().collect();
        Ok(ArrayArg { borrowed: None, owned, shape })
    }
}

/// A uint8 `(N, H, W, C)` image batch with `C` among `channels`.
pub struct Images<'py> {
    pub array: ArrayArg<'py, u8>,
}

impl Images<'_> {
    pub fn batch(&self) -> ImageBatch<'_> {
        let s = &self.array.shape;
        ImageBatch::new(self.array.data(), s[0], s[1], s[2], s[3]).expect("validated")
    }
}

pub fn images_arg<'py>(obj: &Bound<'py, PyAny>, arg: &str, channels: &[usize]) -> PyResult<Images<'py>> {
    let array = array_arg::<u8>(obj, arg, "uint8")?;
    let s = &array.shape;
    if s.len() != 4 {
        return Err(value_error(
            arg,
            format!("expected a batch of shape (N, H, W, C), got {} dimensions {:?}; for one image use image[None]", s.len(), s),
        ));
    }
    if s[0] == 0 {
        return Err(value_error(arg, "the batch is empty (N = 0)"));
    }
    if s[1] == 0 || s[2] == 0 {
        return Err(value_error(arg, format!("images must be at least 1x1, got {}x{}", s[1], s[2])));
    }
    if !channels.contains(&s[3]) {
        return Err(value_error(arg, format!("expected C in {channels:?} channels, got shape {s:?}")));
    }
    Ok(Images { array })
}

/// Per-sample stream numbers: `None` means `0..n`; otherwise an int64
/// array of length `n` with non-negative entries.
pub fn indices_arg(obj: Option<&Bound<'_, PyAny>>, n: usize, arg: &str) -> PyResult<Vec<u64>> {
    let Some(obj) = obj else {
        let mut streams = Vec::new();
        streams
            .try_reserve_exact(n)
            .map_err(|_| PyMemoryError::new_err(format!("{arg}: cannot allocate {n} per-sample stream numbers")))?;
        streams.extend(0..n as u64);
        return Ok(streams);
    };
    let array = array_arg::<i64>(obj, arg, "int64")?;
    if array.shape.len() != 1 || array.shape[0] != n {
        return Err(value_error(arg, format!("expected shape ({n},), one index per sample, got {:?}", array.shape)));
    }
    array
        .data()
        .iter()
        .map(|&v| if v >= 0 { Ok(v as u64) } else { Err(value_error(arg, format!("indices must be >= 0, got {v}"))) })
        .collect()
}

/// An optional int64 array of an exact shape.
pub fn opt_i64_arg(obj: Option<&Bound<'_, PyAny>>, shape: &[usize], arg: &str) -> PyResult<Option<Vec<i64>>> {
    let Some(obj) = obj else { return Ok(None) };
    let array = array_arg::<i64>(obj, arg, "int64")?;
    if array.shape != shape {
        return Err(value_error(arg, format!("expected shape {shape:?}, got {:?}", array.shape)));
    }
    Ok(Some(array.data().to_vec()))
}

/// Wraps a vector as a numpy array of `shape` without copying.
pub fn to_numpy<'py, T: Element>(py: Python<'py>, data: Vec<T>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let array = ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(array.into_pyarray(py))
}

/// The number of elements of an output of shape `dims`, or a `ValueError` naming `arg` when it
/// does not fit in `usize`.
fn elements(dims: &[usize], arg: &str) -> PyResult<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        PyValueError::new_err(format!("{arg}: the output of shape {dims:?} has more elements than memory can address"))
    })
}

/// An empty vector with room for an output of shape `dims`, reserved fallibly: a size that
/// cannot be allocated raises `MemoryError` (as numpy does) instead of aborting the process.
fn reserved<T>(dims: &[usize], arg: &str) -> PyResult<(Vec<T>, usize)> {
    let len = elements(dims, arg)?;
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
        PyMemoryError::new_err(format!("{arg}: cannot allocate the output of shape {dims:?} ({bytes} bytes)"))
    })?;
    Ok((v, len))
}

/// A zero-filled output buffer of shape `dims` (see [`reserved`]); errors name `arg`, the
/// argument that sets the size.
pub fn alloc<T: Clone + Default>(dims: &[usize], arg: &str) -> PyResult<Vec<T>> {
    let (mut v, len) = reserved(dims, arg)?;
    v.resize(len, T::default());
    Ok(v)
}

/// [`alloc`] for a large output array. Where the kernel supports it, the untouched pages are
/// first advised onto transparent huge pages (as numpy does for its own large arrays): filling
/// a fresh 4 KiB-paged buffer costs one page fault per page, as much as the work of some kernels.
pub fn zeroed_output<T: Clone + Default>(dims: &[usize], arg: &str) -> PyResult<Vec<T>> {
    let (mut v, len) = reserved::<T>(dims, arg)?;
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        const MIN_BYTES: usize = 8 << 20;
        let bytes = len * std::mem::size_of::<T>();
        if bytes >= MIN_BYTES {
            let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
            let end = (v.as_ptr() as usize + bytes) / PAGE * PAGE;
            // SAFETY: [start, end) lies inside the reserved allocation; MADV_HUGEPAGE only
            // changes how its pages are backed, never their contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v.resize(len, T::default());
    Ok(v)
}

/// Builds, at import, every piece of lazily initialised state that argument
/// conversion touches: numpy's C-API table, the shared borrow-checking
/// capsule and the dtypes taken. Each is guarded by a once-lock; a process
/// forked while another thread was inside such an initialisation would find
/// the lock taken forever (a DataLoader worker forked while a prefetch thread
/// made its first native call hung). Initialised during import, under the
/// import lock, no fork can interrupt them.
pub fn initialise_conversions(py: Python<'_>) -> PyResult<()> {
    fn touch<T: Element + Copy + Default>(py: Python<'_>) -> PyResult<()> {
        let array = to_numpy(py, vec![T::default()], &[1])?;
        let any = array.as_any();
        drop(array_arg::<T>(any, "warm-up", "any")?);
        drop(array.try_readwrite().map_err(|e| PyValueError::new_err(format!("warm-up: {e}")))?);
        let _ = numpy::dtype::<T>(py);
        Ok(())
    }
    touch::<u8>(py)?;
    touch::<i64>(py)?;
    touch::<f32>(py)?;
    touch::<f64>(py)?;
    Ok(())
}

/// A float32 or float64 array, converted to f32, with its shape.
pub fn float_arg(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<(Vec<f32>, Vec<usize>)> {
    if let Ok(a) = array_arg::<f32>(obj, arg, "float32") {
        let shape = a.shape.clone();
        return Ok((a.data().to_vec(), shape));
    }
    match array_arg::<f64>(obj, arg, "float64") {
        Ok(a) => Ok((a.data().iter().map(|&v| v as f32).collect(), a.shape.clone())),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{arg}: expected a numpy.ndarray of dtype float32 or float64, got {}",
            obj.cast::<PyUntypedArray>()
                .ok()
                .and_then(|a| a.dtype().str().ok().map(|s| s.to_string()))
                .unwrap_or_else(|| type_name(obj))
        ))),
    }
}
