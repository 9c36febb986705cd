//! `scripts/gpu/measure.sh` against stand-ins for the GPU machine's programs (`nvidia-smi`, the
//! bundle's binaries, the PyTorch peer), so that the script is known to work before it spends
//! time on a GPU: the steps and their settings, the table and the ratio to the peer, the time
//! budget, the fixture link, and a missing bundle.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A checkout holding the measurement scripts and a fake `.gpu/` bundle, with fake programs on
/// PATH.
struct FakeGpuMachine {
    dir: tempfile::TempDir,
}

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

impl FakeGpuMachine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let scripts = root.join("scripts/gpu");
        fs::create_dir_all(&scripts).unwrap();
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu");
        for name in ["measure.sh", "kernel_profile.py"] {
            fs::copy(sources.join(name), scripts.join(name)).unwrap();
        }
        let gpu = root.join(".gpu");
        fs::create_dir_all(&gpu).unwrap();
        // The bench prints the settings it saw, then a line in spiral-bench's format.
        write_executable(
            &gpu.join("spiral-bench"),
            "#!/bin/sh\nsleep 0.3\necho \"args: $* matmul=${SPIRAL_CUDA_MATMUL:-} backward=${SPIRAL_CUDA_BACKWARD:-}\"\n\
             echo '{\"workload\":\"train-gpu\",\"tokens_per_s\":10240.5}'\n",
        );
        for name in ["spiral-train", "matmul-kernels", "cuda-tests", "nccl-tests"] {
            write_executable(
                &gpu.join(name),
                &format!("#!/bin/sh\nsleep 0.3\necho \"{name} $*\"\n"),
            );
        }
        // The peer prints a line in its own format, with the number of sequences it was given.
        let peer = root.join("benches/peer");
        fs::create_dir_all(&peer).unwrap();
        fs::write(
            peer.join("torch_bench.py"),
            "import json, sys, time\n\
             seqs = int(sys.argv[sys.argv.index('--sequences') + 1]) if '--sequences' in sys.argv else 64\n\
             time.sleep(0.3)\n\
             rate = 40961.0 if sys.argv[1].startswith('train') else 700.0\n\
             print(json.dumps(dict(workload=sys.argv[1], tokens_per_s=rate, sequences=seqs)))\n",
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
        FakeGpuMachine { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Runs `bash scripts/gpu/measure.sh STEPS...` with `envs` set, from another folder.
    fn run(&self, steps: &[&str], envs: &[(&str, &str)]) -> Output {
        let bin = self.dir.path().join("bin");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bash")
            .arg(self.root().join("scripts/gpu/measure.sh"))
            .args(steps)
            .current_dir(self.dir.path())
            .env("PATH", path)
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
    let machine = FakeGpuMachine::new();
    let output = machine.run(&[], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));

    for step in ["parity", "nccl", "train", "peer-train", "train-cublas", "train-composed"] {
        let row = machine.row(step);
        assert_eq!(row[1], "0", "{step}: {row:?}");
        assert_eq!(row[3], "2000", "{step}: peak memory over the idle 500 MiB: {row:?}");
    }
    assert_eq!(machine.row("train")[4], "10240");
    assert_eq!(machine.row("peer-train")[4], "40961");
    assert!(stdout.contains("train / peer-train = 0.250x"), "{stdout}");
    assert!(stdout.contains("train-cublas / peer-train = 0.250x"), "{stdout}");

    let log = |step: &str| fs::read_to_string(machine.out().join(format!("{step}.log"))).unwrap();
    assert!(
        log("train")
            .contains("train-gpu --sequences 16 --micro-batch 4 --steps 8 matmul= backward=")
    );
    assert!(log("train-cublas").contains("matmul=cublas backward="));
    assert!(log("train-composed").contains("matmul= backward=composed"));
    assert!(log("parity").contains("cuda-tests --test-threads 1 --nocapture"));
    assert!(log("nccl").contains("nccl-tests --test-threads 1 --nocapture"));
    // The peer ran at the same number of sequences as ours.
    assert!(log("peer-train").contains("\"sequences\": 16"), "{}", log("peer-train"));
    // The test binary's fixture paths point at the checkout.
    let link = machine.dir.path().join("built/in/main");
    assert_eq!(fs::canonicalize(link).unwrap(), fs::canonicalize(machine.root()).unwrap());
}

#[test]
fn settings_and_named_steps_reach_the_commands() {
    let machine = FakeGpuMachine::new();
    let output =
        machine.run(&["train-burn", "nonsense"], &[("SEQS", "8"), ("MICRO", "2"), ("STEPS", "5")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("unknown step nonsense"), "{stdout}");
    let log = fs::read_to_string(machine.out().join("train-burn.log")).unwrap();
    assert!(log.contains("--sequences 8 --micro-batch 2 --steps 5 matmul=burn"), "{log}");
    assert!(!stdout.contains("peer-train ="), "no ratio without a peer: {stdout}");
}

#[test]
fn steps_past_the_time_budget_are_skipped() {
    let machine = FakeGpuMachine::new();
    let output = machine.run(&["train", "peer-train"], &[("BUDGET_S", "20")]);
    assert!(output.status.success());
    assert_eq!(machine.row("train")[1], "skip");
    assert_eq!(machine.row("peer-train")[1], "skip");
    assert!(!machine.out().join("train.log").exists());
}

#[test]
fn a_missing_bundle_is_an_error_that_says_how_to_make_one() {
    let machine = FakeGpuMachine::new();
    fs::remove_file(machine.root().join(".gpu/BUILT_FROM")).unwrap();
    let output = machine.run(&["train"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("cargo xtask gpu-bundle"), "{stdout}");
}
