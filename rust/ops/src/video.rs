//! Clips: frame differencing and the tuple sampling of frame-order verification.
//!
//! A clip batch is `(N, T, H, W, C)` uint8, C-contiguous. Motion between
//! frames `t` and `t + 1` is the mean absolute difference of their pixels, a
//! stand-in for the optical-flow magnitude Misra et al. (2016) rank windows by.

use rand::RngExt;

use crate::error::{ensure, OpResult};
use crate::rng::ChaCha8Rng;

/// Shape of an `(N, T, H, W, C)` clip batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipShape {
    pub n: usize,
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl ClipShape {
    pub fn frame_len(&self) -> usize {
        self.h * self.w * self.c
    }

    pub fn clip_len(&self) -> usize {
        self.t * self.frame_len()
    }
}

/// Mean absolute difference of consecutive frames of one clip: `out[t]` for frames `t`, `t + 1`.
pub fn clip_motion(clip: &[u8], shape: &ClipShape, out: &mut [f32]) {
    let len = shape.frame_len();
    for (t, value) in out.iter_mut().enumerate().take(shape.t.saturating_sub(1)) {
        let a = &clip[t * len..(t + 1) * len];
        let b = &clip[(t + 1) * len..(t + 2) * len];
        let total: u64 = a.iter().zip(b).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
        *value = (total as f64 / len.max(1) as f64) as f32;
    }
}

/// How Shuffle & Learn draws a tuple from a clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TupleRule {
    /// Frames in a window, at least 5.
    pub window: usize,
    /// Share of the windows, those with the most motion, a tuple is drawn from (0, 1].
    pub top_fraction: f64,
    /// Probability of a tuple in the right order.
    pub positive_rate: f64,
}

impl TupleRule {
    pub fn check(&self, frames: usize) -> OpResult<()> {
        ensure(self.window >= 5, "window", || format!("expected at least 5 frames, got {}", self.window))?;
        ensure(self.window <= frames, "window", || format!("expected at most the clip's {frames} frames, got {}", self.window))?;
        ensure(self.top_fraction > 0.0 && self.top_fraction <= 1.0, "top_fraction", || {
            format!("expected a share in (0, 1], got {}", self.top_fraction)
        })?;
        ensure((0.0..=1.0).contains(&self.positive_rate), "positive_rate", || {
            format!("expected a probability in [0, 1], got {}", self.positive_rate)
        })
    }
}

/// One Shuffle & Learn tuple (Misra, Zitnick & Hebert 2016, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTuple {
    /// The five frames a < b < c < d < e of the window.
    pub five: [usize; 5],
    /// The three frames shown, in the order shown.
    pub shown: [usize; 3],
    /// True for (b, c, d) or (d, c, b); false for (b, a, d) or (b, e, d).
    pub positive: bool,
}

/// Window starts ranked by the motion inside them (most first; ties by start), for windows of
/// `window` frames over `motion` (one value per pair of consecutive frames).
pub fn ranked_windows(motion: &[f32], window: usize) -> Vec<usize> {
    let frames = motion.len() + 1;
    let mut starts: Vec<(usize, f64)> = (0..=frames - window)
        .map(|s| (s, motion[s..s + window - 1].iter().map(|&m| f64::from(m)).sum()))
        .collect();
    starts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    starts.into_iter().map(|(s, _)| s).collect()
}

/// Draws the tuple of one clip: a window among the `top_fraction` with the most motion, five
/// sorted distinct frames in it, then a positive (b, c, d) or its reverse, or a negative
/// (b, a, d) or (b, e, d), each of the two forms with probability 1/2.
pub fn draw_tuple(motion: &[f32], rule: &TupleRule, rng: &mut ChaCha8Rng) -> FrameTuple {
    let ranked = ranked_windows(motion, rule.window);
    let keep = ((ranked.len() as f64 * rule.top_fraction).ceil() as usize).clamp(1, ranked.len());
    let start = ranked[rng.random_range(0..keep)];
    let mut offsets: Vec<usize> = (0..rule.window).collect();
    for i in 0..5 {
        let j = rng.random_range(i..rule.window);
        offsets.swap(i, j);
    }
    let mut five = [0usize; 5];
    for (slot, offset) in five.iter_mut().zip(&offsets[..5]) {
        *slot = start + offset;
    }
    five.sort_unstable();
    let [a, b, c, d, e] = five;
    let positive = rng.random::<f64>() < rule.positive_rate;
    let flip = rng.random::<bool>();
    let shown = match (positive, flip) {
        (true, false) => [b, c, d],
        (true, true) => [d, c, b],
        (false, false) => [b, a, d],
        (false, true) => [b, e, d],
    };
    FrameTuple { five, shown, positive }
}

/// Copies the frames `shown` of one clip into `dst` (`shown.len() · frame_len` values).
pub fn copy_frames(clip: &[u8], frame_len: usize, shown: &[usize], dst: &mut [u8]) {
    for (k, &t) in shown.iter().enumerate() {
        dst[k * frame_len..(k + 1) * frame_len].copy_from_slice(&clip[t * frame_len..(t + 1) * frame_len]);
    }
}


/// How time-contrastive networks draw frames from a clip (Sermanet et al. 2018, §3.1–3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcnRule {
    /// Anchor time steps per clip (K).
    pub anchors: usize,
    /// Single view: a positive lies within `pos_radius` frames of its anchor (not on it).
    pub pos_radius: usize,
    /// Frames closer than this to an anchor are never its negatives.
    pub neg_radius: usize,
    /// Multi-view: the positive is the anchor's time step seen by the other camera.
    pub multi_view: bool,
}

impl TcnRule {
    /// The least distance between two anchors: every frame of another anchor's pair lies more
    /// than `neg_radius` frames away.
    pub fn spacing(&self) -> usize {
        if self.multi_view {
            self.neg_radius + 1
        } else {
            self.neg_radius + self.pos_radius + 1
        }
    }

    pub fn check(&self, frames: usize) -> OpResult<()> {
        ensure(self.anchors >= 1, "anchors", || "expected at least one anchor per clip".into())?;
        ensure(self.multi_view || self.pos_radius >= 1, "pos_radius", || "expected at least 1 frame".into())?;
        ensure(self.multi_view || self.neg_radius >= self.pos_radius, "neg_radius", || {
            format!("expected at least pos_radius ({}), got {}", self.pos_radius, self.neg_radius)
        })?;
        let needed = (self.anchors - 1) * self.spacing() + 1;
        ensure(needed <= frames, "anchors", || {
            format!("{} anchors {} frames apart need {needed} frames, the clips have {frames}", self.anchors, self.spacing())
        })
    }
}

/// `K` pairs `(anchor time, positive time)` of one clip of `frames` frames: anchors at least
/// [`TcnRule::spacing`] apart, uniform over all such placements (sorted); the positive the same
/// time (multi-view) or uniform within `pos_radius` of the anchor, inside the clip, not the anchor.
pub fn draw_tcn_pairs(frames: usize, rule: &TcnRule, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let gap = rule.spacing() - 1;
    let slots = frames - (rule.anchors - 1) * gap;
    let mut pool: Vec<usize> = (0..slots).collect();
    for i in 0..rule.anchors {
        let j = rng.random_range(i..slots);
        pool.swap(i, j);
    }
    let mut chosen = pool[..rule.anchors].to_vec();
    chosen.sort_unstable();
    chosen
        .iter()
        .enumerate()
        .map(|(k, &u)| {
            let anchor = u + k * gap;
            if rule.multi_view {
                return (anchor, anchor);
            }
            let low = anchor.saturating_sub(rule.pos_radius);
            let high = (anchor + rule.pos_radius).min(frames - 1);
            let mut positive = rng.random_range(low..high);
            if positive >= anchor {
                positive += 1;
            }
            (anchor, positive)
        })
        .collect()
}


/// How Odd-One-Out draws its question from a clip (Fernando, Bilen, Gavves & Gould 2017, §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OddRule {
    /// Subsequences shown, N + 1 (at least 2).
    pub questions: usize,
    /// Consecutive frames in a subsequence (at least 3, so that a shuffle other than the reverse exists).
    pub length: usize,
}

impl OddRule {
    pub fn check(&self, frames: usize) -> OpResult<()> {
        ensure(self.questions >= 2, "questions", || format!("expected at least 2 subsequences, got {}", self.questions))?;
        ensure(self.length >= 3, "length", || format!("expected at least 3 frames per subsequence, got {}", self.length))?;
        ensure(self.length <= frames, "length", || format!("expected at most the clip's {frames} frames, got {}", self.length))
    }
}

/// The frames of one question: `questions` subsequences of `length` consecutive frames at uniform
/// starts, in order, except the one at the returned position, whose frames are a uniform random
/// permutation that is neither the identity nor the reverse. Returns `(frame numbers, odd position)`.
pub fn draw_odd_one_out(frames: usize, rule: &OddRule, rng: &mut ChaCha8Rng) -> (Vec<usize>, usize) {
    let odd = rng.random_range(0..rule.questions);
    let mut out = Vec::with_capacity(rule.questions * rule.length);
    for q in 0..rule.questions {
        let start = rng.random_range(0..=frames - rule.length);
        let mut order: Vec<usize> = (start..start + rule.length).collect();
        if q == odd {
            loop {
                for i in (1..order.len()).rev() {
                    let j = rng.random_range(0..=i);
                    order.swap(i, j);
                }
                let ascending = order.windows(2).all(|w| w[0] < w[1]);
                let descending = order.windows(2).all(|w| w[0] > w[1]);
                if !ascending && !descending {
                    break;
                }
            }
        }
        out.extend(order);
    }
    (out, odd)
}

/// The dynamic image of `length` frames (Bilen, Fernando, Gavves, Vedaldi & Gould 2016,
/// approximate rank pooling with the linear weights α_t = 2t − T − 1, t = 1..T): Σ_t α_t x_t,
/// mapped to uint8 by its own minimum and maximum (a flat result is mid-grey 128).
pub fn dynamic_image(frames: &[u8], length: usize, frame_len: usize, dst: &mut [u8]) {
    let mut acc = vec![0i64; frame_len];
    for t in 0..length {
        let alpha = 2 * (t as i64 + 1) - length as i64 - 1;
        for (a, &x) in acc.iter_mut().zip(&frames[t * frame_len..(t + 1) * frame_len]) {
            *a += alpha * i64::from(x);
        }
    }
    let (low, high) = acc.iter().fold((i64::MAX, i64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    for (d, &v) in dst.iter_mut().zip(&acc) {
        *d = if high > low { (((v - low) as f64 * 255.0 / (high - low) as f64).round()) as u8 } else { 128 };
    }
}


/// Starts of `rho` clips of `length` frames `stride` apart in a video of `frames` frames, each
/// uniform over the starts that fit (ρBYOL's sampling: Feichtenhofer et al. 2021, §3).
pub fn draw_clip_starts(frames: usize, rho: usize, length: usize, stride: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let span = (length - 1) * stride + 1;
    (0..rho).map(|_| rng.random_range(0..=frames - span)).collect()
}


/// How tracking triplets find and follow a patch (Wang & Gupta 2015, §3.1, with block matching
/// in place of their KCF tracker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRule {
    /// Side of the square patch.
    pub patch: usize,
    /// Frames the patch is followed for.
    pub window: usize,
    /// Block matching searches ±`search` pixels around the last position, frame to frame.
    pub search: usize,
    /// Candidate positions in the first frame; the one with the most motion is tracked.
    pub candidates: usize,
}

impl TrackRule {
    pub fn check(&self, shape: &ClipShape) -> OpResult<()> {
        ensure(self.patch >= 2 && self.patch <= shape.h.min(shape.w), "patch", || {
            format!("expected 2 to {} pixels, got {}", shape.h.min(shape.w), self.patch)
        })?;
        ensure(self.window >= 1 && self.window < shape.t, "window", || format!("expected 1 to {} frames, got {}", shape.t - 1, self.window))?;
        ensure(self.candidates >= 1, "candidates", || "expected at least one candidate".into())
    }
}

fn patch_ssd(a: &[u8], b: &[u8], w: usize, c: usize, pa: (usize, usize), pb: (usize, usize), side: usize) -> u64 {
    let mut total = 0u64;
    for r in 0..side {
        let ra = ((pa.0 + r) * w + pa.1) * c;
        let rb = ((pb.0 + r) * w + pb.1) * c;
        for k in 0..side * c {
            let d = i64::from(a[ra + k]) - i64::from(b[rb + k]);
            total += (d * d) as u64;
        }
    }
    total
}

/// One track: a start frame, the candidate patch with the largest difference to the next frame,
/// then frame by frame the position within ±`search` of the last one whose patch is closest (sum
/// of squared differences, ties to the nearest offset) to the last patch. Returns the start frame
/// and the positions `(row, column)` in frames start..=start + window.
pub fn track_patch(clip: &[u8], shape: &ClipShape, rule: &TrackRule, rng: &mut ChaCha8Rng) -> (usize, Vec<(usize, usize)>) {
    let frame = shape.frame_len();
    let start = rng.random_range(0..shape.t - rule.window);
    let (max_y, max_x) = (shape.h - rule.patch, shape.w - rule.patch);
    let first = &clip[start * frame..(start + 1) * frame];
    let next = &clip[(start + 1) * frame..(start + 2) * frame];
    let mut best = (0usize, 0usize);
    let mut best_motion = None;
    for _ in 0..rule.candidates {
        let position = (rng.random_range(0..=max_y), rng.random_range(0..=max_x));
        let motion = patch_ssd(first, next, shape.w, shape.c, position, position, rule.patch);
        if best_motion.is_none_or(|m| motion > m) {
            best_motion = Some(motion);
            best = position;
        }
    }
    let mut positions = vec![best];
    for t in start + 1..=start + rule.window {
        let previous = &clip[(t - 1) * frame..t * frame];
        let current = &clip[t * frame..(t + 1) * frame];
        let last = *positions.last().expect("one position");
        let mut chosen = (last, u64::MAX, usize::MAX);
        for y in last.0.saturating_sub(rule.search)..=(last.0 + rule.search).min(max_y) {
            for x in last.1.saturating_sub(rule.search)..=(last.1 + rule.search).min(max_x) {
                let cost = patch_ssd(previous, current, shape.w, shape.c, last, (y, x), rule.patch);
                let distance = y.abs_diff(last.0) + x.abs_diff(last.1);
                if (cost, distance) < (chosen.1, chosen.2) {
                    chosen = ((y, x), cost, distance);
                }
            }
        }
        positions.push(chosen.0);
    }
    (start, positions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{sample_rng, OpSalt};

    #[test]
    fn motion_is_the_mean_absolute_frame_difference() {
        let shape = ClipShape { n: 1, t: 3, h: 1, w: 2, c: 1 };
        let clip = [0u8, 10, 4, 6, 4, 6];
        let mut out = [0f32; 2];
        clip_motion(&clip, &shape, &mut out);
        assert_eq!(out, [4.0, 0.0]);
    }

    #[test]
    fn windows_rank_by_motion_and_tuples_follow_the_rule() {
        let motion = [0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 0.0];
        assert_eq!(ranked_windows(&motion, 5)[0], 3);
        let rule = TupleRule { window: 5, top_fraction: 0.2, positive_rate: 0.5 };
        let mut positives = 0;
        for i in 0..400 {
            let mut rng = sample_rng(1, 0, OpSalt::Tuples, i);
            let tuple = draw_tuple(&motion, &rule, &mut rng);
            let [a, b, c, d, e] = tuple.five;
            assert_eq!([a, b, c, d, e], [3, 4, 5, 6, 7]); // the one window with the most motion, all five frames
            let allowed = if tuple.positive { [[b, c, d], [d, c, b]] } else { [[b, a, d], [b, e, d]] };
            assert!(allowed.contains(&tuple.shown));
            positives += usize::from(tuple.positive);
        }
        assert!((150..250).contains(&positives));
    }

    #[test]
    fn tcn_pairs_keep_their_radii() {
        for multi_view in [false, true] {
            let rule = TcnRule { anchors: 3, pos_radius: 2, neg_radius: 4, multi_view };
            rule.check(20).unwrap();
            for i in 0..300 {
                let pairs = draw_tcn_pairs(20, &rule, &mut sample_rng(2, 1, OpSalt::Tuples, i));
                for (k, &(a, p)) in pairs.iter().enumerate() {
                    assert!(p < 20);
                    if multi_view {
                        assert_eq!(a, p);
                    } else {
                        assert!(a != p && a.abs_diff(p) <= 2);
                    }
                    for &(b, q) in &pairs[k + 1..] {
                        assert!(b.abs_diff(a) > 4 && q.abs_diff(a) > 4); // every frame of another pair is beyond neg_radius
                    }
                }
            }
        }
        assert!(TcnRule { anchors: 4, pos_radius: 2, neg_radius: 4, multi_view: false }.check(20).is_err());
    }

    #[test]
    fn odd_one_out_shuffles_exactly_one_subsequence() {
        let rule = OddRule { questions: 4, length: 4 };
        for i in 0..200 {
            let (frames, odd) = draw_odd_one_out(12, &rule, &mut sample_rng(3, 0, OpSalt::Tuples, i));
            for (q, chunk) in frames.chunks(4).enumerate() {
                let ascending = chunk.windows(2).all(|w| w[1] == w[0] + 1);
                let mut sorted = chunk.to_vec();
                sorted.sort_unstable();
                assert!(sorted.windows(2).all(|w| w[1] == w[0] + 1) && sorted[3] < 12);
                assert_eq!(ascending, q != odd);
                assert!(q != odd || !chunk.windows(2).all(|w| w[0] == w[1] + 1));
            }
        }
    }

    #[test]
    fn dynamic_image_weights_frames_linearly() {
        // two frames: alpha = (-1, 1), so the image is x_2 - x_1 rescaled
        let frames = [10u8, 20, 30, 50, 20, 30];
        let mut out = [0u8; 3];
        dynamic_image(&frames, 2, 3, &mut out);
        assert_eq!(out, [255, 0, 0]); // differences 40, 0, 0
    }

    #[test]
    fn block_matching_follows_a_moving_square() {
        // a bright 3x3 square moving one pixel right per frame on a 12x12 grey frame
        let shape = ClipShape { n: 1, t: 5, h: 12, w: 12, c: 1 };
        let mut clip = vec![0u8; shape.clip_len()];
        for t in 0..5 {
            for y in 4..7 {
                for x in 2 + t..5 + t {
                    clip[t * 144 + y * 12 + x] = 255;
                }
            }
        }
        let rule = TrackRule { patch: 5, window: 3, search: 2, candidates: 64 };
        let (start, positions) = track_patch(&clip, &shape, &rule, &mut sample_rng(0, 0, OpSalt::Tuples, 0));
        for (k, pair) in positions.windows(2).enumerate() {
            assert_eq!((pair[1].0, pair[1].1), (pair[0].0, pair[0].1 + 1), "frame {}", start + k + 1);
        }
    }
}
