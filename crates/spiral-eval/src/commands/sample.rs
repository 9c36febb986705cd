//! `spiral-eval sample`: `n` responses from a checkpoint to every problem of a JSONL dataset,
//! scored with the task's reward, written as a samples file that `spiral-eval passk` reads. The
//! work is the library's (`spiral_eval::{load_problems, ModelSampler, sample_problems}`); this
//! file parses the arguments and writes the lines.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::Backend;
use spiral_eval::{
    ChatMode, DatasetProblem, ModelSampler, SamplerSettings, load_problems, sample_problems,
};
use spiral_model::{Checkpoint, DeviceSpec, Precision};
use spiral_rewards::{FieldNames, PromptStyle, Task};
use spiral_rollout::SamplingParams;

use super::{ADAPTER_HELP, MODEL_HELP, load_checkpoint};
use crate::device::{ModelCommand, run_model_command};

/// The model, data and sampling flags shared by `sample` and `rsa`.
#[derive(clap::Args)]
pub struct ModelDataArgs {
    #[arg(long, help = MODEL_HELP)]
    pub model: PathBuf,
    #[arg(long, help = ADAPTER_HELP)]
    pub adapter: Option<PathBuf>,
    /// JSONL dataset, one problem per line (fields as `spiral-eval score` reads them; an `id`
    /// field names the problem, else its line number), or Parquet: a `.parquet` file, a folder
    /// or a glob of shards read in name order, problems named by row number. Field names may be
    /// dotted paths (`reward_model.ground_truth`); a field of chat messages gives its one user
    /// message.
    #[arg(long)]
    pub data: PathBuf,
    /// The task: `math`, `countdown`, `arith` or `combination` (picks the fields and the reward).
    #[arg(long, value_parser = parse_task)]
    pub task: Task,
    /// Field holding the problem (default: `problem`; `nums` for countdown).
    #[arg(long)]
    pub problem_field: Option<String>,
    /// Field holding the reference answer (default: `answer`; `target` for countdown).
    #[arg(long)]
    pub answer_field: Option<String>,
    /// Only the first K problems.
    #[arg(long)]
    pub limit: Option<usize>,
    /// How problems are worded: `compact` or `instruct`.
    #[arg(long, default_value = "compact", value_parser = parse_style)]
    pub prompt_style: PromptStyle,
    /// Send prompts through the chat template (default: when the tokenizer has one).
    #[arg(long, conflicts_with = "no_chat")]
    pub chat: bool,
    /// Send the plain prompt text and a newline, even when there is a chat template.
    #[arg(long)]
    pub no_chat: bool,
    /// Most tokens per response.
    #[arg(long, default_value_t = 512)]
    pub max_new_tokens: usize,
    /// Softmax temperature (0: greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Nucleus sampling mass, in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Keep only the k most likely tokens (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Seed: the same seed, model and data give the same samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to run: `cpu`, or `cuda[:N]` in builds with `--features cuda`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// Compute dtype: `float32`, or `bfloat16` (bf16 weights and activations; norms, softmax
    /// and log-probs in float32).
    #[arg(long, default_value = "float32")]
    pub precision: Precision,
}

impl ModelDataArgs {
    /// The checkpoint, on `device`, and the problems (the first `--limit`).
    pub fn load<B: Backend>(
        &self,
        device: &B::Device,
    ) -> anyhow::Result<(Checkpoint<B>, Vec<DatasetProblem>)> {
        let fields = FieldNames {
            problem: self.problem_field.clone().unwrap_or(FieldNames::for_task(self.task).problem),
            answer: self.answer_field.clone().unwrap_or(FieldNames::for_task(self.task).answer),
        };
        let mut problems = load_problems(&self.data, self.task, &fields)?;
        problems.truncate(self.limit.unwrap_or(usize::MAX));
        if problems.is_empty() {
            anyhow::bail!("{}: no problems", self.data.display());
        }
        let ckpt =
            load_checkpoint::<B>(&self.model, self.adapter.as_deref(), self.precision, device)?;
        Ok((ckpt, problems))
    }

    /// What reports call the model: the adapter when there is one, else the model.
    pub fn label(&self) -> &Path {
        self.adapter.as_deref().unwrap_or(&self.model)
    }

    /// The sampler settings of the flags.
    pub fn settings(&self) -> SamplerSettings {
        let chat = match (self.chat, self.no_chat) {
            (true, _) => ChatMode::On,
            (_, true) => ChatMode::Off,
            _ => ChatMode::Auto,
        };
        let sampling = SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: 0.0,
            seed: self.seed,
            first_prompt: 0,
        };
        SamplerSettings { sampling, max_new_tokens: self.max_new_tokens, chat }
    }
}

fn parse_task(value: &str) -> Result<Task, String> {
    value.parse().map_err(|e: spiral_rewards::RewardError| e.to_string())
}

fn parse_style(value: &str) -> Result<PromptStyle, String> {
    match value {
        "compact" => Ok(PromptStyle::Compact),
        "instruct" => Ok(PromptStyle::Instruct),
        other => Err(format!("unknown prompt style `{other}`: expected `compact` or `instruct`")),
    }
}

/// Arguments of `spiral-eval sample`.
#[derive(clap::Args)]
#[command(after_help = "\
Writes one JSON line per sample, problems in file order:
  {\"problem_id\": \"q1\", \"sample\": 0, \"reward\": 1.0, \"answer\": \"4\" (null when none),
   \"response\": \"...\", \"tokens\": 57, \"finish_reason\": \"eos\"|\"length\"}
which `spiral-eval passk --input FILE` reads.")]
pub struct SampleArgs {
    #[command(flatten)]
    pub common: ModelDataArgs,
    /// Samples per problem.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Samples file to write (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for SampleArgs {
    fn device(&self) -> DeviceSpec {
        self.common.device
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        sample::<B>(self, device)
    }
}

fn sample<B: Backend>(args: SampleArgs, device: &B::Device) -> anyhow::Result<()> {
    let (ckpt, problems) = args.common.load::<B>(device)?;
    let sampler = ModelSampler::new(&ckpt.model, &ckpt.tokenizer, &args.common.settings())?;
    let (mut out, name): (Box<dyn Write>, String) = match &args.output {
        Some(path) => (Box::new(BufWriter::new(create(path)?)), path.display().to_string()),
        None => (Box::new(io::stdout().lock()), "<stdout>".into()),
    };
    sample_problems(&sampler, &problems, args.n, args.common.prompt_style, |records| {
        for r in records {
            serde_json::to_writer(&mut out, &r).with_context(|| format!("cannot write {name}"))?;
            out.write_all(b"\n").with_context(|| format!("cannot write {name}"))?;
        }
        anyhow::Ok(())
    })?;
    out.flush().with_context(|| format!("cannot write {name}"))?;
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot write {}", path.display()))
}
