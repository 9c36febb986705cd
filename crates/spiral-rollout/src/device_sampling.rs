//! Next-token sampling on the device, for accelerators, by the same inverse-CDF draw as the host
//! sampler ([`crate::sampling`]): the token is the first whose cumulative probability under
//! `softmax(logits / t)` exceeds `u`, and `u` comes from the sample's own generator, seeded
//! from (seed, prompt, sample) and advanced once per token. A sample's draws therefore depend
//! on neither its batch nor its device, and a GPU run is reproducible from its seed; with the
//! same `u` the device picks what the host would, up to float32 rounding at a boundary.
//!
//! The host sampler reads every row's logits back each step, `batch x vocab` floats (39 MB for
//! 64 rows of Qwen's 152k vocabulary), and spends a pass of exponentials per row on the CPU.
//! Here the draw is a few element-wise kernels and reductions on the device, and two numbers per
//! row come back. A cumulative sum over the whole vocabulary would cost burn's kernel a pass per
//! element, so the search runs in two levels: the cumulative mass of blocks of [`BLOCK`] tokens
//! picks the block, then the cumulative mass inside that block picks the token. Only unfiltered
//! sampling (any temperature, no top-k, top-p or min-p) takes this path; filters need a sort and
//! stay on the host.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType, Int, Tensor, TensorData};
use spiral_kernels::long_rows::{argmax_rows, log_softmax_rows};

/// Tokens per block of the two-level search.
pub const BLOCK: usize = 256;

/// One token per row of `logits: [rows, vocab]` and its log-probability under
/// `softmax(logits / temperature)` (the plain softmax when greedy), as
/// [`crate::sampling::sample_token`] returns it. `uniforms` holds each row's draw in `[0, 1)`
/// (ignored when greedy); `temperature = 0` is greedy.
pub fn sample_rows<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    uniforms: &[f64],
) -> Vec<(u32, f32)> {
    let logits = if logits.dtype() == DType::F32 { logits } else { logits.cast(FloatDType::F32) };
    let tempered = if temperature == 0.0 || temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(temperature)
    };
    let logprobs = log_softmax_rows(tempered.clone());
    let tokens = if temperature == 0.0 {
        argmax_rows(tempered)
    } else {
        inverse_cdf(logprobs.clone().exp(), uniforms)
    };
    let logprobs = logprobs.gather(1, tokens.clone());
    // One read-back for both: token ids are exact in float32 (vocabularies are far below 2^24).
    let both = Tensor::cat(vec![tokens.float(), logprobs], 1).into_data();
    pairs(both)
}

/// `[rows, 1]` the first index whose cumulative probability exceeds the row's uniform, found
/// block by block; the last token when rounding leaves the whole mass below it.
fn inverse_cdf<B: Backend>(probs: Tensor<B, 2>, uniforms: &[f64]) -> Tensor<B, 2, Int> {
    let [rows, vocab] = probs.dims();
    assert_eq!(uniforms.len(), rows, "one uniform per row");
    let device = probs.device();
    let blocks = vocab.div_ceil(BLOCK);
    let padded = if blocks * BLOCK == vocab {
        probs
    } else {
        Tensor::cat(vec![probs, Tensor::zeros([rows, blocks * BLOCK - vocab], &device)], 1)
    };
    let u: Vec<f32> = uniforms.iter().map(|&u| u as f32).collect();
    let u = Tensor::<B, 2>::from_data(TensorData::new(u, [rows, 1]), &device);
    let by_block = padded.clone().reshape([rows, blocks, BLOCK]);
    let block_mass = by_block.sum_dim(2).reshape([rows, blocks]);
    let block_cdf = block_mass.clone().cumsum(1);
    // The block: how many blocks end at or below u.
    let block =
        block_cdf.clone().lower_equal(u.clone()).int().sum_dim(1).clamp_max(blocks as i64 - 1);
    let before = (block_cdf - block_mass).gather(1, block.clone());
    let offsets = Tensor::<B, 1, Int>::arange(0..BLOCK as i64, &device).reshape([1, BLOCK]);
    let columns = block.clone().mul_scalar(BLOCK as i64) + offsets;
    let inside = padded.gather(1, columns).cumsum(1);
    let within = inside.lower_equal(u - before).int().sum_dim(1).clamp_max(BLOCK as i64 - 1);
    (block.mul_scalar(BLOCK as i64) + within).clamp_max(vocab as i64 - 1)
}

fn pairs(data: TensorData) -> Vec<(u32, f32)> {
    let values: Vec<f32> = data.convert::<f32>().into_vec().expect("float32 data");
    values.chunks_exact(2).map(|p| (p[0] as u32, p[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{SamplingParams, sample_rng, sample_token};
    use burn::backend::Flex;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    type B = Flex;

    fn logits(rows: &[&[f32]]) -> Tensor<B, 2> {
        let v = rows[0].len();
        let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), v]), &Default::default())
    }

    fn log_softmax(row: &[f32]) -> Vec<f64> {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z = max + row.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
        row.iter().map(|&l| l as f64 - z).collect()
    }

    #[test]
    fn greedy_picks_the_maximum_with_its_plain_logprob() {
        let rows: [&[f32]; 2] = [&[0.5, 3.0, -1.0, 2.0], &[9.0, -2.0, 0.0, 8.5]];
        let picks = sample_rows(logits(&rows), 0.0, &[0.0, 0.0]);
        assert_eq!(picks.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 0]);
        for (row, (token, lp)) in rows.iter().zip(&picks) {
            let want = log_softmax(row)[*token as usize];
            assert!((*lp as f64 - want).abs() < 1e-5, "{lp} vs {want}");
        }
    }

    /// With the same generator, the device draws what the host sampler draws, over a
    /// vocabulary of several blocks and a partial last one, at two temperatures; the log-probs
    /// are the tempered distribution's.
    #[test]
    fn draws_match_the_host_samplers_draw_for_draw() {
        let vocab = 3 * BLOCK + 37;
        let mut rng = StdRng::seed_from_u64(5);
        let row: Vec<f32> = (0..vocab).map(|_| rng.random_range(-4.0..4.0)).collect();
        for temperature in [1.0, 0.6] {
            let params = SamplingParams { temperature, ..Default::default() };
            let (mut host, mut device) = (sample_rng(9, 0, 0), sample_rng(9, 0, 0));
            let draws = 400;
            let mut same = 0;
            for _ in 0..draws {
                let (want, want_lp) = sample_token(&row, &params, &mut host);
                let u = device.random::<f64>();
                let (got, got_lp) = sample_rows(logits(&[&row]), temperature, &[u])[0];
                same += usize::from(got == want);
                if got == want {
                    assert!((got_lp - want_lp).abs() < 1e-4, "{got_lp} vs {want_lp}");
                }
            }
            // Float32 sums may move a draw that falls within rounding of a boundary.
            assert!(same >= draws - 2, "T {temperature}: {same} of {draws} draws agree");
        }
    }

    /// Draw frequencies against softmax(logits / t), at t = 1 and t = 0.5, over many rows
    /// drawn at once (each row is an independent draw).
    #[test]
    fn draws_follow_the_tempered_softmax() {
        let row = [1.0f32, 0.0, -1.0, 2.0, 0.5];
        let draws = 40_000;
        let mut rng = StdRng::seed_from_u64(7);
        for t in [1.0, 0.5] {
            let rows: Vec<&[f32]> = vec![&row; draws];
            let uniforms: Vec<f64> = (0..draws).map(|_| rng.random::<f64>()).collect();
            let picks = sample_rows(logits(&rows), t, &uniforms);
            let mut counts = [0usize; 5];
            let tempered: Vec<f32> = row.iter().map(|&l| l / t as f32).collect();
            for (token, lp) in &picks {
                counts[*token as usize] += 1;
                let want = log_softmax(&tempered)[*token as usize];
                assert!((*lp as f64 - want).abs() < 1e-5, "logprob is the tempered one");
            }
            for (i, p) in log_softmax(&tempered).iter().map(|l| l.exp()).enumerate() {
                let freq = counts[i] as f64 / draws as f64;
                // Five standard errors of a binomial proportion.
                let tol = 5.0 * (p * (1.0 - p) / draws as f64).sqrt();
                assert!((freq - p).abs() < tol, "t = {t}, token {i}: {freq} vs {p}");
            }
        }
    }

    #[test]
    fn bf16_logits_are_read_as_float32() {
        let x = logits(&[&[0.0, 4.0, 1.0]]).cast(FloatDType::BF16);
        let picks = sample_rows(x, 0.0, &[0.0]);
        assert_eq!(picks[0].0, 1);
        assert!((picks[0].1 as f64 - log_softmax(&[0.0, 4.0, 1.0])[1]).abs() < 1e-4);
    }
}
