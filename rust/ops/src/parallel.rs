//! Spreading a batch over samples.
//!
//! Each helper runs `f(i, outputs of sample i)` for every sample, in
//! parallel on the current rayon pool when `parallel` is true, serially
//! otherwise (forked DataLoader workers). Per-sample work is always serial.

use rayon::prelude::*;

/// One output buffer of `per` values per sample.
pub fn for_each_sample<T, F>(parallel: bool, out: &mut [T], per: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if per == 0 {
        return;
    }
    if parallel {
        out.par_chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        out.chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    }
}

/// Two output buffers, `per_a` and `per_b` values per sample.
pub fn for_each_sample2<A, B, F>(parallel: bool, a: &mut [A], per_a: usize, b: &mut [B], per_b: usize, f: F)
where
    A: Send,
    B: Send,
    F: Fn(usize, &mut [A], &mut [B]) + Sync + Send,
{
    if per_a == 0 || per_b == 0 {
        return;
    }
    if parallel {
        a.par_chunks_mut(per_a)
            .zip(b.par_chunks_mut(per_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    } else {
        a.chunks_mut(per_a).zip(b.chunks_mut(per_b)).enumerate().for_each(|(i, (x, y))| f(i, x, y));
    }
}

/// Three output buffers.
pub fn for_each_sample3<A, B, C, F>(
    parallel: bool,
    a: &mut [A],
    per_a: usize,
    b: &mut [B],
    per_b: usize,
    c: &mut [C],
    per_c: usize,
    f: F,
) where
    A: Send,
    B: Send,
    C: Send,
    F: Fn(usize, &mut [A], &mut [B], &mut [C]) + Sync + Send,
{
    if per_a == 0 || per_b == 0 || per_c == 0 {
        return;
    }
    if parallel {
        a.par_chunks_mut(per_a)
            .zip(b.par_chunks_mut(per_b))
            .zip(c.par_chunks_mut(per_c))
            .enumerate()
            .for_each(|(i, ((x, y), z))| f(i, x, y, z));
    } else {
        a.chunks_mut(per_a)
            .zip(b.chunks_mut(per_b))
            .zip(c.chunks_mut(per_c))
            .enumerate()
            .for_each(|(i, ((x, y), z))| f(i, x, y, z));
    }
}
