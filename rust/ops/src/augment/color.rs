//! Point-wise colour operations on RGB uint8 pixels with torchvision v2's
//! uint8 arithmetic: each step computes in float32 and truncates to uint8
//! (values are clamped to [0, 255] first). The blends and the grey level use
//! fused multiply–adds where torchvision's kernels do (`add_(…, alpha=…)`),
//! so the results are bit-exact, not merely within one grey level.
//!
//! - brightness `f`: `x·f`;
//! - contrast `f`: `x·f + m·(1 − f)`, `m` the mean over the image of
//!   `floor(0.2989 R + 0.587 G + 0.114 B)`;
//! - saturation `f`: `x·f + g·(1 − f)`, `g = floor(0.2989 R + 0.587 G + 0.114 B)` per pixel;
//! - hue `δ`: RGB → HSV, `H ← (H + δ) mod 1`, HSV → RGB with torchvision's
//!   formulas, back to uint8 as `trunc(v·255.999)`;
//! - grayscale: `trunc(0.2989 R + 0.587 G + 0.114 B)` in all three channels;
//! - solarize `t`: `x ≥ t → 255 − x`;
//! - posterize: `x & mask`.
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
    /// Contrast factor `f` and `1 − f`; the grey mean is supplied by the pass before it.
    Contrast(f32, f32),
    /// Saturation factor `f` and `1 − f`.
    Saturation(f32, f32),
    Hue(f32),
    Grayscale,
    Solarize(f32),
    /// Keep the bits of the mask: `x & mask` (torchvision's `posterize`).
    Posterize(u8),
}

impl Pw {
    /// A contrast step of factor `f`; `1 − f` is computed in float64 before
    /// rounding, as torchvision's `_blend` does with its Python float.
    pub fn contrast(f: f64) -> Self {
        Pw::Contrast(f as f32, (1.0 - f) as f32)
    }

    /// A saturation step of factor `f` (see [`Pw::contrast`]).
    pub fn saturation(f: f64) -> Self {
        Pw::Saturation(f as f32, (1.0 - f) as f32)
    }
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
    fmin(fmax(v, 0.0), 255.0).trunc()
}

/// torchvision's `r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114)`:
/// each `add_` with `alpha` is a fused multiply–add in its vectorised kernel.
#[inline(always)]
fn gray(r: f32, g: f32, b: f32) -> f32 {
    b.mul_add(WB, g.mul_add(WG, r * WR))
}

#[inline(always)]
fn blend(r: &mut [f32], g: &mut [f32], b: &mut [f32], f: f32, a: f32, other: impl Fn(usize) -> f32) {
    // torchvision's `image1.mul(f).add_(image2, alpha=1 − f)`: a fused multiply–add
    for i in 0..r.len() {
        let o = other(i);
        r[i] = to_u8f(o.mul_add(a, r[i] * f));
        g[i] = to_u8f(o.mul_add(a, g[i] * f));
        b[i] = to_u8f(o.mul_add(a, b[i] * f));
    }
}

/// `max`/`min` as plain comparisons (no NaN handling: values here are never NaN), which
/// lower to single vector instructions.
#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn hue(r: &mut [f32], g: &mut [f32], b: &mut [f32], delta: f32) {
    const INV255: f32 = (1.0f64 / 255.0) as f32;
    const SIXTH: f32 = (1.0f64 / 6.0) as f32;
    const SCALE: f32 = 255.999;
    let n = r.len();
    let (g, b) = (&mut g[..n], &mut b[..n]);
    for i in 0..n {
        let (rr, gg, bb) = (r[i] * INV255, g[i] * INV255, b[i] * INV255);
        let maxc = fmax(fmax(rr, gg), bb);
        let minc = fmin(fmin(rr, gg), bb);
        let eqc = maxc == minc;
        let range = maxc - minc;
        let s = range / if eqc { 1.0 } else { maxc };
        let div = if eqc { 1.0 } else { range };
        // torchvision's hr + hg + hb with rc, gc, bc = (maxc − channel)/div: exactly one
        // term is non-zero and it needs two of the three quotients
        let (num_a, num_b, base) = if maxc == rr {
            (maxc - bb, maxc - gg, 0.0) // bc − gc
        } else if maxc == gg {
            (maxc - rr, maxc - bb, 2.0) // (rc + 2) − bc
        } else {
            (maxc - gg, maxc - rr, 4.0) // (gc + 4) − rc
        };
        let hsum = (num_a / div + base) - num_b / div;
        let h = hsum * SIXTH + 1.0;
        let h = if h >= 1.0 { h - 1.0 } else { h };
        // (h + δ) remainder 1
        let t = h + delta;
        let t = if t < 0.0 {
            t + 1.0
        } else if t >= 1.0 {
            t - 1.0
        } else {
            t
        };
        let v = maxc;
        let h6 = t * 6.0;
        let k = h6.trunc(); // h6 >= 0: truncation is floor
        let f = h6 - k;
        let sxf = s * f;
        let oms = 1.0 - s;
        let q = fmin(fmax((1.0 - sxf) * v, 0.0), 1.0);
        let tt = fmin(fmax((sxf + oms) * v, 0.0), 1.0);
        let p = fmin(fmax(oms * v, 0.0), 1.0);
        // sector k (6 wraps to 0): (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
        let k = if k >= 6.0 { k - 6.0 } else { k };
        let nr = if k < 1.0 {
            v
        } else if k < 2.0 {
            q
        } else if k < 4.0 {
            p
        } else if k < 5.0 {
            tt
        } else {
            v
        };
        let ng = if k < 1.0 {
            tt
        } else if k < 3.0 {
            v
        } else if k < 4.0 {
            q
        } else {
            p
        };
        let nb = if k < 2.0 {
            p
        } else if k < 3.0 {
            tt
        } else if k < 5.0 {
            v
        } else {
            q
        };
        r[i] = (nr * SCALE).trunc();
        g[i] = (ng * SCALE).trunc();
        b[i] = (nb * SCALE).trunc();
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
        Pw::Contrast(f, a) => blend(r, g, b, f, a, |_| mean),
        Pw::Saturation(f, a) => {
            let mut grey = [0f32; CHUNK];
            for i in 0..r.len() {
                grey[i] = gray(r[i], g[i], b[i]).trunc();
            }
            blend(r, g, b, f, a, |i| grey[i]);
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
        Pw::Posterize(mask) => {
            let mask = mask as i32;
            for i in 0..r.len() {
                r[i] = (int(r[i]) & mask) as f32;
                g[i] = (int(g[i]) & mask) as f32;
                b[i] = (int(b[i]) & mask) as f32;
            }
        }
    }
}

/// Three float32 planes of one chunk of pixels.
struct Planes {
    r: [f32; CHUNK],
    g: [f32; CHUNK],
    b: [f32; CHUNK],
}

/// `v` as an integer; `v` is integral and in `0..=255`.
#[inline(always)]
fn int(v: f32) -> i32 {
    // SAFETY: callers pass finite values in [0, 255].
    unsafe { v.to_int_unchecked::<i32>() }
}

/// Sum of `floor(grey)` over the first `n` pixels of `p`.
#[inline(always)]
fn chunk_grey_sum(p: &Planes, n: usize) -> i64 {
    let (r, g, b) = (&p.r[..n], &p.g[..n], &p.b[..n]);
    let mut s = 0i32; // at most 255·CHUNK
    for i in 0..n {
        s += int(gray(r[i], g[i], b[i]));
    }
    s as i64
}

/// Loads `px` (HWC, `n` pixels) into the planes.
#[inline(always)]
fn load(px: &[u8], p: &mut Planes, n: usize) {
    for (i, c) in px.chunks_exact(3).take(n).enumerate() {
        p.r[i] = c[0] as f32;
        p.g[i] = c[1] as f32;
        p.b[i] = c[2] as f32;
    }
}

/// One pass: applies `ops` (the first may be a contrast step using `mean`),
/// writes to `sink`, and returns the sum of `floor(grey)` of the result when
/// `want_sum`.
#[inline(always)]
fn pass_body(img: &mut [u8], ops: &[Pw], mean: f32, want_sum: bool, sink: &mut Sink<'_>) -> i64 {
    let npix = img.len() / 3;
    let mut p = Planes { r: [0.0; CHUNK], g: [0.0; CHUNK], b: [0.0; CHUNK] };
    let mut total = 0i64;
    let mut start = 0;
    while start < npix {
        let n = CHUNK.min(npix - start);
        let px = &mut img[start * 3..(start + n) * 3];
        load(px, &mut p, n);
        for &op in ops {
            apply(op, mean, &mut p.r[..n], &mut p.g[..n], &mut p.b[..n]);
        }
        if want_sum {
            total += chunk_grey_sum(&p, n);
        }
        let (r, g, b) = (&p.r[..n], &p.g[..n], &p.b[..n]);
        match sink {
            Sink::InPlace => {
                for (i, c) in px.chunks_exact_mut(3).enumerate() {
                    c[0] = int(r[i]) as u8;
                    c[1] = int(g[i]) as u8;
                    c[2] = int(b[i]) as u8;
                }
            }
            Sink::U8Chw(out) => {
                for (c, plane) in [r, g, b].into_iter().enumerate() {
                    let o = &mut out[c * npix + start..c * npix + start + n];
                    for (d, &v) in o.iter_mut().zip(plane) {
                        *d = int(v) as u8;
                    }
                }
            }
            Sink::F32Chw(out, scale, bias) => {
                for (c, plane) in [r, g, b].into_iter().enumerate() {
                    let o = &mut out[c * npix + start..c * npix + start + n];
                    let (sc, bi) = (scale[c], bias[c]);
                    for (d, &v) in o.iter_mut().zip(plane) {
                        *d = v * sc + bi;
                    }
                }
            }
        }
        start += n;
    }
    total
}

/// Sum over an HWC image of `floor(0.2989 R + 0.587 G + 0.114 B)`.
#[inline(always)]
fn grey_sum_body(img: &[u8]) -> i64 {
    let mut p = Planes { r: [0.0; CHUNK], g: [0.0; CHUNK], b: [0.0; CHUNK] };
    let mut total = 0i64;
    for px in img.chunks(CHUNK * 3) {
        let n = px.len() / 3;
        load(px, &mut p, n);
        total += chunk_grey_sum(&p, n);
    }
    total
}

#[inline(always)]
fn chain_body(img: &mut [u8], ops: &[Pw], sink: &mut Sink<'_>) {
    if let ([], Sink::U8Chw(out)) = (ops, &mut *sink) {
        // nothing to compute: a plain HWC → CHW byte shuffle
        let npix = img.len() / 3;
        let (r, rest) = out.split_at_mut(npix);
        let (g, b) = rest.split_at_mut(npix);
        for (i, p) in img.chunks_exact(3).enumerate() {
            r[i] = p[0];
            g[i] = p[1];
            b[i] = p[2];
        }
        return;
    }
    let npix = (img.len() / 3).max(1) as f64;
    let mut mean = 0f32;
    let mut start = 0;
    if let Some(Pw::Contrast(..)) = ops.first() {
        mean = (grey_sum_body(img) as f64 / npix) as f32;
    }
    // a pass ends before every later contrast step
    for cut in 1..ops.len() {
        if let Pw::Contrast(..) = ops[cut] {
            let sum = pass_body(img, &ops[start..cut], mean, true, &mut Sink::InPlace);
            mean = (sum as f64 / npix) as f32;
            start = cut;
        }
    }
    pass_body(img, &ops[start..], mean, false, sink);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chain_avx2(img: &mut [u8], ops: &[Pw], sink: &mut Sink<'_>) {
    chain_body(img, ops, sink)
}

/// Runs `ops` over an `(h, w, 3)` image (`img` holds `h·w·3` values) and
/// writes the result to `sink`. Contrast means are computed on the fly.
pub fn run_chain(img: &mut [u8], ops: &[Pw], mut sink: Sink<'_>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the body is plain safe code.
            return unsafe { chain_avx2(img, ops, &mut sink) };
        }
    }
    chain_body(img, ops, &mut sink)
}

/// Sum over an `(h, w, 3)` image of `floor(0.2989 R + 0.587 G + 0.114 B)`.
pub fn grey_sum(img: &[u8]) -> f64 {
    grey_sum_body(img) as f64
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
        let out = run(&px, &[Pw::contrast(0.0)]);
        assert_eq!(out, vec![127; 6]);
        // a brightness step before contrast changes the mean contrast sees
        let out = run(&px, &[Pw::Brightness(0.5), Pw::contrast(0.0)]);
        assert_eq!(out, vec![63; 6]);
    }

    #[test]
    fn saturation_zero_is_grey_and_grayscale_matches() {
        let px = [200, 100, 50];
        let g = (200.0f32 * WR + 100.0 * WG + 50.0 * WB) as u8;
        assert_eq!(run(&px, &[Pw::saturation(0.0)]), vec![g; 3]);
        assert_eq!(run(&px, &[Pw::Grayscale]), vec![g; 3]);
    }

    #[test]
    fn hue_zero_is_identity_and_half_turn_swaps() {
        let px: Vec<u8> = (0..300).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(run(&px, &[Pw::Hue(0.0)]), px);
        // pure red rotated by 1/3 turn becomes pure green
        assert_eq!(run(&[255, 0, 0], &[Pw::Hue(1.0 / 3.0)]), vec![0, 255, 0]);
    }

    /// torchvision's `_rgb_to_hsv` / `_hsv_to_rgb` transcribed literally (three
    /// quotients, masked sums, `fmod`, `remainder`, a six-way gather).
    fn hue_reference(px: [u8; 3], delta: f32) -> [u8; 3] {
        let [r, g, b] = px.map(|v| v as f32 * (1.0f64 / 255.0) as f32);
        let maxc = r.max(g).max(b);
        let minc = r.min(g).min(b);
        let eqc = maxc == minc;
        let cr = maxc - minc;
        let s = cr / if eqc { 1.0 } else { maxc };
        let div = if eqc { 1.0 } else { cr };
        let (rc, gc, bc) = ((maxc - r) / div, (maxc - g) / div, (maxc - b) / div);
        let m = |c: bool| if c { 1.0f32 } else { 0.0 };
        let hg = ((rc + 2.0) - bc) * m(maxc == g && maxc != r);
        let hr = (bc - gc) * m(maxc == r);
        let hb = ((gc + 4.0) - rc) * m(maxc != r && maxc != g);
        let h = (((hr + hg) + hb) * (1.0f64 / 6.0) as f32 + 1.0) % 1.0;
        let h = h + delta;
        let h = h - h.floor();
        let h6 = h * 6.0;
        let i = h6.floor();
        let f = h6 - i;
        let i = (i as usize) % 6;
        let v = maxc;
        let q = ((1.0 - s * f) * v).clamp(0.0, 1.0);
        let t = ((s * f + (1.0 - s)) * v).clamp(0.0, 1.0);
        let p = ((1.0 - s) * v).clamp(0.0, 1.0);
        let rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i];
        rgb.map(|c| (c * 255.999) as u8)
    }

    #[test]
    fn hue_matches_torchvision_formulas_exactly() {
        let px: Vec<u8> = (0..=255u32)
            .step_by(5)
            .flat_map(|r| (0..=255u32).step_by(7).flat_map(move |g| (0..=255u32).step_by(3).flat_map(move |b| [r, g, b])))
            .map(|v| v as u8)
            .collect();
        for delta in [-0.5f32, -0.31, -0.07, 0.0, 0.013, 0.2, 0.5] {
            let out = run(&px, &[Pw::Hue(delta)]);
            for (i, (o, p)) in out.chunks_exact(3).zip(px.chunks_exact(3)).enumerate() {
                assert_eq!(o, hue_reference([p[0], p[1], p[2]], delta), "pixel {i} {p:?} delta {delta}");
            }
        }
    }

    #[test]
    fn portable_path_equals_the_dispatched_one() {
        // pseudo-random pixels, a chain with contrast in the middle, every sink
        let px: Vec<u8> = (0..3 * 1500u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let ops = [Pw::saturation(1.3), Pw::contrast(0.7), Pw::Hue(-0.08), Pw::Brightness(1.2), Pw::Grayscale, Pw::Solarize(100.0)];
        for k in 0..=ops.len() {
            let (mut a, mut b) = (px.clone(), px.clone());
            run_chain(&mut a, &ops[..k], Sink::InPlace);
            chain_body(&mut b, &ops[..k], &mut Sink::InPlace);
            assert_eq!(a, b, "{k} ops");
            let (mut fa, mut fb) = (vec![0f32; px.len()], vec![0f32; px.len()]);
            run_chain(&mut px.clone(), &ops[..k], Sink::F32Chw(&mut fa, [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]));
            chain_body(&mut px.clone(), &ops[..k], &mut Sink::F32Chw(&mut fb, [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]));
            assert_eq!(fa, fb);
        }
        let mut chw = vec![0u8; px.len()];
        run_chain(&mut px.clone(), &[], Sink::U8Chw(&mut chw));
        assert_eq!(&chw[..3], &[px[0], px[3], px[6]]);
        assert_eq!(chw[1500], px[1]);
        assert_eq!(grey_sum(&px), px.chunks_exact(3).map(|p| gray(p[0] as f32, p[1] as f32, p[2] as f32).floor() as f64).sum::<f64>());
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
