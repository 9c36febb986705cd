//! `spiral-train`: train a model with SPIRAL (or ParaGator / GRPO / Dr.GRPO) from a TOML config.
//! With no arguments it runs the embedded default (`configs/default.toml`): Countdown, a small
//! model from scratch, warm start, SPIRAL, evaluation and a report, on the CPU.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::Parser;
use spiral_train::{Outcome, RunConfig, RunControl, default_out_dir, run, summary};

/// Train a language model to search in parallel and aggregate, end to end with RL.
#[derive(Parser)]
#[command(name = "spiral-train", version, about, long_about = None, after_help = "\
Examples:
  spiral-train                                    # the embedded default run
  spiral-train --config configs/grpo.toml
  spiral-train --set train.steps=10 --set algorithm.n1=6 --out runs/quick
  spiral-train --resume runs/quick                # continue after Ctrl-C or a crash
The resolved config is printed and saved as <out>/config.toml; metrics go to <out>/metrics.jsonl,
checkpoints (Hugging Face folders with optimizer state) to <out>/checkpoints/, the report with
plots to <out>/report.md. Ctrl-C finishes the current step, checkpoints and exits 0; a second
Ctrl-C exits at once.")]
struct Cli {
    /// TOML config (default: the embedded configs/default.toml).
    #[arg(long, conflicts_with = "resume")]
    config: Option<PathBuf>,
    /// Override one key, `section.key=value` (repeatable); unknown keys are refused.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run folder (default: runs/<name>-<unix time>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint, with its saved config.toml
    /// (`--set` may still change it, e.g. `train.steps` to train longer; other changes make the
    /// run differ from an uninterrupted one).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let control = RunControl { resume: cli.resume.is_some(), ..Default::default() };
    let stop = control.stop.clone();
    let handler = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step, then checkpointing (Ctrl-C again to abort)");
    });
    if let Err(err) = handler {
        eprintln!("warning: no Ctrl-C handler ({err}); an interrupt loses the current step");
    }
    let result = (|| -> anyhow::Result<()> {
        let (config, out) = match (&cli.resume, &cli.config) {
            (Some(dir), _) => {
                let path = dir.join("config.toml");
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!("{}: {e} (is this a run folder?)", path.display())
                })?;
                let config =
                    RunConfig::from_toml(&text, &path.display().to_string(), &cli.overrides)?;
                (config, dir.clone())
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                let config =
                    RunConfig::from_toml(&text, &path.display().to_string(), &cli.overrides)?;
                let out = cli.out.clone().unwrap_or_else(|| default_out_dir(&config));
                (config, out)
            }
            (None, None) => {
                let config = RunConfig::default_with(&cli.overrides)?;
                let out = cli.out.clone().unwrap_or_else(|| default_out_dir(&config));
                (config, out)
            }
        };
        println!("{}", config.to_toml());
        eprintln!("run folder: {}", out.display());
        match run(&config, &out, &control)? {
            Outcome::Finished(last) => println!("final: {}", summary(&last)),
            Outcome::Stopped(checkpoint) => println!(
                "stopped; checkpoint {} (continue with --resume {})",
                checkpoint.display(),
                out.display()
            ),
        }
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
