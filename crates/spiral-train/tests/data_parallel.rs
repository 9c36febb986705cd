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
const TEST: &str = "ranks_take_the_same_steps_as_one_process";

#[test]
fn ranks_take_the_same_steps_as_one_process() {
    if let Ok(out) = std::env::var(OUT) {
        return rank_main(Path::new(&out));
    }
    if Command::new("mpirun").arg("--version").output().is_err() {
        println!("skipped: mpirun not found (install Open MPI: openmpi-bin libopenmpi-dev)");
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

/// Runs this test on `ranks` ranks and reads back rank 0's `[stats, weights]`.
fn launch(ranks: usize) -> Vec<Vec<f64>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.json");
    let status = Command::new("mpirun")
        .args(["--oversubscribe", "-n", &ranks.to_string()])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--test-threads=1", "--nocapture"])
        .env(OUT, &out)
        .env("RAYON_NUM_THREADS", "1")
        // Containers run tests as root, which Open MPI refuses unless told twice.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .status()
        .unwrap();
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
        weight: 1.0,
    }
}

/// One rank: three steps on its shares of a 7-sequence batch (supervised, policy, policy) and
/// one on its share of 2 sequences (empty on the third rank).
fn rank_main(out: &Path) {
    let world = Arc::new(MpiWorld::init().expect("MPI is initialised once"));
    let (rank, size) = (world.rank(), world.world_size());
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
