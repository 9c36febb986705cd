//! `matmul-kernels [--tokens N]`: times every bf16 matmul kernel of
//! [`spiral_kernels::cuda_matmul`] on the products of a Qwen3-0.6B training step, on the GPU.
//!
//! For each projection `[M, K] x [K, N]` it times the forward product and the two of the backward
//! pass, `dX = dY W^T` and `dW = X^T dY` (transposed operands are strided views, as autodiff
//! hands them over), plus attention's two batched products and the LM head's chunk. It prints one
//! JSON line per (product, kernel) with the time and TFLOP/s, and last, per kernel, the time of
//! all the products of one forward and backward pass of the whole model (each product weighted by
//! how often a step runs it), with whether every product ran on the kernel itself (none fell
//! back to burn's) and gave burn's result to within 5% of its largest value. Run it with
//! `cargo run --release -p spiral-benches --features cuda --bin matmul-kernels`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, FloatDType, Tensor};
use clap::Parser;
use spiral_kernels::cuda_matmul::{MatmulKernel, fallback_count, matmul_with};
use spiral_kernels::device::{Cuda, CudaDevice};

/// Time every matmul kernel on a training step's products.
#[derive(Parser)]
#[command(name = "matmul-kernels")]
struct Cli {
    /// Tokens per micro-batch (sequences x length); train-gpu at micro-batch 4 has 4 x 768.
    #[arg(long, default_value_t = 3072)]
    tokens: usize,
    /// Timed repetitions of each product.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Kernels to time (default: all).
    #[arg(long, value_delimiter = ',')]
    kernels: Option<Vec<String>>,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    gpu: usize,
}

/// One product of the model: `[batch.., m, k] x [batch.., k, n]`, and how often a step runs it.
struct Product {
    name: &'static str,
    batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    /// `a` is a transposed view (`dW = X^T dY`).
    a_transposed: bool,
    /// `b` is a transposed view (`dX = dY W^T`, attention's `K^T`).
    b_transposed: bool,
    per_step: usize,
}

fn products(tokens: usize) -> Vec<Product> {
    const LAYERS: usize = 28;
    // Qwen3-0.6B: hidden 1024, 16 query heads and 8 KV heads of 128, FFN 3072, vocab 151,936.
    let projections = [
        ("gate_up", 1024, 3072, 2),
        ("down", 3072, 1024, 1),
        ("q", 1024, 2048, 1),
        ("o", 2048, 1024, 1),
        ("k_v", 1024, 1024, 2),
    ];
    let plain = |name, batch: Vec<usize>, m, k, n, a_t, b_t, per_step| Product {
        name,
        batch,
        m,
        k,
        n,
        a_transposed: a_t,
        b_transposed: b_t,
        per_step,
    };
    let mut list = Vec::new();
    for (name, k, n, count) in projections {
        let per_step = count * LAYERS;
        list.push(plain(name, vec![], tokens, k, n, false, false, per_step));
        list.push(plain(name, vec![], tokens, n, k, false, true, per_step));
        list.push(plain(name, vec![], k, tokens, n, true, false, per_step));
    }
    // Attention: sequences of 768, the two query heads of a KV head stacked along time.
    let (seqs, t) = ((tokens / 768).max(1), 768.min(tokens));
    let batch = vec![seqs, 8];
    list.push(plain("scores", batch.clone(), 2 * t, 128, t, false, true, LAYERS));
    list.push(plain("scores", batch.clone(), 2 * t, t, 128, false, false, LAYERS));
    list.push(plain("scores", batch.clone(), t, 2 * t, 128, true, false, LAYERS));
    list.push(plain("values", batch.clone(), 2 * t, t, 128, false, false, LAYERS));
    list.push(plain("values", batch.clone(), 2 * t, 128, t, false, true, LAYERS));
    list.push(plain("values", batch, t, 2 * t, 128, true, false, LAYERS));
    // The LM head, one chunk of 2^28 logits (`GPU_LOGIT_CHUNK_ELEMENTS`) at a time.
    let rows = (1usize << 28) / 151_936;
    let chunks = tokens.div_ceil(rows);
    list.push(plain("lm_head", vec![], rows, 1024, 151_936, false, false, chunks));
    list.push(plain("lm_head", vec![], rows, 151_936, 1024, false, true, chunks));
    list.push(plain("lm_head", vec![], 1024, rows, 151_936, true, false, chunks));
    list
}

impl Product {
    fn pass(&self) -> &'static str {
        match (self.a_transposed, self.b_transposed) {
            (false, false) if self.name == "values" || self.name == "scores" => "ab",
            (false, false) => "forward",
            (false, true) => "a_bt",
            (true, _) => "at_b",
        }
    }

    fn flops(&self) -> f64 {
        2.0 * (self.batch.iter().product::<usize>() * self.m * self.k * self.n) as f64
    }

    /// The operands, bf16, in the layouts the product sees them in.
    fn operands(&self, device: &CudaDevice) -> (Tensor<Cuda, 4>, Tensor<Cuda, 4>) {
        let mut batch = self.batch.clone();
        batch.resize(2, 1);
        let make = |rows: usize, cols: usize, transposed: bool| {
            let shape = if transposed {
                [batch[0], batch[1], cols, rows]
            } else {
                [batch[0], batch[1], rows, cols]
            };
            let t = Tensor::<Cuda, 4>::random(shape, Distribution::Normal(0.0, 1.0), device)
                .cast(FloatDType::BF16);
            if transposed { t.swap_dims(2, 3) } else { t }
        };
        (make(self.m, self.k, self.a_transposed), make(self.k, self.n, self.b_transposed))
    }
}

fn main() {
    let cli = Cli::parse();
    let device = CudaDevice::new(cli.gpu);
    let kernels: Vec<MatmulKernel> = match &cli.kernels {
        Some(names) => names
            .iter()
            .map(|n| MatmulKernel::named(n).unwrap_or_else(|| panic!("unknown kernel `{n}`")))
            .collect(),
        None => MatmulKernel::ALL.iter().map(|n| MatmulKernel::named(n).expect("listed")).collect(),
    };
    let mut totals = vec![(0.0f64, true); kernels.len()];
    for product in products(cli.tokens) {
        let (a, b) = product.operands(&device);
        let reference: Tensor<Cuda, 4> = a.clone().matmul(b.clone()).cast(FloatDType::F32);
        let scale: f32 = reference.clone().abs().max().into_scalar();
        for (i, &kernel) in kernels.iter().enumerate() {
            let fallbacks = fallback_count();
            let timed = catch_unwind(AssertUnwindSafe(|| {
                let run = || matmul_with(kernel, a.clone(), b.clone());
                let out = run();
                let error: f32 =
                    (out.cast(FloatDType::F32) - reference.clone()).abs().max().into_scalar();
                for _ in 0..2 {
                    drop(run());
                }
                Cuda::sync(&device).expect("device sync");
                let start = Instant::now();
                for _ in 0..cli.reps {
                    drop(run());
                }
                Cuda::sync(&device).expect("device sync");
                (start.elapsed().as_secs_f64() / cli.reps as f64, error / scale)
            }));
            let fell_back = fallback_count() > fallbacks;
            let line = match timed {
                Ok((seconds, relative_error)) => {
                    let shape =
                        [product.batch.clone(), vec![product.m, product.k, product.n]].concat();
                    if fell_back || relative_error > 0.05 {
                        totals[i].1 = false;
                    }
                    totals[i].0 += seconds * product.per_step as f64;
                    serde_json::json!({
                        "product": product.name, "pass": product.pass(),
                        "shape": shape,
                        "kernel": kernel.name(), "ms": seconds * 1e3, "per_step": product.per_step,
                        "tflops": product.flops() / seconds / 1e12,
                        "relative_error": relative_error, "fell_back": fell_back,
                    })
                }
                Err(_) => {
                    totals[i].1 = false;
                    serde_json::json!({"product": product.name, "pass": product.pass(),
                        "kernel": kernel.name(), "panicked": true})
                }
            };
            println!("{line}");
        }
    }
    for (kernel, (seconds, usable)) in kernels.iter().zip(totals) {
        println!(
            "{}",
            serde_json::json!({"kernel": kernel.name(), "step_matmul_ms": seconds * 1e3,
                "every_product_ran_on_it_correctly": usable})
        );
    }
}
