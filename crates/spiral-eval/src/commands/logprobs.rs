//! `spiral-eval logprobs`: per-token log-probs of a completion given a prompt, with the model's
//! full-sequence scoring path (the one training uses).

use std::path::PathBuf;

use anyhow::Context;
use spiral_model::Checkpoint;

use crate::device::{Cpu, parse_device};

/// Arguments of `spiral-eval logprobs`.
#[derive(clap::Args)]
#[command(after_help = "\
The completion's tokens are those of prompt + completion encoded together that come after the
prompt's own tokens, so a merge across the boundary is scored as the model would see it.
With --json the output is {\"token_ids\": [...], \"logprobs\": [...]}.")]
pub struct LogprobsArgs {
    /// Hugging Face model folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Text the completion is conditioned on.
    #[arg(long)]
    pub prompt: String,
    /// Text whose tokens are scored.
    #[arg(long)]
    pub completion: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to run: `cpu` (or `cuda[:N]` in CUDA builds).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: String,
}

/// Runs the command.
pub fn run(args: LogprobsArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::<Cpu>::load(&args.model, &Default::default())?;
    let prompt = ckpt.tokenizer.encode(&args.prompt, false)?;
    let joint = ckpt.tokenizer.encode(&format!("{}{}", args.prompt, args.completion), false)?;
    anyhow::ensure!(
        joint.len() > prompt.len(),
        "the completion {:?} adds no tokens after the prompt",
        args.completion
    );
    let scores = ckpt.model.token_logprobs(std::slice::from_ref(&joint), &[prompt.len()], false)?;
    let row: Vec<f32> =
        scores.logprobs.into_data().convert::<f32>().into_vec().context("reading log-probs")?;
    let token_ids = joint[prompt.len()..].to_vec();
    let logprobs: Vec<f32> = row[prompt.len() - 1..].to_vec();
    if args.json {
        println!("{}", serde_json::json!({ "token_ids": token_ids, "logprobs": logprobs }));
    } else {
        println!("{:>8}  {:>12}  token", "id", "logprob");
        for (id, lp) in token_ids.iter().zip(&logprobs) {
            let text = ckpt.tokenizer.decode(&[*id], false)?;
            println!("{id:>8}  {lp:>12.6}  {text:?}");
        }
        println!("{:>8}  {:>12.6}  (sum)", "", logprobs.iter().map(|&x| x as f64).sum::<f64>());
    }
    Ok(())
}
