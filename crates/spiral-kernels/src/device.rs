//! Where a model runs: the `--device cpu | cuda[:N]` flag of every binary, and the one place
//! that turns it into a burn backend type.
//!
//! burn picks the backend at compile time (`CausalLm<Flex>`, `CausalLm<Cuda>`), while users pick
//! a device at run time. A binary therefore writes its work once as a [`BackendJob`], generic
//! over the backend, and [`DeviceSpec::run`] monomorphises it for the device asked for. The CUDA
//! backend exists only in builds with the `cuda` feature; it needs no CUDA toolkit to build, and
//! loads the driver when a GPU is first used.

use std::any::TypeId;
use std::fmt;
use std::str::FromStr;

use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// The CPU backend every build has: burn's pure-Rust Flex backend.
pub type Cpu = burn::backend::Flex;

/// The CUDA backend: float32 tensors (bf16 compute is a model setting, not a backend type, so
/// that master weights and optimizer state stay float32), with burn's kernel fusion.
#[cfg(feature = "cuda")]
pub type Cuda = burn_cuda::Cuda<f32, i32>;

/// A CUDA device by ordinal (`CudaDevice::new(0)`).
#[cfg(feature = "cuda")]
pub use burn_cuda::CudaDevice;

/// Whether `B` runs on the CPU (burn's Flex backend, with or without autodiff): the CPU wants
/// batches split across cores and small working sets, a GPU neither.
pub fn is_cpu<B: Backend>() -> bool {
    TypeId::of::<B::Device>() == TypeId::of::<burn::backend::flex::FlexDevice>()
}

/// The multiple of tokens that batches of sequences are padded to on backend `B`: 8 off the
/// CPU, 1 on it.
///
/// At a multiple of 8 tokens the rows of attention's `[t, t]` bf16 operands start on 16-byte
/// boundaries, which the asynchronous-copy kernels of `cuda_matmul` need; at other lengths those
/// products fall back to burn's slower kernel. The CPU gains nothing from the extra positions.
pub fn length_multiple<B: Backend>() -> usize {
    if is_cpu::<B>() { 1 } else { 8 }
}

/// Whether this binary was built with the `cuda` feature.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU, every core.
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let spec = match value {
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda(0),
            v => match v.strip_prefix("cuda:") {
                Some(n) => Self::Cuda(n.parse().map_err(|_| {
                    format!("`{v}`: expected `cuda:N` with N a GPU number such as 0")
                })?),
                None => return Err(format!("unknown device `{v}`: expected `cpu` or `cuda[:N]`")),
            },
        };
        if matches!(spec, Self::Cuda(_)) && !CUDA_BUILT {
            return Err(format!(
                "`{value}` needs a build with CUDA support (`cargo build --release --features \
                 cuda`), which this binary does not have"
            ));
        }
        #[cfg(feature = "cuda")]
        if let Self::Cuda(index) = spec {
            check_cuda(index).map_err(|why| format!("`{value}`: {why}"))?;
        }
        Ok(spec)
    }
}

/// Whether CUDA GPU `index` can be used: the driver library loads, starts, and counts more
/// GPUs than `index`. Asked when the device is named, because burn's CUDA runtime loads the
/// driver on a thread of its own at the first tensor and panics there, with a backtrace, when
/// the library is missing or the ordinal is out of range.
#[cfg(feature = "cuda")]
fn check_cuda(index: usize) -> Result<(), String> {
    use cudarc::driver::{result, sys};
    // A lookup of the library by name (`dlopen`), with no other effect.
    #[allow(unsafe_code)]
    let present = unsafe { sys::is_culib_present() };
    if !present {
        return Err("the CUDA driver library (libcuda.so.1) could not be loaded: this machine \
                    has no NVIDIA driver, or LD_LIBRARY_PATH does not reach it"
            .into());
    }
    result::init().map_err(|e| format!("the CUDA driver did not start: {e}"))?;
    let count = result::device::get_count().map_err(|e| format!("counting CUDA GPUs: {e}"))?;
    let count = usize::try_from(count).unwrap_or(0);
    match count {
        0 => Err("the CUDA driver sees no GPU on this machine".into()),
        n if index >= n => {
            Err(format!("this machine has {n} CUDA GPU(s): cuda:0 to cuda:{}", n - 1))
        }
        _ => Ok(()),
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Work written once for any backend. `B` is an autodiff backend so that training jobs can
/// use it directly; inference jobs use `B::InnerBackend`, which records no graph.
pub trait BackendJob {
    /// What the job returns.
    type Output;

    /// Runs on `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

impl DeviceSpec {
    /// Runs `job` on this device's backend.
    pub fn run<J: BackendJob>(self, job: J) -> J::Output {
        match self {
            Self::Cpu => job.run::<Autodiff<Cpu>>(Default::default()),
            #[cfg(feature = "cuda")]
            Self::Cuda(index) => job.run::<Autodiff<Cuda>>(CudaDevice::new(index)),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => {
                unreachable!("`DeviceSpec::from_str` refuses cuda without the feature")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_names_what_is_wrong() {
        assert_eq!("cpu".parse::<DeviceSpec>(), Ok(DeviceSpec::Cpu));
        assert_eq!(DeviceSpec::Cpu.to_string(), "cpu");
        let err = "gpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("`gpu`") && err.contains("cuda[:N]"), "{err}");
        let err = "cuda:x".parse::<DeviceSpec>().unwrap_err();
        if CUDA_BUILT {
            assert!(err.contains("cuda:N"), "{err}");
            assert_eq!(DeviceSpec::Cuda(1).to_string(), "cuda:1");
            // Without a usable GPU the error says why; cuda:4096 is past any machine's count.
            match "cuda".parse::<DeviceSpec>() {
                Ok(spec) => assert_eq!(spec, DeviceSpec::Cuda(0)),
                Err(err) => assert!(err.starts_with("`cuda`: ") && err.contains("CUDA"), "{err}"),
            }
            let err = "cuda:4096".parse::<DeviceSpec>().unwrap_err();
            assert!(err.starts_with("`cuda:4096`: ") && err.contains("CUDA"), "{err}");
        } else {
            let err = "cuda:1".parse::<DeviceSpec>().unwrap_err();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn runs_a_job_on_the_cpu_backend() {
        struct Name;
        impl BackendJob for Name {
            type Output = String;
            fn run<B: AutodiffBackend>(self, device: B::Device) -> String {
                B::name(&device)
            }
        }
        let name = DeviceSpec::Cpu.run(Name);
        assert!(name.to_lowercase().contains("flex"), "{name}");
    }
}
