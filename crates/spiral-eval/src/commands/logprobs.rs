//! `spiral-eval logprobs`: per-token log-probs of a completion given a prompt, with the model's
//! full-sequence scoring path (the one training uses).

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::Backend;
use spiral_model::{DeviceSpec, Precision};

use super::{ADAPTER_HELP, MODEL_HELP, load_checkpoint};
use crate::device::{ModelCommand, run_model_command};

/// Arguments of `spiral-eval logprobs`.
#[derive(clap::Args)]
#[command(after_help = "\
The completion's tokens are those of prompt + completion encoded together that come after the
prompt's own tokens, so a merge across the boundary is scored as the model would see it.
With --json the output is {\"token_ids\": [...], \"logprobs\": [...]}.")]
pub struct LogprobsArgs {
    #[arg(long, help = MODEL_HELP)]
    pub model: PathBuf,
    #[arg(long, help = ADAPTER_HELP)]
    pub adapter: Option<PathBuf>,
    /// Text the completion is conditioned on.
    #[arg(long)]
    pub prompt: String,
    /// Text whose tokens are scored.
    #[arg(long)]
    pub completion: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to run: `cpu`, or `cuda[:N]` in builds with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Compute dtype: `float32`, or `bfloat16` (bf16 weights and activations; norms, softmax
    /// and log-probs in float32).
    #[arg(long, default_value = "float32")]
    pub precision: Precision,
}

/// Runs the command.
pub fn run(args: LogprobsArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for LogprobsArgs {
    fn device(&self) -> DeviceSpec {
        self.device
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        logprobs::<B>(self, device)
    }
}

fn logprobs<B: Backend>(args: LogprobsArgs, device: &B::Device) -> anyhow::Result<()> {
    let ckpt = load_checkpoint::<B>(&args.model, args.adapter.as_deref(), args.precision, device)?;
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
