//! Borrowed views of `(N, H, W, C)` uint8 batches and rectangle copies.

use crate::error::{ensure, OpResult};

/// Shape of an NHWC batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl BatchShape {
    /// Number of values in one sample.
    pub fn sample_len(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// A C-contiguous NHWC batch of uint8 pixels.
#[derive(Debug, Clone, Copy)]
pub struct ImageBatch<'a> {
    pub data: &'a [u8],
    pub shape: BatchShape,
}

impl<'a> ImageBatch<'a> {
    /// Wraps `data`, checking that it holds exactly `n·h·w·c` values and
    /// that no dimension is zero.
    pub fn new(data: &'a [u8], n: usize, h: usize, w: usize, c: usize) -> OpResult<Self> {
        ensure(n > 0, "images", || "the batch is empty (N = 0)".into())?;
        ensure(h > 0 && w > 0, "images", || format!("images must be at least 1x1, got {h}x{w}"))?;
        ensure(c > 0, "images", || "images must have at least one channel".into())?;
        let expected = n * h * w * c;
        ensure(data.len() == expected, "images", || {
            format!("buffer holds {} values, shape ({n}, {h}, {w}, {c}) needs {expected}", data.len())
        })?;
        Ok(Self { data, shape: BatchShape { n, h, w, c } })
    }

    /// The samples `range` as a batch of their own.
    pub fn rows(&self, range: std::ops::Range<usize>) -> ImageBatch<'a> {
        let len = self.shape.sample_len();
        ImageBatch { data: &self.data[range.start * len..range.end * len], shape: BatchShape { n: range.len(), ..self.shape } }
    }

    /// The pixels of sample `i` as an `(H, W, C)` slice.
    pub fn sample(&self, i: usize) -> &'a [u8] {
        let len = self.shape.sample_len();
        &self.data[i * len..(i + 1) * len]
    }
}

/// Copies the `rh × rw` rectangle at `(y, x)` of an `(h, w, c)` image into a
/// tightly packed `(rh, rw, c)` destination. The rectangle must lie inside.
pub fn copy_rect(src: &[u8], w: usize, c: usize, y: usize, x: usize, rh: usize, rw: usize, dst: &mut [u8]) {
    let row = rw * c;
    for r in 0..rh {
        let s = ((y + r) * w + x) * c;
        dst[r * row..(r + 1) * row].copy_from_slice(&src[s..s + row]);
    }
}
