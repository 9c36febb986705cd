//! Model forward paths on the `rollout-cpu` shape: one KV-cached decode step at batch 1, 8 and
//! 64 (throughput in tokens/s), the same with LoRA adapters unmerged and merged, and
//! full-sequence log-probs of 8 x 128 tokens.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use spiral_benches::bench_cpu_config;
use spiral_model::{CausalLm, KvCache, LoraConfig};

type B = Flex;

/// One decode step after a 64-token context, at batch 1, 8 and 64.
fn decode_step(c: &mut Criterion) {
    let model = CausalLm::<B>::random(bench_cpu_config(), 0, 0.02, &Default::default()).unwrap();
    decode_steps(c, "decode_step", &model, &[1, 8, 64]);
}

/// The same decode step with rank-16 LoRA adapters on every projection, applied unmerged
/// (`x W + s x A B`) and merged into `W`: what rollouts with adapters cost either way.
fn decode_step_lora(c: &mut Criterion) {
    let base = CausalLm::<B>::random(bench_cpu_config(), 0, 0.02, &Default::default()).unwrap();
    let adapted = base.with_lora(&LoraConfig::default(), 1).unwrap();
    decode_steps(c, "decode_step_lora_unmerged", &adapted, &[8, 64]);
    decode_steps(c, "decode_step_lora_merged", &adapted.merge_lora(), &[8, 64]);
}

fn decode_steps(c: &mut Criterion, name: &str, model: &CausalLm<B>, batches: &[usize]) {
    let device = model.device();
    let mut group = c.benchmark_group(name);
    for &batch in batches {
        // A cache holding a 64-token context for every row, with room for the step; each
        // iteration appends one position and then forgets it.
        let mut cache = KvCache::with_capacity(model.config().num_layers, 65);
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![7i64; batch * 64], [batch, 64]),
            &device,
        );
        let pos = spiral_model::position_grid::<B>(batch, 64, &device);
        model.decode_step(ids, pos, None, &mut cache);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                let ids = Tensor::<B, 2, Int>::from_data(
                    TensorData::new(vec![9i64; batch], [batch, 1]),
                    &device,
                );
                let pos = Tensor::<B, 2, Int>::from_data(
                    TensorData::new(vec![64i64; batch], [batch, 1]),
                    &device,
                );
                let logits = model.decode_step(ids, pos, None, &mut cache).into_data();
                cache.truncate(64);
                logits
            })
        });
    }
    group.finish();
}

/// Full-sequence log-probs of 8 sequences of 128 tokens, scoring the last 96 of each.
fn sequence_logprobs(c: &mut Criterion) {
    let model = CausalLm::<B>::random(bench_cpu_config(), 0, 0.02, &Default::default()).unwrap();
    let seqs: Vec<Vec<u32>> =
        (0..8).map(|i| (0..128).map(|t| ((t * 31 + i * 7) % 509 + 3) as u32).collect()).collect();
    let mut group = c.benchmark_group("token_logprobs");
    group.throughput(Throughput::Elements(8 * 128));
    group.sample_size(10);
    group.bench_function("8x128", |b| {
        b.iter(|| model.token_logprobs(&seqs, &[32; 8], false).unwrap().logprobs.into_data())
    });
    group.finish();
}

criterion_group!(benches, decode_step, decode_step_lora, sequence_logprobs);
criterion_main!(benches);
