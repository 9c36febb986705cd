//! `spiral-train`: train a model with SPIRAL (or GRPO / Dr.GRPO) from a TOML config. With no
//! arguments it runs the embedded default (`configs/default.toml`): Countdown, a small model
//! from scratch, warm start, SPIRAL, evaluation and a report, on the CPU.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use spiral_train::{RunConfig, default_out_dir, run, summary};

/// Train a language model to search in parallel and aggregate, end to end with RL.
#[derive(Parser)]
#[command(name = "spiral-train", version, about, long_about = None, after_help = "\
Examples:
  spiral-train                                    # the embedded default run
  spiral-train --config configs/grpo.toml
  spiral-train --set train.steps=10 --set algorithm.n1=6 --out runs/quick
The resolved config is printed and saved as <out>/config.toml; metrics go to <out>/metrics.jsonl.")]
struct Cli {
    /// TOML config (default: the embedded configs/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one key, `section.key=value` (repeatable); unknown keys are refused.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run folder (default: runs/<name>-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<()> {
        let config = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                RunConfig::from_toml(&text, &path.display().to_string(), &cli.overrides)?
            }
            None => RunConfig::default_with(&cli.overrides)?,
        };
        println!("{}", config.to_toml());
        let out = cli.out.clone().unwrap_or_else(|| default_out_dir(&config));
        eprintln!("run folder: {}", out.display());
        let last = run(&config, &out)?;
        println!("final: {}", summary(&last));
        println!("report: {}", out.join("report.md").display());
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
