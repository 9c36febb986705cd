//! The study's warm-start folder: every RL run starts from a copy of its checkpoint, and a
//! warm start trained elsewhere (`--warm-start`, e.g. the one a study keeps beside its report)
//! can stand in for training one, after a check that it was trained under the same settings.

use std::path::{Path, PathBuf};

use anyhow::Context;
use spiral_train::{Phase, RunConfig, TrainerState, latest_checkpoint};

/// What of a warm-start run folder its RL runs start from: its config and metrics, and under
/// `checkpoints/` the warm-start checkpoint, with LoRA the frozen base it adapts, and `latest`.
const KEPT: [&str; 5] = [
    "config.toml",
    "metrics.jsonl",
    "checkpoints/latest",
    "checkpoints/warm-start",
    "checkpoints/base",
];

/// Whether the run in `dir` has checkpointed its last RL step (a warm start: step 0).
pub fn finished(dir: &Path, steps: usize) -> bool {
    let Ok(Some(latest)) = latest_checkpoint(&dir.join("checkpoints")) else { return false };
    let state = std::fs::read_to_string(latest.join("trainer_state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<TrainerState>(&t).ok());
    state.is_some_and(|s| s.phase == Phase::Rl && s.step >= steps)
}

/// Makes `warm` a copy of the finished warm-start run folder `from`, refused unless `from` was
/// trained under `config` (its run name aside). Nothing is done when `warm` has finished.
pub fn adopt(from: &Path, warm: &Path, config: &RunConfig) -> anyhow::Result<()> {
    if finished(warm, 0) {
        return Ok(());
    }
    if let Err(e) = same_settings(from, config) {
        anyhow::bail!(
            "{e:#}; train it again without --warm-start, or match its settings with --set"
        );
    }
    anyhow::ensure!(
        finished(from, 0),
        "{}: not a finished warm start (its latest checkpoint is not the end of its warm start)",
        from.display()
    );
    copy_into_place(from, KEPT.map(PathBuf::from), warm)?;
    eprintln!("== {} (the warm start of {})", warm.display(), from.display());
    Ok(())
}

/// Refused unless the run folder `from` was trained under `config` (its run name aside); the
/// error names its `config.toml` and the keys that differ.
pub fn same_settings(from: &Path, config: &RunConfig) -> anyhow::Result<()> {
    let config_path = from.join("config.toml");
    let mut theirs = RunConfig::from_file(&config_path, &[])
        .with_context(|| format!("reading the run in {}", from.display()))?;
    theirs.run.name.clone_from(&config.run.name);
    // Compared as read back: reading a config resolves its RL schedule's length.
    let mut ours = config.clone();
    ours.train.optim = config.rl_optim();
    anyhow::ensure!(
        theirs == ours,
        "{}: trained under other settings than this study's ({})",
        config_path.display(),
        differing_keys(&theirs.to_toml(), &ours.to_toml())
    );
    Ok(())
}

/// A new run folder that starts at `warm`'s finished warm start: its checkpoint (and, with
/// LoRA, the frozen base it adapts), `latest` naming it, and the metrics up to it.
pub fn fork(warm: &Path, dir: &Path) -> anyhow::Result<()> {
    for name in ["warm-start", "base"] {
        let from = warm.join("checkpoints").join(name);
        if from.is_dir() {
            copy_tree(&from, &dir.join("checkpoints").join(name))?;
        }
    }
    std::fs::write(dir.join("checkpoints/latest"), "warm-start")?;
    let state_path = dir.join("checkpoints/warm-start/trainer_state.json");
    let state: TrainerState = serde_json::from_str(&std::fs::read_to_string(state_path)?)?;
    let metrics = std::fs::read(warm.join("metrics.jsonl"))?;
    let keep = (state.metrics_bytes as usize).min(metrics.len());
    std::fs::write(dir.join("metrics.jsonl"), &metrics[..keep])?;
    Ok(())
}

/// Makes `to` a copy of those of `items` (paths inside the folder `from`) that exist, replacing
/// what was there. Copied into a folder beside `to` and renamed into place, so that an
/// interrupted copy is never taken for a finished one.
pub fn copy_into_place(
    from: &Path,
    items: impl IntoIterator<Item = PathBuf>,
    to: &Path,
) -> anyhow::Result<()> {
    let partial = to.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    for item in items {
        let source = from.join(&item);
        if source.exists() {
            copy_tree(&source, &partial.join(&item))
                .with_context(|| format!("copying {}", source.display()))?;
        }
    }
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::rename(&partial, to).with_context(|| format!("renaming into {}", to.display()))
}

/// Copies the file or folder `from` to `to`, creating what is missing above it.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in
            std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?
        {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// The `section.key` names whose values differ between two TOML configs as `RunConfig` writes
/// them (one key per line), the first few, for an error message.
fn differing_keys(a: &str, b: &str) -> String {
    let entries = |text: &str| -> Vec<String> {
        let mut section = String::new();
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else {
                out.push(format!("{section}.{line}"));
            }
        }
        out
    };
    let (a, b) = (entries(a), entries(b));
    let key = |entry: &str| entry.split(" = ").next().unwrap_or(entry).to_string();
    let mut keys: Vec<String> = a
        .iter()
        .filter(|e| !b.contains(e))
        .chain(b.iter().filter(|e| !a.contains(e)))
        .map(|e| key(e))
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    match keys.len() {
        0 => "the same keys, written differently".into(),
        n if n > 5 => format!("differing: {} and {} more", keys[..5].join(", "), n - 5),
        _ => format!("differing: {}", keys.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::differing_keys;

    #[test]
    fn differing_keys_are_named_by_section() {
        let a = "[run]\nname = \"a\"\n\n[warm_start]\nsteps = 3000\nbatch_size = 32\n";
        let b = "[run]\nname = \"a\"\n\n[warm_start]\nsteps = 5000\nbatch_size = 32\n";
        assert_eq!(differing_keys(a, b), "differing: warm_start.steps");
        assert_eq!(differing_keys(a, a), "the same keys, written differently");
    }
}
