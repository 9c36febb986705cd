//! The start of a run: the run folder, the task data and its tokenizer, and the model, from the
//! newest checkpoint when resuming, else a pretrained Hugging Face folder (`model.checkpoint`),
//! else random weights of the configured size; then the check that every prompt and trace fits
//! the model's context, before any work.

use std::path::Path;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use spiral_model::memory::{self, PassShape};
use spiral_model::{CausalLm, Checkpoint, ModelConfig, TextTokenizer};

use super::{Run, RunControl};
use crate::checkpoint::{self, Phase, TrainerState};
use crate::config::RunConfig;
use crate::metrics::MetricsWriter;
use crate::task::{CONTEXT, TaskData};

/// The run's shared state, the trainer state to continue from, and the model to train.
pub(super) fn start<'a, Train: AutodiffBackend>(
    config: &'a RunConfig,
    out: &'a Path,
    control: &'a RunControl,
    device: &'a Train::Device,
) -> anyhow::Result<(Run<'a, Train>, TrainerState, CausalLm<Train>)> {
    let checkpoints = out.join("checkpoints");
    let root = control.world.is_root();
    if root {
        std::fs::create_dir_all(&checkpoints)
            .with_context(|| format!("creating {}", checkpoints.display()))?;
    }
    let resume_from = if control.resume { checkpoint::latest(&checkpoints)? } else { None };
    if root {
        // Rewritten on resume too, so `--set` changes made then are kept for the next resume.
        std::fs::write(out.join("config.toml"), config.to_toml())?;
    }
    let seed = config.run.seed;
    let source = |dir: &Path| format!("model.checkpoint = {}", dir.display());
    // A pretrained model's weights are read only when starting; a resumed run takes them from
    // its own checkpoint and needs only the tokenizer.
    let pretrained = match (&config.model.checkpoint, &resume_from) {
        (Some(dir), None) => Some(load_pretrained::<Train>(config, dir, device)?),
        _ => None,
    };
    let tokenizer = match (&pretrained, &config.model.checkpoint) {
        (Some(c), _) => Some(c.tokenizer.clone()),
        (None, Some(name)) => {
            let dir = spiral_model::resolve_model(name).with_context(|| source(name))?;
            let eos = ModelConfig::from_file(dir.join("config.json"))
                .with_context(|| source(name))?
                .eos_token_ids;
            Some(TextTokenizer::from_dir(&dir, &eos).with_context(|| source(name))?)
        }
        (None, None) => None,
    };
    let data = TaskData::new(&config.task, tokenizer, seed)?;

    let (state, model) = match (&resume_from, pretrained) {
        (Some(path), _) => {
            let (state, model) = checkpoint::load::<Train>(path, device)?;
            anyhow::ensure!(
                state.seed == seed,
                "{}: the checkpoint was taken with run.seed {} but the config says {seed}",
                path.display(),
                state.seed
            );
            eprintln!("resuming from {} ({:?}, step {})", path.display(), state.phase, state.step);
            (state, model)
        }
        (None, Some(pretrained)) => (fresh_state(seed), pretrained.model),
        (None, None) => (fresh_state(seed), random_model(config, &data, device)?),
    };
    let model = model.with_precision(config.model.precision);
    let aggregation = check_context(&data, config, model.config().max_position_embeddings)?;
    if spiral_kernels::device::is_cpu::<Train>() {
        check_memory(config, model.config(), aggregation)?;
    }
    eprintln!(
        "model: {} parameters, vocabulary {}",
        model.config().num_parameters(),
        model.config().vocab_size
    );
    let metrics = if root {
        MetricsWriter::open(&out.join("metrics.jsonl"), state.metrics_bytes)?
    } else {
        MetricsWriter::discard(state.metrics_bytes)
    };
    let run = Run { config, out, control, device, data, checkpoints, resume_from, metrics };
    Ok((run, state, model))
}

/// A model of the configured size with random weights, over the task tokenizer's vocabulary.
fn random_model<Train: AutodiffBackend>(
    config: &RunConfig,
    data: &TaskData,
    device: &Train::Device,
) -> anyhow::Result<CausalLm<Train>> {
    let m = &config.model;
    let mut model_config =
        ModelConfig::small(data.tokenizer.vocab_size(), m.hidden_size, m.num_layers, m.num_heads);
    model_config.num_kv_heads = m.num_kv_heads.unwrap_or(model_config.num_kv_heads);
    model_config.head_dim = m.head_dim.unwrap_or(model_config.head_dim);
    model_config.intermediate_size = m.intermediate_size.unwrap_or(model_config.intermediate_size);
    model_config.max_position_embeddings = m.max_position_embeddings.unwrap_or(CONTEXT);
    Ok(CausalLm::<Train>::random(model_config, config.run.seed, m.init_std, device)?)
}

/// The state of a run that has not started.
fn fresh_state(seed: u64) -> TrainerState {
    TrainerState {
        phase: Phase::WarmStart,
        step: 0,
        optimizer_steps: 0,
        seed,
        metrics_bytes: 0,
        skipped_in_a_row: 0,
        base_model: None,
    }
}

/// Refuses a run whose longest search prompt plus trace, or aggregation prompt plus trace,
/// would not fit the model's context; returns the longest such sequence's length.
fn check_context(data: &TaskData, config: &RunConfig, context: usize) -> anyhow::Result<usize> {
    let length = config.train_max_new_tokens().max(config.rollout.max_new_tokens);
    let (mut longest, mut which) = (0, None);
    for (i, p) in data.train.iter().chain(&data.test).enumerate() {
        let tokens = data.encode(&data.search_prompt(p)).len();
        if tokens > longest {
            (longest, which) = (tokens, Some(i));
        }
    }
    // An aggregation prompt holds the problem and n traces of at most `length` tokens each.
    let aggregation = longest + config.algorithm.n.max(config.eval.n) * (length + 16);
    anyhow::ensure!(
        aggregation + length <= context,
        "problem {} has a {longest}-token prompt: with {} candidates of up to {length} tokens an \
         aggregation prompt may reach {aggregation} tokens, and with its trace exceed the model's \
         context of {context} (lower rollout.max_new_tokens, algorithm.tokens_per_problem, \
         algorithm.n or eval.n)",
        which.unwrap_or(0),
        config.algorithm.n.max(config.eval.n)
    );
    Ok(aggregation + length)
}

/// The pretrained model of `model.checkpoint`, with `model.adapter` loaded onto it when set.
/// The adapter must have the shape `[lora]` describes, so that the resolved config says what is
/// trained; its dropout is `lora.dropout`'s.
fn load_pretrained<Train: AutodiffBackend>(
    config: &RunConfig,
    base: &Path,
    device: &Train::Device,
) -> anyhow::Result<Checkpoint<Train>> {
    let source = format!("model.checkpoint = {}", base.display());
    let Some(adapter) = &config.model.adapter else {
        return Checkpoint::<Train>::load(base, device).context(source);
    };
    let source = format!("{source}, model.adapter = {}", adapter.display());
    let checkpoint =
        Checkpoint::<Train>::load_with_adapter(base, adapter, device).context(source.clone())?;
    let (Some(found), Some(wanted)) = (checkpoint.model.lora(), config.lora.config()) else {
        anyhow::bail!("{source}: the adapter did not load as LoRA adapters");
    };
    let shape = |c: &spiral_model::LoraConfig| (c.rank, c.alpha, c.use_rslora, c.targets.clone());
    if shape(found) != shape(&wanted) {
        let targets: Vec<&str> = found.targets.iter().map(|p| p.name()).collect();
        anyhow::bail!(
            "{source}: the adapter has rank {}, alpha {}, rslora {} and targets {targets:?}, but \
             [lora] says rank {}, alpha {}, rslora {}, targets {:?}; set them to the adapter's \
             (--set lora.rank={} --set lora.alpha={} --set lora.rslora={} --set \
             'lora.targets={targets:?}')",
            found.rank,
            found.alpha,
            found.use_rslora,
            wanted.rank,
            wanted.alpha,
            wanted.use_rslora,
            wanted.targets.iter().map(|p| p.name()).collect::<Vec<_>>(),
            found.rank,
            found.alpha,
            found.use_rslora,
        );
    }
    let model = checkpoint.model.with_lora_dropout(wanted.dropout);
    Ok(Checkpoint { model, ..checkpoint })
}

/// Refuses a run whose training micro-batch of the longest sequences (`longest` tokens each)
/// would need more memory than the machine has available ([`spiral_model::memory`]), naming
/// the options that lower it.
fn check_memory(config: &RunConfig, model: &ModelConfig, longest: usize) -> anyhow::Result<()> {
    let sequences = config.train.micro_batch;
    let shape = PassShape { sequences, tokens: longest, scored: sequences * longest };
    let checkpointing = config.train.activation_checkpointing;
    // The warm start trains every weight, LoRA or not.
    let lora = config.lora.enabled && config.warm_start.total_steps() == 0;
    let needed = memory::training_bytes(model, shape, checkpointing, lora);
    let advice = format!(
        "lower train.micro_batch (now {sequences}), rollout.max_new_tokens or algorithm.n{}",
        if checkpointing { "" } else { ", or set train.activation_checkpointing = true" }
    );
    let what = format!("a training micro-batch of {sequences} sequences of up to {longest} tokens");
    Ok(memory::ensure_fits(needed, &what, &advice)?)
}
