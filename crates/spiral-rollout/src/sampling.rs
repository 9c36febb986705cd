//! Next-token samplers on the host: greedy, temperature, top-k, top-p (Holtzman et al., 2020)
//! and min-p (Nguyen et al., 2024), applied in that order as transformers' `generate` does. Each
//! sequence owns its generator, seeded from (seed, prompt, sample), so a sample does not depend
//! on how the work was batched or split.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How tokens are drawn. `temperature = 0` means greedy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep the smallest set of most likely tokens with at least this mass; 1 disables.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Drop tokens whose probability is below `min_p` times the most likely one's; 0 disables.
    pub min_p: f64,
    /// Seed: the same seed and inputs give the same samples.
    pub seed: u64,
    /// The index of this request's first prompt in a larger request split into pieces (across
    /// processes): sample `j` of prompt `p` draws from `sample_rng(seed, first_prompt + p, j)`,
    /// so each piece samples what the whole request would. 0 for a whole request.
    #[serde(skip_serializing_if = "is_zero")]
    pub first_prompt: usize,
}

fn is_zero(x: &usize) -> bool {
    *x == 0
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self { temperature: 1.0, top_p: 1.0, top_k: 0, min_p: 0.0, seed: 0, first_prompt: 0 }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, ..Self::default() }
    }

    /// Checks the ranges; the message names the parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        Ok(())
    }

    /// Whether top-k, top-p or min-p cut the distribution.
    pub(crate) fn filters(&self) -> bool {
        self.top_p < 1.0 || self.top_k > 0 || self.min_p > 0.0
    }
}

/// The generator of one sample, derived from the request seed and the sample's identity.
pub fn sample_rng(seed: u64, prompt: usize, sample: usize) -> StdRng {
    // SplitMix64 finaliser over the three inputs: well-mixed, stable across versions.
    let mut z = seed
        ^ (prompt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (sample as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// Picks the next token from one row of logits and returns it with its log-probability under
/// the sampling distribution before any cut, `softmax(logits / temperature)` (the plain softmax
/// when greedy): the policy RL trains and the trainer's importance ratio compares against, as
/// TRL and verl define it. Top-k, top-p and min-p change what is drawn but not this number.
pub fn sample_token(logits: &[f32], params: &SamplingParams, rng: &mut StdRng) -> (u32, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let t = if params.temperature == 0.0 { 1.0 } else { params.temperature };
    // One pass of exponentials gives the normaliser and the sampling weights: exp is most of a
    // CPU sampler's time.
    let weights: Vec<f64> = if t == 1.0 {
        logits.iter().map(|&l| (l as f64 - max).exp()).collect()
    } else {
        logits.iter().map(|&l| ((l as f64 - max) / t).exp()).collect()
    };
    let log_z = weights.iter().sum::<f64>().ln();
    let token = if params.temperature == 0.0 {
        argmax(logits)
    } else if params.filters() {
        sample_filtered(logits, &weights, params, rng)
    } else {
        draw(&weights, rng)
    };
    (token, ((logits[token as usize] as f64 - max) / t - log_z) as f32)
}

/// Index of the largest logit; the lowest index on ties (as `torch.argmax`).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Top-k, top-p and min-p on the sorted tempered distribution `weights` (unnormalised).
fn sample_filtered(logits: &[f32], weights: &[f64], p: &SamplingParams, rng: &mut StdRng) -> u32 {
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    // Descending by logit, lowest id first on ties, so the cut is deterministic.
    order.sort_unstable_by(|&a, &b| {
        logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b))
    });
    let mut weights: Vec<f64> = order.iter().map(|&i| weights[i as usize]).collect();
    if p.top_k > 0 {
        weights.truncate(p.top_k.min(weights.len()));
    }
    let total: f64 = weights.iter().sum();
    if p.top_p < 1.0 {
        let mut mass = 0.0;
        let mut keep = weights.len();
        for (i, w) in weights.iter().enumerate() {
            mass += w / total;
            if mass >= p.top_p {
                keep = i + 1;
                break;
            }
        }
        weights.truncate(keep);
    }
    if p.min_p > 0.0 {
        // weights[0] is the most likely token; min-p compares against it.
        let floor = p.min_p * weights[0];
        let keep = weights.iter().take_while(|&&w| w >= floor).count().max(1);
        weights.truncate(keep);
    }
    order[draw(&weights, rng) as usize]
}

/// Draws an index with probability proportional to `weights`.
fn draw(weights: &[f64], rng: &mut StdRng) -> u32 {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if u < w {
            return i as u32;
        }
        u -= w;
    }
    // Rounding can leave u a hair above the last weight: take the last non-zero one.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frequencies(logits: &[f32], params: SamplingParams, draws: usize) -> Vec<f64> {
        let mut rng = sample_rng(params.seed, 0, 0);
        let mut counts = vec![0usize; logits.len()];
        for _ in 0..draws {
            counts[sample_token(logits, &params, &mut rng).0 as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / draws as f64).collect()
    }

    #[test]
    fn greedy_takes_the_first_maximum_and_reports_its_logprob() {
        let logits = [1.0, 3.0, 3.0, -1.0];
        let (tok, lp) = sample_token(&logits, &SamplingParams::greedy(), &mut sample_rng(0, 0, 0));
        assert_eq!(tok, 1);
        let z: f64 = logits.iter().map(|&l: &f32| (l as f64).exp()).sum();
        assert!((lp as f64 - (3.0 - z.ln())).abs() < 1e-6);
    }

    /// The recorded log-prob is that of `softmax(logits / T)`, cut or not by the filters.
    #[test]
    fn logprobs_are_the_tempered_distributions() {
        let logits = [0.5f32, 2.0, -1.0, 1.5];
        for temperature in [0.5, 1.0, 1.6] {
            let want = |token: u32| {
                let scaled: Vec<f64> = logits.iter().map(|&l| l as f64 / temperature).collect();
                let z: f64 = scaled.iter().map(|x| x.exp()).sum();
                scaled[token as usize] - z.ln()
            };
            for top_k in [0, 2] {
                let params = SamplingParams { temperature, top_k, ..Default::default() };
                let mut rng = sample_rng(3, 0, 0);
                for _ in 0..20 {
                    let (token, lp) = sample_token(&logits, &params, &mut rng);
                    assert!((lp as f64 - want(token)).abs() < 1e-6, "T {temperature} k {top_k}");
                }
            }
        }
    }

    #[test]
    fn temperature_one_matches_softmax() {
        let logits = [0.0f32, 1.0, 2.0];
        let f = frequencies(&logits, SamplingParams::default(), 60_000);
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        for (i, &l) in logits.iter().enumerate() {
            let p = (l as f64).exp() / z;
            assert!((f[i] - p).abs() < 0.01, "token {i}: {} vs {p}", f[i]);
        }
    }

    #[test]
    fn filters_cut_the_tail() {
        // probabilities ~ [0.64, 0.24, 0.09, 0.03]
        let logits = [3.0f32, 2.0, 1.0, -0.1];
        let top_k = frequencies(&logits, SamplingParams { top_k: 2, ..Default::default() }, 20_000);
        assert_eq!(top_k[2] + top_k[3], 0.0);
        let top_p =
            frequencies(&logits, SamplingParams { top_p: 0.8, ..Default::default() }, 20_000);
        assert_eq!(top_p[2] + top_p[3], 0.0);
        assert!(top_p[1] > 0.2, "the second token is inside the 0.8 nucleus");
        let min_p =
            frequencies(&logits, SamplingParams { min_p: 0.2, ..Default::default() }, 20_000);
        assert!(
            min_p[2] == 0.0 && min_p[3] == 0.0 && min_p[1] > 0.0,
            "0.09/0.64 < 0.2 <= 0.24/0.64"
        );
    }

    #[test]
    fn same_seed_same_draws_and_different_samples_differ() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = SamplingParams { seed: 11, ..Default::default() };
        let run = |prompt, sample| {
            let mut rng = sample_rng(p.seed, prompt, sample);
            (0..20).map(|_| sample_token(&logits, &p, &mut rng).0).collect::<Vec<_>>()
        };
        assert_eq!(run(0, 1), run(0, 1));
        assert_ne!(run(0, 1), run(0, 2));
        assert_ne!(run(0, 1), run(1, 1));
    }

    #[test]
    fn validation_names_the_parameter() {
        assert!(
            SamplingParams { top_p: 0.0, ..Default::default() }
                .validate()
                .unwrap_err()
                .contains("top_p")
        );
        assert!(
            SamplingParams { temperature: -1.0, ..Default::default() }
                .validate()
                .unwrap_err()
                .contains("temperature")
        );
        assert!(
            SamplingParams { min_p: 2.0, ..Default::default() }
                .validate()
                .unwrap_err()
                .contains("min_p")
        );
    }
}
