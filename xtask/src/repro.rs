//! `cargo xtask repro [--quick] [ARGS..]`: builds `spiral-repro` in release and runs it from the
//! workspace root (SPIRAL against GRPO, Dr.GRPO and ParaGator; see `crates/spiral-repro`).
//! Arguments after `--quick` go to `spiral-repro` as they are (`cargo xtask repro -- --help`
//! lists them).

use std::process::Command;

use crate::{run_command, workspace_root};

/// Arguments of `cargo xtask repro`.
#[derive(clap::Args)]
pub struct ReproArgs {
    /// One seed and small sizes: a smoke check under 20 minutes on 2 cores.
    #[arg(long)]
    quick: bool,
    /// Passed to `spiral-repro` (`--seeds`, `--set`, `--work`, `--out`, `--help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs the command.
pub fn run(args: ReproArgs) -> anyhow::Result<()> {
    run_command(Command::new(env!("CARGO")).args(["build", "--release", "-p", "spiral-repro"]))?;
    let mut repro = Command::new(workspace_root().join("target/release/spiral-repro"));
    if args.quick {
        repro.arg("--quick");
    }
    run_command(repro.args(&args.rest))
}
