//! `spiral-bench WORKLOAD [--device D]`: the project's side of the standard workloads of
//! `docs/benchmarks.md`, printing one JSON line per measurement with the peer script's
//! fields (`workload`, `generated_tokens`, `seconds`, `tokens_per_s`). Run it through
//! `cargo xtask bench`, which builds it in release mode and can run the PyTorch peer beside it.

use std::time::Instant;

use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_benches::Workload;
use spiral_model::{BackendJob, CausalLm, DeviceSpec, Precision};
use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};
use spiral_set_rl::PolicyLossConfig;
use spiral_train::{Learner, OptimConfig, TrainSequence};

/// See [`spiral_kernels::allocator`] for why.
#[global_allocator]
static ALLOCATOR: spiral_kernels::allocator::MiMalloc = spiral_kernels::allocator::MiMalloc;

/// Run one standard workload of BENCHMARKS.md and print its JSON lines.
#[derive(Parser)]
#[command(
    name = "spiral-bench",
    after_help = "\
rollout-*: 64 sequences, exactly `new` sampled tokens each (temperature 1, top-p 1), after one
warm-up call; then tokens/s at batch 1, 8 and 64. train-*: one clipped policy-gradient step
(clip 0.2 / 0.28, token mean, grad-norm clip 1.0, AdamW) on 64 sequences, after one warm-up step;
tokens/s counts every token of every sequence, as the peer does."
)]
struct Cli {
    /// `rollout-cpu`, `train-cpu`, `rollout-gpu` or `train-gpu`.
    #[arg(default_value = "rollout-cpu", value_parser = ["rollout-cpu", "train-cpu", "rollout-gpu", "train-gpu"])]
    workload: String,
    /// Where to run (default: `cpu` for the *-cpu workloads, `cuda` for the *-gpu ones).
    #[arg(long)]
    device: Option<DeviceSpec>,
    /// `float32` or `bfloat16` (default: as the peer, float32 for *-cpu, bfloat16 for *-gpu).
    #[arg(long)]
    precision: Option<Precision>,
    /// Memory bandwidth of the GPU in GB/s, for the decode-step floor that rollout on a GPU
    /// reports (about 3,000 on an H100, measured as a device-to-device copy).
    #[arg(long, default_value_t = 3000.0)]
    memory_bandwidth_gbs: f64,
    /// Sequences per rollout or training step, instead of the workload's 64 (the PyTorch peer
    /// runs out of memory on train-gpu's 64 x 768 tokens even on a 141 GB GPU).
    #[arg(long)]
    sequences: Option<usize>,
    /// Sequences per forward/backward pass of a training step (gradients accumulate over the
    /// passes); default: all at once.
    #[arg(long)]
    micro_batch: Option<usize>,
    /// Timed training steps after the warm-up one (the peer times 3); the line reports their
    /// mean and each step's time.
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

fn main() {
    spiral_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let (verb, kind) = cli.workload.split_once('-').expect("checked by clap");
    let mut workload = Workload::named(kind).expect("checked by clap");
    if let Some(n) = cli.sequences {
        workload.sequences = n.max(1);
    }
    let device = match cli.device {
        Some(d) => d,
        None if kind == "gpu" => "cuda".parse().unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        }),
        None => DeviceSpec::Cpu,
    };
    let precision = cli.precision.unwrap_or(if kind == "gpu" {
        Precision::Bfloat16
    } else {
        Precision::Float32
    });
    let job = Job {
        name: cli.workload.clone(),
        workload,
        device,
        precision,
        bandwidth: cli.memory_bandwidth_gbs * 1e9,
        micro_batch: cli.micro_batch,
        steps: cli.steps,
    };
    match verb {
        "rollout" => device.run(Rollout(job)),
        _ => device.run(Train(job)),
    }
}

/// What every measurement needs, and prints beside its numbers.
struct Job {
    name: String,
    workload: Workload,
    device: DeviceSpec,
    precision: Precision,
    /// Bytes per second, for the decode floor.
    bandwidth: f64,
    /// Sequences per forward/backward pass in training.
    micro_batch: Option<usize>,
    /// Timed training steps.
    steps: usize,
}

impl Job {
    /// The memory-bandwidth floor of the workload's decoding: every decode step reads every
    /// weight once and each sequence's KV cache so far, and can take no less than those bytes
    /// over the bandwidth (prefill not counted).
    fn decode_floor_seconds(&self) -> f64 {
        let w = &self.workload;
        let c = &w.model;
        let element = self.precision.dtype().size() as f64;
        let weights = c.num_parameters() as f64 * element;
        let kv_per_position = (2 * c.num_layers * c.num_kv_heads * c.head_dim) as f64 * element;
        let positions: usize = (0..w.new).map(|s| w.prompt + s + 1).sum();
        let bytes = w.new as f64 * weights + (w.sequences * positions) as f64 * kv_per_position;
        bytes / self.bandwidth
    }

    /// The JSON line of a measurement: its fields, then the settings.
    fn line(&self, mut fields: serde_json::Value) -> serde_json::Value {
        fields["workload"] = self.name.clone().into();
        fields["device"] = self.device.to_string().into();
        fields["precision"] = self.precision.as_str().into();
        fields["sequences"] = self.workload.sequences.into();
        fields
    }
}

struct Rollout(Job);

impl BackendJob for Rollout {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) {
        rollout::<B::InnerBackend>(&self.0, &device)
    }
}

fn rollout<B: Backend>(job: &Job, device: &B::Device) {
    let w = &job.workload;
    let model = CausalLm::<B>::random(w.model.clone(), 0, 0.02, device)
        .expect("valid config")
        .for_inference_in(job.precision);
    let vocab = model.config().vocab_size as u32;
    let mut rng = StdRng::seed_from_u64(0);
    let engine = RolloutEngine::default();
    let run = |batch: usize, new: usize, rng: &mut StdRng| {
        let prompts: Vec<Vec<u32>> = (0..batch)
            .map(|_| (0..w.prompt).map(|_| rng.random_range(3..vocab)).collect())
            .collect();
        let request = RolloutRequest {
            prompts,
            n: 1,
            sampling: SamplingParams {
                temperature: 1.0,
                top_p: 1.0,
                seed: 0,
                ..Default::default()
            },
            // No EOS: every sequence generates exactly `new` tokens, as the peer's min_new_tokens.
            stop: StopConditions {
                eos_token_ids: vec![],
                stop_strings: vec![],
                max_new_tokens: new,
            },
            max_total_tokens: None,
        };
        let start = Instant::now();
        // The sampled tokens are read back to the host every step, so the clock includes all
        // of the device's work.
        let out = engine.generate(&model, None, &request).expect("valid request");
        let s = &out.stats;
        // Progress on stderr: a slow first call (kernel compilation) shows where it went.
        eprintln!(
            "batch {batch} x {new} new: prefill {:.2}s, {} decode steps {:.2}s",
            s.prefill_seconds, s.decode_steps, s.decode_seconds
        );
        (s.generated_tokens, start.elapsed().as_secs_f64())
    };
    run(w.sequences, 8, &mut rng); // warm-up, as the peer does
    sync_device::<B>(device);
    let (tokens, seconds) = run(w.sequences, w.new, &mut rng);
    sync_device::<B>(device);
    let mut line = job.line(serde_json::json!({"generated_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens as f64 / seconds}));
    if job.device != DeviceSpec::Cpu {
        let floor = job.decode_floor_seconds();
        line["decode_floor_seconds"] = floor.into();
        line["bandwidth_floor_fraction"] = (floor / seconds).into();
    }
    emit(&line);
    for batch in [1, 8, 64] {
        let (tokens, seconds) = run(batch, w.new, &mut rng);
        emit(&job.line(serde_json::json!({"batch": batch, "generated_tokens": tokens, "seconds": seconds, "tokens_per_s": tokens as f64 / seconds})));
    }
}

/// Waits for the device's queued work. Under CubeCL's kernel profiler
/// (`CUBECL_DEBUG_OPTION=profile`) each sync also writes the per-kernel summary since the last
/// one, from a logger thread that is given a moment to finish before the numbers are printed.
fn sync_device<B: Backend>(device: &B::Device) {
    if let Err(e) = B::sync(device) {
        eprintln!("warning: device sync failed: {e:?}");
    }
    if std::env::var_os("CUBECL_DEBUG_OPTION").is_some() {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Prints one JSON line; a reader that stops early (`spiral-bench | head -1`) ends the run
/// quietly instead of the panic `println!` gives on a closed pipe.
fn emit(line: &serde_json::Value) {
    use std::io::Write;
    match writeln!(std::io::stdout(), "{line}") {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => panic!("cannot write to stdout: {e}"),
    }
}

/// The ranks `mpirun` started (with the `mpi` feature), or this process alone.
fn ranks() -> std::sync::Arc<dyn spiral_train::distributed::Collectives> {
    #[cfg(feature = "mpi")]
    if let Some(world) =
        spiral_train::distributed::mpi::MpiWorld::init(std::time::Duration::from_secs(3600))
    {
        return std::sync::Arc::new(world);
    }
    std::sync::Arc::new(spiral_train::distributed::SingleProcess)
}

struct Train(Job);

impl BackendJob for Train {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device) {
        let job = &self.0;
        let w = &job.workload;
        let total = w.prompt + w.new;
        let model = CausalLm::<B>::random(w.model.clone(), 0, 0.02, &device)
            .expect("valid config")
            .with_precision(job.precision);
        let vocab = model.config().vocab_size as u32;
        let optim = OptimConfig {
            lr: 1e-5,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            total_steps: 10,
            ..Default::default()
        };
        let mut learner = Learner::new(model, optim);
        if let Some(n) = job.micro_batch {
            learner = learner.with_micro_batch(n);
        }
        // Under `mpirun`, each rank trains on its share of the batch, one thread each.
        let world = ranks();
        let (rank, size) = (world.rank(), world.world_size());
        if size > 1 {
            learner = learner.with_world(world).with_shards(1);
        }
        let loss = PolicyLossConfig { clip_low: 0.2, clip_high: 0.28, ..Default::default() };
        let mut rng = StdRng::seed_from_u64(0);
        let batch: Vec<TrainSequence> = (0..w.sequences)
            .map(|_| TrainSequence {
                tokens: (0..total).map(|_| rng.random_range(3..vocab)).collect(),
                prompt_len: w.prompt,
                advantage: rng.random_range(-1.0..1.0),
                old_logprobs: None,
                ref_logprobs: None,
                rollout_logprobs: None,
                weight: 1.0,
            })
            .collect();
        let batch = batch[spiral_train::distributed::share(batch.len(), rank, size)].to_vec();
        // The step reads its loss and gradient norm back to the host, so it ends when the
        // device's work does.
        let started = Instant::now();
        learner.policy_step(&batch, &loss).expect("valid batch"); // warm-up, as the peer does
        eprintln!("warm-up step: {:.2}s", started.elapsed().as_secs_f64());
        sync_device::<B>(&device);
        let steps = job.steps.max(1);
        let start = Instant::now();
        let mut step_seconds = Vec::with_capacity(steps);
        for step in 0..steps {
            let step_start = Instant::now();
            learner.policy_step(&batch, &loss).expect("valid batch");
            step_seconds.push(step_start.elapsed().as_secs_f64());
            eprintln!("step {step}: {:.2}s since the first", start.elapsed().as_secs_f64());
        }
        let per_step = start.elapsed().as_secs_f64() / steps as f64;
        sync_device::<B>(&device);
        let tokens = w.sequences * total;
        if rank == 0 {
            emit(&job.line(serde_json::json!({"tokens_per_step": tokens, "seconds_per_step": per_step, "tokens_per_s": tokens as f64 / per_step, "step_seconds": step_seconds, "ranks": size})));
        }
    }
}
