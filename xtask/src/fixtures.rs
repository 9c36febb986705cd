//! `cargo xtask fixtures`: regenerate spiral-model's parity fixtures with transformers and PEFT,
//! and verify Rust-saved checkpoints and LoRA adapters with them. Not run by CI (it needs torch
//! from PyPI); the outputs are committed and the Rust tests compare against them.

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
    // Re-save every fixture from Rust, then load those folders with transformers (checkpoints)
    // and PEFT (adapters, including ones made and changed by Rust).
    let resave = tempfile_dir()?;
    let adapters = resave.join("adapters");
    std::fs::create_dir_all(&adapters)?;
    for (test, dir) in [("save_roundtrip", &resave), ("lora", &adapters)] {
        run_command(
            Command::new(env!("CARGO"))
                .args(["test", "-p", "spiral-model", "--test", test])
                .env("SPIRAL_RESAVE_DIR", dir),
        )?;
    }
    let mut verify = Command::new(&python);
    verify.arg(format!("{FIXTURES}/make_fixtures.py")).arg("--verify");
    for entry in std::fs::read_dir(&resave)? {
        let path = entry?.path();
        if path != adapters {
            verify.arg(path);
        }
    }
    verify.arg("--verify-adapter");
    for entry in std::fs::read_dir(&adapters)? {
        verify.arg(entry?.path());
    }
    run_command(&mut verify)?;
    std::fs::remove_dir_all(&resave)?;
    eprintln!(
        "fixtures: transformers and PEFT load Rust-saved checkpoints and adapters with the same \
         numbers"
    );
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
