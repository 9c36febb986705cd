//! Rotary position embeddings (Su et al., 2021, "RoFormer") in the rotate-half layout that
//! Hugging Face's Llama/Qwen code uses, with Llama 3's frequency-dependent scaling
//! (transformers `_compute_llama3_parameters`).

use burn::tensor::{DType, Int, Tensor, TensorData, backend::Backend};

use spiral_kernels::precision::{cast, matmul};

use crate::config::RopeConfig;

/// Inverse frequencies `1 / theta^(2i/d)` for `i < d/2`, with Llama 3 scaling when configured.
///
/// Computed in f32 exactly as transformers does (f32 `theta ** (arange(0, d, 2) / d)`), so the
/// rotation angles match the reference bit for bit in the common case.
pub fn inverse_frequencies(rope: &RopeConfig, head_dim: usize) -> Vec<f32> {
    let base = rope.theta as f32;
    let inv: Vec<f32> =
        (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32)).collect();
    let Some(s) = rope.llama3 else { return inv };
    let old_len = s.original_max_position_embeddings as f32;
    let (factor, low, high) =
        (s.factor as f32, s.low_freq_factor as f32, s.high_freq_factor as f32);
    let low_freq_wavelen = old_len / low;
    let high_freq_wavelen = old_len / high;
    inv.into_iter()
        .map(|f| {
            let wavelen = 2.0 * std::f32::consts::PI / f;
            if wavelen < high_freq_wavelen {
                f // high frequencies: unchanged
            } else if wavelen > low_freq_wavelen {
                f / factor // low frequencies: scaled fully
            } else {
                // Medium band: interpolate between scaled and unscaled.
                let smooth = (old_len / wavelen - low) / (high - low);
                (1.0 - smooth) * f / factor + smooth * f
            }
        })
        .collect()
}

/// Per-token cosine and sine tables, `[batch, time, 1, head_dim]`, and the rotate-half matrix.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    /// `[d, d]` signed permutation with `x @ R = rotate_half(x) = cat(-x2, x1)`.
    rotate_half: Tensor<B, 2>,
}

impl<B: Backend> RopeTables<B> {
    /// Builds the tables for the given absolute positions `[batch, time]`: angles in float32,
    /// tables in `dtype`, the dtype of the queries and keys they rotate (as transformers does).
    pub fn new(inv_freq: &[f32], positions: Tensor<B, 2, Int>, dtype: DType) -> Self {
        let device = positions.device();
        let [batch, time] = positions.dims();
        let half = inv_freq.len();
        let inv = Tensor::<B, 1>::from_data(TensorData::new(inv_freq.to_vec(), [half]), &device)
            .reshape([1, 1, half]);
        let angles = positions.float().reshape([batch, time, 1]).mul(inv);
        // rotate-half layout: the same angle for dimension i and i + d/2.
        let angles =
            Tensor::cat(vec![angles.clone(), angles], 2).reshape([batch, time, 1, 2 * half]);
        let d = 2 * half;
        let mut r = vec![0.0f32; d * d];
        for i in 0..half {
            r[(i + half) * d + i] = -1.0; // out[i] = -x[i + d/2]
            r[i * d + i + half] = 1.0; // out[i + d/2] = x[i]
        }
        let rotate_half = cast(Tensor::from_data(TensorData::new(r, [d, d]), &device), dtype);
        Self { cos: cast(angles.clone().cos(), dtype), sin: cast(angles.sin(), dtype), rotate_half }
    }

    /// Rotates `x: [batch, time, heads, head_dim]`: `x * cos + rotate_half(x) * sin`.
    ///
    /// On the CPU backend one fused operation ([`spiral_kernels::rope`]); elsewhere written with a matrix
    /// product for `rotate_half` (exact: each output sums one signed input) and the tables
    /// broadcast over the heads.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = match spiral_kernels::rope::try_rope(x, &self.cos, &self.sin) {
            Ok(rotated) => return rotated,
            Err(x) => x,
        };
        let [b, t, h, d] = x.dims();
        let rotated = matmul(x.clone().reshape([b * t * h, d]), self.rotate_half.clone())
            .reshape([b, t, h, d]);
        // The tables are `[b, t, 1, d]`: copying them per head cost two tensors of the size of
        // `x` per call on the GPU.
        x.mul(self.cos.clone()) + rotated.mul(self.sin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Llama3RopeScaling;

    #[test]
    fn plain_frequencies_follow_the_formula() {
        let inv = inverse_frequencies(&RopeConfig { theta: 10_000.0, llama3: None }, 8);
        let expected = [1.0, 0.1, 0.01, 0.001];
        for (a, b) in inv.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6 * b.max(1e-3), "{a} vs {b}");
        }
    }

    #[test]
    fn llama3_scaling_keeps_high_scales_low_and_blends_medium() {
        let s = Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        };
        let plain = inverse_frequencies(&RopeConfig { theta: 10_000.0, llama3: None }, 32);
        let scaled = inverse_frequencies(&RopeConfig { theta: 10_000.0, llama3: Some(s) }, 32);
        let mut kinds = [0; 3];
        for (p, q) in plain.iter().zip(&scaled) {
            let wavelen = 2.0 * std::f32::consts::PI / p;
            if wavelen < 16.0 {
                assert_eq!(p, q);
                kinds[0] += 1;
            } else if wavelen > 64.0 {
                assert!((q - p / 8.0).abs() < 1e-9);
                kinds[1] += 1;
            } else {
                assert!(*q < *p && *q > p / 8.0);
                kinds[2] += 1;
            }
        }
        assert!(kinds.iter().all(|&k| k > 0), "test should cover all three bands: {kinds:?}");
    }
}
