//! Property-based fuzzing: arbitrary shapes and parameters go through each
//! op's validation and then the op; nothing may panic, and what validation
//! accepts must run and stay in bounds.

use proptest::prelude::*;
use selfsup_ops::jigsaw::{self, Criterion, JigsawSpec};
use selfsup_ops::patches::{self, GridSpec};
use selfsup_ops::relative::{self, RelativeSpec};
use selfsup_ops::rng::{OpSalt, Streams};
use selfsup_ops::{rotate, ImageBatch};

fn image_strategy() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (0usize..4, 0usize..48, 0usize..48, prop::sample::select(vec![1usize, 2, 3]))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn patch_grid_never_panics((n, h, w, c) in image_strategy(), gy in 0usize..5, gx in 0usize..5,
                               cell in 0usize..30, patch in 0usize..30, jitter: bool, seed: u64) {
        let data = vec![7u8; n * h * w * c];
        let Ok(batch) = ImageBatch::new(&data, n, h, w, c) else { return Ok(()) };
        let Ok(spec) = GridSpec::new(gy, gx, cell, patch) else { return Ok(()) };
        if spec.check_fits(h, w).is_err() { return Ok(()) }
        let indices: Vec<u64> = (0..n as u64).collect();
        let streams = Streams { seed, epoch: 0, indices: &indices };
        let rngs = |i: usize| streams.rng(OpSalt::PatchGrid, i);
        let mut out = vec![0u8; n * spec.tiles() * patch * patch * c];
        let mut pos = vec![0i64; n * spec.tiles() * 2];
        patches::patch_grid_batch(&batch, spec, jitter, &rngs, None, false, &mut out, &mut pos);
        for p in pos.chunks_exact(2) {
            prop_assert!(p[0] as usize + patch <= h && p[1] as usize + patch <= w);
        }
    }

    #[test]
    fn jigsaw_never_panics((n, h, w, c) in image_strategy(), g in 1usize..4, cell in 1usize..16,
                           patch in 1usize..16, cj in 0usize..4, seed: u64, count in 0usize..30) {
        let data = vec![3u8; n * h * w * c];
        let Ok(batch) = ImageBatch::new(&data, n, h, w, c) else { return Ok(()) };
        let Ok(grid) = GridSpec::new(g, g, cell, patch) else { return Ok(()) };
        if grid.check_fits(h, w).is_err() { return Ok(()) }
        let t = grid.tiles();
        let Ok(set) = jigsaw::permutation_set(count, t, seed, Criterion::MaxMin, false) else {
            prop_assert!(count == 0 || t < 2 || count > (1..=t).product());
            return Ok(());
        };
        let perms: Vec<i64> = set.into_iter().map(i64::from).collect();
        prop_assert!(jigsaw::check_permutations(&perms, t).is_ok());
        let spec = JigsawSpec { grid, jitter: true, channel_jitter: cj };
        let indices: Vec<u64> = (0..n as u64).collect();
        let streams = Streams { seed, epoch: 1, indices: &indices };
        let rngs = |i: usize| streams.rng(OpSalt::Jigsaw, i);
        let mut out = vec![0u8; n * t * patch * patch * c];
        let mut labels = vec![0i64; n];
        let mut pos = vec![0i64; n * t * 2];
        jigsaw::jigsaw_batch(&batch, &spec, &perms, &rngs, None, None, false, &mut out, &mut labels, &mut pos);
        prop_assert!(out.iter().all(|&v| v == 3));
        prop_assert!(labels.iter().all(|&l| (l as usize) < count));
    }

    #[test]
    fn relative_never_panics((n, h, w, c) in image_strategy(), patch in 0usize..12, gap in 0usize..8,
                             jitter in 0usize..5, drop: bool, seed: u64) {
        let data = vec![200u8; n * h * w * c];
        let Ok(batch) = ImageBatch::new(&data, n, h, w, c) else { return Ok(()) };
        let spec = RelativeSpec { patch, gap, jitter, drop_colors: drop };
        if spec.check(h, w, c).is_err() { return Ok(()) }
        let indices: Vec<u64> = (0..n as u64).collect();
        let streams = Streams { seed, epoch: 0, indices: &indices };
        let rngs = |i: usize| streams.rng(OpSalt::Relative, i);
        let mut out = vec![0u8; n * 2 * patch * patch * c];
        let mut labels = vec![0i64; n];
        let mut pos = vec![0i64; n * 4];
        relative::relative_batch(&batch, &spec, &rngs, None, None, false, &mut out, &mut labels, &mut pos);
        prop_assert!(labels.iter().all(|&l| (0..8).contains(&l)));
    }

    #[test]
    fn rotation_never_panics((n, h, w, c) in image_strategy(), turns in prop::collection::vec(0u8..6, 0..4)) {
        let data: Vec<u8> = (0..n * h * w * c).map(|v| v as u8).collect();
        let Ok(batch) = ImageBatch::new(&data, n, h, w, c) else { return Ok(()) };
        let turns: Vec<u8> = turns.into_iter().take(n).collect();
        let Ok((oh, ow)) = rotate::output_size(h, w, &turns) else { return Ok(()) };
        let sources: Vec<usize> = (0..turns.len()).collect();
        let mut out = vec![0u8; turns.len() * oh * ow * c];
        rotate::rotate_batch(&batch, &sources, &turns, false, &mut out);
        let mut sorted_in = data[..turns.len() * h * w * c].to_vec();
        let mut sorted_out = out.clone();
        sorted_in.sort();
        sorted_out.sort();
        prop_assert_eq!(sorted_in, sorted_out);
    }
}
