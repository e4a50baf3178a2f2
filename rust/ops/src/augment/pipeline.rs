//! Multi-view augmentation pipelines: validated transform lists, per-sample
//! parameter draws in a fixed order, and fused execution.
//!
//! A view is a list of steps. Each step may carry a probability `p` (flips,
//! grayscale, anything wrapped in RandomApply); steps wrapped together share
//! one coin. Per sample and view, parameters are drawn *before* any pixel is
//! touched, step by step in list order:
//!
//! 1. a step with `p` draws one uniform `u` and is applied iff `u < p` (a step
//!    sharing its predecessor's coin draws nothing); a skipped step draws
//!    nothing more;
//! 2. RandomResizedCrop: see [`crate::augment::crop::draw_box`]; RandomCrop:
//!    `top ~ U{0..H+2p−h}`, then `left ~ U{0..W+2p−w}` in the padded image;
//!    ColorJitter: a random order of its four operations (Fisher–Yates, 3
//!    draws), then one uniform factor for each enabled operation in the order
//!    brightness, contrast, saturation, hue; GaussianBlur: `σ ~ U[σmin, σmax]`;
//!    RandAugment: per op, the op index `U{0..13}`, the magnitude bin
//!    `U{0..bins−1}` when the magnitude is random, then for a signed op with
//!    a magnitude one uniform `u` (negative iff `u < 0.5`); Cutout: `v`, then
//!    the centre row and column (see [`crate::augment::randaug`]);
//!    flips, grayscale, solarize, resize: nothing.
//!
//! View `v` of sample `i` draws from the stream of `(seed ⊕ v·φ, epoch,
//! indices[i])`, so the views are independent, and view 0 of a one-view
//! pipeline uses `(seed, epoch, indices[i])` itself. The parameters are also
//! returned (one row of `n_params` floats per sample and view) and can be
//! passed back to replay or to inject a reference's parameters.
//!
//! Execution fuses passes: the crop is resized in one SIMD convolution, flips
//! are applied in place, consecutive colour steps (and the final Normalize +
//! HWC → CHW) run in one pass per pixel (one more per contrast step), and the
//! blur is separable.

use std::cell::RefCell;
use std::ops::Range;

use rand::RngExt;
use rayon::prelude::*;

use super::blur::{self, BlurScratch};
use super::color::{run_chain, Pw, Sink};
use super::crop::{self, CropBox, CropRanges};
use super::geometry::{self, EraseRanges, EraseValue};
use super::randaug;
use crate::error::{ensure, OpError, OpResult};
use crate::rng::{sample_rng, OpSalt};

/// A factor range `[lo, hi]` of ColorJitter; `None` disables the operation.
pub type Range2 = Option<(f64, f64)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    RandomResizedCrop { height: usize, width: usize, ranges: CropRanges },
    /// A `height × width` crop at a uniform position of the image padded by
    /// `padding` on every side (reflected, or zeros).
    RandomCrop { height: usize, width: usize, padding: usize, reflect: bool },
    Resize { height: usize, width: usize },
    HorizontalFlip,
    ColorJitter { brightness: Range2, contrast: Range2, saturation: Range2, hue: Range2 },
    Grayscale,
    GaussianBlur { kernel: usize, sigma: (f64, f64) },
    Solarize { threshold: f64 },
    CenterCrop { height: usize, width: usize },
    VerticalFlip,
    RandomErasing { ranges: EraseRanges, value: EraseValue },
    /// `num_ops` ops drawn uniformly (with replacement) among the fourteen of
    /// [`randaug`]; magnitude bin `magnitude` of `bins`, or uniform over the
    /// bins per op when `None`; `fill` for pixels geometric ops uncover.
    RandAugment { num_ops: usize, magnitude: Option<usize>, bins: usize, fill: [u8; 3] },
    /// A square of side `v·min(H, W)`, `v ~ U(0, max_fraction]`, filled with `fill`.
    Cutout { max_fraction: f64, fill: [u8; 3] },
}

impl Transform {
    pub fn name(&self) -> &'static str {
        match self {
            Transform::RandomResizedCrop { .. } => "RandomResizedCrop",
            Transform::RandomCrop { .. } => "RandomCrop",
            Transform::Resize { .. } => "Resize",
            Transform::HorizontalFlip => "HorizontalFlip",
            Transform::ColorJitter { .. } => "ColorJitter",
            Transform::Grayscale => "Grayscale",
            Transform::GaussianBlur { .. } => "GaussianBlur",
            Transform::Solarize { .. } => "Solarize",
            Transform::CenterCrop { .. } => "CenterCrop",
            Transform::VerticalFlip => "VerticalFlip",
            Transform::RandomErasing { .. } => "RandomErasing",
            Transform::RandAugment { .. } => "RandAugment",
            Transform::Cutout { .. } => "Cutout",
        }
    }

    /// Number of parameter slots after the `applied` flag.
    fn n_fields(&self) -> usize {
        match self {
            Transform::RandAugment { num_ops, .. } => 4 * num_ops,
            _ => self.fields().len(),
        }
    }

    /// Names of the parameter slots after the `applied` flag.
    fn field_names(&self) -> Vec<String> {
        match self {
            Transform::RandAugment { num_ops, .. } => {
                (0..*num_ops).flat_map(|k| ["op", "bin", "sign", "magnitude"].map(|f| format!("{f}{k}"))).collect()
            }
            _ => self.fields().iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Names of the fixed parameter slots after the `applied` flag.
    fn fields(&self) -> &'static [&'static str] {
        match self {
            Transform::RandomResizedCrop { .. } => &["top", "left", "height", "width"],
            Transform::RandomCrop { .. } => &["top", "left"],
            Transform::ColorJitter { .. } => {
                &["order0", "order1", "order2", "order3", "brightness", "contrast", "saturation", "hue"]
            }
            Transform::GaussianBlur { .. } => &["sigma"],
            Transform::RandomErasing { .. } => &["top", "left", "height", "width", "noise_seed"],
            Transform::Cutout { .. } => &["top", "left", "height", "width"],
            _ => &[],
        }
    }

    fn is_geometry(&self) -> bool {
        matches!(self, Transform::RandomResizedCrop { .. } | Transform::Resize { .. } | Transform::RandomCrop { .. })
    }

    /// The output size this step fixes, whatever its input size.
    fn fixed_size(&self) -> Option<(usize, usize)> {
        match self {
            Transform::RandomResizedCrop { height, width, .. }
            | Transform::Resize { height, width }
            | Transform::RandomCrop { height, width, .. }
            | Transform::CenterCrop { height, width } => Some((*height, *width)),
            _ => None,
        }
    }
}

/// One step of a view.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub transform: Transform,
    /// Probability of applying the step; `None`: always applied, no coin drawn.
    pub p: Option<f64>,
    /// Reuse the coin of the previous step (RandomApply over several transforms).
    pub shares_coin: bool,
}

fn check_factor(r: Range2, arg: &'static str, lo_min: f64, hi_max: f64) -> OpResult<()> {
    if let Some((lo, hi)) = r {
        ensure(lo.is_finite() && hi.is_finite() && lo_min <= lo && lo <= hi && hi <= hi_max, arg, || {
            format!("expected {lo_min} <= min <= max <= {hi_max}, got ({lo}, {hi})")
        })?;
    }
    Ok(())
}

/// A validated view: its steps, output size and optional normalisation.
#[derive(Debug, Clone)]
pub struct View {
    steps: Vec<Step>,
    offsets: Vec<usize>,
    n_params: usize,
    /// `(scale, bias)` per channel: `out = v·scale + bias` for `v` in 0..255.
    normalize: Option<([f32; 3], [f32; 3])>,
}

impl View {
    /// Validates `steps`; `normalize` is `(mean, std)` of `v/255`, per channel.
    pub fn new(steps: Vec<Step>, normalize: Option<([f64; 3], [f64; 3])>) -> OpResult<Self> {
        for (k, step) in steps.iter().enumerate() {
            if let Some(p) = step.p {
                ensure((0.0..=1.0).contains(&p), "p", || format!("expected a probability in [0, 1], got {p}"))?;
            }
            ensure(!step.shares_coin || (k > 0 && step.p.is_some() && steps[k - 1].p == step.p), "transforms", || {
                "a step sharing a coin must follow a step with the same p".into()
            })?;
            ensure(!step.transform.is_geometry() || k == 0, "transforms", || {
                format!("{} must be the first transform of a view", step.transform.name())
            })?;
            let after_sizes = steps[..k].iter().all(|s| s.transform.fixed_size().is_some());
            ensure(!matches!(step.transform, Transform::CenterCrop { .. }) || after_sizes, "transforms", || {
                "CenterCrop must come before every transform other than RandomResizedCrop, Resize and CenterCrop".into()
            })?;
            let erasing = |s: &Step| matches!(s.transform, Transform::RandomErasing { .. });
            ensure(erasing(step) || !steps[..k].iter().any(erasing), "transforms", || {
                format!("{} cannot follow RandomErasing: RandomErasing acts on the output and must come last", step.transform.name())
            })?;
            match &step.transform {
                Transform::RandomResizedCrop { height, width, .. }
                | Transform::Resize { height, width }
                | Transform::RandomCrop { height, width, .. }
                | Transform::CenterCrop { height, width } => {
                    ensure(*height > 0 && *width > 0, "size", || format!("expected a positive size, got ({height}, {width})"))?;
                    ensure(step.p.is_none(), "p", || format!("{} takes no probability", step.transform.name()))?;
                }
                Transform::ColorJitter { brightness, contrast, saturation, hue } => {
                    check_factor(*brightness, "brightness", 0.0, f64::MAX)?;
                    check_factor(*contrast, "contrast", 0.0, f64::MAX)?;
                    check_factor(*saturation, "saturation", 0.0, f64::MAX)?;
                    check_factor(*hue, "hue", -0.5, 0.5)?;
                }
                Transform::GaussianBlur { kernel, sigma } => {
                    blur::check_kernel(*kernel)?;
                    blur::check_sigma(sigma.0, sigma.1)?;
                }
                Transform::Solarize { threshold } => {
                    ensure(threshold.is_finite(), "threshold", || format!("expected a finite number, got {threshold}"))?;
                }
                Transform::RandomErasing { value: EraseValue::Constant(v), .. } => {
                    ensure(v.iter().all(|x| x.is_finite()), "value", || format!("expected finite values, got {v:?}"))?;
                    ensure(
                        normalize.is_some() || v.iter().all(|x| x.fract() == 0.0 && (0.0..=255.0).contains(x)),
                        "value",
                        || format!("expected grey levels 0..255 on uint8 output (no Normalize), got {v:?}"),
                    )?;
                }
                Transform::RandAugment { num_ops, magnitude, bins, .. } => {
                    ensure(*num_ops <= 64, "num_ops", || format!("expected 0 <= num_ops <= 64, got {num_ops}"))?;
                    ensure(*bins >= 2, "num_magnitude_bins", || format!("expected at least 2 bins, got {bins}"))?;
                    if let Some(m) = magnitude {
                        ensure(m < bins, "magnitude", || format!("expected a bin in 0..{}, got {m}", bins - 1))?;
                    }
                }
                Transform::Cutout { max_fraction, .. } => {
                    ensure(*max_fraction > 0.0 && *max_fraction <= 1.0, "cutout", || {
                        format!("expected a maximal side fraction in (0, 1], got {max_fraction}")
                    })?;
                }
                Transform::HorizontalFlip | Transform::Grayscale | Transform::VerticalFlip | Transform::RandomErasing { .. } => {}
            }
        }
        let normalize = match normalize {
            None => None,
            Some((mean, std)) => {
                ensure(std.iter().all(|s| s.is_finite() && *s > 0.0), "std", || format!("expected positive values, got {std:?}"))?;
                ensure(mean.iter().all(|m| m.is_finite()), "mean", || format!("expected finite values, got {mean:?}"))?;
                let scale = [0, 1, 2].map(|c| (1.0 / (255.0 * std[c])) as f32);
                let bias = [0, 1, 2].map(|c| (-mean[c] / std[c]) as f32);
                Some((scale, bias))
            }
        };
        let mut offsets = Vec::with_capacity(steps.len());
        let mut n = 0;
        for step in &steps {
            offsets.push(n);
            n += 1 + step.transform.n_fields();
        }
        Ok(Self { steps, offsets, n_params: n, normalize })
    }

    pub fn n_params(&self) -> usize {
        self.n_params
    }

    pub fn normalized(&self) -> bool {
        self.normalize.is_some()
    }

    /// `"<k>.<Transform>.<field>"` for each parameter slot.
    pub fn param_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.n_params);
        for (k, step) in self.steps.iter().enumerate() {
            let t = step.transform.name();
            names.push(format!("{k}.{t}.applied"));
            names.extend(step.transform.field_names().iter().map(|f| format!("{k}.{t}.{f}")));
        }
        names
    }

    /// Output `(height, width)` for an input of `h × w`.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        self.steps.iter().filter_map(|s| s.transform.fixed_size()).last().unwrap_or((h, w))
    }

    /// Checks that an `h × w` input suits the view (a RandomCrop fits in the padded image).
    pub fn check_input(&self, h: usize, w: usize) -> OpResult<()> {
        for step in &self.steps {
            if let Transform::RandomCrop { height, width, padding, reflect } = step.transform {
                ensure(h + 2 * padding >= height && w + 2 * padding >= width, "images", || {
                    format!("a {h}x{w} image padded by {padding} is smaller than the {height}x{width} RandomCrop")
                })?;
                ensure(!reflect || (padding < h && padding < w), "images", || {
                    format!("reflect padding by {padding} needs images larger than {padding} on each side, got {h}x{w}")
                })?;
            }
        }
        Ok(())
    }

    /// Whether the output size does not depend on the input size.
    pub fn fixes_size(&self) -> bool {
        self.steps.iter().any(|s| s.transform.fixed_size().is_some())
    }

    /// Draws the parameters of one sample of size `h × w` into `out`.
    pub fn draw(&self, h: usize, w: usize, rng: &mut rand_chacha::ChaCha8Rng, out: &mut [f64]) {
        out.fill(f64::NAN);
        let mut coin = true;
        for (step, &o) in self.steps.iter().zip(&self.offsets) {
            let applied = match step.p {
                None => true,
                Some(_) if step.shares_coin => coin,
                Some(p) => {
                    coin = rng.random::<f64>() < p;
                    coin
                }
            };
            out[o] = if applied { 1.0 } else { 0.0 };
            if !applied {
                continue;
            }
            let slots = &mut out[o + 1..o + 1 + step.transform.n_fields()];
            match &step.transform {
                Transform::RandomResizedCrop { ranges, .. } => {
                    let b = crop::draw_box(ranges, h, w, rng);
                    slots.copy_from_slice(&[b.top as f64, b.left as f64, b.height as f64, b.width as f64]);
                }
                Transform::ColorJitter { brightness, contrast, saturation, hue } => {
                    let mut order = [0usize, 1, 2, 3];
                    for i in (1..4).rev() {
                        let j = rng.random_range(0..=i);
                        order.swap(i, j);
                    }
                    for (k, &v) in order.iter().enumerate() {
                        slots[k] = v as f64;
                    }
                    for (k, r) in [brightness, contrast, saturation, hue].into_iter().enumerate() {
                        if let Some((lo, hi)) = r {
                            slots[4 + k] = crop::uniform(rng, *lo, *hi);
                        }
                    }
                }
                Transform::GaussianBlur { sigma, .. } => slots[0] = crop::uniform(rng, sigma.0, sigma.1),
                Transform::RandomCrop { height, width, padding, .. } => {
                    // validated by check_input: the padded image holds the crop
                    slots[0] = rng.random_range(0..=h + 2 * padding - height) as f64;
                    slots[1] = rng.random_range(0..=w + 2 * padding - width) as f64;
                }
                Transform::RandomErasing { ranges, value } => {
                    let (oh, ow) = self.out_size(h, w);
                    let [t, l, eh, ew] = geometry::draw_erase_box(ranges, oh, ow, rng).unwrap_or([0; 4]);
                    slots[..4].copy_from_slice(&[t as f64, l as f64, eh as f64, ew as f64]);
                    slots[4] = if *value == EraseValue::Random { rng.random::<u32>() as f64 } else { 0.0 };
                }
                Transform::RandAugment { magnitude, bins, .. } => {
                    let (oh, ow) = self.out_size(h, w);
                    for op in slots.chunks_exact_mut(4) {
                        op.copy_from_slice(&randaug::draw_op(rng, *magnitude, *bins, oh, ow));
                    }
                }
                Transform::Cutout { max_fraction, .. } => {
                    let (oh, ow) = self.out_size(h, w);
                    slots.copy_from_slice(&randaug::draw_cutout(rng, *max_fraction, oh, ow).map(|v| v as f64));
                }
                _ => {}
            }
        }
    }

    /// Checks one row of explicit parameters for an `h × w` input.
    pub fn check_row(&self, row: &[f64], h: usize, w: usize) -> OpResult<()> {
        let bad = |m: String| Err(OpError::new("params", m));
        for (step, &o) in self.steps.iter().zip(&self.offsets) {
            let name = step.transform.name();
            let applied = row[o];
            if applied != 0.0 && applied != 1.0 {
                return bad(format!("{name}.applied must be 0 or 1, got {applied}"));
            }
            if applied == 0.0 {
                continue;
            }
            let slots = &row[o + 1..o + 1 + step.transform.n_fields()];
            match &step.transform {
                Transform::RandomResizedCrop { .. } => {
                    if slots.iter().any(|v| !(v.is_finite() && *v >= 0.0 && v.fract() == 0.0)) {
                        return bad(format!("{name} box must hold non-negative integers, got {slots:?}"));
                    }
                    let b = CropBox { top: slots[0] as usize, left: slots[1] as usize, height: slots[2] as usize, width: slots[3] as usize };
                    b.check(h, w, "params")?;
                }
                Transform::ColorJitter { .. } => {
                    let mut seen = [false; 4];
                    for &v in &slots[..4] {
                        if !(v.fract() == 0.0 && (0.0..4.0).contains(&v)) || seen[v as usize] {
                            return bad(format!("{name} order must be a permutation of 0..3, got {:?}", &slots[..4]));
                        }
                        seen[v as usize] = true;
                    }
                    for (k, field) in ["brightness", "contrast", "saturation"].iter().enumerate() {
                        let f = slots[4 + k];
                        if !(f.is_nan() || (f.is_finite() && f >= 0.0)) {
                            return bad(format!("{name} {field} factor must be >= 0 (or NaN to skip), got {f}"));
                        }
                    }
                    let hf = slots[7];
                    if !(hf.is_nan() || (-0.5..=0.5).contains(&hf)) {
                        return bad(format!("{name} hue factor must be in [-0.5, 0.5] (or NaN to skip), got {hf}"));
                    }
                }
                Transform::RandomCrop { height, width, padding, .. } => {
                    let ints = slots.iter().all(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0);
                    if !(ints && slots[0] + *height as f64 <= (h + 2 * padding) as f64 && slots[1] + *width as f64 <= (w + 2 * padding) as f64) {
                        return bad(format!(
                            "{name} needs a (top, left) of non-negative integers placing the {height}x{width} crop inside the padded {}x{} image, got {slots:?}",
                            h + 2 * padding,
                            w + 2 * padding
                        ));
                    }
                }
                Transform::GaussianBlur { .. } => {
                    let s = slots[0];
                    if !(s.is_finite() && s > 0.0) {
                        return bad(format!("{name} sigma must be > 0, got {s}"));
                    }
                }
                Transform::RandomErasing { .. } => {
                    let (oh, ow) = self.out_size(h, w);
                    let ints = slots.iter().all(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0);
                    let fits = ints && slots[0] + slots[2] <= oh as f64 && slots[1] + slots[3] <= ow as f64;
                    if !fits || slots[4] >= 2f64.powi(32) {
                        return bad(format!(
                            "{name} needs a box of non-negative integers inside the {oh}x{ow} output and a 32-bit noise_seed, got {slots:?}"
                        ));
                    }
                }
                Transform::RandAugment { bins, .. } => {
                    for (k, op) in slots.chunks_exact(4).enumerate() {
                        if let Some(m) = randaug::check_op(op[0], op[3]) {
                            return bad(format!("{name} op{k}: {m}"));
                        }
                        let bin = op[1];
                        if !(bin.is_nan() || (bin.fract() == 0.0 && (0.0..*bins as f64).contains(&bin))) {
                            return bad(format!("{name} bin{k} must be an integer in 0..{} (or NaN), got {bin}", bins - 1));
                        }
                        if op[2] != 1.0 && op[2] != -1.0 {
                            return bad(format!("{name} sign{k} must be 1 or -1, got {}", op[2]));
                        }
                    }
                }
                Transform::Cutout { .. } => {
                    let (oh, ow) = self.out_size(h, w);
                    let ints = slots.iter().all(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0);
                    if !(ints && slots[0] + slots[2] <= oh as f64 && slots[1] + slots[3] <= ow as f64) {
                        return bad(format!("{name} needs a box of non-negative integers inside the {oh}x{ow} image, got {slots:?}"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies the view with parameters `row` to an `(h, w, 3)` image and
    /// writes `(3, oh, ow)` to `out`.
    pub fn run(&self, src: &[u8], h: usize, w: usize, row: &[f64], out: OutSlice<'_>, scratch: &mut Scratch) {
        let (oh, ow) = self.out_size(h, w);
        let buf = &mut scratch.buf;
        let mut steps = self.steps.iter().zip(&self.offsets).peekable();
        let (mut ch, mut cw) = (h, w);
        match steps.peek().map(|(s, _)| &s.transform) {
            Some(Transform::RandomResizedCrop { height, width, .. }) | Some(Transform::Resize { height, width }) => {
                (ch, cw) = (*height, *width);
                let (step, &o) = steps.next().expect("peeked");
                let bx = match step.transform {
                    Transform::RandomResizedCrop { .. } if row[o] == 1.0 => CropBox {
                        top: row[o + 1] as usize,
                        left: row[o + 2] as usize,
                        height: row[o + 3] as usize,
                        width: row[o + 4] as usize,
                    },
                    _ => CropBox::full(h, w),
                };
                buf.resize(ch * cw * 3, 0);
                crop::resized_crop(src, h, w, bx, buf, ch, cw);
            }
            Some(Transform::RandomCrop { height, width, padding, reflect }) => {
                (ch, cw) = (*height, *width);
                let (_, &o) = steps.next().expect("peeked");
                let (top, left) = (row[o + 1] as isize - *padding as isize, row[o + 2] as isize - *padding as isize);
                buf.resize(ch * cw * 3, 0);
                geometry::padded_crop(src, h, w, top, left, ch, cw, *reflect, buf);
            }
            Some(Transform::CenterCrop { .. }) => buf.clear(), // the source is read by the crop below
            _ => {
                buf.clear();
                buf.extend_from_slice(&src[..h * w * 3]);
            }
        }
        let mut from_source = buf.is_empty();
        while let Some(&(Step { transform: Transform::CenterCrop { height, width }, .. }, _)) = steps.peek() {
            steps.next();
            let tmp = &mut scratch.tmp;
            tmp.resize(height * width * 3, 0);
            geometry::center_crop(if from_source { src } else { buf }, ch, cw, *height, *width, tmp);
            std::mem::swap(buf, tmp);
            (ch, cw) = (*height, *width);
            from_source = false;
        }
        debug_assert_eq!((ch, cw), (oh, ow));
        let mut chain: Vec<Pw> = Vec::with_capacity(8);
        for (step, &o) in steps {
            if row[o] != 1.0 {
                continue;
            }
            match &step.transform {
                Transform::HorizontalFlip => crop::flip_horizontal(buf, oh, ow),
                Transform::VerticalFlip => geometry::flip_vertical(buf, oh, ow),
                Transform::RandomErasing { .. } => {} // on the output, below
                Transform::ColorJitter { .. } => {
                    for k in 0..4 {
                        let which = row[o + 1 + k] as usize;
                        let f = row[o + 5 + which];
                        if f.is_nan() {
                            continue;
                        }
                        chain.push(match which {
                            0 => Pw::Brightness(f as f32),
                            1 => Pw::contrast(f),
                            2 => Pw::saturation(f),
                            _ => Pw::Hue(f as f32),
                        });
                    }
                }
                Transform::Grayscale => chain.push(Pw::Grayscale),
                Transform::RandAugment { fill, .. } => {
                    for op in row[o + 1..o + 1 + step.transform.n_fields()].chunks_exact(4) {
                        let (k, m) = (op[0] as usize, op[3]);
                        match randaug::pointwise(k, m) {
                            Some(Some(pw)) => chain.push(pw),
                            Some(None) => {}
                            None => {
                                if !chain.is_empty() {
                                    run_chain(buf, &chain, Sink::InPlace);
                                    chain.clear();
                                }
                                randaug::apply_spatial(k, m, buf, &mut scratch.tmp, oh, ow, *fill);
                            }
                        }
                    }
                }
                Transform::Cutout { fill, .. } => {
                    if !chain.is_empty() {
                        run_chain(buf, &chain, Sink::InPlace);
                        chain.clear();
                    }
                    let r = &row[o + 1..o + 5];
                    randaug::fill_box(buf, ow, [r[0] as usize, r[1] as usize, r[2] as usize, r[3] as usize], *fill);
                }
                Transform::Solarize { threshold } => chain.push(Pw::Solarize(*threshold as f32)),
                Transform::GaussianBlur { kernel, .. } => {
                    if !chain.is_empty() {
                        run_chain(buf, &chain, Sink::InPlace);
                        chain.clear();
                    }
                    let taps = blur::kernel(*kernel, row[o + 1]);
                    blur::gaussian_blur(buf, oh, ow, &taps, &mut scratch.blur);
                }
                Transform::RandomResizedCrop { .. } | Transform::Resize { .. } | Transform::RandomCrop { .. } | Transform::CenterCrop { .. } => {
                    unreachable!("validated: geometry comes first")
                }
            }
        }
        let erasures = self.steps.iter().zip(&self.offsets).filter_map(|(step, &o)| match step.transform {
            Transform::RandomErasing { value, .. } if row[o] == 1.0 => {
                let r = &row[o + 1..o + 6];
                Some(([r[0] as usize, r[1] as usize, r[2] as usize, r[3] as usize], value, r[4] as u64))
            }
            _ => None,
        });
        match out {
            OutSlice::F32(o) => {
                let (scale, bias) = self.normalize.unwrap_or(([1.0; 3], [0.0; 3]));
                run_chain(buf, &chain, Sink::F32Chw(&mut *o, scale, bias));
                erasures.for_each(|(bx, value, noise)| geometry::erase(o, oh, ow, bx, value, noise));
            }
            OutSlice::U8(o) => {
                run_chain(buf, &chain, Sink::U8Chw(&mut *o));
                erasures.for_each(|(bx, value, noise)| geometry::erase(o, oh, ow, bx, value, noise));
            }
        }
    }
}

/// Per-thread working memory.
#[derive(Default)]
pub struct Scratch {
    buf: Vec<u8>,
    tmp: Vec<u8>,
    blur: BlurScratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One `(h, w, 3)` input image.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub data: &'a [u8],
    pub h: usize,
    pub w: usize,
}

/// The output buffer of one view for the whole batch, `(N, 3, oh, ow)`.
pub enum OutBuf {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

/// The output of one view for one sample.
pub enum OutSlice<'a> {
    F32(&'a mut [f32]),
    U8(&'a mut [u8]),
}

/// The stream seed of view `v`.
pub fn view_seed(seed: u64, v: usize) -> u64 {
    seed ^ (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Output sizes of the views for a batch; views without a resize step need
/// all images to have the same size.
pub fn resolve_sizes(views: &[View], sources: &[Source<'_>]) -> OpResult<Vec<(usize, usize)>> {
    views
        .iter()
        .map(|v| {
            let (h0, w0) = (sources[0].h, sources[0].w);
            let size = v.out_size(h0, w0);
            sources.iter().try_for_each(|s| v.check_input(s.h, s.w))?;
            if !v.fixes_size() {
                ensure(sources.iter().all(|s| (s.h, s.w) == (h0, w0)), "images", || {
                    "images of different sizes need a RandomResizedCrop, Resize or CenterCrop in every view".into()
                })?;
            }
            Ok(size)
        })
        .collect()
}

/// Randomness of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Draws<'a> {
    pub seed: u64,
    pub epoch: u64,
    pub indices: &'a [u64],
}

/// Runs every view on samples `range`: draws (or copies from `explicit`) the
/// parameters into `params[v]` (`(N, n_params)`) and writes `outs[v]`.
#[allow(clippy::too_many_arguments)]
pub fn augment_batch(
    views: &[View],
    sizes: &[(usize, usize)],
    sources: &[Source<'_>],
    draws: &Draws<'_>,
    explicit: &[Option<Vec<f64>>],
    range: Range<usize>,
    parallel: bool,
    outs: &mut [OutBuf],
    params: &mut [Vec<f64>],
) {
    type PerSample<'b> = (Vec<OutSlice<'b>>, Vec<&'b mut [f64]>);
    let mut per: Vec<PerSample<'_>> = range.clone().map(|_| (Vec::new(), Vec::new())).collect();
    for (v, (o, p)) in outs.iter_mut().zip(params.iter_mut()).enumerate() {
        let len = 3 * sizes[v].0 * sizes[v].1;
        match o {
            OutBuf::F32(b) => {
                for (k, c) in b[range.start * len..range.end * len].chunks_mut(len).enumerate() {
                    per[k].0.push(OutSlice::F32(c));
                }
            }
            OutBuf::U8(b) => {
                for (k, c) in b[range.start * len..range.end * len].chunks_mut(len).enumerate() {
                    per[k].0.push(OutSlice::U8(c));
                }
            }
        }
        let np = views[v].n_params;
        let mut rest = &mut p[range.start * np..range.end * np];
        for item in per.iter_mut() {
            let (row, tail) = rest.split_at_mut(np);
            item.1.push(row);
            rest = tail;
        }
    }
    let work = |(k, (outs, rows)): (usize, PerSample<'_>)| {
        let i = range.start + k;
        let src = sources[i];
        SCRATCH.with(|s| {
            let scratch = &mut *s.borrow_mut();
            for (v, (out, row)) in outs.into_iter().zip(rows).enumerate() {
                let view = &views[v];
                match &explicit[v] {
                    Some(e) => row.copy_from_slice(&e[i * view.n_params..(i + 1) * view.n_params]),
                    None => {
                        let mut rng = sample_rng(view_seed(draws.seed, v), draws.epoch, OpSalt::Augment, draws.indices[i]);
                        view.draw(src.h, src.w, &mut rng, row);
                    }
                }
                view.run(src.data, src.h, src.w, row, out, scratch);
            }
        });
    };
    if parallel {
        per.into_par_iter().enumerate().for_each(work);
    } else {
        per.into_iter().enumerate().for_each(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simclr_view(size: usize) -> View {
        let steps = vec![
            Step {
                transform: Transform::RandomResizedCrop {
                    height: size,
                    width: size,
                    ranges: CropRanges::new((0.08, 1.0), (0.75, 4.0 / 3.0)).unwrap(),
                },
                p: None,
                shares_coin: false,
            },
            Step { transform: Transform::HorizontalFlip, p: Some(0.5), shares_coin: false },
            Step {
                transform: Transform::ColorJitter {
                    brightness: Some((0.6, 1.4)),
                    contrast: Some((0.6, 1.4)),
                    saturation: Some((0.6, 1.4)),
                    hue: Some((-0.1, 0.1)),
                },
                p: Some(0.8),
                shares_coin: false,
            },
            Step { transform: Transform::Grayscale, p: Some(0.2), shares_coin: false },
            Step { transform: Transform::GaussianBlur { kernel: 5, sigma: (0.1, 2.0) }, p: Some(0.5), shares_coin: false },
        ];
        View::new(steps, Some(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))).unwrap()
    }

    fn image(h: usize, w: usize) -> Vec<u8> {
        (0..h * w * 3).map(|i| ((i * 7919) % 251) as u8).collect()
    }

    #[test]
    fn batch_is_deterministic_and_parallel_equals_serial() {
        let views = vec![simclr_view(16), simclr_view(12)];
        let imgs: Vec<Vec<u8>> = (0..10).map(|k| image(20 + k, 30)).collect();
        let sources: Vec<Source> = imgs.iter().enumerate().map(|(k, d)| Source { data: d, h: 20 + k, w: 30 }).collect();
        let sizes = resolve_sizes(&views, &sources).unwrap();
        let indices: Vec<u64> = (100..110).collect();
        let draws = Draws { seed: 5, epoch: 1, indices: &indices };
        let run = |parallel: bool, range: Range<usize>, outs: &mut Vec<OutBuf>, params: &mut Vec<Vec<f64>>| {
            augment_batch(&views, &sizes, &sources, &draws, &[None, None], range, parallel, outs, params);
        };
        let fresh = || {
            (
                vec![OutBuf::F32(vec![0.0; 10 * 3 * 256]), OutBuf::F32(vec![0.0; 10 * 3 * 144])],
                vec![vec![0.0; 10 * views[0].n_params()], vec![0.0; 10 * views[1].n_params()]],
            )
        };
        let (mut o1, mut p1) = fresh();
        run(false, 0..10, &mut o1, &mut p1);
        let (mut o2, mut p2) = fresh();
        run(true, 0..4, &mut o2, &mut p2);
        run(true, 4..10, &mut o2, &mut p2);
        for (a, b) in o1.iter().zip(&o2) {
            match (a, b) {
                (OutBuf::F32(a), OutBuf::F32(b)) => assert_eq!(a, b),
                _ => unreachable!(),
            }
        }
        assert_eq!(format!("{p1:?}"), format!("{p2:?}"));
        // replaying the drawn parameters gives the same bytes
        let (mut o3, mut p3) = fresh();
        let explicit = [Some(p1[0].clone()), Some(p1[1].clone())];
        augment_batch(&views, &sizes, &sources, &draws, &explicit, 0..10, true, &mut o3, &mut p3);
        match (&o1[0], &o3[0]) {
            (OutBuf::F32(a), OutBuf::F32(b)) => assert_eq!(a, b),
            _ => unreachable!(),
        }
    }

    #[test]
    fn centre_crops_flips_and_erasing_replay_and_run_the_same_in_parallel() {
        let erase = |value| Step {
            transform: Transform::RandomErasing { ranges: EraseRanges::new((0.02, 0.33), (0.3, 3.3)).unwrap(), value },
            p: Some(0.9),
            shares_coin: false,
        };
        let steps = vec![
            Step { transform: Transform::Resize { height: 20, width: 24 }, p: None, shares_coin: false },
            Step { transform: Transform::CenterCrop { height: 16, width: 30 }, p: None, shares_coin: false },
            Step { transform: Transform::CenterCrop { height: 12, width: 12 }, p: None, shares_coin: false },
            Step { transform: Transform::VerticalFlip, p: Some(0.5), shares_coin: false },
            erase(EraseValue::Random),
            erase(EraseValue::Constant([0.0, 1.0, 2.0])),
        ];
        let views = vec![View::new(steps, Some(([0.5; 3], [0.25; 3]))).unwrap()];
        let imgs: Vec<Vec<u8>> = (0..12).map(|k| image(15 + k, 19 + 2 * k)).collect();
        let sources: Vec<Source> = imgs.iter().enumerate().map(|(k, d)| Source { data: d, h: 15 + k, w: 19 + 2 * k }).collect();
        assert_eq!(resolve_sizes(&views, &sources).unwrap(), vec![(12, 12)]);
        let params = serial_parallel_replay(&views, &sources, 9, 0, || OutBuf::F32(vec![0.0; 12 * 3 * 144]));
        let np = views[0].n_params();
        let erased: usize = (0..12).map(|i| params[i * np + 7..i * np + 9].iter().product::<f64>() as usize).sum();
        assert!(erased > 0);
    }

    /// Runs the one-view pipeline `views` over `sources` serially, in parallel, and in parallel
    /// replaying the parameters the serial run drew; asserts the three outputs are equal and every
    /// parameter row is valid, and returns the drawn parameters.
    fn serial_parallel_replay(views: &[View], sources: &[Source], seed: u64, epoch: u64, blank: impl Fn() -> OutBuf) -> Vec<f64> {
        let sizes = resolve_sizes(views, sources).unwrap();
        let n = sources.len();
        let indices: Vec<u64> = (0..n as u64).collect();
        let draws = Draws { seed, epoch, indices: &indices };
        let run = |parallel: bool, explicit: &[Option<Vec<f64>>]| {
            let mut outs = vec![blank()];
            let mut params = vec![vec![0.0; n * views[0].n_params()]];
            augment_batch(views, &sizes, sources, &draws, explicit, 0..n, parallel, &mut outs, &mut params);
            (outs.pop().unwrap(), params.pop().unwrap())
        };
        let (serial, params) = run(false, &[None]);
        for (other, _) in [run(true, &[None]), run(true, &[Some(params.clone())])] {
            match (&serial, &other) {
                (OutBuf::F32(a), OutBuf::F32(b)) => assert_eq!(a, b),
                (OutBuf::U8(a), OutBuf::U8(b)) => assert_eq!(a, b),
                _ => unreachable!(),
            }
        }
        let np = views[0].n_params();
        for (i, source) in sources.iter().enumerate() {
            views[0].check_row(&params[i * np..(i + 1) * np], source.h, source.w).unwrap();
        }
        params
    }

    #[test]
    fn randaugment_views_replay_and_run_the_same_in_parallel() {
        let steps = vec![
            Step { transform: Transform::RandomCrop { height: 12, width: 12, padding: 2, reflect: true }, p: None, shares_coin: false },
            Step { transform: Transform::HorizontalFlip, p: Some(0.5), shares_coin: false },
            Step { transform: Transform::RandAugment { num_ops: 3, magnitude: None, bins: 31, fill: [127; 3] }, p: None, shares_coin: false },
            Step { transform: Transform::Cutout { max_fraction: 0.5, fill: [1, 2, 3] }, p: Some(0.7), shares_coin: false },
        ];
        let views = vec![View::new(steps, None).unwrap()];
        assert_eq!(views[0].n_params(), 3 + 1 + 13 + 5);
        let imgs: Vec<Vec<u8>> = (0..40).map(|k| image(12 + k % 5, 13 + k % 3)).collect();
        let sources: Vec<Source> = imgs.iter().enumerate().map(|(k, d)| Source { data: d, h: 12 + k % 5, w: 13 + k % 3 }).collect();
        serial_parallel_replay(&views, &sources, 4, 1, || OutBuf::U8(vec![0; 40 * 3 * 144]));
        // a crop larger than the padded image, or reflection wider than the image, is refused
        let small = [Source { data: &imgs[0], h: 4, w: 4 }];
        assert_eq!(resolve_sizes(&views, &small).unwrap_err().arg, "images");
        let bad = View::new(vec![Step { transform: Transform::RandAugment { num_ops: 1, magnitude: Some(31), bins: 31, fill: [0; 3] }, p: None, shares_coin: false }], None);
        assert_eq!(bad.unwrap_err().arg, "magnitude");
    }

    #[test]
    fn validation_names_arguments() {
        let bad_p = View::new(vec![Step { transform: Transform::Grayscale, p: Some(1.5), shares_coin: false }], None);
        assert_eq!(bad_p.unwrap_err().arg, "p");
        let late_crop = View::new(
            vec![
                Step { transform: Transform::Grayscale, p: None, shares_coin: false },
                Step { transform: Transform::Resize { height: 4, width: 4 }, p: None, shares_coin: false },
            ],
            None,
        );
        assert_eq!(late_crop.unwrap_err().arg, "transforms");
        let v = simclr_view(8);
        let mut row = vec![0.0; v.n_params()];
        v.draw(10, 10, &mut sample_rng(0, 0, OpSalt::Augment, 0), &mut row);
        v.check_row(&row, 10, 10).unwrap();
        row[4] = 11.0; // box width 11 > 10
        assert_eq!(v.check_row(&row, 10, 10).unwrap_err().arg, "params");
        assert_eq!(v.param_names()[1], "0.RandomResizedCrop.top");
    }
}
