//! Data-parallel training across MPI ranks takes the same steps as one process: the learner on
//! 1, 2 and 3 ranks (each with its share of every batch, one share empty) gives the same losses,
//! gradient norms and weights up to float summation order. The test starts itself under
//! `mpirun`; where Open MPI is not installed it says so and passes.
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use spiral_model::{CausalLm, ModelConfig};
use spiral_set_rl::PolicyLossConfig;
use spiral_train::distributed::mpi::MpiWorld;
use spiral_train::distributed::{Collectives, share};
use spiral_train::{Learner, OptimConfig, TrainSequence};

type B = Autodiff<Flex>;

/// Set for the ranks `mpirun` starts: where rank 0 writes what it measured.
const OUT: &str = "SPIRAL_DATA_PARALLEL_OUT";
/// Set for the ranks of the timeout test: rank 1 then never joins the first collective.
const HANG: &str = "SPIRAL_DATA_PARALLEL_HANG";
const TEST: &str = "ranks_take_the_same_steps_as_one_process";

#[test]
fn ranks_take_the_same_steps_as_one_process() {
    if let Ok(out) = std::env::var(OUT) {
        return rank_main(Path::new(&out));
    }
    if !has_mpirun() {
        return;
    }
    let one = launch(1);
    for ranks in [2, 3] {
        let many = launch(ranks);
        assert_eq!(one.len(), many.len());
        for (what, (a, b)) in ["losses and norms", "weights"].iter().zip(one.iter().zip(&many)) {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                let tolerance = 1e-4 * x.abs().max(1e-2);
                assert!((x - y).abs() <= tolerance, "{ranks} ranks, {what}: {x} vs {y}");
            }
        }
    }
}

/// A rank that never joins a collective ends the run after `--collective-timeout` (here 2 s)
/// with an error saying so, instead of holding the others forever.
#[test]
fn a_rank_that_hangs_ends_the_run_after_the_timeout() {
    if std::env::var(OUT).is_ok() {
        return;
    }
    if !has_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out =
        this_test_on(2).env(OUT, dir.path().join("result.json")).env(HANG, "1").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run should have been ended");
    assert!(stderr.contains("collective waited more than"), "{stderr}");
    assert!(started.elapsed().as_secs() < 60, "ended after {:?}", started.elapsed());
}

/// Whether Open MPI's launcher is installed; says the test is skipped where it is not.
fn has_mpirun() -> bool {
    let found = Command::new("mpirun").arg("--version").output().is_ok();
    if !found {
        println!("skipped: mpirun not found (install Open MPI: openmpi-bin libopenmpi-dev)");
    }
    found
}

/// `mpirun -n ranks program`, one thread per rank.
fn mpirun(ranks: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["--oversubscribe", "-n", &ranks.to_string()])
        .arg(program)
        .env("RAYON_NUM_THREADS", "1")
        // Containers run tests as root, which Open MPI refuses unless told twice.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    command
}

/// [`TEST`] of this binary on `ranks` ranks.
fn this_test_on(ranks: usize) -> Command {
    let mut command = mpirun(ranks, std::env::current_exe().unwrap());
    command.args(["--exact", TEST, "--test-threads=1", "--nocapture"]);
    command
}

/// Runs this test on `ranks` ranks and reads back rank 0's `[stats, weights]`.
fn launch(ranks: usize) -> Vec<Vec<f64>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let status = this_test_on(ranks).env(OUT, &out).status().unwrap();
    assert!(status.success(), "mpirun -n {ranks}: {status}");
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

fn seq(tokens: &[u32], prompt_len: usize, advantage: f64) -> TrainSequence {
    TrainSequence {
        tokens: tokens.to_vec(),
        prompt_len,
        advantage,
        old_logprobs: None,
        ref_logprobs: None,
        rollout_logprobs: None,
        weight: 1.0,
    }
}

/// One rank: three steps on its shares of a 7-sequence batch (supervised, policy, policy) and
/// one on its share of 2 sequences (empty on the third rank).
fn rank_main(out: &Path) {
    let hang = std::env::var(HANG).is_ok();
    let timeout = std::time::Duration::from_secs(if hang { 2 } else { 600 });
    let world = Arc::new(MpiWorld::init(timeout).expect("MPI is initialised once"));
    let (rank, size) = (world.rank(), world.world_size());
    if hang && rank == 1 {
        // A rank stuck outside the collectives: the others' watchdogs must end the run.
        std::thread::sleep(std::time::Duration::from_secs(120));
    }
    let batch: Vec<TrainSequence> = (0..7u32)
        .map(|i| {
            let tokens: Vec<u32> = (0..5 + 2 * i).map(|j| (i * 5 + j * 3) % 32).collect();
            seq(&tokens, 1 + (i as usize % 3), if i % 2 == 0 { 1.0 } else { -0.5 })
        })
        .collect();
    let mine = |batch: &[TrainSequence]| batch[share(batch.len(), rank, size)].to_vec();
    let model =
        CausalLm::<B>::random(ModelConfig::small(32, 32, 2, 4), 3, 0.05, &Default::default())
            .unwrap();
    let optim =
        OptimConfig { lr: 1e-2, total_steps: 100, max_grad_norm: Some(1.0), ..Default::default() };
    let mut learner = Learner::new(model, optim).with_micro_batch(2).with_world(world.clone());
    let loss = PolicyLossConfig::default();
    let mut stats = Vec::new();
    let steps = [
        learner.sft_step(&mine(&batch)).unwrap(),
        learner.policy_step(&mine(&batch), &loss).unwrap(),
        learner.policy_step(&mine(&batch), &loss).unwrap(),
        learner.policy_step(&mine(&batch[..2]), &loss).unwrap(),
    ];
    for s in steps {
        stats.extend([s.loss, s.grad_norm, s.tokens as f64]);
    }
    if rank == 0 {
        let weights = weights(&learner.inference_model());
        std::fs::write(out, serde_json::to_string(&[stats, weights]).unwrap()).unwrap();
    }
}

/// Every float parameter's values, in visiting order.
fn weights<Be: Backend>(model: &CausalLm<Be>) -> Vec<f64> {
    struct Values(Vec<f64>);
    impl<Be: Backend> ModuleVisitor<Be> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Be, D>>) {
            let values = param.val().into_data().convert::<f32>().into_vec::<f32>().unwrap();
            self.0.extend(values.iter().map(|&x| x as f64));
        }
    }
    let mut values = Values(Vec::new());
    model.visit(&mut values);
    values.0
}

/// `spiral-train` itself under `mpirun`: a warm start and two RL steps of SPIRAL, 4 problems a
/// step and 4 evaluated (2, 1 and 1 on three ranks), give the same metrics and evaluation
/// transcripts on 1, 2 and 3 ranks, rank 0 writes the run folder, and a run stopped on 2 ranks
/// resumes on 3.
#[test]
fn spiral_train_on_ranks_matches_one_process() {
    if std::env::var(OUT).is_ok() {
        return;
    }
    if !has_mpirun() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let metrics = |ranks: usize| {
        let out = dir.path().join(format!("ranks-{ranks}"));
        let mut args = vec!["--out".to_string(), out.display().to_string()];
        args.extend(TINY_RUN.iter().flat_map(|kv| ["--set".to_string(), kv.to_string()]));
        spiral_train_on(ranks, &args);
        assert!(out.join("report.md").is_file() && out.join("checkpoints/latest").is_file());
        spiral_train::read_metrics(&out.join("metrics.jsonl")).unwrap()
    };
    let one = metrics(1);
    let transcripts = |ranks: usize| {
        let path = dir.path().join(format!("ranks-{ranks}/samples/eval-step-2.jsonl"));
        std::fs::read_to_string(path).unwrap()
    };
    for ranks in [2, 3] {
        assert_same_metrics(&one, &metrics(ranks), &format!("{ranks} ranks"));
        // The evaluation is split too, and its transcripts gathered in problem order.
        assert_eq!(transcripts(1), transcripts(ranks), "{ranks} ranks: eval transcripts");
    }
    // A checkpoint written by 2 ranks resumes on 3 and ends where one process does.
    let out = dir.path().join("resumed");
    let mut args = vec!["--out".to_string(), out.display().to_string()];
    args.extend(TINY_RUN.iter().flat_map(|kv| ["--set".to_string(), kv.to_string()]));
    args.extend(["--set".to_string(), "train.steps=1".to_string()]);
    spiral_train_on(2, &args);
    let resume =
        ["--resume".to_string(), out.display().to_string(), "--set".into(), "train.steps=2".into()];
    spiral_train_on(3, &resume);
    let resumed = spiral_train::read_metrics(&out.join("metrics.jsonl")).unwrap();
    assert_same_metrics(&one, &resumed, "2 ranks resumed on 3");

    // A bad value ends every rank with an error, not a hang.
    let status = mpirun(2, env!("CARGO_BIN_EXE_spiral-train"))
        .args(["--out", &dir.path().join("bad").display().to_string()])
        .args(["--set", "train.micro_batch=0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!status.status.success() && stderr.contains("micro_batch"), "{stderr}");
    // Every rank read the same bad value; the error is printed once.
    assert_eq!(stderr.matches("train.micro_batch = 0 is out of range").count(), 1, "{stderr}");
}

/// Runs `spiral-train args` under `mpirun -n ranks`.
fn spiral_train_on(ranks: usize, args: &[String]) {
    let status = mpirun(ranks, env!("CARGO_BIN_EXE_spiral-train"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "mpirun -n {ranks} spiral-train {args:?}: {status}");
}

/// Every record's numbers but times within 1e-4 (relative).
fn assert_same_metrics(one: &[spiral_train::Record], many: &[spiral_train::Record], what: &str) {
    assert_eq!(one.len(), many.len(), "{what}: records");
    for (a, b) in one.iter().zip(many) {
        let (a, b) = (comparable(a), comparable(b));
        assert_eq!(a.len(), b.len());
        for ((key, x), (_, y)) in a.iter().zip(&b) {
            let close = (x - y).abs() <= 1e-4 * x.abs().max(1e-2) || (x.is_nan() && y.is_nan());
            assert!(close, "{what}, {key}: {x} vs {y}");
        }
    }
}

/// The tiny run: warm start, SPIRAL with 4 problems a step, evaluation.
const TINY_RUN: &[&str] = &[
    "task.train_problems=40",
    "task.test_problems=4",
    "model.hidden_size=16",
    "model.num_layers=1",
    "model.num_heads=2",
    "warm_start.steps=2",
    "warm_start.batch_size=5",
    "algorithm.n1=4",
    "algorithm.n=2",
    "algorithm.k=2",
    "algorithm.n2=2",
    "rollout.max_new_tokens=8",
    "train.steps=2",
    "train.problems_per_step=4",
    "eval.problems=4",
    "eval.n=2",
    "eval.every=1",
];

/// A record's numbers that do not measure time.
fn comparable(record: &spiral_train::Record) -> Vec<(String, f64)> {
    let value = serde_json::to_value(record).unwrap();
    let mut numbers = Vec::new();
    flatten("", &value, &mut numbers);
    numbers.retain(|(key, _)| {
        let timed = key.contains("seconds") || key.contains("per_s") || key.contains("mfu_");
        !(timed || key.contains("world_size"))
    });
    numbers
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        serde_json::Value::Number(n) => out.push((prefix.to_string(), n.as_f64().unwrap())),
        serde_json::Value::Bool(b) => out.push((prefix.to_string(), f64::from(u8::from(*b)))),
        serde_json::Value::Null => out.push((prefix.to_string(), f64::NAN)),
        serde_json::Value::String(_) => {}
    }
}
