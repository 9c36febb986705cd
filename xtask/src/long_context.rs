//! `cargo xtask bench long-context [--peer] [--tokens 1024,4096,...]`: the `long-context`
//! workload of `docs/benchmarks.md`. For each length and each part (`score`: log-probs of the
//! last 64 tokens; `train`: one policy-gradient step on them; `decode`: prefill and 256 sampled
//! tokens), the release `long-context` binary runs in a process of its own, so that its peak
//! resident memory is that measurement's, then the PyTorch peer on the same shape; a table of
//! seconds, peak MiB and the time ratio closes the run.

use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use crate::bench::PEER_SCRIPT;
use crate::{run_command, workspace_root};

const PARTS: [&str; 3] = ["score", "train", "decode"];

/// Measures every length in `tokens` and every part; with `python`, the peer beside each.
pub fn run(tokens: &[usize], python: Option<String>) -> anyhow::Result<()> {
    let root = workspace_root();
    run_command(Command::new(env!("CARGO")).args([
        "build",
        "--release",
        "-p",
        "spiral-benches",
        "--bin",
        "long-context",
    ]))?;
    let ours = root.join("target/release/long-context");
    let mut rows = Vec::new();
    for &n in tokens {
        for part in PARTS {
            let args = ["--tokens".to_string(), n.to_string(), "--part".into(), part.into()];
            let mine = measure(Command::new(&ours).args(&args), "long-context")?;
            // No peer asked for, or it failed: an empty cell.
            let peer = match &python {
                Some(python) => measure(
                    Command::new(python)
                        .arg(root.join(PEER_SCRIPT))
                        .arg("long-context")
                        .args(&args),
                    "the PyTorch peer",
                )?,
                None => None,
            };
            rows.push((n, part, mine, peer));
        }
    }
    println!(
        "\n{:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "tokens", "part", "ours_s", "ours_MiB", "est_MiB", "peer_s", "peer_MiB", "ratio"
    );
    for (n, part, mine, peer) in &rows {
        let cell = |v: Option<&Value>, key: &str| v.and_then(|v| v[key].as_f64());
        let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
        let (s, m) = (cell(mine.as_ref(), "seconds"), cell(mine.as_ref(), "peak_rss_mib"));
        let estimate = cell(mine.as_ref(), "estimate_mib");
        let (ps, pm) = (cell(peer.as_ref(), "seconds"), cell(peer.as_ref(), "peak_rss_mib"));
        let ratio = s.zip(ps).map(|(s, p)| s / p);
        println!(
            "{n:>7} {part:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
            show(s),
            show(m),
            show(estimate),
            show(ps),
            show(pm),
            show(ratio)
        );
    }
    Ok(())
}

/// Runs one measurement and returns its JSON line, or `None` (with the reason on stderr) when
/// the process failed, ran out of memory included: a row of the table, not the end of the run.
fn measure(cmd: &mut Command, what: &str) -> anyhow::Result<Option<Value>> {
    eprintln!("$ {cmd:?}");
    let out = cmd.output().with_context(|| format!("could not start {what}: {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        eprintln!("{what} failed ({}): {}", out.status, tail.join(" | "));
        return Ok(None);
    }
    print!("{stdout}");
    let line = stdout.lines().last().context("no output")?;
    Ok(Some(serde_json::from_str(line).with_context(|| format!("{what} printed {line}"))?))
}
