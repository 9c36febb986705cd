//! `cargo xtask`: the workspace's automation, one file per subcommand (after rust-analyzer's
//! `xtask/`). Run `cargo xtask --help` for the list.

mod bench;
mod fixtures;
mod gpu_bundle;
mod gpu_memory;
mod long_context;
mod ranks;
mod repro;
mod same_run;
mod test;
mod tidy;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Build, fixture and benchmark automation for the SPIRAL workspace.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the transformers parity fixtures of spiral-model, then check that checkpoints
    /// re-saved by Rust load in transformers with the same numbers. Needs Python 3 and PyPI.
    Fixtures(fixtures::FixturesArgs),
    /// Run a standard workload of docs/benchmarks.md (and the PyTorch peer with --peer).
    Bench(bench::BenchArgs),
    /// Train GRPO, Dr.GRPO, ParaGator and SPIRAL from one warm start with matched compute and
    /// several seeds, measure pass@k, RSA, majority vote against aggregation and token budgets,
    /// and write docs/results/ (resumes when run again).
    Repro(repro::ReproArgs),
    /// Check that the working tree trains exactly as a base revision does: the default run for a
    /// few RL steps with each, built and run on this machine, metrics compared timings aside.
    SameRun(same_run::SameRunArgs),
    /// The test suite, as CI runs it: the text checks and `cargo fmt --check`, `cargo test
    /// --workspace`, then clippy without and with `--features cuda` (no GPU or CUDA toolkit
    /// needed).
    Test(test::TestArgs),
    /// Formatting, clippy (`-D warnings`, also with `--features cuda`), `//!` headers, file
    /// lengths, and that the repository speaks of the software alone and stays inside itself.
    Tidy(tidy::TidyArgs),
    /// Build the CUDA binaries into .gpu/ for a GPU machine without a Rust toolchain, where
    /// `bash scripts/gpu/measure.sh` then checks and times the CUDA backend in one command.
    GpuBundle(gpu_bundle::GpuBundleArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fixtures(args) => fixtures::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Repro(args) => repro::run(args),
        Command::SameRun(args) => same_run::run(args),
        Command::Test(args) => test::run(args),
        Command::Tidy(args) => tidy::run(args),
        Command::GpuBundle(args) => gpu_bundle::run(args),
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root, echoing it, and fails if it fails.
pub(crate) fn run_command(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.current_dir(workspace_root()).status()?;
    anyhow::ensure!(status.success(), "command failed with {status}: {cmd:?}");
    Ok(())
}
