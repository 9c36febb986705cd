//! `cargo xtask test`: the test suite, as CI runs it (`.ci/run`): the text checks of `tidy` and
//! `cargo fmt --check` first (seconds), then every test of the workspace, then clippy on the
//! whole workspace without and with the `cuda` feature, so that the CUDA backend keeps building
//! on machines without a GPU or a CUDA toolkit (it loads the driver at run time). GPU-only tests
//! are compiled there and run where a GPU is (`--features cuda` on that machine).

use std::process::Command;

use crate::{run_command, tidy};

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct TestArgs {
    /// Arguments passed on to `cargo test --workspace` (e.g. `-- --nocapture`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Runs the command.
pub fn run(args: TestArgs) -> anyhow::Result<()> {
    tidy::text_checks()?;
    run_command(Command::new(env!("CARGO")).args(["fmt", "--all", "--check"]))?;
    run_command(Command::new(env!("CARGO")).args(["test", "--workspace"]).args(&args.rest))?;
    tidy::clippy()
}
