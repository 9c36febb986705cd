//! A sequence long enough to attend block by block (`spiral_model::BLOCKWISE_FROM_SCORES`)
//! scores as the dense path does: full-sequence log-probs of 2,300 tokens in one pass (blockwise)
//! against the same sequence fed through the KV cache in chunks short enough for the dense path.

use burn::backend::Flex;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use spiral_model::{BLOCKWISE_FROM_SCORES, CausalLm, KvCache, ModelConfig};

type B = Flex;

#[test]
fn a_long_sequence_scores_the_same_block_by_block_and_through_the_dense_path() {
    let mut config = ModelConfig::small(97, 32, 2, 4);
    config.num_kv_heads = 2;
    config.max_position_embeddings = 4096;
    let device = Default::default();
    let model = CausalLm::<B>::random(config.clone(), 5, 0.3, &device).unwrap();
    let n = 2300;
    assert!(n * n >= BLOCKWISE_FROM_SCORES, "the full pass must take the blockwise path");
    let seq: Vec<u32> = (0..n).map(|i| ((i * 31 + 7) % 97) as u32).collect();
    let full: Vec<f32> = model
        .token_logprobs(std::slice::from_ref(&seq), &[1], false)
        .unwrap()
        .logprobs
        .into_data()
        .into_vec()
        .unwrap();

    // Chunks of at most 1,000 tokens after at most 2,000 cached ones stay under the threshold.
    let mut cache = KvCache::new(config.num_layers);
    let mut chunked = Vec::new();
    let mut fed = 0;
    while fed < n - 1 {
        let len = 1000.min(n - 1 - fed);
        assert!(len * (fed + len) < BLOCKWISE_FROM_SCORES, "chunks take the dense path");
        let ids: Vec<i64> = seq[fed..fed + len].iter().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
        let positions =
            Tensor::<B, 1, Int>::arange(fed as i64..(fed + len) as i64, &device).reshape([1, len]);
        let hidden = model.hidden_states(ids, positions, None, Some(&mut cache));
        let logits = model.logits(hidden.reshape([len, config.hidden_size]));
        let logprobs: Vec<f32> = log_softmax(logits, 1).into_data().into_vec().unwrap();
        for i in 0..len {
            chunked.push(logprobs[i * config.vocab_size + seq[fed + i + 1] as usize]);
        }
        fed += len;
    }
    let worst = full.iter().zip(&chunked).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert_eq!(chunked.len(), full.len());
    assert!(worst < 5e-5, "blockwise and dense scores differ by {worst}");
}
