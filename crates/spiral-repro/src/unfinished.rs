//! RL runs stopped before their last step, kept beside the report (`<out>/unfinished/<run>/`):
//! a run's config, metrics and latest checkpoint. A study interrupted on one machine resumes
//! that run on another, or from a fresh work folder, at the step it stopped at: a checkpoint
//! resumes exactly, so the run ends as it would have without the interruption. A run's kept
//! copy is dropped once the run is measured.

use std::path::{Path, PathBuf};

use anyhow::Context;
use spiral_train::{RunConfig, latest_checkpoint};

use crate::warm_start::{copy_into_place, same_settings};

/// Where the run folder `dir`'s unfinished copy is kept beside the report in `out`.
fn kept_dir(out: &Path, dir: &Path) -> PathBuf {
    out.join("unfinished").join(dir.file_name().unwrap_or(dir.as_os_str()))
}

/// Keeps a copy of the stopped run in `dir` beside the report in `out`: its config, metrics,
/// latest checkpoint and, with LoRA, the frozen base; an older copy is replaced.
pub fn keep(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let Some(latest) = latest_checkpoint(&dir.join("checkpoints"))? else { return Ok(()) };
    let name = latest.file_name().context("a checkpoint folder without a name")?;
    let kept = kept_dir(out, dir);
    let items = ["config.toml", "metrics.jsonl", "checkpoints/latest", "checkpoints/base"]
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new("checkpoints").join(name)]);
    copy_into_place(dir, items, &kept)?;
    eprintln!("kept {} as {} (a later call resumes it from there)", dir.display(), kept.display());
    Ok(())
}

/// Makes the missing run folder `dir` a copy of its run kept unfinished beside the report in
/// `out`, when there is one trained under `config`; whether it did. A kept run under other
/// settings is left where it is and named, and the run starts afresh.
pub fn restore(out: &Path, dir: &Path, config: &RunConfig) -> anyhow::Result<bool> {
    let kept = kept_dir(out, dir);
    if dir.exists() || !kept.is_dir() {
        return Ok(false);
    }
    if let Err(e) = same_settings(&kept, config) {
        eprintln!("not resuming {}: {e:#}", kept.display());
        return Ok(false);
    }
    let items = std::fs::read_dir(&kept)
        .with_context(|| format!("reading {}", kept.display()))?
        .map(|entry| Ok(PathBuf::from(entry?.file_name())))
        .collect::<std::io::Result<Vec<_>>>()?;
    copy_into_place(&kept, items, dir)?;
    eprintln!("== {} (resuming the run kept in {})", dir.display(), kept.display());
    Ok(true)
}

/// Drops the run folder `dir`'s copy kept beside the report in `out`, if any: its run is done.
pub fn discard(out: &Path, dir: &Path) -> anyhow::Result<()> {
    let kept = kept_dir(out, dir);
    if kept.exists() {
        std::fs::remove_dir_all(&kept).with_context(|| format!("removing {}", kept.display()))?;
    }
    Ok(())
}
