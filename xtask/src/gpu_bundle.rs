//! `cargo xtask gpu-bundle`: builds the CUDA binaries into `.gpu/` (ignored by git) for
//! `scripts/gpu/measure.sh`, which checks and times the CUDA backend on a GPU machine. That machine
//! needs CUDA and PyTorch but no Rust toolchain: the binaries are built here (x86-64 Linux on
//! both sides), stripped and packed with xz, and copied there with the checkout.
//!
//! `.gpu/` then holds `bins.tar.xz` (`spiral-bench`, `spiral-train`, `matmul-kernels`,
//! `cuda-tests`, the test binary of `spiral-model/tests/cuda.rs`, and `nccl-tests`, that of
//! `spiral-train/tests/nccl.rs`) and `BUILT_FROM`: the commit,
//! whether the checkout had changes, and the folder the test binary reads its fixtures from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::{run_command, workspace_root};

/// Where the bundle goes, under the workspace root: `scripts/gpu/measure.sh` reads it there.
const BUNDLE: &str = ".gpu";

/// Arguments of `cargo xtask gpu-bundle`.
#[derive(clap::Args)]
pub struct GpuBundleArgs {
    /// Refuse a bundle larger than this many MiB (0: no limit), for transfers that cap the size
    /// of what is copied with the checkout.
    #[arg(long, default_value_t = 56)]
    max_mib: u64,
}

/// Runs the command.
pub fn run(args: GpuBundleArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let out = root.join(BUNDLE);

    // One cargo call for the binaries and the test binary: two calls resolve features apart
    // (a test activates dev-dependencies) and build burn twice, 43 minutes on 2 cores, not 27.
    let binaries = cargo_executables(
        &[
            "build",
            "--release",
            "-p",
            "spiral-train",
            "-p",
            "spiral-benches",
            "-p",
            "spiral-model",
            "--bins",
            "--test",
            "cuda",
            "--test",
            "nccl",
        ],
        "spiral-train/cuda,spiral-benches/cuda,spiral-model/cuda",
        &["spiral-bench", "spiral-train", "matmul-kernels", "cuda", "nccl"],
    )?;

    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut names = Vec::new();
    for (target, path) in &binaries {
        let name = match target.as_str() {
            "cuda" => "cuda-tests",
            "nccl" => "nccl-tests",
            other => other,
        };
        let copy = out.join(name);
        std::fs::copy(path, &copy)
            .with_context(|| format!("copying {} to {}", path.display(), copy.display()))?;
        run_command(Command::new("strip").arg(&copy))?;
        names.push(name);
    }
    run_command(
        Command::new("tar")
            .env("XZ_OPT", "-T0 -6")
            .arg("cJf")
            .arg(out.join("bins.tar.xz"))
            .arg("-C")
            .arg(&out)
            .args(&names),
    )?;
    for name in &names {
        std::fs::remove_file(out.join(name))?;
    }
    std::fs::write(out.join("BUILT_FROM"), built_from(&root, &names)?)?;

    let mib = folder_bytes(&out)?.div_ceil(1 << 20);
    ensure!(
        args.max_mib == 0 || mib <= args.max_mib,
        "{} is {mib} MiB, over --max-mib {}",
        out.display(),
        args.max_mib
    );
    println!(
        "{} ({mib} MiB) is ready. Copy the checkout with {BUNDLE}/ to a machine with a CUDA GPU \
         and PyTorch, then from the repository root there:\n  bash scripts/gpu/measure.sh",
        out.display()
    );
    Ok(())
}

/// Runs `cargo <args> --features <features> --message-format=json` and returns the executable
/// of each wanted target, by target name, failing if one was not built.
fn cargo_executables(
    args: &[&str],
    features: &str,
    wanted: &[&str],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(args)
        .args(["--features", features, "--message-format=json-render-diagnostics"])
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit());
    eprintln!("$ {cmd:?}");
    let output = cmd.output().with_context(|| format!("could not start {cmd:?}"))?;
    ensure!(output.status.success(), "command failed with {}: {cmd:?}", output.status);
    executables_in(&String::from_utf8(output.stdout)?, wanted)
        .with_context(|| format!("in the output of {cmd:?}"))
}

/// The executables of the wanted targets among cargo's JSON messages, one per line.
fn executables_in(messages: &str, wanted: &[&str]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for line in messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(name), Some(exe)) =
            (message["target"]["name"].as_str(), message["executable"].as_str())
        else {
            continue;
        };
        if wanted.contains(&name) {
            found.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    for name in wanted {
        if !found.iter().any(|(n, _)| n == name) {
            bail!("no executable named {name} was built");
        }
    }
    Ok(found)
}

/// The bundle's record: the commit, whether the checkout differed from it, the folder the test
/// binary's fixture paths point into, and the binaries.
fn built_from(root: &Path, names: &[&str]) -> anyhow::Result<String> {
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new("git").args(args).current_dir(root).output()?;
        ensure!(out.status.success(), "git {args:?} failed");
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let changed = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(format!(
        "commit: {commit}\nchanges: {}\nroot: {}\nbinaries: {}\n",
        if changed == 0 { "none".to_string() } else { format!("{changed} tracked files changed") },
        root.display(),
        names.join(" ")
    ))
}

/// The bytes of the files directly in `dir`.
fn folder_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `cargo build --message-format=json` writes them (shortened): a library has no
    /// executable, a binary and a test binary do, and rendered diagnostics are not JSON.
    const MESSAGES: &str = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"spiral_model"},"executable":null}
warning: something rendered
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"spiral-bench"},"executable":"/t/release/spiral-bench"}
{"reason":"compiler-artifact","target":{"kind":["test"],"name":"cuda"},"executable":"/t/release/deps/cuda-0123"}
{"reason":"build-finished","success":true}"#;

    #[test]
    fn executables_are_found_by_target_name() {
        let found = executables_in(MESSAGES, &["cuda", "spiral-bench"]).unwrap();
        assert_eq!(
            found,
            [
                ("spiral-bench".to_string(), PathBuf::from("/t/release/spiral-bench")),
                ("cuda".to_string(), PathBuf::from("/t/release/deps/cuda-0123")),
            ]
        );
    }

    #[test]
    fn a_target_that_was_not_built_is_an_error_naming_it() {
        let err = executables_in(MESSAGES, &["spiral-bench", "spiral-train"]).unwrap_err();
        assert_eq!(err.to_string(), "no executable named spiral-train was built");
        assert!(executables_in(MESSAGES, &["spiral_model"]).is_err(), "a library is no executable");
    }
}
