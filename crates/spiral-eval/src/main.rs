//! `spiral-eval`: score, sample and inspect language models and rewards from the command line.

mod commands;
mod device;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See [`spiral_kernels::allocator`] for why.
#[global_allocator]
static ALLOCATOR: spiral_kernels::allocator::MiMalloc = spiral_kernels::allocator::MiMalloc;

/// Evaluate SPIRAL models and rewards: log-probs, generation, reward scoring, advantages,
/// sampling with pass@k / maj@k, and recursive self-aggregation.
#[derive(Parser)]
#[command(name = "spiral-eval", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-token log-probs of a completion given a prompt.
    Logprobs(commands::logprobs::LogprobsArgs),
    /// Generate a continuation of a prompt (greedy or sampled).
    Generate(commands::generate::GenerateArgs),
    /// Score responses in a JSONL file with a verifiable reward.
    Score(commands::score::ScoreArgs),
    /// Compute advantages (GRPO, Dr.GRPO, RLOO, pass@k, SPIRAL) for groups in a JSONL file.
    Advantages(commands::advantages::AdvantagesArgs),
    /// Unbiased pass@k and maj@k, averaged over problems, from a samples JSONL file.
    Passk(commands::passk::PasskArgs),
    /// Sample responses to a dataset's problems and score them: a samples file for `passk`.
    Sample(commands::sample::SampleArgs),
    /// Recursive self-aggregation: per-round pass@1, maj@N and pass@N, and a report.
    Rsa(commands::rsa::RsaArgs),
    /// Parallel, token-efficiency and sequential scaling curves, and scaling efficiency.
    Scaling(commands::scaling::ScalingArgs),
    /// Write a model, an adapter merged in, as a Hugging Face folder (dtype, shards).
    Export(commands::export::ExportArgs),
}

fn main() -> ExitCode {
    spiral_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Logprobs(args) => commands::logprobs::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Score(args) => commands::score::run(args),
        Command::Advantages(args) => commands::advantages::run(args),
        Command::Passk(args) => commands::passk::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Rsa(args) => commands::rsa::run(args),
        Command::Scaling(args) => commands::scaling::run(args),
        Command::Export(args) => commands::export::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line, never a panic trace: the chain of causes joined on one line.
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
