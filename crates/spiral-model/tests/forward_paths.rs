//! The two forward paths agree: incremental decoding with the KV cache against full-sequence
//! log-probs (1e-5 in float32), a sequence's scores do not depend on its batch, left padding
//! with a key mask changes nothing, and chunking the vocabulary projection changes nothing.

mod common;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use common::{B, FAMILIES, fixture, to_vec};
use spiral_model::{Checkpoint, KvCache};

const TOLERANCE: f32 = 1e-5;

fn sequences() -> Vec<Vec<u32>> {
    vec![
        (0..23).map(|i| (i * 37 + 5) % 400).collect(),
        (0..9).map(|i| (i * 11 + 3) % 400).collect(),
        (0..16).map(|i| (i * 101 + 7) % 512).collect(),
    ]
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn kv_cache_decoding_matches_full_sequence_logprobs() {
    let device = Default::default();
    for name in FAMILIES {
        let model = Checkpoint::<B>::load(fixture(name), &device).unwrap().model;
        for seq in sequences() {
            let full = &to_vec(
                model.token_logprobs(std::slice::from_ref(&seq), &[1], false).unwrap().logprobs,
            )[0];
            // Prefill 4 tokens, then one token per step; score each next token from the logits.
            let mut cache = KvCache::new(model.config().num_layers);
            let mut incremental = Vec::new();
            let mut fed = 0;
            for chunk in [4usize].into_iter().chain(std::iter::repeat(1)) {
                if fed + chunk > seq.len() - 1 {
                    break;
                }
                let ids: Vec<i64> = seq[fed..fed + chunk].iter().map(|&t| t as i64).collect();
                let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, chunk]), &device);
                let pos = Tensor::<B, 1, Int>::arange(fed as i64..(fed + chunk) as i64, &device)
                    .reshape([1, chunk]);
                let logits = model.decode_step(ids, pos, None, &mut cache);
                let lp: Vec<f32> = log_softmax(logits, 1).into_data().into_vec().unwrap();
                fed += chunk;
                incremental.push(lp[seq[fed] as usize]);
            }
            assert_eq!(cache.len(), fed);
            // The first `4` tokens were prefilled, so incremental scores start at token index 4.
            let d = max_diff(&incremental, &full[3..3 + incremental.len()]);
            assert!(d < TOLERANCE, "{name}: cache vs full differ by {d}");
        }
    }
}

#[test]
fn scores_do_not_depend_on_the_batch() {
    let model = Checkpoint::<B>::load(fixture("qwen2"), &Default::default()).unwrap().model;
    let seqs = sequences();
    let batched = to_vec(model.token_logprobs(&seqs, &[1, 1, 1], true).unwrap().logprobs);
    for (i, seq) in seqs.iter().enumerate() {
        let alone =
            &to_vec(model.token_logprobs(std::slice::from_ref(seq), &[1], false).unwrap().logprobs)
                [0];
        let d = max_diff(alone, &batched[i][..seq.len() - 1]);
        assert!(d < TOLERANCE, "sequence {i}: alone vs batched differ by {d}");
        assert!(batched[i][seq.len() - 1..].iter().all(|&x| x == 0.0), "padding must score 0");
    }
}

#[test]
fn left_padding_with_key_mask_matches_unpadded() {
    let device = Default::default();
    let model = Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap().model;
    let short: Vec<u32> = (0..6).map(|i| 20 + i).collect();
    let long: Vec<u32> = (0..10).map(|i| 50 + 3 * i).collect();
    let pad = long.len() - short.len();
    // Row 0 is left-padded; its positions start at 0 on its first real token.
    let ids: Vec<i64> = std::iter::repeat_n(0, pad)
        .chain(short.iter().map(|&t| t as i64))
        .chain(long.iter().map(|&t| t as i64))
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [2, long.len()]), &device);
    let pos: Vec<i64> = (0..long.len() as i64)
        .map(|p| (p - pad as i64).max(0))
        .chain(0..long.len() as i64)
        .collect();
    let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [2, long.len()]), &device);
    let mask = vec![(0..long.len()).map(|k| k >= pad).collect::<Vec<_>>(), vec![true; long.len()]];
    let mut cache = KvCache::new(model.config().num_layers);
    let logits = model.decode_step(ids, pos, Some(&mask), &mut cache);
    let padded: Vec<f32> = logits.into_data().into_vec().unwrap();
    let vocab = model.config().vocab_size;
    for (row, seq) in [short, long].iter().enumerate() {
        let mut cache = KvCache::new(model.config().num_layers);
        let ids: Vec<i64> = seq.iter().map(|&t| t as i64).collect();
        let n = ids.len();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        let pos = Tensor::<B, 1, Int>::arange(0..n as i64, &device).reshape([1, n]);
        let alone: Vec<f32> =
            model.decode_step(ids, pos, None, &mut cache).into_data().into_vec().unwrap();
        let d = max_diff(&alone, &padded[row * vocab..(row + 1) * vocab]);
        assert!(d < 1e-4, "row {row}: left-padded logits differ by {d}");
    }
}

#[test]
fn vocabulary_chunking_changes_nothing() {
    let mut model = Checkpoint::<B>::load(fixture("llama"), &Default::default()).unwrap().model;
    let seqs = sequences();
    let starts = [5, 1, 8];
    let whole = model.token_logprobs(&seqs, &starts, true).unwrap();
    model.set_logit_chunk_elements(3 * model.config().vocab_size);
    let chunked = model.token_logprobs(&seqs, &starts, true).unwrap();
    for (a, b) in
        [(whole.logprobs, chunked.logprobs), (whole.entropy.unwrap(), chunked.entropy.unwrap())]
    {
        let (a, b) = (to_vec(a).concat(), to_vec(b).concat());
        assert!(max_diff(&a, &b) < 1e-6);
    }
}

#[test]
fn forked_cache_rows_continue_identically() {
    let device = Default::default();
    let model = Checkpoint::<B>::load(fixture("qwen3_tied"), &device).unwrap().model;
    let prompt: Vec<i64> = (0..7).map(|i| 30 + i).collect();
    let mut cache = KvCache::new(model.config().num_layers);
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(prompt.clone(), [1, 7]), &device);
    let pos = Tensor::<B, 1, Int>::arange(0..7, &device).reshape([1, 7]);
    model.decode_step(ids, pos, None, &mut cache);
    let mut forked = cache.select_rows(&[0, 0, 0]);
    assert_eq!(forked.batch_size(), Some(3));
    let next = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![5i64, 6, 5], [3, 1]), &device);
    let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![7i64; 3], [3, 1]), &device);
    let logits: Vec<f32> =
        model.decode_step(next, pos, None, &mut forked).into_data().into_vec().unwrap();
    let v = model.config().vocab_size;
    assert!(
        max_diff(&logits[..v], &logits[2 * v..]) < 1e-6,
        "same token after a fork, same logits"
    );
    assert!(max_diff(&logits[..v], &logits[v..2 * v]) > 1e-3, "different token, different logits");
}
