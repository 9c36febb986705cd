//! `spiral-eval generate`: continue a prompt `n` times with the batched rollout engine
//! (`spiral-rollout`), greedily or by seeded temperature / top-k / top-p / min-p sampling;
//! samples stop at any of the model's EOS tokens or at a `--stop` string.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use spiral_model::{DeviceSpec, Precision};
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};

use super::{ADAPTER_HELP, MODEL_HELP, load_checkpoint};
use crate::device::{ModelCommand, run_model_command};

/// Arguments of `spiral-eval generate`.
#[derive(clap::Args)]
#[command(after_help = "\
Exactly one of --greedy or --temperature is required. With --chat the prompt is sent as one
user message through the model's chat template (with the generation prompt appended).
With --json each sample prints one line:
  {\"sample\": i, \"token_ids\": [...new tokens], \"text\": \"...\", \"finish_reason\": \"eos\"|\"stop_string\"|\"length\"}")]
pub struct GenerateArgs {
    #[arg(long, help = MODEL_HELP)]
    pub model: PathBuf,
    #[arg(long, help = ADAPTER_HELP)]
    pub adapter: Option<PathBuf>,
    /// Text to continue (or the user message with --chat).
    #[arg(long)]
    pub prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Always take the most likely token.
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "seed"], required_unless_present = "temperature")]
    pub greedy: bool,
    /// Sample with this softmax temperature.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, in (0, 1].
    #[arg(long, default_value_t = 1.0, requires = "temperature")]
    pub top_p: f64,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0, requires = "temperature")]
    pub top_k: usize,
    /// Drop tokens less likely than min-p times the most likely one (0: off).
    #[arg(long, default_value_t = 0.0, requires = "temperature")]
    pub min_p: f64,
    /// Seed of the sampler: the same seed and inputs give the same tokens.
    #[arg(long, default_value_t = 0, requires = "temperature")]
    pub seed: u64,
    /// Number of samples, generated together from one prefill of the prompt.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Stop a sample when its text contains this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Render the prompt as a user message with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object instead of the text.
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
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for GenerateArgs {
    fn device(&self) -> DeviceSpec {
        self.device
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        generate::<B>(self, device)
    }
}

fn generate<B: Backend>(args: GenerateArgs, device: &B::Device) -> anyhow::Result<()> {
    let ckpt = load_checkpoint::<B>(&args.model, args.adapter.as_deref(), args.precision, device)?;
    let prompt = if args.chat {
        let messages = serde_json::json!([{ "role": "user", "content": args.prompt }]);
        ckpt.tokenizer.apply_chat_template(&messages, true, &Default::default())?
    } else {
        args.prompt.clone()
    };
    let prompt_ids = ckpt.tokenizer.encode(&prompt, false)?;
    let sampling = match args.temperature {
        Some(temperature) => SamplingParams {
            temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            min_p: args.min_p,
            seed: args.seed,
            first_prompt: 0,
        },
        None => SamplingParams::greedy(),
    };
    let request = RolloutRequest {
        prompts: vec![prompt_ids],
        n: args.n,
        sampling,
        stop: StopConditions {
            eos_token_ids: ckpt.tokenizer.eos_token_ids().to_vec(),
            stop_strings: args.stop.clone(),
            max_new_tokens: args.max_new_tokens,
        },
        max_total_tokens: None,
    };
    let out = RolloutEngine::default().generate(&ckpt.model, Some(&ckpt.tokenizer), &request)?;
    for sample in &out.samples {
        let text = ckpt.tokenizer.decode(&sample.tokens, true)?;
        if args.json {
            let finish = serde_json::to_value(&sample.finish)?;
            println!(
                "{}",
                serde_json::json!({
                    "sample": sample.sample_index,
                    "token_ids": sample.tokens,
                    "text": text,
                    "finish_reason": finish["reason"],
                })
            );
        } else if args.n > 1 {
            println!("--- sample {} ({:?})\n{text}", sample.sample_index, sample.finish);
        } else {
            println!("{text}");
        }
    }
    Ok(())
}
