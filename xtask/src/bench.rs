//! `cargo xtask bench [WORKLOAD] [--peer] [--sequences N]`: the project's side of a standard
//! workload of `docs/benchmarks.md` (release build of `spiral-bench`), and with `--peer` the
//! PyTorch peer (`benches/peer/torch_bench.py`) on the same machine in the same run, followed by
//! the measured ratio.
//! The *-gpu workloads, and `--device cuda[:N]`, build `spiral-bench` with the `cuda` feature;
//! `train-cpu --ranks 1,2` runs the training step data-parallel under `mpirun` ([`crate::ranks`]).

use std::process::Command;

use anyhow::Context;

use crate::gpu_memory::GpuMemory;
use crate::{run_command, workspace_root};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Workload name from docs/benchmarks.md.
    #[arg(default_value = "rollout-cpu", value_parser = ["rollout-cpu", "train-cpu", "rollout-gpu", "train-gpu", "long-context"])]
    workload: String,
    /// Where our side runs: `cpu` or `cuda[:N]` (default: `cuda` for the *-gpu workloads).
    #[arg(long)]
    device: Option<String>,
    /// Also run `python benches/peer/torch_bench.py WORKLOAD` and print the ratio.
    #[arg(long)]
    peer: bool,
    /// Python with torch and transformers for the peer (default: .venv/bin/python, else python3).
    #[arg(long)]
    python: Option<String>,
    /// Sequences per step on both sides, instead of the workload's 64: the peer runs out of
    /// memory on train-gpu's 64 x 768 tokens even on a 141 GB H200 (its full-vocabulary float32
    /// log-softmax alone is 28 GiB), so train-gpu is compared at 16.
    #[arg(long)]
    sequences: Option<usize>,
    /// Sequences per forward/backward pass on our side (gradients accumulate over the passes).
    #[arg(long)]
    micro_batch: Option<usize>,
    /// long-context: the sequence lengths to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1024, 4096, 16384, 32768])]
    tokens: Vec<usize>,
    /// Also run the criterion micro-benchmarks (`cargo bench -p spiral-benches`).
    #[arg(long)]
    criterion: bool,
    /// train-cpu: run the step on each of these numbers of MPI ranks (one thread per rank;
    /// 1 is one process of as many shards as cores) and print the scaling; needs Open MPI.
    #[arg(long, value_delimiter = ',')]
    ranks: Vec<usize>,
}

/// The PyTorch peer, relative to the workspace root.
pub(crate) const PEER_SCRIPT: &str = "benches/peer/torch_bench.py";

/// The Python that runs the peer: `--python`, else `.venv/bin/python`, else `python3`.
fn python(args: &BenchArgs) -> String {
    args.python.clone().unwrap_or_else(|| {
        let venv = workspace_root().join(".venv/bin/python");
        if venv.exists() { venv.display().to_string() } else { "python3".into() }
    })
}

/// One side of the comparison: its workload, and the GPU whose memory to sample, if any.
struct Side<'a> {
    workload: &'a str,
    gpu: Option<usize>,
}

impl Side<'_> {
    /// Runs `cmd`, prints its standard output and, on a GPU, its peak memory as a JSON line
    /// tagged `side`, and returns the output; `failed` heads the error if it fails.
    fn run(&self, side: &str, cmd: &mut Command, failed: &str) -> anyhow::Result<String> {
        let sampler = self.gpu.and_then(GpuMemory::start);
        let out = cmd.output().with_context(|| format!("{failed}: could not start {cmd:?}"))?;
        let peak = sampler.map(GpuMemory::peak_mib);
        anyhow::ensure!(out.status.success(), "{failed}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout)?;
        print!("{stdout}");
        if let Some(mib) = peak {
            println!(
                "{}",
                serde_json::json!({"workload": self.workload, "side": side, "peak_gpu_memory_mib": mib})
            );
        }
        Ok(stdout)
    }
}

/// Runs the command.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.workload == "long-context" {
        return crate::long_context::run(&args.tokens, args.peer.then(|| python(&args)));
    }
    if !args.ranks.is_empty() {
        anyhow::ensure!(args.workload == "train-cpu", "--ranks applies to train-cpu only");
        return crate::ranks::run(&args.ranks, args.sequences);
    }
    let root = workspace_root();
    let device = args.device.clone().unwrap_or_else(|| {
        if args.workload.ends_with("-gpu") { "cuda".into() } else { "cpu".into() }
    });
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--release", "-p", "spiral-benches", "--bin", "spiral-bench"]);
    if device.starts_with("cuda") {
        build.args(["--features", "cuda"]);
    }
    run_command(&mut build)?;
    let gpu = device.strip_prefix("cuda").map(|n| n.trim_start_matches(':').parse().unwrap_or(0));
    let side = Side { workload: &args.workload, gpu };
    let mut ours = Command::new(root.join("target/release/spiral-bench"));
    ours.args([&args.workload, "--device", &device]);
    if let Some(n) = args.sequences {
        ours.args(["--sequences", &n.to_string()]);
    }
    if let Some(n) = args.micro_batch {
        ours.args(["--micro-batch", &n.to_string()]);
    }
    let ours = side.run("spiral", &mut ours, "spiral-bench failed")?;
    if args.peer {
        let python = python(&args);
        let script = root.join(PEER_SCRIPT);
        let mut peer = Command::new(&python);
        peer.arg(&script).arg(&args.workload);
        if let Some(n) = args.sequences {
            peer.args(["--sequences", &n.to_string()]);
        }
        let failed =
            format!("peer {python} {} failed (pip install torch transformers?)", script.display());
        let peer = side.run("peer", &mut peer, &failed)?;
        let rate = |line: &str| -> anyhow::Result<f64> {
            let v: serde_json::Value = serde_json::from_str(line)?;
            v["tokens_per_s"].as_f64().context("no tokens_per_s")
        };
        let ours = rate(ours.lines().next().context("no output from spiral-bench")?)?;
        let theirs = rate(peer.lines().last().context("no output from the peer")?)?;
        println!(
            "{}",
            serde_json::json!({"workload": args.workload, "ratio_vs_peer": ours / theirs})
        );
    }
    if args.criterion {
        run_command(Command::new(env!("CARGO")).args(["bench", "-p", "spiral-benches"]))?;
    }
    Ok(())
}
