//! `cargo xtask same-run [--base REV] [--steps N]`: checks that a change leaves training as it
//! was. It builds `spiral-train` at `REV` (in a git worktree) and from the working tree, runs the
//! embedded default run for `N` RL steps with each on this machine, and compares their
//! `metrics.jsonl` record by record: warm-start and RL losses, rewards, advantages, gradient norms
//! and evaluation metrics must be bit-identical; only wall-clock fields (`*_seconds`, `*_per_s`)
//! may differ.
//!
//! Both sides run on the same machine because the CPU's matrix-product kernels (AVX2 or
//! AVX-512, chosen at run time) sum in different orders on different processors: a record made on
//! one machine is not an expectation for another.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{run_command, workspace_root};

/// Arguments of `cargo xtask same-run`.
#[derive(clap::Args)]
pub struct SameRunArgs {
    /// The revision to compare the working tree with.
    #[arg(long, default_value = "HEAD")]
    base: String,
    /// RL steps of the default run (its warm start and evaluations run in full).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Further `--set` overrides for both runs (e.g. `algorithm.name=grpo`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Where the two runs and the base's worktree go (default: target/same-run).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: SameRunArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let work = args.work.clone().unwrap_or_else(|| root.join("target/same-run"));
    if work.exists() {
        remove_worktree(&root, &work.join("base-tree"));
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;

    let tree = work.join("base-tree");
    run_command(
        Command::new("git").args(["worktree", "add", "--detach"]).arg(&tree).arg(&args.base),
    )?;
    // The same target folder as the working tree's, so dependencies build once.
    let base_binary = build_train(&tree, &root.join("target"), &work.join("spiral-train-base"));
    remove_worktree(&root, &tree);
    let base_binary = base_binary?;
    let current_binary = build_train(&root, &root.join("target"), &work.join("spiral-train"))?;

    let mut records = Vec::new();
    for (side, binary) in [("base", &base_binary), ("current", &current_binary)] {
        let out = work.join(side);
        let mut cmd = Command::new(binary);
        cmd.arg("--out").arg(&out).args(["--set", &format!("train.steps={}", args.steps)]);
        for item in &args.overrides {
            cmd.args(["--set", item]);
        }
        run_command(cmd.stdout(std::process::Stdio::null()))?;
        records.push(read_records(&out.join("metrics.jsonl"))?);
    }
    let differences = compare(&records[0], &records[1]);
    if differences.is_empty() {
        println!(
            "same run: {} records of {} and the working tree are identical (timings aside)",
            records[0].len(),
            args.base
        );
        return Ok(());
    }
    for difference in &differences {
        eprintln!("{difference}");
    }
    bail!("the working tree's run differs from {}'s in {} place(s)", args.base, differences.len())
}

/// Builds `spiral-train` from the checkout at `dir` into `target` and copies it to `to`.
fn build_train(dir: &Path, target: &Path, to: &Path) -> anyhow::Result<PathBuf> {
    run_command(
        Command::new(env!("CARGO"))
            .args(["build", "-p", "spiral-train", "--bin", "spiral-train"])
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target),
    )?;
    std::fs::copy(target.join("debug/spiral-train"), to)
        .with_context(|| format!("copying the spiral-train built from {}", dir.display()))?;
    Ok(to.to_path_buf())
}

fn remove_worktree(root: &Path, tree: &Path) {
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(tree)
        .current_dir(root)
        .status();
}

/// The records of a `metrics.jsonl`, without their wall-clock fields.
fn read_records(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut record: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), number + 1))?;
        if let Value::Object(fields) = &mut record {
            fields.retain(|key, _| !is_timing(key));
        }
        records.push(record);
    }
    ensure!(!records.is_empty(), "{} holds no records", path.display());
    Ok(records)
}

/// Fields that measure time, not training.
fn is_timing(key: &str) -> bool {
    key.ends_with("_seconds") || key.ends_with("_per_s")
}

/// Each difference between two runs' records, as `record N (kind, step) key: base -> current`.
fn compare(base: &[Value], current: &[Value]) -> Vec<String> {
    let mut differences = Vec::new();
    if base.len() != current.len() {
        differences.push(format!("{} records before, {} now", base.len(), current.len()));
    }
    for (number, (a, b)) in base.iter().zip(current).enumerate() {
        let label = format!("record {} ({} step {})", number + 1, a["kind"], a["step"]);
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            differences.push(format!("{label}: not an object"));
            continue;
        };
        for (key, before) in a {
            match b.get(key) {
                Some(now) if now == before => {}
                Some(now) => differences.push(format!("{label} {key}: {before} -> {now}")),
                None => differences.push(format!("{label} {key}: {before} -> missing")),
            }
        }
        for key in b.keys().filter(|key| !a.contains_key(*key)) {
            differences.push(format!("{label} {key}: new"));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_may_differ_and_everything_else_may_not() {
        let base =
            [serde_json::json!({"kind": "train", "step": 1, "loss": 0.5, "learn_seconds": 1.0})];
        let mut same = base.clone();
        same[0]["learn_seconds"] = serde_json::json!(2.0);
        same[0].as_object_mut().unwrap().retain(|k, _| !is_timing(k));
        let base: Vec<Value> = base
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().retain(|k, _| !is_timing(k));
                r
            })
            .collect();
        assert!(compare(&base, &same).is_empty());
        let mut other = same.clone();
        other[0]["loss"] = serde_json::json!(0.5000001);
        let differences = compare(&base, &other);
        assert_eq!(differences.len(), 1);
        assert!(differences[0].contains("loss: 0.5 -> 0.5000001"), "{differences:?}");
        assert!(!compare(&base, &[]).is_empty(), "a missing record is a difference");
    }
}
