//! `cargo xtask test`: the test suite, as CI runs it (`.ci/run`): the text checks of `tidy` and
//! `cargo fmt --check` first (seconds), then every test of the workspace, then clippy on the
//! whole workspace without and with the `cuda` feature, so that the CUDA backend keeps building
//! on machines without a GPU or a CUDA toolkit (it loads the driver at run time). GPU-only tests
//! are compiled there and run where a GPU is (`--features cuda` on that machine). Where an MPI
//! library is installed, the data-parallel tests run under `mpirun` and clippy also checks the
//! `mpi` feature; elsewhere they are skipped, with what to install.

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
    let mpi = has_mpi();
    if mpi {
        // `--workspace` keeps the dependencies' features, and so their builds, those of the
        // tests above.
        run_command(Command::new(env!("CARGO")).args([
            "test",
            "--workspace",
            "--features",
            "spiral-train/mpi",
            "--test",
            "data_parallel",
        ]))?;
    } else {
        eprintln!(
            "skipped: the data-parallel tests across MPI ranks and clippy of the `mpi` feature \
             (no MPI library; install Open MPI, e.g. `apt-get install openmpi-bin \
             libopenmpi-dev libclang-dev`)"
        );
    }
    tidy::clippy(mpi)
}

/// Whether Open MPI (or MPICH) is installed: its launcher and its compiler wrapper, which the
/// `mpi` crate's build asks for the library's flags.
pub fn has_mpi() -> bool {
    ["mpirun", "mpicc"].iter().all(|tool| {
        Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success())
    })
}
