//! `spiral-eval generate` (placeholder until its issue lands; replaced, not kept).

/// Arguments of `spiral-eval generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {}

/// Runs the command.
pub fn run(_args: GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("`spiral-eval generate` is not built yet")
}
