//! `spiral-eval rsa`: recursive self-aggregation (Venkatraman et al., 2025) on a dataset with a
//! checkpoint: N samples per problem, then T rounds in which N aggregations over K members of the
//! population replace it, one batched engine call per round. Prints pass@1, maj@N and pass@N per
//! round and, with `--out`, writes a report with the RSA curve. The work is the library's
//! (`spiral_eval::{run_rsa, rsa_report}`); this file parses the arguments and prints.

use std::path::{Path, PathBuf};

use anyhow::Context;

use burn::tensor::backend::Backend;
use serde_json::json;
use spiral_aggregation::{RsaConfig, RsaRun, SetSampling};
use spiral_eval::{
    DatasetProblem, ModelSampler, RsaOptions, git_commit, rsa_report, rsa_summary_json, run_rsa,
};
use spiral_model::{DeviceSpec, write_atomically};

use crate::commands::sample::ModelDataArgs;
use crate::device::{ModelCommand, run_model_command};

/// Arguments of `spiral-eval rsa`.
#[derive(clap::Args)]
#[command(after_help = "\
Output with --json, one object:
  {\"rounds\": [{\"round\": 0, \"pass@1\": ..., \"maj@N\": ..., \"pass@N\": ...,
   \"generated_tokens\": ..., \"prompt_tokens\": ...}, ...], \"problems\": P, \"population\": N,
   \"k\": K, \"engine_calls\": [prompts per aggregation round]}
round 0 is the initial population; token counts are means per problem. Without --json, a table.
With --out DIR: DIR/report.md, DIR/rsa.png and DIR/rsa.svg (95% bootstrap intervals).
With --traces FILE, every population as JSONL, one line per round and problem:
  {\"round\": 1, \"id\": \"...\", \"prompt_tokens\": ..., \"vote\": i|null,
   \"members\": [{\"text\": ..., \"tokens\": ..., \"reward\": ..., \"answer\": ...}, ...]}")]
pub struct RsaArgs {
    #[command(flatten)]
    pub common: ModelDataArgs,
    /// Population N: traces per problem in every round.
    #[arg(long, default_value_t = 8)]
    pub population: usize,
    /// Traces per aggregation prompt, K (at most N).
    #[arg(long, default_value_t = 4)]
    pub k: usize,
    /// Aggregation rounds T (0 scores the initial population only).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Folder for the report (markdown, PNG and SVG).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write every round's population to this JSONL file, to read what the aggregations wrote.
    #[arg(long)]
    pub traces: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: RsaArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for RsaArgs {
    fn device(&self) -> DeviceSpec {
        self.common.device
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        rsa::<B>(self, device)
    }
}

fn rsa<B: Backend>(args: RsaArgs, device: &B::Device) -> anyhow::Result<()> {
    if args.k == 0 || args.k > args.population {
        anyhow::bail!(
            "--k must be between 1 and --population ({}), got {}",
            args.population,
            args.k
        );
    }
    let (ckpt, problems) = args.common.load::<B>(device)?;
    let sampler = ModelSampler::new(&ckpt.model, &ckpt.tokenizer, &args.common.settings())?;
    let rsa = RsaConfig {
        rounds: args.rounds,
        k: args.k,
        sampling: SetSampling::default(),
        seed: args.common.seed,
    };
    let options = RsaOptions { population: args.population, rsa, style: args.common.prompt_style };
    let outcome = run_rsa(&sampler, &problems, &options)?;
    let mut summary = rsa_summary_json(&outcome.run);
    summary["problems"] = json!(problems.len());
    summary["population"] = json!(args.population);
    summary["k"] = json!(args.k);
    summary["engine_calls"] = json!(outcome.calls);
    if let Some(dir) = &args.out {
        let c = &args.common;
        let config = json!({
            "model": c.model.display().to_string(),
            "adapter": c.adapter.as_ref().map(|a| a.display().to_string()),
            "data": c.data.display().to_string(),
            "task": c.task.name(),
            "problems": problems.len(),
            "prompt_style": c.prompt_style,
            "chat": sampler.chat(),
            "max_new_tokens": c.max_new_tokens,
            "sampling": args.common.settings().sampling,
            "population": args.population,
            "rsa": options.rsa,
            "aggregation": outcome.aggregation,
        });
        let title = format!("RSA: {} on {}", name(c.label()), name(&c.data));
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let commit = git_commit(env!("CARGO_MANIFEST_DIR").as_ref());
        let report = rsa_report(
            &outcome,
            title,
            serde_json::to_string_pretty(&config)?,
            Some(command),
            commit,
        );
        let path = report.write(dir)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.traces {
        write_traces(path, &outcome.run, &problems)?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        println!("{summary}");
    } else {
        println!("round  pass@1  maj@N   pass@N  gen.tokens  prompt.tokens");
        for s in outcome.run.summaries() {
            println!(
                "{:>5}  {:.4}  {:.4}  {:.4}  {:>10.1}  {:>13.1}",
                s.round, s.pass_at_1, s.majority, s.pass_at_n, s.generated_tokens, s.prompt_tokens
            );
        }
    }
    Ok(())
}

/// Every round's population, one JSON line per round and problem (the `--traces` format),
/// written atomically.
fn write_traces(path: &Path, run: &RsaRun, problems: &[DatasetProblem]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (r, round) in run.rounds.iter().enumerate() {
        for (problem, population) in problems.iter().zip(&round.problems) {
            let line = json!({
                "round": r,
                "id": problem.id,
                "prompt_tokens": population.prompt_tokens,
                "vote": population.vote,
                "members": population.members,
            });
            text.push_str(&format!("{line}\n"));
        }
    }
    write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The last component of a path, for titles.
fn name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}
