//! Wrapper of the multi-view augmentation pipelines (`selfsup_ops::augment`).
//!
//! `AugmentPipeline(views)` validates a list of views once; each view is a
//! list of steps `(name, p, shares_coin, args)` built by the Python facade
//! (`selfsup.transforms`). Calling it runs every view on a batch in one
//! GIL-free call on the crate's pool.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use selfsup_ops::augment::crop::CropRanges;
use selfsup_ops::augment::geometry::{EraseRanges, EraseValue};
use selfsup_ops::augment::{self as aug, Draws, OutBuf, Source, Step, Transform, View};

use super::arrays::{alloc, array_arg, images_arg, indices_arg, op_err, to_numpy, value_error, zeroed_output, ArrayArg, Images};
use super::batch::run_blocks;

type StepSpec = (String, Option<f64>, bool, Vec<f64>);

fn size_arg(v: f64, arg: &str) -> PyResult<usize> {
    if v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v < 1e9 {
        Ok(v as usize)
    } else {
        Err(value_error(arg, format!("expected a positive integer, got {v}")))
    }
}

fn count_arg(v: f64, arg: &str) -> PyResult<usize> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
        Ok(v as usize)
    } else {
        Err(value_error(arg, format!("expected a non-negative integer, got {v}")))
    }
}

fn grey_arg(v: &[f64], arg: &str) -> PyResult<[u8; 3]> {
    if v.iter().all(|x| x.fract() == 0.0 && (0.0..=255.0).contains(x)) {
        Ok([v[0] as u8, v[1] as u8, v[2] as u8])
    } else {
        Err(value_error(arg, format!("expected grey levels 0..255, got {v:?}")))
    }
}

fn range_arg(lo: f64, hi: f64) -> Option<(f64, f64)> {
    if lo.is_nan() || hi.is_nan() {
        None
    } else {
        Some((lo, hi))
    }
}

fn parse_view(specs: Vec<StepSpec>) -> PyResult<View> {
    let mut steps = Vec::with_capacity(specs.len());
    let mut normalize = None;
    let specs_names: Vec<String> = specs.iter().map(|s| s.0.clone()).collect();
    for (k, (name, p, shares_coin, a)) in specs.into_iter().enumerate() {
        let expect = |n: usize| -> PyResult<()> {
            if a.len() == n {
                Ok(())
            } else {
                Err(value_error("transforms", format!("{name} takes {n} arguments, got {}", a.len())))
            }
        };
        let transform = match name.as_str() {
            "random_resized_crop" => {
                expect(6)?;
                let ranges = CropRanges::new((a[2], a[3]), (a[4], a[5])).map_err(op_err)?;
                Transform::RandomResizedCrop { height: size_arg(a[0], "size")?, width: size_arg(a[1], "size")?, ranges }
            }
            "random_crop" => {
                expect(4)?;
                let padding = count_arg(a[2], "padding")?;
                Transform::RandomCrop { height: size_arg(a[0], "size")?, width: size_arg(a[1], "size")?, padding, reflect: a[3] == 1.0 }
            }
            "resize" => {
                expect(2)?;
                Transform::Resize { height: size_arg(a[0], "size")?, width: size_arg(a[1], "size")? }
            }
            "horizontal_flip" => {
                expect(0)?;
                Transform::HorizontalFlip
            }
            "color_jitter" => {
                expect(8)?;
                Transform::ColorJitter {
                    brightness: range_arg(a[0], a[1]),
                    contrast: range_arg(a[2], a[3]),
                    saturation: range_arg(a[4], a[5]),
                    hue: range_arg(a[6], a[7]),
                }
            }
            "grayscale" => {
                expect(0)?;
                Transform::Grayscale
            }
            "gaussian_blur" => {
                expect(3)?;
                Transform::GaussianBlur { kernel: size_arg(a[0], "kernel_size")?, sigma: (a[1], a[2]) }
            }
            "center_crop" => {
                expect(2)?;
                Transform::CenterCrop { height: size_arg(a[0], "size")?, width: size_arg(a[1], "size")? }
            }
            "vertical_flip" => {
                expect(0)?;
                Transform::VerticalFlip
            }
            "random_erasing" => {
                expect(8)?;
                let ranges = EraseRanges::new((a[0], a[1]), (a[2], a[3])).map_err(op_err)?;
                let value = if a[4] == 1.0 { EraseValue::Random } else { EraseValue::Constant([a[5], a[6], a[7]]) };
                Transform::RandomErasing { ranges, value }
            }
            "rand_augment" => {
                expect(6)?;
                let num_ops = count_arg(a[0], "num_ops")?;
                let bins = count_arg(a[2], "num_magnitude_bins")?;
                let magnitude = if a[1].is_nan() { None } else { Some(count_arg(a[1], "magnitude")?) };
                Transform::RandAugment { num_ops, magnitude, bins, fill: grey_arg(&a[3..6], "fill")? }
            }
            "cutout" => {
                expect(4)?;
                Transform::Cutout { max_fraction: a[0], fill: grey_arg(&a[1..4], "fill")? }
            }
            "solarize" => {
                expect(1)?;
                Transform::Solarize { threshold: a[0] }
            }
            "normalize" => {
                expect(6)?;
                let rest_erases = specs_names[k + 1..].iter().all(|n| n == "random_erasing");
                if specs_names[..k].iter().any(|n| n == "random_erasing") {
                    return Err(value_error("transforms", "RandomErasing acts on the output: put it after Normalize"));
                }
                if !rest_erases || p.is_some() || normalize.is_some() {
                    return Err(value_error(
                        "transforms",
                        "Normalize must be the last transform (only RandomErasing may follow it) and cannot be random",
                    ));
                }
                normalize = Some(([a[0], a[1], a[2]], [a[3], a[4], a[5]]));
                continue;
            }
            other => return Err(value_error("transforms", format!("unknown transform {other:?}"))),
        };
        steps.push(Step { transform, p, shares_coin });
    }
    View::new(steps, normalize).map_err(op_err)
}

/// Validated multi-view augmentation pipeline.
#[pyclass(frozen, module = "selfsup._native")]
struct AugmentPipeline {
    views: Vec<View>,
}

enum Inputs<'py> {
    Batch(Images<'py>),
    List(Vec<ArrayArg<'py, u8>>),
}

fn inputs_arg<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Inputs<'py>> {
    if let Ok(list) = obj.cast::<PyList>() {
        if list.is_empty() {
            return Err(value_error("images", "the list of images is empty"));
        }
        let mut arrays = Vec::with_capacity(list.len());
        for (k, item) in list.iter().enumerate() {
            let arg = format!("images[{k}]");
            let a = array_arg::<u8>(&item, &arg, "uint8")?;
            let s = &a.shape;
            if s.len() != 3 || s[2] != 3 {
                return Err(value_error(&arg, format!("expected an RGB image of shape (H, W, 3), got {s:?}")));
            }
            if s[0] == 0 || s[1] == 0 {
                return Err(value_error(&arg, format!("images must be at least 1x1, got {}x{}", s[0], s[1])));
            }
            arrays.push(a);
        }
        return Ok(Inputs::List(arrays));
    }
    Ok(Inputs::Batch(images_arg(obj, "images", &[3])?))
}

#[pymethods]
impl AugmentPipeline {
    #[new]
    fn new(views: Vec<Vec<StepSpec>>) -> PyResult<Self> {
        if views.is_empty() {
            return Err(value_error("views", "expected at least one view"));
        }
        Ok(Self { views: views.into_iter().map(parse_view).collect::<PyResult<_>>()? })
    }

    /// Number of views.
    #[getter]
    fn n_views(&self) -> usize {
        self.views.len()
    }

    /// Names of the parameter columns of view `view`.
    fn param_names(&self, view: usize) -> PyResult<Vec<String>> {
        self.views
            .get(view)
            .map(View::param_names)
            .ok_or_else(|| value_error("view", format!("expected 0 <= view < {}, got {view}", self.views.len())))
    }

    /// Runs all views: returns `(outputs, params)`, one `(N, 3, H, W)` array
    /// (float32 when the view normalises, else uint8) and one `(N, P)` float64
    /// parameter array per view.
    #[pyo3(signature = (images, seed, epoch, indices=None, params=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        seed: u64,
        epoch: u64,
        indices: Option<&Bound<'py, PyAny>>,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let inputs = inputs_arg(images)?;
        let sources: Vec<Source<'_>> = match &inputs {
            Inputs::Batch(images) => {
                let b = images.batch();
                (0..b.shape.n).map(|i| Source { data: b.sample(i), h: b.shape.h, w: b.shape.w }).collect()
            }
            Inputs::List(arrays) => arrays.iter().map(|a| Source { data: a.data(), h: a.shape[0], w: a.shape[1] }).collect(),
        };
        let n = sources.len();
        let indices = indices_arg(indices, n, "indices")?;
        let sizes = aug::resolve_sizes(&self.views, &sources).map_err(op_err)?;
        let explicit = self.explicit_params(params, &sources)?;
        let mut outs: Vec<OutBuf> = self
            .views
            .iter()
            .zip(&sizes)
            .map(|(v, &(h, w))| -> PyResult<OutBuf> {
                Ok(if v.normalized() { OutBuf::F32(zeroed_output(&[n, 3, h, w], "images")?) } else { OutBuf::U8(zeroed_output(&[n, 3, h, w], "images")?) })
            })
            .collect::<PyResult<_>>()?;
        let mut drawn: Vec<Vec<f64>> = self.views.iter().map(|v| alloc::<f64>(&[n, v.n_params()], "images")).collect::<PyResult<_>>()?;
        let draws = Draws { seed, epoch, indices: &indices };
        let views = &self.views;
        run_blocks(py, n, |r, parallel| {
            aug::augment_batch(views, &sizes, &sources, &draws, &explicit, r, parallel, &mut outs, &mut drawn);
        })?;
        let mut images_out = Vec::with_capacity(outs.len());
        for (o, &(h, w)) in outs.into_iter().zip(&sizes) {
            images_out.push(match o {
                OutBuf::F32(v) => to_numpy(py, v, &[n, 3, h, w])?.into_any(),
                OutBuf::U8(v) => to_numpy(py, v, &[n, 3, h, w])?.into_any(),
            });
        }
        let mut params_out = Vec::with_capacity(drawn.len());
        for (d, v) in drawn.into_iter().zip(&self.views) {
            params_out.push(to_numpy(py, d, &[n, v.n_params()])?.into_any());
        }
        PyTuple::new(py, [PyList::new(py, images_out)?.into_any(), PyList::new(py, params_out)?.into_any()])
    }
}

impl AugmentPipeline {
    fn explicit_params(&self, params: Option<&Bound<'_, PyAny>>, sources: &[Source<'_>]) -> PyResult<Vec<Option<Vec<f64>>>> {
        let Some(params) = params else {
            return Ok(vec![None; self.views.len()]);
        };
        let list = params
            .cast::<PyList>()
            .map_err(|_| PyTypeError::new_err("params: expected a list with one float64 array (or None) per view"))?;
        if list.len() != self.views.len() {
            return Err(value_error("params", format!("expected {} entries, one per view, got {}", self.views.len(), list.len())));
        }
        let n = sources.len();
        let mut out = Vec::with_capacity(list.len());
        for (v, item) in list.iter().enumerate() {
            if item.is_none() {
                out.push(None);
                continue;
            }
            let view = &self.views[v];
            let a = array_arg::<f64>(&item, "params", "float64")?;
            if a.shape != [n, view.n_params()] {
                return Err(value_error("params", format!("view {v}: expected shape ({n}, {}), got {:?}", view.n_params(), a.shape)));
            }
            let data = a.data().to_vec();
            for (i, src) in sources.iter().enumerate() {
                view.check_row(&data[i * view.n_params()..(i + 1) * view.n_params()], src.h, src.w)
                    .map_err(|e| value_error("params", format!("view {v}, sample {i}: {}", e.message)))?;
            }
            out.push(Some(data));
        }
        Ok(out)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AugmentPipeline>()?;
    Ok(())
}
