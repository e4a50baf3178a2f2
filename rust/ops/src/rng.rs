//! Per-sample random streams.
//!
//! Sample `index` of `(seed, epoch)` draws from a ChaCha8 generator whose key
//! is derived from `(seed, epoch, op)` and whose stream number is `index`.
//! The draws of one sample therefore never depend on which thread runs it,
//! on the batch it sits in, or on the other samples.

use rand_chacha::rand_core::SeedableRng;
pub use rand_chacha::ChaCha8Rng;

/// Distinct salts keep the operations' streams independent of each other
/// for the same `(seed, epoch, index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum OpSalt {
    PatchGrid = 1,
    Jigsaw = 2,
    Relative = 3,
    Rotate = 4,
    Masks = 5,
    Corrupt = 6,
    Permutations = 7,
    Augment = 8,
    Tuples = 9,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of one sample.
pub fn sample_rng(seed: u64, epoch: u64, salt: OpSalt, index: u64) -> ChaCha8Rng {
    let mut state = seed ^ splitmix64(&mut epoch.clone()).rotate_left(17) ^ (salt as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

/// Where the randomness of a batch comes from.
#[derive(Debug, Clone, Copy)]
pub struct Streams<'a> {
    pub seed: u64,
    pub epoch: u64,
    /// Dataset index of each sample of the batch (its stream number).
    pub indices: &'a [u64],
}

impl Streams<'_> {
    pub fn rng(&self, salt: OpSalt, i: usize) -> ChaCha8Rng {
        sample_rng(self.seed, self.epoch, salt, self.indices[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = sample_rng(1, 0, OpSalt::Jigsaw, 5).random();
        let b: u64 = sample_rng(1, 0, OpSalt::Jigsaw, 5).random();
        let c: u64 = sample_rng(1, 0, OpSalt::Jigsaw, 6).random();
        let d: u64 = sample_rng(1, 1, OpSalt::Jigsaw, 5).random();
        let e: u64 = sample_rng(1, 0, OpSalt::Rotate, 5).random();
        let f: u64 = sample_rng(2, 0, OpSalt::Jigsaw, 5).random();
        assert_eq!(a, b);
        for other in [c, d, e, f] {
            assert_ne!(a, other);
        }
    }
}

/// A standard normal draw (Box–Muller; two uniforms per call).
pub fn standard_normal(rng: &mut ChaCha8Rng) -> f32 {
    use rand::RngExt;
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
