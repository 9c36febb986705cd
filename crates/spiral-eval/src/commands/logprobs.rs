//! `spiral-eval logprobs` (placeholder until its issue lands; replaced, not kept).

/// Arguments of `spiral-eval logprobs`.
#[derive(clap::Args)]
pub struct LogprobsArgs {}

/// Runs the command.
pub fn run(_args: LogprobsArgs) -> anyhow::Result<()> {
    anyhow::bail!("`spiral-eval logprobs` is not built yet")
}
