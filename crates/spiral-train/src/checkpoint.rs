//! Training checkpoints: a Hugging Face model folder (`spiral-eval` and transformers load it
//! as is), or with LoRA a PEFT adapter folder over the base named in the state, plus
//! `optimizer.bin` (AdamW moments) and `trainer_state.json` (phase, step, how far
//! `metrics.jsonl` had been written). Every random draw of a run comes from a stream seeded by
//! the run seed, the draw's purpose and the step (`spiral_rollout::stream_seed`), so the run
//! seed and the step are the whole RNG state and the data cursor follows from the step.
//!
//! Writes are atomic: a checkpoint is assembled in `<name>.tmp`, renamed to `<name>`, and only
//! then named in `checkpoints/latest` (itself replaced by a rename). A kill at any moment leaves
//! `latest` naming a complete checkpoint; older checkpoints are pruned only after that.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use spiral_model::{CausalLm, ModelConfig, TextTokenizer, load_model, save_pretrained};

use crate::learner::Learner;

/// The pointer file naming the newest complete checkpoint.
const LATEST: &str = "latest";
const STATE: &str = "trainer_state.json";
const OPTIMIZER: &str = "optimizer.bin";
/// The frozen base model of a LoRA run, inside `checkpoints/`.
const BASE: &str = "base";

/// Which part of the run a checkpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Supervised warm start; `step` warm-start steps are done.
    WarmStart,
    /// RL; `step` RL steps are done (0: the warm start is finished and evaluated).
    Rl,
}

/// Where the run stands; saved beside the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// The phase the run is in.
    pub phase: Phase,
    /// Steps done in that phase.
    pub step: usize,
    /// Optimiser steps the phase's learner has taken (skipped updates are not steps).
    pub optimizer_steps: usize,
    /// The run seed; with `phase` and `step` it fixes every later random draw.
    pub seed: u64,
    /// Bytes of `metrics.jsonl` written when the checkpoint was taken; a resumed run truncates
    /// the file there and writes the same lines again.
    pub metrics_bytes: u64,
    /// Consecutive skipped (NaN or infinite) updates before this point.
    #[serde(default)]
    pub skipped_in_a_row: usize,
    /// With LoRA: the frozen base model's folder (relative paths are inside `checkpoints/`);
    /// the checkpoint itself then holds only the adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<PathBuf>,
}

/// Writes checkpoint `name` into `dir` atomically, points `latest` at it, and keeps only the
/// newest `keep` RL checkpoints (`step-N`; the warm start is always kept).
pub fn save<B: AutodiffBackend>(
    dir: &Path,
    name: &str,
    learner: &Learner<B>,
    tokenizer: &TextTokenizer,
    state: &TrainerState,
    keep: usize,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    let model = learner.model();
    if model.lora().is_some() {
        let base = state.base_model.as_ref().context("a LoRA checkpoint needs its base model")?;
        // Named relative to the checkpoint folder when it lives beside it in `checkpoints/`.
        let name = if base.is_relative() { Path::new("..").join(base) } else { base.clone() };
        model.save_adapter(&tmp, &name.display().to_string())?;
        tokenizer.save(&tmp)?;
    } else {
        save_pretrained(&learner.inference_model(), tokenizer, &tmp)?;
    }
    learner.save_optimizer(&tmp.join(OPTIMIZER))?;
    let json = serde_json::to_string_pretty(state).expect("the state serialises");
    spiral_model::write_atomically(&tmp.join(STATE), json.as_bytes())?;
    if target.exists() {
        // Only reached when re-saving the same step (a resumed run); `latest` never names a
        // checkpoint newer than this one, so removing it first loses nothing newer.
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("removing {}", target.display()))?;
    }
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    spiral_model::write_atomically(&dir.join(LATEST), name.as_bytes())?;
    prune(dir, keep, name)
}

/// The newest complete checkpoint of a run folder's `checkpoints/`, if any.
pub fn latest(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let pointer = dir.join(LATEST);
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer)
        .with_context(|| format!("reading {}", pointer.display()))?;
    let path = dir.join(name.trim());
    anyhow::ensure!(
        path.join(STATE).is_file(),
        "{} names `{}`, which has no {STATE}",
        pointer.display(),
        name.trim()
    );
    Ok(Some(path))
}

/// Reads a checkpoint's state and model (onto the autodiff backend, ready to train).
pub fn load<B: AutodiffBackend>(
    path: &Path,
    device: &B::Device,
) -> anyhow::Result<(TrainerState, CausalLm<B>)> {
    let state_path = path.join(STATE);
    let text = std::fs::read_to_string(&state_path)
        .with_context(|| format!("reading {}", state_path.display()))?;
    let state: TrainerState = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a trainer state", state_path.display()))?;
    let model = match &state.base_model {
        Some(base) => {
            // `checkpoints/<name>` -> `checkpoints/` for relative base paths.
            let base = path.parent().unwrap_or(Path::new(".")).join(base);
            let config = ModelConfig::from_file(base.join("config.json"))
                .with_context(|| format!("the LoRA base model of {}", path.display()))?;
            load_model(&base, config, device)?.load_adapter(path)?
        }
        None => {
            let config = ModelConfig::from_file(path.join("config.json"))?;
            load_model(path, config, device)?
        }
    };
    Ok((state, model))
}

/// Writes the frozen base of a LoRA run as `checkpoints/base` (a Hugging Face folder, written
/// to `base.tmp` and renamed) and returns its name relative to `checkpoints/`.
pub fn save_base<B: AutodiffBackend>(
    dir: &Path,
    model: &CausalLm<B>,
    tokenizer: &TextTokenizer,
) -> anyhow::Result<PathBuf> {
    let tmp = dir.join(format!("{BASE}.tmp"));
    let target = dir.join(BASE);
    for stale in [&tmp, &target] {
        if stale.exists() {
            std::fs::remove_dir_all(stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    save_pretrained(&model.valid(), tokenizer, &tmp)?;
    std::fs::rename(&tmp, &target)
        .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    Ok(base_name())
}

/// The frozen base's folder, relative to the checkpoints folder, as [`save_base`] records it.
pub fn base_name() -> PathBuf {
    PathBuf::from(BASE)
}

/// The optimiser file of the checkpoint at `path`.
pub fn optimizer_path(path: &Path) -> PathBuf {
    path.join(OPTIMIZER)
}

/// Removes all but the newest `keep` `step-N` checkpoints, never `current`.
fn prune(dir: &Path, keep: usize, current: &str) -> anyhow::Result<()> {
    let mut steps: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?.strip_prefix("step-")?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, path) in steps.into_iter().take(excess) {
        if path.file_name().and_then(|n| n.to_str()) != Some(current) {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
