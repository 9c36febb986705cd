//! `cargo xtask bench [WORKLOAD] [--peer]`: the project's side of a standard workload of
//! `../shared/BENCHMARKS.md` (release build of `spiral-bench`), and with `--peer` the PyTorch
//! peer script on the same machine in the same run, followed by the measured ratio. The *-gpu
//! workloads, and `--device cuda[:N]`, build `spiral-bench` with the `cuda` feature.

use std::process::Command;

use anyhow::Context;

use crate::gpu_memory::GpuMemory;
use crate::{run_command, workspace_root};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Workload name from BENCHMARKS.md.
    #[arg(default_value = "rollout-cpu", value_parser = ["rollout-cpu", "train-cpu", "rollout-gpu", "train-gpu"])]
    workload: String,
    /// Where our side runs: `cpu` or `cuda[:N]` (default: `cuda` for the *-gpu workloads).
    #[arg(long)]
    device: Option<String>,
    /// Also run `python ../shared/peers/torch_bench.py WORKLOAD --json` and print the ratio.
    #[arg(long)]
    peer: bool,
    /// Python with torch and transformers for the peer (default: .venv/bin/python, else python3).
    #[arg(long)]
    python: Option<String>,
    /// Also run the criterion micro-benchmarks (`cargo bench -p spiral-benches`).
    #[arg(long)]
    criterion: bool,
}

/// Runs the command.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
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
    // On a GPU, peak memory is sampled around each side's process.
    let gpu = device.strip_prefix("cuda").map(|n| n.trim_start_matches(':').parse().unwrap_or(0));
    let sampler = gpu.and_then(GpuMemory::start);
    let ours = Command::new(root.join("target/release/spiral-bench"))
        .args([&args.workload, "--device", &device])
        .output()?;
    let ours_peak = sampler.map(GpuMemory::peak_mib);
    anyhow::ensure!(
        ours.status.success(),
        "spiral-bench failed: {}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let ours = String::from_utf8(ours.stdout)?;
    print!("{ours}");
    if let Some(mib) = ours_peak {
        println!(
            "{}",
            serde_json::json!({"workload": args.workload, "side": "spiral", "peak_gpu_memory_mib": mib})
        );
    }
    if args.peer {
        let python = args.python.clone().unwrap_or_else(|| {
            let venv = root.join(".venv/bin/python");
            if venv.exists() { venv.display().to_string() } else { "python3".into() }
        });
        let script = root.join("../shared/peers/torch_bench.py");
        let sampler = gpu.and_then(GpuMemory::start);
        let peer = Command::new(&python)
            .arg(&script)
            .arg(&args.workload)
            .arg("--json")
            .output()
            .with_context(|| format!("running {python} {}", script.display()))?;
        let peer_peak = sampler.map(GpuMemory::peak_mib);
        anyhow::ensure!(
            peer.status.success(),
            "peer failed (pip install torch transformers?): {}",
            String::from_utf8_lossy(&peer.stderr)
        );
        let peer = String::from_utf8(peer.stdout)?;
        print!("{peer}");
        if let Some(mib) = peer_peak {
            println!(
                "{}",
                serde_json::json!({"workload": args.workload, "side": "peer", "peak_gpu_memory_mib": mib})
            );
        }
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
