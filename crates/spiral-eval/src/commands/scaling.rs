//! `spiral-eval scaling`: parallel (pass@N, maj@N, agg@1), token-efficiency and sequential
//! (max-new-tokens budget) scaling curves of a checkpoint on a dataset, and with `--baseline` the
//! same curves for a baseline and the scaling efficiency of the model over it. The work is the
//! library's (`spiral_eval::{run_scaling, scaling_efficiencies, scaling_report}`); this file
//! parses the arguments and prints.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde_json::json;
use spiral_eval::{
    ModelScaling, SCALING_EFFICIENCY_DEFINITION, ScalingOptions, git_commit, run_scaling,
    scaling_efficiencies, scaling_report,
};
use spiral_model::DeviceSpec;

use crate::commands::load_checkpoint;
use crate::commands::sample::ModelDataArgs;
use crate::device::{ModelCommand, run_model_command};

/// Arguments of `spiral-eval scaling`.
#[derive(clap::Args)]
#[command(after_help = "\
Output with --json, one object:
  {\"problems\": P, \"n_max\": N, \"ns\": [1, 2, 4, ...], \"budgets\": [...],
   \"model\": {\"label\": ..., \"parallel\": {\"pass@N\": CURVE, \"maj@N\": CURVE, \"agg@1\": CURVE},
             \"tokens\": {\"maj@N\": CURVE, \"agg@1\": CURVE}, \"sequential\": CURVE,
             \"aggregation_calls\": [prompts per engine call]},
   \"baseline\": {same} (with --baseline), \"efficiency\": [{\"curve\", \"unit\", \"efficiency\",
   \"text\"}] (with --baseline), \"definition\": \"...\"}
where CURVE is {\"label\": ..., \"points\": [{\"x\": ..., \"y\": ..., \"ci\": {\"lo\", \"hi\"}}]}.
Without --json, tables. With --out DIR: DIR/report.md and DIR/{parallel,tokens,sequential}.{png,svg}.")]
pub struct ScalingArgs {
    #[command(flatten)]
    pub common: ModelDataArgs,
    /// Baseline model (a folder or cached hub id, as --model): its curves too, and the model's
    /// scaling efficiency over it.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// PEFT adapter loaded onto --baseline (as --adapter onto --model).
    #[arg(long, requires = "baseline")]
    pub baseline_adapter: Option<PathBuf>,
    /// Traces per problem for the parallel curves (N = 1, 2, 4, ... up to it).
    #[arg(long, default_value_t = 8)]
    pub n_max: usize,
    /// Aggregation traces per problem and N, each over its own shuffle of the N traces; agg@1
    /// is their mean (more narrow its interval).
    #[arg(long, default_value_t = 1)]
    pub aggregations: usize,
    /// Max-new-tokens budgets of the sequential curve, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128")]
    pub budgets: Vec<usize>,
    /// Folder for the report (markdown, PNG and SVG).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: ScalingArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for ScalingArgs {
    fn device(&self) -> DeviceSpec {
        self.common.device
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        scaling::<B>(self, device)
    }
}

fn scaling<B: Backend>(args: ScalingArgs, device: &B::Device) -> anyhow::Result<()> {
    let c = &args.common;
    let (ckpt, problems) = c.load::<B>(device)?;
    let options = ScalingOptions {
        n_max: args.n_max,
        aggregations: args.aggregations,
        budgets: args.budgets.clone(),
        style: c.prompt_style,
    };
    let settings = c.settings();
    let model =
        run_scaling(name(c.label()), &ckpt.model, &ckpt.tokenizer, &settings, &problems, &options)?;
    drop(ckpt);
    let baseline = match &args.baseline {
        Some(dir) => {
            let adapter = args.baseline_adapter.as_deref();
            let base = load_checkpoint::<B>(dir, adapter, c.precision, device)?;
            let label = format!("{} (baseline)", name(adapter.unwrap_or(dir)));
            Some(run_scaling(label, &base.model, &base.tokenizer, &settings, &problems, &options)?)
        }
        None => None,
    };
    let comparisons =
        baseline.as_ref().map(|b| scaling_efficiencies(b, &model)).unwrap_or_default();
    if let Some(dir) = &args.out {
        let config = json!({
            "model": c.model.display().to_string(),
            "adapter": c.adapter.as_ref().map(|a| a.display().to_string()),
            "baseline": args.baseline.as_ref().map(|b| b.display().to_string()),
            "baseline_adapter": args.baseline_adapter.as_ref().map(|a| a.display().to_string()),
            "data": c.data.display().to_string(),
            "task": c.task.name(),
            "problems": problems.len(),
            "prompt_style": c.prompt_style,
            "max_new_tokens": c.max_new_tokens,
            "sampling": settings.sampling,
            "n_max": args.n_max,
            "budgets": options.sorted_budgets(),
            "aggregation": model.aggregation,
        });
        let mut models: Vec<&ModelScaling> = vec![&model];
        models.extend(baseline.as_ref());
        let title = format!("Scaling: {} on {}", name(c.label()), name(&c.data));
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let commit = git_commit(env!("CARGO_MANIFEST_DIR").as_ref());
        let report = scaling_report(
            &models,
            &comparisons,
            title,
            serde_json::to_string_pretty(&config)?,
            Some(command),
            commit,
        );
        let path = report.write(dir)?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        let mut out = json!({
            "problems": problems.len(),
            "n_max": args.n_max,
            "ns": options.ns(),
            "budgets": options.sorted_budgets(),
            "model": model.to_json(),
            "definition": SCALING_EFFICIENCY_DEFINITION,
        });
        if let Some(b) = &baseline {
            out["baseline"] = b.to_json();
            out["efficiency"] = serde_json::to_value(&comparisons)?;
        }
        println!("{out}");
    } else {
        print_tables(&model);
        if let Some(b) = &baseline {
            print_tables(b);
            println!("\nscaling efficiency of {} over {}:", model.label, b.label);
            for comparison in &comparisons {
                println!("  {}: {}", comparison.curve, comparison.text);
            }
        }
    }
    Ok(())
}

fn print_tables(m: &ModelScaling) {
    println!("{}: parallel", m.label);
    println!("{:>6}  pass@N  maj@N   agg@1   maj tokens  agg tokens", "N");
    for (i, p) in m.pass.points.iter().enumerate() {
        let (maj, agg) = (m.maj.points[i].y, m.agg.points[i].y);
        let (search, total) = m.tokens[i];
        println!("{:>6}  {:.4}  {:.4}  {:.4}  {search:>10.1}  {total:>10.1}", p.x, p.y, maj, agg);
    }
    println!("{}: sequential", m.label);
    println!("{:>6}  accuracy", "budget");
    for p in &m.sequential.points {
        println!("{:>6}  {:.4}", p.x, p.y);
    }
}

/// The last component of a path, for titles and labels.
fn name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}
