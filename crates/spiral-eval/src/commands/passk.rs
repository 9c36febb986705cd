//! `spiral-eval passk`: unbiased pass@k, and maj@k when the samples carry answers, averaged over
//! problems, from a samples JSONL file. Reading and every metric live in the library
//! (`spiral_eval::{load_samples, summarize_samples}`); this file parses the arguments and prints.

use std::io::{self, BufReader};
use std::path::PathBuf;

use spiral_eval::{
    BootstrapOptions, MajorityOptions, PasskOptions, load_samples, read_samples, summarize_samples,
};

/// Arguments of `spiral-eval passk`.
#[derive(clap::Args)]
#[command(after_help = "\
Input lines (one JSON object each, any order, any number of samples per problem):
  {\"problem_id\": \"q1\", \"reward\": 1, \"answer\": \"\\\\frac{1}{2}\"}
  problem_id: string or integer; reward: 0 or 1 (or false/true); answer: the extracted final
  answer, null when none (optional, but on every line or on none; other fields are ignored).
Output with --json, one object: {\"pass@1\": ..., \"pass@2\": ..., \"maj@1\": ..., \"maj@2\": ...,
  \"problems\": P, \"samples\": S}: point estimates (means over problems); maj@k only when the
  lines carry answers. Without --json, a table that adds 95% bootstrap intervals over problems.")]
pub struct PasskArgs {
    /// Samples JSONL file (`-` reads standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// The k to report, comma-separated; every problem needs at least max(k) samples.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub k: Vec<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Seed of the bootstrap resampling and of maj@k's sampled subsets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
}

/// Runs the command.
pub fn run(args: PasskArgs) -> anyhow::Result<()> {
    let stdin = args.input.as_os_str() == "-";
    let name = if stdin { "<stdin>".to_owned() } else { args.input.display().to_string() };
    let set = if stdin {
        read_samples(BufReader::new(io::stdin().lock()), &name)?
    } else {
        load_samples(&args.input)?
    };
    let options = PasskOptions {
        ks: args.k,
        bootstrap: BootstrapOptions {
            resamples: args.bootstrap,
            seed: args.seed,
            ..Default::default()
        },
        majority: MajorityOptions { seed: args.seed, ..Default::default() },
    };
    let summary = summarize_samples(&set, &options).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if args.json {
        println!("{}", summary.to_json());
    } else {
        println!("{name}: {summary}");
    }
    Ok(())
}
