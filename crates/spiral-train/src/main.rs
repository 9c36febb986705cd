//! `spiral-train`: train a model with SPIRAL (or ParaGator / GRPO / Dr.GRPO) from a TOML config.
//! With no arguments it runs the embedded default (`configs/default.toml`): Countdown, a small
//! model from scratch, warm start, SPIRAL, evaluation and a report, on the CPU.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
#[cfg(any(feature = "mpi", feature = "cuda"))]
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Parser;
use spiral_model::DeviceSpec;
#[cfg(feature = "mpi")]
use spiral_train::distributed::Collectives;
use spiral_train::distributed::World;
use spiral_train::{Outcome, RunConfig, RunControl, default_out_dir, run, summary};

/// See [`spiral_kernels::allocator`] for why.
#[global_allocator]
static ALLOCATOR: spiral_kernels::allocator::MiMalloc = spiral_kernels::allocator::MiMalloc;

/// Train a language model to search in parallel and aggregate, end to end with RL.
#[derive(Parser)]
#[command(name = "spiral-train", version, about, long_about = None, after_help = "\
Examples:
  spiral-train                                    # the embedded default run
  spiral-train --config configs/grpo.toml
  spiral-train --set train.steps=10 --set algorithm.n1=6 --out runs/quick
  spiral-train --resume runs/quick                # continue after Ctrl-C or a crash
  spiral-train --config configs/gpu-qwen3-0.6b-math.toml --device cuda   # a --features cuda build
The resolved config is printed and saved as <out>/config.toml; metrics go to <out>/metrics.jsonl,
checkpoints (Hugging Face folders with optimizer state) to <out>/checkpoints/, the report with
plots to <out>/report.md. With --set lora.enabled=true the RL phase trains LoRA adapters and its
checkpoints are PEFT adapter folders over <out>/checkpoints/base. Ctrl-C finishes the current
step, checkpoints and exits 0; a second Ctrl-C exits at once.
RL trains the policy the rollouts sample from, softmax(logits / rollout.temperature); a
rollout.top_p below 1 cuts what is drawn but not that objective (as in TRL and verl), and is
warned about. The README lists the RL options (corrections, GSPO, dynamic sampling, overlong
shaping) with the TRL and verl names of each.")]
struct Cli {
    /// TOML config (default: the embedded configs/default.toml). A config may start from another
    /// with `extends = "other.toml"` (relative to itself) and hold only what differs.
    #[arg(long, conflicts_with = "resume")]
    config: Option<PathBuf>,
    /// Override one key, `section.key=value` (repeatable); unknown keys are refused.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Run folder (default: runs/<name>-<unix time>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint, with its saved config.toml
    /// (`--set` may still change it, e.g. `train.steps` to train longer; other changes make the
    /// run differ from an uninterrupted one).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Where to train: `cpu`, or `cuda[:N]` in builds with `--features cuda`. On a GPU, bf16
    /// products use the matmul kernel named by the `SPIRAL_CUDA_MATMUL` environment variable
    /// (`burn` for burn's own), or the fastest one measured (see `spiral_kernels::cuda_matmul`).
    /// Under `mpirun` or `srun`, `cuda` gives each rank the GPU of its local rank.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Under `mpirun` or `srun`: seconds a collective (a gradient sum) may wait for the other
    /// ranks before every rank is ended; a hung rank would otherwise hold them forever.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    collective_timeout: u64,
    /// Under `mpirun` or `srun`: where the ranks' gradients are summed. `auto`: on the GPUs by
    /// NCCL with `--device cuda` (builds with `--features mpi,cuda`; `libnccl` is loaded at run
    /// time), on the host by MPI otherwise; `host`: always copied to the host and summed by MPI.
    #[arg(long, value_enum, default_value_t = GradientSum::Auto)]
    gradient_sum: GradientSum,
}

/// `--gradient-sum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GradientSum {
    Auto,
    Nccl,
    Host,
}

fn main() -> ExitCode {
    spiral_kernels::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let ranks = Ranks::start(std::time::Duration::from_secs(cli.collective_timeout.max(1)));
    match train(&cli, ranks.world()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => ranks.fail(&failure),
    }
}

/// Why a run failed, and whether every rank failed alike: an error in the command line or the
/// config files, which every rank reads the same, is printed once, by rank 0.
struct Failure {
    error: anyhow::Error,
    on_every_rank: bool,
}

/// The ranks this process trains with: those `mpirun` or `srun` started (in builds with the
/// `mpi` feature), or this process alone.
struct Ranks {
    #[cfg(feature = "mpi")]
    mpi: Option<Arc<spiral_train::distributed::mpi::MpiWorld>>,
}

impl Ranks {
    #[cfg_attr(not(feature = "mpi"), allow(unused_variables))]
    fn start(timeout: std::time::Duration) -> Self {
        Self {
            #[cfg(feature = "mpi")]
            mpi: spiral_train::distributed::mpi::MpiWorld::init(timeout).map(Arc::new),
        }
    }

    fn world(&self) -> World {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = self.mpi.as_ref().filter(|m| m.world_size() > 1) {
            return World(mpi.clone());
        }
        World::default()
    }

    /// Prints the error and exits. With several ranks, an error every rank met alike is printed
    /// by rank 0 alone; any other is printed prefixed by this rank and ends every rank, so that
    /// none waits forever in a collective for this one.
    fn fail(&self, failure: &Failure) -> ExitCode {
        let (world, err) = (self.world(), &failure.error);
        if world.0.world_size() == 1 {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
        if failure.on_every_rank {
            if world.is_root() {
                eprintln!("error: {err:#}");
            }
            return ExitCode::from(2);
        }
        eprintln!("error on rank {} of {}: {err:#}", world.0.rank(), world.0.world_size());
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            mpi.abort(2);
        }
        ExitCode::from(2)
    }
}

/// The run the command line asks for, on `world`.
fn train(cli: &Cli, world: World) -> Result<(), Failure> {
    let root = world.is_root();
    let alike = |error| Failure { error, on_every_rank: true };
    let (config, out, control, device_text) = settings(cli, world).map_err(alike)?;
    if root {
        println!("{}", config.to_toml());
        eprintln!(
            "run folder: {}, device: {}, ranks: {}",
            out.display(),
            device_text,
            control.world.0.world_size()
        );
    }
    let outcome =
        run(&config, &out, &control).map_err(|error| Failure { error, on_every_rank: false })?;
    if root {
        match outcome {
            Outcome::Finished(last) => println!("final: {}", summary(&last)),
            Outcome::Stopped(checkpoint) => println!(
                "stopped; checkpoint {} (continue with --resume {})",
                checkpoint.display(),
                out.display()
            ),
        }
        println!("report: {}", out.join("report.md").display());
    }
    Ok(())
}

/// The config, run folder, run control and device the command line names.
fn settings(cli: &Cli, world: World) -> anyhow::Result<(RunConfig, PathBuf, RunControl, String)> {
    // `cuda` is the GPU of this rank's local rank when there are several ranks.
    let device_text = match (cli.device.as_str(), local_rank()) {
        ("cuda", Some(local)) if world.0.world_size() > 1 => format!("cuda:{local}"),
        (text, _) => text.to_string(),
    };
    let device = DeviceSpec::from_str(&device_text).map_err(|e| anyhow::anyhow!("--device {e}"))?;
    let world = gradient_sum(world, &device, cli.gradient_sum)?;
    let control = RunControl { resume: cli.resume.is_some(), device, world, ..Default::default() };
    install_interrupt_handler(&control);
    // A resumed run reads the config it saved; otherwise --config, else the embedded default.
    let file = match &cli.resume {
        Some(dir) => Some(dir.join("config.toml")),
        None => cli.config.clone(),
    };
    let config = match &file {
        Some(path) if cli.resume.is_some() && !path.is_file() => {
            anyhow::bail!("{}: no such file (is this a run folder?)", path.display())
        }
        Some(path) => RunConfig::from_file(path, &cli.overrides)?,
        None => RunConfig::default_with(&cli.overrides)?,
    };
    let out = match (&cli.resume, &cli.out) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => {
            anyhow::ensure!(
                control.world.0.world_size() == 1,
                "a run on several ranks needs --out (or --resume): every rank must name the same \
                 run folder"
            );
            default_out_dir(&config)
        }
    };
    Ok((config, out, control, device_text))
}

/// `world`, with its gradient sums on the GPUs where `--gradient-sum` and the device say so.
fn gradient_sum(world: World, device: &DeviceSpec, choice: GradientSum) -> anyhow::Result<World> {
    let on_gpus = matches!(device, DeviceSpec::Cuda(_));
    anyhow::ensure!(
        on_gpus || choice != GradientSum::Nccl,
        "--gradient-sum nccl sums gradients on GPUs: add --device cuda"
    );
    if world.0.world_size() == 1 || !on_gpus || choice == GradientSum::Host {
        return Ok(world);
    }
    #[cfg(feature = "cuda")]
    return Ok(World(Arc::new(spiral_train::distributed::nccl::NcclOnGpus::new(world.0))));
    #[cfg(not(feature = "cuda"))]
    unreachable!("--device cuda is refused by builds without the cuda feature")
}

/// Ctrl-C finishes the current step, checkpoints and returns; a second one exits at once.
fn install_interrupt_handler(control: &RunControl) {
    let stop = control.stop.clone();
    let handler = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing this step, then checkpointing (Ctrl-C again to abort)");
    });
    if let Err(err) = handler {
        eprintln!("warning: no Ctrl-C handler ({err}); an interrupt loses the current step");
    }
}

/// This process's rank among those on its machine, from the launcher's environment (Open MPI,
/// MPICH's Hydra, Slurm).
fn local_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
}
