//! Which keys each query of an attention call may see: causal over positions, cached keys
//! visible, padding keys hidden. Held by structure ([`KeyMask`]) for the blockwise kernel, which
//! needs memory linear in the context, and as a dense additive tensor only where the dense path
//! runs: where the scores are small enough that its matrix products are the faster way.

use std::sync::Arc;

use burn::tensor::{Tensor, backend::Backend};
use spiral_kernels::flash_attention::{KeyMask, MASKED};

/// Scores per sequence and head (`t * keys`) from which attention runs block by block (the
/// fused kernel on the CPU, chunks of query rows on other backends): a
/// 2048 x 2048 matrix, 16 MiB of float32 per head and sequence, kept for the backward pass.
/// Shorter sequences (every prompt of the default run, the benchmark workloads) keep the dense
/// path, whose matrix products are faster there and whose memory the batch size bounds.
pub const BLOCKWISE_FROM_SCORES: usize = 1 << 22;

/// The attention mask of one forward pass, shared by every layer.
#[derive(Debug, Clone)]
pub struct AttentionMask<B: Backend> {
    /// The mask by structure.
    pub keys: KeyMask,
    /// Whether the layers attend block by block ([`spiral_kernels::flash_attention`]).
    pub blockwise: bool,
    /// The dense additive mask, `[b or 1, 1, t, past + t]`, for the dense path; `None` when the
    /// layers attend block by block or nothing is masked (one decode step without padding).
    pub dense: Option<Tensor<B, 4>>,
}

impl<B: Backend> AttentionMask<B> {
    /// The mask of `t` new tokens per sequence after `past` cached ones, with `key_mask[row][k]`
    /// false for padding keys.
    pub fn new(
        batch: usize,
        t: usize,
        past: usize,
        key_mask: Option<&[Vec<bool>]>,
        device: &B::Device,
    ) -> Self {
        let keys = KeyMask { past, keys: key_mask.map(|m| Arc::new(m.to_vec())) };
        let scores = t * (past + t);
        let blockwise = scores >= BLOCKWISE_FROM_SCORES;
        // One decode step without padding masks nothing.
        let masks_nothing = t == 1 && key_mask.is_none();
        let dense =
            (!(blockwise || masks_nothing)).then(|| keys.dense::<B>(batch, t, MASKED, device));
        Self { keys, blockwise, dense }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{DType, Distribution, Int, TensorData};

    use super::*;
    use crate::{CausalLm, ModelConfig, RopeTables, inverse_frequencies};

    type A = Autodiff<Flex>;

    /// One decoder layer of a grouped-query model, through the blockwise kernel and through the
    /// dense path on the same mask: left padding, a query that sees no key, and cached keys.
    #[test]
    fn a_decoder_layer_attends_the_same_block_by_block() {
        let mut config = ModelConfig::small(40, 32, 1, 4);
        config.num_kv_heads = 2;
        let model = CausalLm::<A>::random(config, 3, 0.2, &Default::default()).unwrap();
        let layer = &model.layers[0];
        let inv_freq = inverse_frequencies(&model.config().rope, model.config().head_dim);
        let (b, t, past) = (2, 7, 3);
        let mut keys = vec![vec![true; past + t]; b];
        keys[0][..2].iter_mut().for_each(|k| *k = false);
        keys[1][..past + 1].iter_mut().for_each(|k| *k = false);
        let positions: Vec<i64> = (0..b * t).map(|i| (past + i % t) as i64).collect();
        let positions =
            Tensor::<A, 2, Int>::from_data(TensorData::new(positions, [b, t]), &Default::default());
        let rope = RopeTables::new(&inv_freq, positions, DType::F32);
        let x = Tensor::<Flex, 3>::random(
            [b, t, 32],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        // The output rows of the query that sees nothing (sequence 1, query 0) are not compared.
        let weights = Tensor::<Flex, 3>::random(
            [b, t, 32],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        )
        .slice_assign([1..2, 0..1, 0..32], Tensor::zeros([1, 1, 32], &Default::default()));
        let warm = Tensor::<Flex, 3>::random(
            [b, past, 32],
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        let run = |blockwise: bool| {
            let mut mask = AttentionMask::<A>::new(b, t, past, Some(&keys), &Default::default());
            mask.blockwise = blockwise;
            if blockwise {
                mask.dense = None;
            }
            let mut cache = crate::KvCache::<A>::new(1);
            let warm_positions = Tensor::<A, 2, Int>::from_data(
                TensorData::new(
                    (0..b * past).map(|i| (i % past) as i64).collect::<Vec<_>>(),
                    [b, past],
                ),
                &Default::default(),
            );
            let warm_mask = AttentionMask::<A>::new(
                b,
                past,
                0,
                Some(&keys.iter().map(|k| k[..past].to_vec()).collect::<Vec<_>>()),
                &Default::default(),
            );
            let warm_rope = RopeTables::new(&inv_freq, warm_positions, DType::F32);
            let cache_layer = cache.layers_mut().next().expect("one layer");
            let warm = Tensor::<A, 3>::from_inner(warm.clone());
            let _ = layer.forward(warm, &warm_rope, &warm_mask, Some(cache_layer));
            let x = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
            let out = layer.forward(x.clone(), &rope, &mask, cache.layers_mut().next());
            let grads = (out.clone() * Tensor::from_inner(weights.clone())).sum().backward();
            let values = |t: Tensor<Flex, 3>| t.into_data().to_vec::<f32>().unwrap();
            let out =
                values(out.inner().slice_assign(
                    [1..2, 0..1, 0..32],
                    Tensor::zeros([1, 1, 32], &Default::default()),
                ));
            (out, values(x.grad(&grads).unwrap()))
        };
        let ((out, grad), (dense_out, dense_grad)) = (run(true), run(false));
        let worst =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst(&out, &dense_out) < 1e-5, "output: {}", worst(&out, &dense_out));
        assert!(worst(&grad, &dense_grad) < 1e-5, "gradient: {}", worst(&grad, &dense_grad));
        assert!(grad.iter().any(|&g| g != 0.0));
    }

    #[test]
    fn long_contexts_on_the_cpu_attend_block_by_block_without_a_dense_mask() {
        let device = Default::default();
        let long = AttentionMask::<Flex>::new(1, 4096, 0, None, &device);
        assert!(long.blockwise && long.dense.is_none());
        let short = AttentionMask::<Flex>::new(4, 64, 0, None, &device);
        assert!(!short.blockwise && short.dense.is_some());
    }
}
