//! `cargo xtask bench train-cpu --ranks 1,2`: the training step of `train-cpu` on each number of
//! MPI ranks, each rank one thread on its share of the batch (1: one process with a shard per
//! core), and the throughput relative to the first. On a machine with as many cores as the
//! largest count, this shows what data parallelism costs over one process's threads: the
//! gradient all-reduce, the batch split in fewer, larger pieces per thread, and imbalance.

use std::process::Command;

use anyhow::Context;

use crate::{run_command, workspace_root};

/// Runs the command.
pub fn run(ranks: &[usize], sequences: Option<usize>) -> anyhow::Result<()> {
    let root = workspace_root();
    run_command(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "-p",
        "spiral-benches",
        "--bin",
        "spiral-bench",
        "--features",
        "mpi",
    ]))?;
    let bench = root.join("target/release/spiral-bench");
    let mut rows = Vec::new();
    for &n in ranks {
        let mut cmd = if n == 1 {
            Command::new(&bench)
        } else {
            let mut mpirun = Command::new("mpirun");
            mpirun.args(["--oversubscribe", "-n", &n.to_string()]).arg(&bench);
            // One thread per rank; Open MPI refuses root in containers unless told twice.
            mpirun
                .env("RAYON_NUM_THREADS", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
            mpirun
        };
        cmd.arg("train-cpu");
        if let Some(s) = sequences {
            cmd.args(["--sequences", &s.to_string()]);
        }
        eprintln!("$ {cmd:?}");
        let out = cmd.output().with_context(|| format!("could not start {cmd:?} (Open MPI?)"))?;
        anyhow::ensure!(
            out.status.success(),
            "{n} ranks failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().context("no output from spiral-bench")?;
        print!("{stdout}");
        let value: serde_json::Value = serde_json::from_str(line)?;
        rows.push((n, value["tokens_per_s"].as_f64().context("no tokens_per_s")?));
    }
    println!("\n{:>6} {:>12} {:>10}", "ranks", "tokens/s", "vs first");
    for &(n, rate) in &rows {
        println!("{n:>6} {rate:>12.1} {:>10.2}", rate / rows[0].1);
    }
    Ok(())
}
