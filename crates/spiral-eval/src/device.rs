//! The `--device` flag of the commands that run a model: each such command is written once for
//! any backend, as a [`ModelCommand`], and [`run_model_command`] runs it on the backend of the
//! device asked for (`cpu`, or `cuda[:N]` in builds with `--features cuda`; see
//! [`spiral_kernels::device`]).

use burn::tensor::backend::{AutodiffBackend, Backend};
use spiral_model::{BackendJob, DeviceSpec};

/// A command that loads and runs a model.
pub trait ModelCommand {
    /// The device named by the command's `--device` flag.
    fn device(&self) -> DeviceSpec;

    /// Runs the command with its model on `device`.
    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()>;
}

/// Runs `command` on the backend of its `--device`.
pub fn run_model_command<C: ModelCommand>(command: C) -> anyhow::Result<()> {
    command.device().run(Inference(command))
}

/// Hands a [`ModelCommand`] the inference backend (no autodiff graph) of a device.
struct Inference<C>(C);

impl<C: ModelCommand> BackendJob for Inference<C> {
    type Output = anyhow::Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        self.0.run_on::<B::InnerBackend>(&device)
    }
}
