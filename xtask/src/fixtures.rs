//! `cargo xtask fixtures`: regenerate spiral-model's parity fixtures with transformers and
//! verify Rust-saved checkpoints with it. Not run by CI (it needs torch from PyPI); the outputs
//! are committed and the Rust tests compare against them.

use std::process::Command;

use crate::{run_command, workspace_root};

const FIXTURES: &str = "crates/spiral-model/tests/fixtures";

/// Arguments of `cargo xtask fixtures`.
#[derive(clap::Args)]
pub struct FixturesArgs {
    /// Only check Rust-saved checkpoints against transformers; keep the committed fixtures.
    #[arg(long)]
    verify_only: bool,
    /// Python interpreter used to create the virtual environment.
    #[arg(long, default_value = "python3")]
    python: String,
}

/// Runs the command.
pub fn run(args: FixturesArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run_command(Command::new(&args.python).args(["-m", "venv"]).arg(&venv))?;
    }
    run_command(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(format!("{FIXTURES}/requirements.txt")),
    )?;
    if !args.verify_only {
        run_command(Command::new(&python).arg(format!("{FIXTURES}/make_fixtures.py")))?;
    }
    // Re-save every fixture from Rust, then load those folders with transformers.
    let resave = tempfile_dir()?;
    run_command(
        Command::new(env!("CARGO"))
            .args(["test", "-p", "spiral-model", "--test", "save_roundtrip"])
            .env("SPIRAL_RESAVE_DIR", &resave),
    )?;
    let mut verify = Command::new(&python);
    verify.arg(format!("{FIXTURES}/make_fixtures.py")).arg("--verify");
    for entry in std::fs::read_dir(&resave)? {
        verify.arg(entry?.path());
    }
    run_command(&mut verify)?;
    std::fs::remove_dir_all(&resave)?;
    eprintln!("fixtures: transformers loads Rust-saved checkpoints with identical numbers");
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("spiral-resave-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
