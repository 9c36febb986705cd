//! Next-token sampling on the device, for accelerators: the Gumbel-max trick (Gumbel, 1954;
//! Maddison et al., 2014, "A* Sampling"): `argmax(logits / t + g)` with `g = -ln(-ln u)`, `u`
//! uniform, is an exact draw from `softmax(logits / t)`.
//!
//! The host sampler reads every row's logits back each step, `batch x vocab` floats (39 MB for
//! 64 rows of Qwen's 152k vocabulary), and spends a pass of exponentials per row on the CPU.
//! Here the draw is a few element-wise kernels, an arg-max and a log-sum-exp on the device, and
//! two numbers per row come back. Only unfiltered sampling (any temperature, no top-k, top-p or
//! min-p) takes this path; filters need a sort and stay on the host.
//!
//! The noise comes from the backend's generator, seeded once per chunk by the engine: a request
//! is reproducible run to run, but a sample's draws depend on its chunk, unlike the host
//! sampler's per-sample generators.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, FloatDType, Tensor, TensorData};
use spiral_kernels::long_rows::{argmax_rows, log_softmax_rows};

/// One token per row of `logits: [rows, vocab]` and its log-probability under
/// `softmax(logits / temperature)` (the plain softmax when greedy), as
/// [`crate::sampling::sample_token`] returns it. `temperature = 0` is greedy.
pub fn sample_rows<B: Backend>(logits: Tensor<B, 2>, temperature: f64) -> Vec<(u32, f32)> {
    let logits = if logits.dtype() == DType::F32 { logits } else { logits.cast(FloatDType::F32) };
    let [rows, vocab] = logits.dims();
    let tempered = if temperature == 0.0 || temperature == 1.0 {
        logits
    } else {
        logits.div_scalar(temperature)
    };
    let scores = if temperature == 0.0 {
        tempered.clone()
    } else {
        let u = Tensor::<B, 2>::random([rows, vocab], Distribution::Default, &tempered.device());
        // u in [0, 1): u = 0 gives g = -inf (never picked); the clamp keeps ln(u) below 0.
        let gumbel = u.clamp(0.0, 1.0 - f32::EPSILON as f64).log().neg().log().neg();
        tempered.clone().add(gumbel)
    };
    let tokens = argmax_rows(scores);
    let logprobs = log_softmax_rows(tempered).gather(1, tokens.clone());
    // One read-back for both: token ids are exact in float32 (vocabularies are far below 2^24).
    let both = Tensor::cat(vec![tokens.float(), logprobs], 1).into_data();
    pairs(both)
}

fn pairs(data: TensorData) -> Vec<(u32, f32)> {
    let values: Vec<f32> = data.convert::<f32>().into_vec().expect("float32 data");
    values.chunks_exact(2).map(|p| (p[0] as u32, p[1])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

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
        let picks = sample_rows(logits(&rows), 0.0);
        assert_eq!(picks.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 0]);
        for (row, (token, lp)) in rows.iter().zip(&picks) {
            let want = log_softmax(row)[*token as usize];
            assert!((*lp as f64 - want).abs() < 1e-5, "{lp} vs {want}");
        }
    }

    /// Draw frequencies against softmax(logits / t), at t = 1 and t = 0.5, over many rows
    /// drawn at once (each row is an independent draw).
    #[test]
    fn draws_follow_the_tempered_softmax() {
        let row = [1.0f32, 0.0, -1.0, 2.0, 0.5];
        let draws = 40_000;
        B::seed(&Default::default(), 7);
        for t in [1.0, 0.5] {
            let rows: Vec<&[f32]> = vec![&row; draws];
            let picks = sample_rows(logits(&rows), t);
            let mut counts = [0usize; 5];
            for (token, lp) in &picks {
                counts[*token as usize] += 1;
                let tempered: Vec<f32> = row.iter().map(|&l| l / t as f32).collect();
                let want = log_softmax(&tempered)[*token as usize];
                assert!((*lp as f64 - want).abs() < 1e-5, "logprob is the tempered one");
            }
            let tempered: Vec<f32> = row.iter().map(|&l| l / t as f32).collect();
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
        let picks = sample_rows(x, 0.0);
        assert_eq!(picks[0].0, 1);
        assert!((picks[0].1 as f64 - log_softmax(&[0.0, 4.0, 1.0])[1]).abs() < 1e-4);
    }
}
