//! Wrappers of the clip ops: frame differencing and Shuffle & Learn tuples.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use selfsup_ops::parallel::{for_each_sample, for_each_sample2};
use selfsup_ops::rng::{OpSalt, Streams};
use selfsup_ops::video::{self, ClipShape, OddRule, TcnRule, TrackRule, TupleRule};

use selfsup_ops::image::copy_rect;

use super::arrays::{alloc, array_arg, indices_arg, op_err, to_numpy, value_error, ArrayArg};

use super::batch::run_blocks;

fn clips_arg<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<(ArrayArg<'py, u8>, ClipShape)> {
    let array = array_arg::<u8>(obj, arg, "uint8")?;
    let s = &array.shape;
    if s.len() != 5 {
        return Err(value_error(arg, format!("expected clips of shape (N, T, H, W, C), got {} dimensions {:?}", s.len(), s)));
    }
    if s[0] == 0 || s[1] < 2 || s[2] == 0 || s[3] == 0 || !(s[4] == 1 || s[4] == 3) {
        return Err(value_error(arg, format!("expected N >= 1 clips of T >= 2 frames of at least 1x1 with 1 or 3 channels, got {s:?}")));
    }
    let shape = ClipShape { n: s[0], t: s[1], h: s[2], w: s[3], c: s[4] };
    Ok((array, shape))
}

/// Motion `(N, T - 1)` float32: the mean absolute difference of each pair of consecutive frames.
#[pyfunction]
fn frame_motion<'py>(py: Python<'py>, clips: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let (array, s) = clips_arg(clips, "clips")?;
    let data = array.data();
    let per = s.t - 1;
    let mut out = alloc::<f32>(&[s.n, per], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let start = r.start;
        for_each_sample(parallel, &mut out[r.start * per..r.end * per], per, |i, dst| {
            let g = start + i;
            video::clip_motion(&data[g * s.clip_len()..(g + 1) * s.clip_len()], &s, dst);
        });
    })?;
    Ok(to_numpy(py, out, &[s.n, per])?.into_any())
}

/// Shuffle & Learn tuples of `clips`: frames `(N, 3, H, W, C)`, labels `(N,)` (1: in order),
/// the shown frame numbers `(N, 3)` and the five frames a..e `(N, 5)`.
#[pyfunction]
#[pyo3(signature = (clips, window, top_fraction, positive_rate, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn shuffle_learn_tuples<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    window: i64,
    top_fraction: f64,
    positive_rate: f64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (array, s) = clips_arg(clips, "clips")?;
    if window < 5 {
        return Err(value_error("window", format!("expected at least 5 frames, got {window}")));
    }
    let rule = TupleRule { window: window as usize, top_fraction, positive_rate };
    rule.check(s.t).map_err(op_err)?;
    let indices = indices_arg(indices, s.n, "indices")?;
    let data = array.data();
    let frame = s.frame_len();
    let mut frames = alloc::<u8>(&[s.n, 3 * frame], "clips")?;
    let mut meta = alloc::<i64>(&[s.n, 9], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample2(parallel, &mut frames[r.start * 3 * frame..r.end * 3 * frame], 3 * frame, &mut meta[r.start * 9..r.end * 9], 9, |i, dst, info| {
            let clip = &data[(start + i) * s.clip_len()..(start + i + 1) * s.clip_len()];
            let mut motion = vec![0f32; s.t - 1];
            video::clip_motion(clip, &s, &mut motion);
            let tuple = video::draw_tuple(&motion, &rule, &mut streams.rng(OpSalt::Tuples, i));
            video::copy_frames(clip, frame, &tuple.shown, dst);
            info[0] = i64::from(tuple.positive);
            for (k, &t) in tuple.shown.iter().enumerate() {
                info[1 + k] = t as i64;
            }
            for (k, &t) in tuple.five.iter().enumerate() {
                info[4 + k] = t as i64;
            }
        });
    })?;
    let labels: Vec<i64> = meta.chunks_exact(9).map(|m| m[0]).collect();
    let shown: Vec<i64> = meta.chunks_exact(9).flat_map(|m| m[1..4].to_vec()).collect();
    let five: Vec<i64> = meta.chunks_exact(9).flat_map(|m| m[4..9].to_vec()).collect();
    PyTuple::new(
        py,
        [
            to_numpy(py, frames, &[s.n, 3, s.h, s.w, s.c])?.into_any(),
            to_numpy(py, labels, &[s.n])?.into_any(),
            to_numpy(py, shown, &[s.n, 3])?.into_any(),
            to_numpy(py, five, &[s.n, 5])?.into_any(),
        ],
    )
}


/// Time-contrastive frames of single-view clips `(N, T, H, W, C)` or two-camera clips
/// `(N, 2, T, H, W, C)`: frames `(N, K, 2, H, W, C)` (anchor, positive; the positive seen by the
/// second camera for two-camera clips) and their times `(N, K, 2)`.
#[pyfunction]
#[pyo3(signature = (clips, anchors, pos_radius, neg_radius, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn tcn_frames<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    anchors: i64,
    pos_radius: i64,
    neg_radius: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let array = array_arg::<u8>(clips, "clips", "uint8")?;
    let dims = array.shape.clone();
    let multi_view = dims.len() == 6;
    if !(dims.len() == 5 || (multi_view && dims[1] == 2)) {
        return Err(value_error("clips", format!("expected (N, T, H, W, C) clips or (N, 2, T, H, W, C) two-camera clips, got {dims:?}")));
    }
    let tail = &dims[dims.len() - 4..];
    if dims[0] == 0 || tail[0] < 2 || tail[1] == 0 || tail[2] == 0 || !(tail[3] == 1 || tail[3] == 3) {
        return Err(value_error("clips", format!("expected N >= 1 clips of T >= 2 frames of at least 1x1 with 1 or 3 channels, got {dims:?}")));
    }
    for (name, value) in [("anchors", anchors), ("pos_radius", pos_radius), ("neg_radius", neg_radius)] {
        if value < 0 {
            return Err(value_error(name, format!("expected >= 0, got {value}")));
        }
    }
    let s = ClipShape { n: dims[0], t: tail[0], h: tail[1], w: tail[2], c: tail[3] };
    let rule = TcnRule { anchors: anchors as usize, pos_radius: pos_radius as usize, neg_radius: neg_radius as usize, multi_view };
    rule.check(s.t).map_err(op_err)?;
    let indices = indices_arg(indices, s.n, "indices")?;
    let data = array.data();
    let frame = s.frame_len();
    let views = if multi_view { 2 } else { 1 };
    let per_clip = views * s.clip_len();
    let k = rule.anchors;
    let mut frames = alloc::<u8>(&[s.n, k * 2 * frame], "clips")?;
    let mut times = alloc::<i64>(&[s.n, k * 2], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample2(parallel, &mut frames[r.start * k * 2 * frame..r.end * k * 2 * frame], k * 2 * frame, &mut times[r.start * k * 2..r.end * k * 2], k * 2, |i, dst, info| {
            let clip = &data[(start + i) * per_clip..(start + i + 1) * per_clip];
            let second = if multi_view { s.clip_len() } else { 0 };
            let pairs = video::draw_tcn_pairs(s.t, &rule, &mut streams.rng(OpSalt::Tuples, i));
            for (slot, &(anchor, positive)) in pairs.iter().enumerate() {
                let out = &mut dst[slot * 2 * frame..(slot + 1) * 2 * frame];
                out[..frame].copy_from_slice(&clip[anchor * frame..(anchor + 1) * frame]);
                out[frame..].copy_from_slice(&clip[second + positive * frame..second + (positive + 1) * frame]);
                info[2 * slot] = anchor as i64;
                info[2 * slot + 1] = positive as i64;
            }
        });
    })?;
    PyTuple::new(
        py,
        [
            to_numpy(py, frames, &[s.n, k, 2, s.h, s.w, s.c])?.into_any(),
            to_numpy(py, times, &[s.n, k, 2])?.into_any(),
        ],
    )
}


/// Odd-One-Out questions of `clips`: the dynamic image of every subsequence `(N, Q, H, W, C)`,
/// the odd position `(N,)` and the frame numbers `(N, Q, L)`.
#[pyfunction]
#[pyo3(signature = (clips, questions, length, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn odd_one_out<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    questions: i64,
    length: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (array, s) = clips_arg(clips, "clips")?;
    if questions < 0 || length < 0 {
        return Err(value_error("questions, length", format!("expected >= 0, got {questions}, {length}")));
    }
    let rule = OddRule { questions: questions as usize, length: length as usize };
    rule.check(s.t).map_err(op_err)?;
    let indices = indices_arg(indices, s.n, "indices")?;
    let data = array.data();
    let frame = s.frame_len();
    let (q, l) = (rule.questions, rule.length);
    let mut images = alloc::<u8>(&[s.n, q * frame], "clips")?;
    let mut meta = alloc::<i64>(&[s.n, 1 + q * l], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample2(parallel, &mut images[r.start * q * frame..r.end * q * frame], q * frame, &mut meta[r.start * (1 + q * l)..r.end * (1 + q * l)], 1 + q * l, |i, dst, info| {
            let clip = &data[(start + i) * s.clip_len()..(start + i + 1) * s.clip_len()];
            let (numbers, odd) = video::draw_odd_one_out(s.t, &rule, &mut streams.rng(OpSalt::Tuples, i));
            let mut stack = vec![0u8; l * frame];
            for (k, chunk) in numbers.chunks(l).enumerate() {
                video::copy_frames(clip, frame, chunk, &mut stack);
                video::dynamic_image(&stack, l, frame, &mut dst[k * frame..(k + 1) * frame]);
            }
            info[0] = odd as i64;
            for (k, &t) in numbers.iter().enumerate() {
                info[1 + k] = t as i64;
            }
        });
    })?;
    let labels: Vec<i64> = meta.chunks_exact(1 + q * l).map(|m| m[0]).collect();
    let numbers: Vec<i64> = meta.chunks_exact(1 + q * l).flat_map(|m| m[1..].to_vec()).collect();
    PyTuple::new(
        py,
        [
            to_numpy(py, images, &[s.n, q, s.h, s.w, s.c])?.into_any(),
            to_numpy(py, labels, &[s.n])?.into_any(),
            to_numpy(py, numbers, &[s.n, q, l])?.into_any(),
        ],
    )
}


/// ρ clips of `length` frames `stride` apart from every video of `clips`: frames
/// `(N, ρ, L, H, W, C)` and the starts `(N, ρ)`.
#[pyfunction]
#[pyo3(signature = (clips, rho, length, stride, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn rho_clips<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    rho: i64,
    length: i64,
    stride: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (array, s) = clips_arg(clips, "clips")?;
    if rho < 1 || length < 1 || stride < 1 {
        return Err(value_error("rho, length, stride", format!("expected positive ints, got {rho}, {length}, {stride}")));
    }
    let (rho, length, stride) = (rho as usize, length as usize, stride as usize);
    let span = (length - 1).saturating_mul(stride).saturating_add(1);
    if span > s.t {
        return Err(value_error("length", format!("{length} frames {stride} apart span {span} frames, the clips have {}", s.t)));
    }
    let indices = indices_arg(indices, s.n, "indices")?;
    let data = array.data();
    let frame = s.frame_len();
    let per = rho * length * frame;
    let mut frames = alloc::<u8>(&[s.n, per], "clips")?;
    let mut starts = alloc::<i64>(&[s.n, rho], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample2(parallel, &mut frames[r.start * per..r.end * per], per, &mut starts[r.start * rho..r.end * rho], rho, |i, dst, info| {
            let clip = &data[(start + i) * s.clip_len()..(start + i + 1) * s.clip_len()];
            for (k, first) in video::draw_clip_starts(s.t, rho, length, stride, &mut streams.rng(OpSalt::Tuples, i)).into_iter().enumerate() {
                let numbers: Vec<usize> = (0..length).map(|j| first + j * stride).collect();
                video::copy_frames(clip, frame, &numbers, &mut dst[k * length * frame..(k + 1) * length * frame]);
                info[k] = first as i64;
            }
        });
    })?;
    PyTuple::new(
        py,
        [
            to_numpy(py, frames, &[s.n, rho, length, s.h, s.w, s.c])?.into_any(),
            to_numpy(py, starts, &[s.n, rho])?.into_any(),
        ],
    )
}


/// Tracked patches of `clips`: `(N, 2, P, P, C)` — the patch where the track starts and where it
/// ends `window` frames later —, the start frames `(N,)` and the positions `(N, window + 1, 2)`.
#[pyfunction]
#[pyo3(signature = (clips, patch, window, search, candidates, seed, epoch, indices=None))]
#[allow(clippy::too_many_arguments)]
fn track_patches<'py>(
    py: Python<'py>,
    clips: &Bound<'py, PyAny>,
    patch: i64,
    window: i64,
    search: i64,
    candidates: i64,
    seed: u64,
    epoch: u64,
    indices: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (array, s) = clips_arg(clips, "clips")?;
    for (name, value) in [("patch", patch), ("window", window), ("search", search), ("candidates", candidates)] {
        if value < 0 {
            return Err(value_error(name, format!("expected >= 0, got {value}")));
        }
    }
    let rule = TrackRule { patch: patch as usize, window: window as usize, search: search as usize, candidates: candidates as usize };
    rule.check(&s).map_err(op_err)?;
    let indices = indices_arg(indices, s.n, "indices")?;
    let data = array.data();
    let frame = s.frame_len();
    let side = rule.patch;
    let per = 2 * side * side * s.c;
    let steps = rule.window + 1;
    let mut patches = alloc::<u8>(&[s.n, per], "clips")?;
    let mut meta = alloc::<i64>(&[s.n, 1 + 2 * steps], "clips")?;
    run_blocks(py, s.n, |r, parallel| {
        let streams = Streams { seed, epoch, indices: &indices[r.clone()] };
        let start = r.start;
        for_each_sample2(parallel, &mut patches[r.start * per..r.end * per], per, &mut meta[r.start * (1 + 2 * steps)..r.end * (1 + 2 * steps)], 1 + 2 * steps, |i, dst, info| {
            let clip = &data[(start + i) * s.clip_len()..(start + i + 1) * s.clip_len()];
            let (first, positions) = video::track_patch(clip, &s, &rule, &mut streams.rng(OpSalt::Tuples, i));
            let ends = [(first, positions[0]), (first + rule.window, positions[rule.window])];
            for (k, (t, (y, x))) in ends.into_iter().enumerate() {
                let half = per / 2;
                copy_rect(&clip[t * frame..(t + 1) * frame], s.w, s.c, y, x, side, side, &mut dst[k * half..(k + 1) * half]);
            }
            info[0] = first as i64;
            for (k, &(y, x)) in positions.iter().enumerate() {
                info[1 + 2 * k] = y as i64;
                info[2 + 2 * k] = x as i64;
            }
        });
    })?;
    let starts: Vec<i64> = meta.chunks_exact(1 + 2 * steps).map(|m| m[0]).collect();
    let positions: Vec<i64> = meta.chunks_exact(1 + 2 * steps).flat_map(|m| m[1..].to_vec()).collect();
    PyTuple::new(
        py,
        [
            to_numpy(py, patches, &[s.n, 2, side, side, s.c])?.into_any(),
            to_numpy(py, starts, &[s.n])?.into_any(),
            to_numpy(py, positions, &[s.n, steps, 2])?.into_any(),
        ],
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(frame_motion, m)?)?;
    m.add_function(wrap_pyfunction!(shuffle_learn_tuples, m)?)?;
    m.add_function(wrap_pyfunction!(tcn_frames, m)?)?;
    m.add_function(wrap_pyfunction!(odd_one_out, m)?)?;
    m.add_function(wrap_pyfunction!(rho_clips, m)?)?;
    m.add_function(wrap_pyfunction!(track_patches, m)?)?;
    Ok(())
}
