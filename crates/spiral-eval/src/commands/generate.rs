//! `spiral-eval generate`: continue a prompt with the KV-cached decoder, greedily or by seeded
//! temperature / top-p sampling; stops at any of the model's EOS tokens.

use std::path::PathBuf;

use spiral_model::{generate, Checkpoint, GenerateOptions, Sampling};

use crate::device::{parse_device, Cpu};

/// Arguments of `spiral-eval generate`.
#[derive(clap::Args)]
#[command(after_help = "\
Exactly one of --greedy or --temperature is required. With --chat the prompt is sent as one
user message through the model's chat template (with the generation prompt appended).
With --json the output is {\"token_ids\": [...new tokens], \"text\": \"...\"}.")]
pub struct GenerateArgs {
    /// Hugging Face model folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
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
    /// Seed of the sampler: the same seed and inputs give the same tokens.
    #[arg(long, default_value_t = 0, requires = "temperature")]
    pub seed: u64,
    /// Render the prompt as a user message with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Print one JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
    /// Where to run: `cpu` (or `cuda[:N]` in CUDA builds).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: String,
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::<Cpu>::load(&args.model, &Default::default())?;
    let prompt = if args.chat {
        let messages = serde_json::json!([{ "role": "user", "content": args.prompt }]);
        ckpt.tokenizer.apply_chat_template(&messages, true, &Default::default())?
    } else {
        args.prompt.clone()
    };
    let prompt_ids = ckpt.tokenizer.encode(&prompt, false)?;
    let sampling = match args.temperature {
        Some(temperature) => Sampling::Sample { temperature, top_p: args.top_p, seed: args.seed },
        None => Sampling::Greedy,
    };
    let options = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        stop_token_ids: ckpt.tokenizer.eos_token_ids().to_vec(),
    };
    let token_ids = generate(&ckpt.model, &prompt_ids, &options)?;
    let text = ckpt.tokenizer.decode(&token_ids, true)?;
    if args.json {
        println!("{}", serde_json::json!({ "token_ids": token_ids, "text": text }));
    } else {
        println!("{text}");
    }
    Ok(())
}
