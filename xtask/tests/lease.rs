//! `xtask/lease/run.sh` against stand-ins for the GPU machine's programs (`nvidia-smi`, the
//! bundle's binaries, torch), so that the one command a lent GPU runs is known to work before
//! a lease spends device time on it: the steps and their settings, the table and the ratio to
//! the peer, the time budget, the fixture link, and a missing bundle.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A checkout holding the lease scripts and a fake `.gpu/` bundle, with fake programs on PATH.
struct FakeLease {
    dir: tempfile::TempDir,
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

impl FakeLease {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let lease = root.join("xtask/lease");
        fs::create_dir_all(&lease).unwrap();
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("lease");
        for name in ["run.sh", "peer_with_sequences.py", "kernel_profile.py"] {
            fs::copy(sources.join(name), lease.join(name)).unwrap();
        }
        let gpu = root.join(".gpu");
        fs::create_dir_all(&gpu).unwrap();
        // The bench prints the settings it saw, then a line in spiral-bench's format.
        write_executable(
            &gpu.join("spiral-bench"),
            "#!/bin/sh\nsleep 0.3\necho \"args: $* matmul=${SPIRAL_CUDA_MATMUL:-} backward=${SPIRAL_CUDA_BACKWARD:-}\"\n\
             echo '{\"workload\":\"train-gpu\",\"tokens_per_s\":10240.5}'\n",
        );
        for name in ["spiral-train", "matmul-kernels", "cuda-tests"] {
            write_executable(
                &gpu.join(name),
                &format!("#!/bin/sh\nsleep 0.3\necho \"{name} $*\"\n"),
            );
        }
        fs::write(
            gpu.join("torch_bench.py"),
            "SHAPES = {'gpu': {'seqs': 64}}\n\
             import time\n\
             def train(kind): time.sleep(0.3); return dict(workload='train-gpu', tokens_per_s=40961.0, seqs=SHAPES[kind]['seqs'])\n\
             def rollout(kind): return dict(workload='rollout-gpu', tokens_per_s=700.0)\n",
        )
        .unwrap();
        let built_in = dir.path().join("built/in/main");
        fs::write(
            gpu.join("BUILT_FROM"),
            format!("commit: abc\nchanges: none\nroot: {}\nbinaries: x\n", built_in.display()),
        )
        .unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        write_executable(
            &bin.join("nvidia-smi"),
            "#!/bin/sh\ncase \"$*\" in\n  *-lms*) while true; do echo 2500; sleep 0.05; done ;;\n  \
             *memory.used*) echo 500 ;;\n  *) echo 'name, memory.total'; echo 'Fake GPU, 1000 MiB' ;;\nesac\n",
        );
        fs::write(bin.join("torch.py"), "__version__ = 'fake'\nget_num_threads = lambda: 1\n")
            .unwrap();
        FakeLease { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Runs `bash xtask/lease/run.sh STEPS...` with `envs` set, from another folder.
    fn run(&self, steps: &[&str], envs: &[(&str, &str)]) -> Output {
        let bin = self.dir.path().join("bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bash")
            .arg(self.root().join("xtask/lease/run.sh"))
            .args(steps)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("PYTHONPATH", &bin)
            .env("OUT", self.out())
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    }

    /// The table's row of `step`, split on whitespace.
    fn row(&self, step: &str) -> Vec<String> {
        let table = fs::read_to_string(self.out().join("table")).unwrap();
        let line = table.lines().find(|l| l.split_whitespace().next() == Some(step));
        let line = line.unwrap_or_else(|| panic!("no row for {step} in:\n{table}"));
        line.split_whitespace().map(String::from).collect()
    }
}

#[test]
fn the_default_plan_measures_each_variant_and_its_ratio_to_the_peer() {
    let lease = FakeLease::new();
    let output = lease.run(&[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));

    for step in ["parity", "train", "peer-train", "train-cublas", "train-composed"] {
        let row = lease.row(step);
        assert_eq!(row[1], "0", "{step}: {row:?}");
        assert_eq!(row[3], "2000", "{step}: peak memory over the idle 500 MiB: {row:?}");
    }
    assert_eq!(lease.row("train")[4], "10240");
    assert_eq!(lease.row("peer-train")[4], "40961");
    assert!(stdout.contains("train / peer-train = 0.250x"), "{stdout}");
    assert!(stdout.contains("train-cublas / peer-train = 0.250x"), "{stdout}");

    let log = |step: &str| fs::read_to_string(lease.out().join(format!("{step}.log"))).unwrap();
    assert!(
        log("train")
            .contains("train-gpu --sequences 16 --micro-batch 4 --steps 8 matmul= backward=")
    );
    assert!(log("train-cublas").contains("matmul=cublas backward="));
    assert!(log("train-composed").contains("matmul= backward=composed"));
    assert!(log("parity").contains("cuda-tests --test-threads 1 --nocapture"));
    // The peer ran at the same number of sequences as ours.
    assert!(log("peer-train").contains("\"sequences\": 16"), "{}", log("peer-train"));
    // The test binary's fixture paths point at the checkout.
    let link = lease.dir.path().join("built/in/main");
    assert_eq!(fs::canonicalize(link).unwrap(), fs::canonicalize(lease.root()).unwrap());
}

#[test]
fn settings_and_named_steps_reach_the_commands() {
    let lease = FakeLease::new();
    let output =
        lease.run(&["train-burn", "nonsense"], &[("SEQS", "8"), ("MICRO", "2"), ("STEPS", "5")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("unknown step nonsense"), "{stdout}");
    let log = fs::read_to_string(lease.out().join("train-burn.log")).unwrap();
    assert!(log.contains("--sequences 8 --micro-batch 2 --steps 5 matmul=burn"), "{log}");
    assert!(!stdout.contains("peer-train ="), "no ratio without a peer: {stdout}");
}

#[test]
fn steps_past_the_time_budget_are_skipped() {
    let lease = FakeLease::new();
    let output = lease.run(&["train", "peer-train"], &[("LEASE_BUDGET_S", "20")]);
    assert!(output.status.success());
    assert_eq!(lease.row("train")[1], "skip");
    assert_eq!(lease.row("peer-train")[1], "skip");
    assert!(!lease.out().join("train.log").exists());
}

#[test]
fn a_missing_bundle_is_an_error_that_says_how_to_make_one() {
    let lease = FakeLease::new();
    fs::remove_file(lease.root().join(".gpu/BUILT_FROM")).unwrap();
    let output = lease.run(&["train"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("cargo xtask gpu-bundle"), "{stdout}");
}
