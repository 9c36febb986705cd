//! The gradient bucket summed on the GPU by NCCL gives what the host path gives: on one rank
//! (a group of one exercises the whole path: the device bucket, the NCCL group and its id, the
//! all-reduce, the gradients put back), every gradient comes back unchanged, as it does from
//! the host path.
//!
//! Compiled with `--features cuda` (CI type-checks it); run on a machine with an NVIDIA GPU and
//! NCCL: `cargo test --release -p spiral-train --features cuda --test nccl -- --nocapture`.
//! Without a GPU or `libnccl` it says so and passes.
#![cfg(feature = "cuda")]

use std::sync::Arc;

use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use spiral_kernels::device::{Cuda, CudaDevice};
use spiral_model::{CausalLm, ModelConfig};
use spiral_train::distributed::nccl::NcclOnGpus;
use spiral_train::distributed::{SingleProcess, sum_gradients};

type B = Autodiff<Cuda>;

/// GPU 0 with NCCL, or `None` (with a note) where there is no usable GPU or `libnccl`.
fn gpu_with_nccl() -> Option<CudaDevice> {
    let device = CudaDevice::new(0);
    let probe =
        std::panic::catch_unwind(|| Tensor::<Cuda, 1>::ones([4], &device).sum().into_scalar());
    if probe.ok() != Some(4.0) {
        eprintln!("skipped: no usable CUDA GPU on this machine");
        return None;
    }
    if let Err(e) = spiral_kernels::cuda_nccl::unique_id() {
        eprintln!("skipped: {e}");
        return None;
    }
    Some(device)
}

/// Each parameter's gradient values in visiting order, `None` where it has none.
fn gradient_values(model: &CausalLm<B>, grads: &GradientsParams) -> Vec<Option<Vec<f32>>> {
    struct Read<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);
    impl ModuleVisitor<B> for Read<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let grad = self.0.get::<Cuda, D>(param.id);
            self.1.push(grad.map(|g| g.into_data().convert::<f32>().to_vec::<f32>().unwrap()));
        }
    }
    let mut read = Read(grads, Vec::new());
    model.visit(&mut read);
    read.1
}

#[test]
fn nccl_on_one_rank_gives_back_the_gradients_as_the_host_path_does() {
    let Some(device) = gpu_with_nccl() else { return };
    let model = CausalLm::<B>::random(ModelConfig::small(40, 32, 2, 4), 7, 0.2, &device).unwrap();
    let grads_of = || {
        let seqs = vec![vec![3u32, 9, 1, 4, 7], vec![5, 2, 8]];
        let loss = model.token_logprobs(&seqs, &[1, 1], false).unwrap().logprobs.sum();
        GradientsParams::from_grads(loss.backward(), &model)
    };
    let original = gradient_values(&model, &grads_of());
    assert!(original.iter().filter(|g| g.is_some()).count() > 3, "the test needs gradients");

    let mut on_host = grads_of();
    sum_gradients(&model, &mut on_host, &SingleProcess).unwrap();
    let nccl = NcclOnGpus::new(Arc::new(SingleProcess));
    let mut on_gpu = grads_of();
    sum_gradients(&model, &mut on_gpu, &nccl).unwrap();
    // A second sum reuses the group formed by the first.
    sum_gradients(&model, &mut on_gpu, &nccl).unwrap();

    assert_eq!(gradient_values(&model, &on_host), original, "host path");
    assert_eq!(gradient_values(&model, &on_gpu), original, "NCCL path");
    println!("NCCL on one rank: {} gradients back unchanged", original.len());
}
