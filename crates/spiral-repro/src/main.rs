//! `spiral-repro`: SPIRAL against GRPO, Dr.GRPO and ParaGator from one warm start, several RL
//! seeds, every model measured on the same held-out problems; run by `cargo xtask repro`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use spiral_repro::{ReproOptions, reproduce};

/// See [`spiral_kernels::allocator`] for why.
#[global_allocator]
static ALLOCATOR: spiral_kernels::allocator::MiMalloc = spiral_kernels::allocator::MiMalloc;

/// Reproduce the SPIRAL-against-GRPO comparison at small scale on the CPU.
#[derive(Parser)]
#[command(name = "spiral-repro", version, about, long_about = None, after_help = "\
The work folder holds the warm start, one run per algorithm and seed, and each model's measured
curves; running the same command again continues where it stopped (a finished run or measurement
is not redone). The report (report.md, PNG/SVG plots, results.json, configs/) goes to --out and is
rewritten after each model measured. Its results.json keeps every model measured with the config
it was trained under: a later run with the same settings, even from an empty work folder or on
another machine, carries those models over instead of training them again, so a study is built up
over several runs with --algorithms and --seeds; a run with other settings (another warm start
or measurement) is refused a report folder holding another study's models, unless they were
measured before models kept their configs (then its report replaces them). A run stopped
half-way (Ctrl-C: it finishes its step and checkpoints) is also kept in --out's unfinished/
folder, and a later call resumes it from there, at the step it stopped at, even from an empty
work folder.")]
struct Cli {
    /// One seed, a shorter warm start, 8 RL steps and smaller measurements: a smoke check that
    /// finishes in under 20 minutes on 2 cores.
    #[arg(long)]
    quick: bool,
    /// The study: an aggregator warm start, every algorithm setting including the multitask
    /// control, 300 RL steps, seeds 1-5, 500 held-out problems (hours of CPU per task).
    #[arg(long, conflicts_with = "quick")]
    study: bool,
    /// The task: `countdown` (default), `combination` or `arith`; its runs go to their own work
    /// folder. Combination is studied with 2 parts, trial-and-error traces of up to 4 tries per
    /// part, 120-token traces and a 2,000-step warm start (`--set` changes any of them).
    #[arg(long)]
    task: Option<String>,
    /// The algorithm settings to run, by config stem: grpo, dr_grpo, paragator, multitask,
    /// spiral_k4, default (SPIRAL as the default run trains it), or `none` for the warm start
    /// alone and its gate. Default: every setting of the mode.
    #[arg(long, value_delimiter = ',')]
    algorithms: Option<Vec<String>>,
    /// Start the RL runs even when the warm start fails the aggregator gate (by default they are
    /// skipped then: such a study's verdict is inconclusive whatever they measure). Arith, the
    /// control task, runs them whatever its gate.
    #[arg(long)]
    ignore_gate: bool,
    /// RL seeds (default 1,2,3; quick: 1; study: 1-5).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Apply the study's decision rule to the tasks' results in this folder
    /// (`study-<task>/results.json`), print the verdict and write `study-verdict.md` there.
    #[arg(long, value_name = "RESULTS_DIR")]
    verdict: Option<PathBuf>,
    /// Extra `section.key=value` overrides of the base config, for every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// A finished warm-start run folder to start from instead of training the warm start: its
    /// config.toml, metrics.jsonl and checkpoints/ (as `--algorithms none` leaves it in the work
    /// folder). Refused unless it was trained under the study's settings. Without it, a warm
    /// start kept in the report folder (`<out>/warm-start`) is used if trained under them.
    #[arg(long, value_name = "RUN_DIR")]
    warm_start: Option<PathBuf>,
    /// Folder of the shipped configs (`<algorithm>.toml`).
    #[arg(long, default_value = "configs")]
    configs: PathBuf,
    /// Work folder (default: runs/repro, quick: runs/repro-quick).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Report folder (default: docs/results, quick: <work>/report).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    spiral_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    if let Some(dir) = &cli.verdict {
        return match spiral_repro::write_verdict(dir) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut options = match (cli.quick, cli.study) {
        (true, _) => ReproOptions::quick(),
        (_, true) => ReproOptions::study(),
        _ => ReproOptions::full(),
    };
    options.ignore_gate = cli.ignore_gate;
    options.warm_start = cli.warm_start;
    if let Some(seeds) = cli.seeds {
        options.seeds = seeds;
    }
    if let Some(algorithms) = cli.algorithms {
        // `none`: the warm start alone, measured, with its gate.
        options.variants = algorithms.into_iter().filter(|a| a != "none").collect();
    }
    let task = cli.task.unwrap_or_else(|| "countdown".into());
    options.set_task(&task, &cli.overrides);
    let work = cli.work.unwrap_or_else(|| match (cli.quick, cli.study) {
        (true, _) => PathBuf::from(format!("runs/repro-quick-{task}")),
        (_, true) => PathBuf::from(format!("runs/study-{task}")),
        _ => PathBuf::from(format!("runs/repro-{task}")),
    });
    let out = cli.out.unwrap_or_else(|| match (cli.quick, cli.study) {
        (true, _) => work.join("report"),
        (_, true) => PathBuf::from(format!("docs/results/study-{task}")),
        _ => PathBuf::from("docs/results"),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(err) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step, then checkpointing (Ctrl-C again to abort)");
    }) {
        eprintln!("warning: no Ctrl-C handler ({err})");
    }
    match reproduce(&options, &cli.configs, &work, &out, &stop) {
        Ok(report) => {
            eprintln!("report: {}", report.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
