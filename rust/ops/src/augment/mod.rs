//! Image augmentations for joint-embedding methods (SimCLR, BYOL, MoCo v2),
//! uint8 RGB in, uint8 or normalised float32 CHW out, with torchvision v2's
//! semantics and uint8 rounding.
//!
//! - [`crop`]: RandomResizedCrop parameters, antialiased resize, flips;
//! - [`color`]: brightness, contrast, saturation, hue, grayscale, solarize, fused per pixel;
//! - [`geometry`]: CenterCrop, vertical flips, RandomErasing;
//! - [`blur`]: separable Gaussian blur with reflect padding;
//! - [`randaug`]: the fourteen RandAugment operations, their magnitude tables, Cutout;
//! - [`pipeline`]: validated views, per-sample draws in a fixed order, batch execution.

pub mod blur;
pub mod color;
pub mod crop;
pub mod geometry;
pub mod pipeline;
pub mod randaug;

pub use pipeline::{augment_batch, resolve_sizes, Draws, OutBuf, OutSlice, Source, Step, Transform, View};
