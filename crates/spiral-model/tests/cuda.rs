//! The CUDA backend against transformers and against the CPU, on the fixture checkpoints:
//! float32 log-probs within 1e-4 and greedy tokens equal, bf16 log-probs within bf16's
//! tolerance, and a training step's gradients equal to the CPU's to TF32 accuracy (float32) or
//! bf16 accuracy (bf16).
//!
//! Compiled with `--features cuda` (CI type-checks it); run on a machine with an NVIDIA GPU:
//! `cargo test --release -p spiral-model --features cuda --test cuda -- --nocapture`. Without
//! a GPU each test says so and passes, as the issue asks.
#![cfg(feature = "cuda")]

mod common;

use burn::backend::Autodiff;
use burn::tensor::Tensor;
use common::{B, FAMILIES, expected, fixture, greedy_tokens, worst_logprob_difference};
use spiral_kernels::device::{Cuda, CudaDevice};
use spiral_model::{Checkpoint, Precision};

const LOGPROB_TOLERANCE: f64 = 1e-4;
const BF16_TOLERANCE: f64 = 0.2;

/// GPU 0, or `None` (with a note) where there is no usable GPU or driver: the CUDA runtime
/// panics on first use then, which is caught here.
fn gpu() -> Option<CudaDevice> {
    let device = CudaDevice::new(0);
    let probe =
        std::panic::catch_unwind(|| Tensor::<Cuda, 1>::ones([4], &device).sum().into_scalar());
    match probe {
        Ok(4.0) => Some(device),
        _ => {
            eprintln!("skipped: no usable CUDA GPU on this machine");
            None
        }
    }
}

#[test]
fn float32_logprobs_and_greedy_tokens_match_transformers_on_the_gpu() {
    let Some(device) = gpu() else { return };
    for name in FAMILIES {
        let worst = worst_logprob_difference::<Cuda>(name, &device, Precision::Float32);
        println!("{name}: cuda float32, worst |logprob - transformers| = {worst:.3e}");
        assert!(worst < LOGPROB_TOLERANCE, "{name}: {worst:e}");
        let (ours, theirs) = greedy_tokens::<Cuda>(name, &device);
        assert_eq!(ours, theirs, "{name}: greedy tokens differ on the GPU");
    }
}

#[test]
fn bf16_logprobs_match_transformers_bf16_on_the_gpu() {
    let Some(device) = gpu() else { return };
    for name in FAMILIES {
        let worst = worst_logprob_difference::<Cuda>(name, &device, Precision::Bfloat16);
        println!("{name}: cuda bf16, worst |logprob - transformers bf16| = {worst:.3e}");
        assert!(worst < BF16_TOLERANCE, "{name}: {worst:e}");
    }
}

/// The gradient of the summed log-probs of one case, plus `entropy_weight` times the summed
/// entropies, parameter by parameter, with activations in `precision` (the weights stay float32,
/// as in training).
fn gradients<Be: burn::tensor::backend::AutodiffBackend>(
    device: &Be::Device,
    precision: Precision,
    entropy_weight: f32,
) -> Vec<Vec<f32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    let model =
        Checkpoint::<Be>::load(fixture("qwen3"), device).unwrap().model.with_precision(precision);
    let ids = expected("qwen3").logprob_cases[2].input_ids.clone();
    let with_entropy = entropy_weight != 0.0;
    let scores = model.token_logprobs(&[ids], &[1], with_entropy).unwrap();
    let mut loss = scores.logprobs.sum();
    if let Some(entropy) = scores.entropy {
        loss = loss + entropy.sum().mul_scalar(entropy_weight);
    }
    let grads = loss.backward();
    struct Collect<'a, Be: burn::tensor::backend::AutodiffBackend> {
        grads: &'a Be::Gradients,
        out: Vec<Vec<f32>>,
    }
    impl<Be: burn::tensor::backend::AutodiffBackend> ModuleVisitor<Be> for Collect<'_, Be> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Be, D>>) {
            let grad = param.val().grad(self.grads).expect("every weight gets a gradient");
            self.out.push(grad.into_data().convert::<f32>().into_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect::<Be> { grads: &grads, out: Vec::new() };
    model.visit(&mut collect);
    collect.out
}

#[test]
fn gradients_on_the_gpu_equal_the_cpu_ones() {
    let Some(device) = gpu() else { return };
    let cpu = gradients::<Autodiff<B>>(&Default::default(), Precision::Float32, 0.0).concat();
    let gpu = gradients::<Autodiff<Cuda>>(&device, Precision::Float32, 0.0).concat();
    assert_eq!(cpu.len(), gpu.len());
    // A NaN counts as infinitely far (`f32::max` would drop it).
    let worst = cpu
        .iter()
        .zip(&gpu)
        .map(|(a, b)| (a - b).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0f32, f32::max);
    let scale = cpu.iter().map(|a| a.abs()).fold(0.0f32, f32::max);
    println!("worst |gradient cuda - cpu| = {worst:.3e} (largest gradient {scale:.3e})");
    // The forward pass is float32-accurate (`precision::matmul`), but some backward products
    // are burn-cubecl's TF32 ones (10-bit mantissa): measured on an H200, 3.2e-4 of the largest
    // gradient (1.3e-3 before the forward pass was split). 2e-3 allows for that and still
    // catches a wrong gradient.
    assert!(worst <= 2e-3 * scale.max(1.0), "{worst:e}");
}

/// Training's dtype: bf16 activations on the GPU (the analytic backward passes of
/// `attention_probs`, `rms_norm`, `swiglu` and `logit_scores` in bf16) against float32
/// on the CPU, parameter by parameter, with an entropy term in the loss so that both branches of
/// `logit_scores` are checked. A wrong gradient formula (a lost factor or sign) is off by the
/// gradient's own size; bf16 rounding of the activations, which this tolerates, by a few percent
/// of it (expected; to be measured on a GPU).
#[test]
fn bf16_gradients_on_the_gpu_are_the_cpu_float32_ones_to_bf16_accuracy() {
    let Some(device) = gpu() else { return };
    let cpu = gradients::<Autodiff<B>>(&Default::default(), Precision::Float32, 0.5);
    let gpu = gradients::<Autodiff<Cuda>>(&device, Precision::Bfloat16, 0.5);
    assert_eq!(cpu.len(), gpu.len());
    let norm =
        |x: &mut dyn Iterator<Item = f32>| x.map(|a| f64::from(a).powi(2)).sum::<f64>().sqrt();
    let mut worst = (0.0, 0);
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        let relative =
            norm(&mut c.iter().zip(g).map(|(a, b)| a - b)) / norm(&mut c.iter().copied());
        // A NaN counts as the worst.
        let relative = if relative.is_nan() { f64::INFINITY } else { relative };
        if relative > worst.0 {
            worst = (relative, i);
        }
    }
    println!(
        "bf16 gpu vs float32 cpu gradients: worst parameter {} at {:.2e} relative",
        worst.1, worst.0
    );
    // Not yet measured on a GPU: 0.2 is loose enough for bf16 activations on the tiny fixture,
    // and a wrong formula gives errors of order 1.
    assert!(worst.0 <= 0.2, "parameter {}: {:e}", worst.1, worst.0);
}

/// Log-softmax of `logits` with the gradient of `sum(log_softmax * weights)`, the row sums of
/// `exp(logits)` and the argmax, through `spiral_kernels::long_rows` on backend `Be`.
fn long_row_results<Be: burn::tensor::backend::AutodiffBackend>(
    logits: &Tensor<B, 2>,
    weights: &Tensor<B, 2>,
    device: &Be::Device,
) -> [burn::tensor::TensorData; 4] {
    use spiral_kernels::long_rows::{argmax_rows, log_softmax_rows, sum_rows};
    let x = Tensor::<Be, 2>::from_data(logits.to_data(), device).require_grad();
    let w = Tensor::<Be, 2>::from_data(weights.to_data(), device);
    let lp = log_softmax_rows(x.clone());
    let grads = lp.clone().mul(w).sum().backward();
    let grad = x.grad(&grads).unwrap();
    let sums = sum_rows(x.clone().inner().exp());
    let best = argmax_rows(x.inner());
    [lp.into_data(), grad.into_data(), sums.into_data(), best.into_data()]
}

/// On the GPU, rows as long as Qwen's vocabulary are reduced in two passes
/// (`spiral_kernels::long_rows`); log-softmax, its gradient, row sums and argmax equal the CPU's
/// one-pass results on the same logits.
#[test]
fn long_row_reductions_on_the_gpu_equal_the_cpu_ones() {
    use burn::tensor::{Distribution, TensorData};
    let Some(device) = gpu() else { return };
    let (rows, vocab) = (64, 151_936);
    let cpu = Default::default();
    let logits = Tensor::<B, 2>::random([rows, vocab], Distribution::Normal(0.0, 3.0), &cpu);
    let weights = Tensor::<B, 2>::random([rows, vocab], Distribution::Default, &cpu);
    let ours = long_row_results::<Autodiff<Cuda>>(&logits, &weights, &device);
    let reference = long_row_results::<Autodiff<B>>(&logits, &weights, &cpu);
    let worst = |i: usize| {
        let a = ours[i].clone().convert::<f32>().into_vec::<f32>().unwrap();
        let b = reference[i].clone().convert::<f32>().into_vec::<f32>().unwrap();
        let scale = b.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max) / scale.max(1.0)
    };
    let (lp, grad, sums) = (worst(0), worst(1), worst(2));
    println!(
        "long rows, gpu vs cpu (relative): log-softmax {lp:.1e}, gradient {grad:.1e}, sums {sums:.1e}"
    );
    assert!(lp < 1e-5 && grad < 1e-5 && sums < 1e-5, "{lp:e} {grad:e} {sums:e}");
    let argmax = |d: &TensorData| d.clone().convert::<i64>().into_vec::<i64>().unwrap();
    assert_eq!(argmax(&ours[3]), argmax(&reference[3]), "argmax differs");
}

/// `C = A B` and the gradients of `sum(C * W)` with respect to `A` and `B`, in bf16 through
/// `spiral_kernels::cuda_matmul` with `kernel`, as float32 data.
fn matmul_results(
    kernel: spiral_kernels::cuda_matmul::MatmulKernel,
    [a, b, w]: &[Tensor<B, 3>; 3],
    device: &CudaDevice,
) -> [Vec<f32>; 3] {
    use burn::tensor::FloatDType;
    let on_gpu = |t: &Tensor<B, 3>| {
        Tensor::<Autodiff<Cuda>, 3>::from_data(t.to_data(), device).cast(FloatDType::BF16)
    };
    let (a, b) = (on_gpu(a).require_grad(), on_gpu(b).require_grad());
    let c = spiral_kernels::cuda_matmul::matmul_with(kernel, a.clone(), b.clone());
    let grads = c.clone().mul(on_gpu(w)).sum().backward();
    let data = |t: Tensor<Cuda, 3>| t.cast(FloatDType::F32).into_data().into_vec::<f32>().unwrap();
    [data(c.inner()), data(a.grad(&grads).unwrap()), data(b.grad(&grads).unwrap())]
}

/// Every kernel `SPIRAL_CUDA_MATMUL` can pick gives burn's own bf16 product and gradients, on
/// a batched product with sizes that are not multiples of any tile.
#[test]
fn every_bf16_matmul_kernel_gives_burns_product_and_gradients() {
    use burn::tensor::Distribution;
    use spiral_kernels::cuda_matmul::{MatmulKernel, fallback_count};
    let Some(device) = gpu() else { return };
    let cpu = Default::default();
    let normal =
        |shape: [usize; 3]| Tensor::<B, 3>::random(shape, Distribution::Normal(0.0, 1.0), &cpu);
    // 300 rows: at least `MIN_ROWS`, so the kernels run rather than burn's path.
    let inputs = [normal([3, 300, 136]), normal([3, 136, 72]), normal([3, 300, 72])];
    let reference = matmul_results(MatmulKernel::BURN, &inputs, &device);
    let relative = |x: &[f32], y: &[f32]| {
        let scale = y.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max) / scale
    };
    let mut failures = Vec::new();
    for &name in &MatmulKernel::ALL[1..] {
        let before = fallback_count();
        let ours = matmul_results(MatmulKernel::named(name).unwrap(), &inputs, &device);
        let fell_back = fallback_count() > before;
        let errors: Vec<f32> = (0..3).map(|i| relative(&ours[i], &reference[i])).collect();
        println!(
            "{name}: relative error C {:.1e}, dA {:.1e}, dB {:.1e}{}",
            errors[0],
            errors[1],
            errors[2],
            if fell_back { " (fell back to burn's kernel)" } else { "" }
        );
        // Both sides round a float32 accumulation to bf16 (8 bits): 2^-8 of the largest value,
        // twice over, is the most two correct results differ by.
        if errors.iter().any(|&e| e > 1e-2) {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "kernels that disagree with burn's: {failures:?}");
}
