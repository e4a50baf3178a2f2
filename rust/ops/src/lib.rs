//! Pure-Rust image operations behind selfsup's pretext tasks.
//!
//! Nothing here knows about Python: every operation works on plain slices of
//! `u8` pixels laid out as `(N, H, W, C)` and writes into caller-allocated
//! output slices, one sample at a time. Batches are spread over samples with
//! [`parallel::for_each_sample`]; the randomness of sample `i` comes from its
//! own stream ([`rng::sample_rng`]), so output bytes never depend on the
//! number of threads.

pub mod augment;
pub mod color;
pub mod corrupt;
pub mod decode;
pub mod error;
pub mod image;
pub mod jigsaw;
pub mod masks;
pub mod parallel;
pub mod patches;
pub mod relative;
pub mod rng;
pub mod rotate;
pub mod video;

pub use error::{OpError, OpResult};
pub use image::{BatchShape, ImageBatch};
