//! Point-wise colour operations on RGB uint8 pixels with torchvision v2's
//! uint8 arithmetic: each step computes in float32 and truncates to uint8
//! (values are clamped to [0, 255] first).
//!
//! - brightness `f`: `x·f`;
//! - contrast `f`: `x·f + m·(1 − f)`, `m` the mean over the image of
//!   `floor(0.2989 R + 0.587 G + 0.114 B)`;
//! - saturation `f`: `x·f + g·(1 − f)`, `g = floor(0.2989 R + 0.587 G + 0.114 B)` per pixel;
//! - hue `δ`: RGB → HSV, `H ← (H + δ) mod 1`, HSV → RGB with torchvision's
//!   formulas, back to uint8 as `trunc(v·255.999)`;
//! - grayscale: `trunc(0.2989 R + 0.587 G + 0.114 B)` in all three channels;
//! - solarize `t`: `x ≥ t → 255 − x`.
//!
//! Consecutive operations run in one pass over the pixels, in chunks held as
//! three float32 planes so the loops vectorise. A contrast step needs the
//! mean of the image it receives: the pass before it accumulates that mean
//! while it writes its result, so a chain with `k` contrast steps takes
//! `k + 1` passes. The last pass writes the output directly (uint8 HWC in
//! place, uint8 CHW, or normalised float32 CHW).

/// One point-wise step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pw {
    Brightness(f32),
    /// Contrast factor; the grey mean is supplied by the pass before it.
    Contrast(f32),
    Saturation(f32),
    Hue(f32),
    Grayscale,
    Solarize(f32),
}

/// Where the last pass writes.
pub enum Sink<'a> {
    /// Back into the uint8 HWC buffer.
    InPlace,
    /// uint8 CHW planes.
    U8Chw(&'a mut [u8]),
    /// float32 CHW planes, `v·scale[c] + bias[c]` (Normalize of `v/255`).
    F32Chw(&'a mut [f32], [f32; 3], [f32; 3]),
}

const CHUNK: usize = 512;
const WR: f32 = 0.2989;
const WG: f32 = 0.587;
const WB: f32 = 0.114;

#[inline(always)]
fn to_u8f(v: f32) -> f32 {
    (v.max(0.0).min(255.0) as i32) as f32
}

#[inline(always)]
fn gray(r: f32, g: f32, b: f32) -> f32 {
    r * WR + g * WG + b * WB
}

#[inline(always)]
fn blend(r: &mut [f32], g: &mut [f32], b: &mut [f32], f: f32, other: impl Fn(usize) -> f32) {
    let a = (1.0f64 - f as f64) as f32;
    for i in 0..r.len() {
        let o = other(i) * a;
        r[i] = to_u8f(r[i] * f + o);
        g[i] = to_u8f(g[i] * f + o);
        b[i] = to_u8f(b[i] * f + o);
    }
}

#[inline(always)]
fn hue(r: &mut [f32], g: &mut [f32], b: &mut [f32], delta: f32) {
    const INV255: f32 = (1.0f64 / 255.0) as f32;
    const SIXTH: f32 = (1.0f64 / 6.0) as f32;
    for i in 0..r.len() {
        let (rr, gg, bb) = (r[i] * INV255, g[i] * INV255, b[i] * INV255);
        let maxc = rr.max(gg).max(bb);
        let minc = rr.min(gg).min(bb);
        let eqc = maxc == minc;
        let range = maxc - minc;
        let s = range / if eqc { 1.0 } else { maxc };
        let div = if eqc { 1.0 } else { range };
        let rc = (maxc - rr) / div;
        let gc = (maxc - gg) / div;
        let bc = (maxc - bb) / div;
        let is_r = maxc == rr;
        let is_g = maxc == gg;
        let hr = if is_r { bc - gc } else { 0.0 };
        let hg = if is_g && !is_r { (rc + 2.0) - bc } else { 0.0 };
        let hb = if !is_g && !is_r { (gc + 4.0) - rc } else { 0.0 };
        let mut h = ((hr + hg) + hb) * SIXTH + 1.0;
        h = if h >= 1.0 { h - 1.0 } else { h };
        // (h + δ) remainder 1
        let mut t = h + delta;
        t = if t < 0.0 { t + 1.0 } else if t >= 1.0 { t - 1.0 } else { t };
        let v = maxc;
        let h6 = t * 6.0;
        let k = h6 as i32; // h6 >= 0: truncation is floor
        let f = h6 - k as f32;
        let k = if k >= 6 { k - 6 } else { k };
        let sxf = s * f;
        let oms = 1.0 - s;
        let q = ((1.0 - sxf) * v).max(0.0).min(1.0);
        let tt = ((sxf + oms) * v).max(0.0).min(1.0);
        let p = (oms * v).max(0.0).min(1.0);
        let (nr, ng, nb) = match k {
            0 => (v, tt, p),
            1 => (q, v, p),
            2 => (p, v, tt),
            3 => (p, q, v),
            4 => (tt, p, v),
            _ => (v, p, q),
        };
        const SCALE: f32 = 255.999;
        r[i] = ((nr * SCALE) as i32) as f32;
        g[i] = ((ng * SCALE) as i32) as f32;
        b[i] = ((nb * SCALE) as i32) as f32;
    }
}

#[inline(always)]
fn apply(op: Pw, mean: f32, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
    match op {
        Pw::Brightness(f) => {
            for i in 0..r.len() {
                r[i] = to_u8f(r[i] * f);
                g[i] = to_u8f(g[i] * f);
                b[i] = to_u8f(b[i] * f);
            }
        }
        Pw::Contrast(f) => blend(r, g, b, f, |_| mean),
        Pw::Saturation(f) => {
            let mut grey = [0f32; CHUNK];
            for i in 0..r.len() {
                grey[i] = (gray(r[i], g[i], b[i]) as i32) as f32;
            }
            blend(r, g, b, f, |i| grey[i]);
        }
        Pw::Hue(d) => hue(r, g, b, d),
        Pw::Grayscale => {
            for i in 0..r.len() {
                let l = to_u8f(gray(r[i], g[i], b[i]));
                r[i] = l;
                g[i] = l;
                b[i] = l;
            }
        }
        Pw::Solarize(t) => {
            for i in 0..r.len() {
                r[i] = if r[i] >= t { 255.0 - r[i] } else { r[i] };
                g[i] = if g[i] >= t { 255.0 - g[i] } else { g[i] };
                b[i] = if b[i] >= t { 255.0 - b[i] } else { b[i] };
            }
        }
    }
}

/// One pass: applies `ops` (the first may be a contrast step using `mean`),
/// writes to `sink`, and returns the sum of `floor(grey)` of the result when
/// `want_sum`.
#[inline(always)]
fn pass_body(img: &mut [u8], ops: &[Pw], mean: f32, want_sum: bool, sink: &mut Sink<'_>) -> f64 {
    let npix = img.len() / 3;
    let mut r = [0f32; CHUNK];
    let mut g = [0f32; CHUNK];
    let mut b = [0f32; CHUNK];
    let mut total = 0f64;
    let mut start = 0;
    while start < npix {
        let n = CHUNK.min(npix - start);
        let px = &mut img[start * 3..(start + n) * 3];
        for i in 0..n {
            r[i] = px[3 * i] as f32;
            g[i] = px[3 * i + 1] as f32;
            b[i] = px[3 * i + 2] as f32;
        }
        let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
        for &op in ops {
            apply(op, mean, r, g, b);
        }
        if want_sum {
            // integer-valued partial sums below 2^24 are exact in f32
            let mut s = 0f32;
            for i in 0..n {
                s += (gray(r[i], g[i], b[i]) as i32) as f32;
            }
            total += s as f64;
        }
        match sink {
            Sink::InPlace => {
                for i in 0..n {
                    px[3 * i] = r[i] as u8;
                    px[3 * i + 1] = g[i] as u8;
                    px[3 * i + 2] = b[i] as u8;
                }
            }
            Sink::U8Chw(out) => {
                for (c, plane) in [&*r, &*g, &*b].into_iter().enumerate() {
                    let o = &mut out[c * npix + start..c * npix + start + n];
                    for i in 0..n {
                        o[i] = plane[i] as u8;
                    }
                }
            }
            Sink::F32Chw(out, scale, bias) => {
                for (c, plane) in [&*r, &*g, &*b].into_iter().enumerate() {
                    let o = &mut out[c * npix + start..c * npix + start + n];
                    let (sc, bi) = (scale[c], bias[c]);
                    for i in 0..n {
                        o[i] = plane[i] * sc + bi;
                    }
                }
            }
        }
        start += n;
    }
    total
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pass_avx2(img: &mut [u8], ops: &[Pw], mean: f32, want_sum: bool, sink: &mut Sink<'_>) -> f64 {
    pass_body(img, ops, mean, want_sum, sink)
}

fn pass_generic(img: &mut [u8], ops: &[Pw], mean: f32, want_sum: bool, sink: &mut Sink<'_>) -> f64 {
    pass_body(img, ops, mean, want_sum, sink)
}

fn pass(img: &mut [u8], ops: &[Pw], mean: f32, want_sum: bool, sink: &mut Sink<'_>) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); the body is plain safe code.
            return unsafe { pass_avx2(img, ops, mean, want_sum, sink) };
        }
    }
    pass_generic(img, ops, mean, want_sum, sink)
}

/// Runs `ops` over an `(h, w, 3)` image (`img` holds `h·w·3` values) and
/// writes the result to `sink`. Contrast means are computed on the fly.
pub fn run_chain(img: &mut [u8], ops: &[Pw], mut sink: Sink<'_>) {
    let npix = (img.len() / 3).max(1) as f64;
    // split before every contrast step after the first op
    let mut cuts: Vec<usize> = ops.iter().enumerate().filter(|(_, o)| matches!(o, Pw::Contrast(_))).map(|(i, _)| i).collect();
    let mut mean = 0f32;
    if cuts.first() == Some(&0) {
        cuts.remove(0);
        mean = (grey_sum(img) / npix) as f32;
    }
    let mut start = 0;
    for &cut in &cuts {
        let sum = pass(img, &ops[start..cut], mean, true, &mut Sink::InPlace);
        mean = (sum / npix) as f32;
        start = cut;
    }
    pass(img, &ops[start..], mean, false, &mut sink);
}

/// Sum over the image of `floor(0.2989 R + 0.587 G + 0.114 B)`.
pub fn grey_sum(img: &[u8]) -> f64 {
    let mut total = 0f64;
    for chunk in img.chunks(CHUNK * 3) {
        let mut s = 0f32;
        for px in chunk.chunks_exact(3) {
            s += (gray(px[0] as f32, px[1] as f32, px[2] as f32) as i32) as f32;
        }
        total += s as f64;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(px: &[u8], ops: &[Pw]) -> Vec<u8> {
        let mut v = px.to_vec();
        run_chain(&mut v, ops, Sink::InPlace);
        v
    }

    #[test]
    fn brightness_truncates_and_clamps() {
        assert_eq!(run(&[10, 100, 200], &[Pw::Brightness(1.5)]), vec![15, 150, 255]);
        assert_eq!(run(&[3, 5, 7], &[Pw::Brightness(0.5)]), vec![1, 2, 3]);
    }

    #[test]
    fn contrast_uses_the_scalar_grey_mean() {
        // grey of (0,0,0) = 0 and of (255,255,255) = floor(254.99...) = 254
        let px = [0, 0, 0, 255, 255, 255];
        let out = run(&px, &[Pw::Contrast(0.0)]);
        assert_eq!(out, vec![127; 6]);
        // a brightness step before contrast changes the mean contrast sees
        let out = run(&px, &[Pw::Brightness(0.5), Pw::Contrast(0.0)]);
        assert_eq!(out, vec![63; 6]);
    }

    #[test]
    fn saturation_zero_is_grey_and_grayscale_matches() {
        let px = [200, 100, 50];
        let g = (200.0f32 * WR + 100.0 * WG + 50.0 * WB) as u8;
        assert_eq!(run(&px, &[Pw::Saturation(0.0)]), vec![g; 3]);
        assert_eq!(run(&px, &[Pw::Grayscale]), vec![g; 3]);
    }

    #[test]
    fn hue_zero_is_identity_and_half_turn_swaps() {
        let px: Vec<u8> = (0..300).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(run(&px, &[Pw::Hue(0.0)]), px);
        // pure red rotated by 1/3 turn becomes pure green
        assert_eq!(run(&[255, 0, 0], &[Pw::Hue(1.0 / 3.0)]), vec![0, 255, 0]);
    }

    #[test]
    fn solarize_inverts_above_threshold() {
        assert_eq!(run(&[10, 128, 255], &[Pw::Solarize(128.0)]), vec![10, 127, 0]);
    }

    #[test]
    fn normalised_chw_sink() {
        let mut px = vec![0u8, 255, 51, 0, 255, 51];
        let mut out = vec![0f32; 6];
        run_chain(&mut px, &[], Sink::F32Chw(&mut out, [1.0 / 255.0; 3], [0.0; 3]));
        assert_eq!(out[0], 0.0);
        assert!((out[2] - 1.0).abs() < 1e-6 && (out[4] - 0.2).abs() < 1e-6);
    }
}
