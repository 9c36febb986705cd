//! bf16 matrix products on the CUDA backend, with the cubek-matmul kernel chosen here instead of
//! burn's default.
//!
//! Without its autotuner (which hangs on Hopper: see the workspace `Cargo.toml`), burn 0.21
//! launches every product with cubek-matmul's simple cyclic CMMA kernel. On an H100 that runs at
//! 55 to 90 TFLOP/s, and matrix products were 56% of a training step
//! (`docs/results/gpu-h100-2026-11-23.md`). cubek-matmul has faster kernels (double buffering,
//! warp-specialised loading, the `mma` PTX instruction instead of WMMA), which only the autotuner
//! reaches. This module launches one of them directly:
//!
//! - [`matmul`] is what the model calls for every product ([`crate::precision`]). For bf16 or
//!   f16 operands on `Cuda` or `Autodiff<Cuda>` it registers the product with burn-fusion as a
//!   custom operation, in stream order, so no synchronisation is added. Under autodiff the
//!   operation records its own backward step: `dA = dC B^T` and `dB = A^T dC`, the transposes
//!   being strided views that the kernel reads in place.
//! - The kernel is [`MatmulKernel::DEFAULT`], or the one named by the `SPIRAL_CUDA_MATMUL`
//!   environment variable (`burn` keeps burn's own path, fusion of the product included).
//! - A kernel that cannot take a problem falls back to burn's default kernel for that call. cubek
//!   says so with a setup error: the default kernel's asynchronous copies need row strides that
//!   are a multiple of 16 bytes, which attention over an odd sequence length (470 tokens) lacks.
//!   The model's own batches are padded to a multiple of 8 tokens on the GPU to keep them
//!   ([`crate::device::length_multiple`]).
//! - `cublas` runs the product on cuBLAS instead ([`crate::cuda_cublas`]); it waits for the device
//!   around each product, and has not been measured yet.
//! - Products of fewer than [`MIN_ROWS`] rows (decode steps) keep burn's path.
//!
//! Float32 products keep burn's path: they are the parity mode (see [`crate::precision`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{DType, Shape, Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::kernel::matmul::{MatmulStrategy, init_matmul_output};
use burn_cubecl::tensor::CubeTensor;
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use cubek::matmul::definition::{MatmulElems, MatmulGlobalElems};
use cubek::matmul::launch::Strategy;
use cubek::matmul::routines::BlueprintStrategy;
use cubek::matmul::routines::double_buffering::DoubleBufferingArgs;
use cubek::matmul::routines::ordered_double_buffering::OrderedSelectionArgs;
use cubek::matmul::routines::simple::SimpleArgs;
use cubek::matmul::routines::specialized::SpecializedStrategy;
use cubek::std::InputBinding;

use crate::device::Cuda;
use crate::dispatch::{downcast, upcast};

/// The backend burn-fusion runs on under [`Cuda`].
type Inner = CubeBackend<CudaRuntime, f32, i32, u8>;
type Runtime = <Inner as FusionBackend>::FusionRuntime;
type Handle = <Runtime as FusionRuntime>::FusionHandle;
type CudaAutodiff = Autodiff<Cuda>;

/// A matrix-product kernel of cubek-matmul, by the name `SPIRAL_CUDA_MATMUL` takes. TMA kernels
/// are left out: their launch check fails on Hopper, which is what hangs burn's autotuner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulKernel(&'static str);

impl MatmulKernel {
    /// Every kernel [`MatmulKernel::named`] knows, burn's own path ([`MatmulKernel::BURN`]) first.
    pub const ALL: &'static [&'static str] = &[
        "burn",
        "cublas",
        "simple_cyclic_cmma",
        "simple_cyclic_mma",
        "simple_multirows_cmma",
        "simple_multirows_mma",
        "simple_async_cyclic_cmma",
        "simple_async_cyclic_mma",
        "double_cyclic_cmma",
        "double_cyclic_mma",
        "double_tilewise_cmma",
        "double_tilewise_mma",
        "double_hybrid_cmma",
        "double_hybrid_mma",
        "double_async_cyclic_cmma",
        "double_async_cyclic_mma",
        "double_async_strided_cmma",
        "double_async_strided_mma",
        "double_specialized_cmma",
        "double_specialized_mma",
        "specialized_cyclic_cmma",
        "specialized_cyclic_mma",
        "specialized_strided_cmma",
        "specialized_strided_mma",
        "ordered_double_cmma",
        "ordered_double_mma",
    ];

    /// burn's own path: `Tensor::matmul`, which burn-fusion may fuse with its neighbours.
    pub const BURN: Self = Self("burn");

    /// cuBLAS, through [`crate::cuda_cublas`]: not yet run on a GPU, so only chosen by name.
    pub const CUBLAS: Self = Self("cublas");

    /// The kernel used when `SPIRAL_CUDA_MATMUL` is unset: double-buffered, with asynchronous
    /// (`cp.async`) strided loading and the `mma` instruction. Of every kernel above it took the
    /// least time over the products of a Qwen3-0.6B training step on an H100 (100 ms against
    /// burn's 158 ms, `matmul-kernels`), and halved train-gpu's step time
    /// (`docs/results/gpu-h100-2026-11-23-matmul.md`).
    pub const DEFAULT: Self = Self("double_async_strided_mma");

    /// The kernel called `name`, if it is one of [`MatmulKernel::ALL`].
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|&&known| known == name).map(|&known| Self(known))
    }

    /// The kernel this process uses: `SPIRAL_CUDA_MATMUL`, read once, or the default. An unknown
    /// name is an error that lists the known ones, not a silent default.
    pub fn selected() -> Self {
        static SELECTED: OnceLock<MatmulKernel> = OnceLock::new();
        *SELECTED.get_or_init(|| match std::env::var("SPIRAL_CUDA_MATMUL") {
            Ok(name) => Self::named(&name).unwrap_or_else(|| {
                panic!("SPIRAL_CUDA_MATMUL=`{name}`: expected one of {}", Self::ALL.join(", "))
            }),
            Err(_) => Self::DEFAULT,
        })
    }

    /// The kernel's name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// cubek's launch strategy for the kernel; `None` for burn's own path and cuBLAS.
    fn strategy(self) -> Option<Strategy> {
        use BlueprintStrategy::Inferred;
        // Arguments only: each variant's routine type follows from the variant.
        let simple = |multi_rows| SimpleArgs { multi_rows, ..Default::default() };
        let double = |specialized| DoubleBufferingArgs { specialized, ..Default::default() };
        let specialized = SpecializedStrategy::default;
        let ordered = OrderedSelectionArgs::default;
        Some(match self.0 {
            "simple_cyclic_cmma" => Strategy::SimpleCyclicCmma(Inferred(simple(false))),
            "simple_cyclic_mma" => Strategy::SimpleCyclicMma(Inferred(simple(false))),
            "simple_multirows_cmma" => Strategy::SimpleCyclicCmma(Inferred(simple(true))),
            "simple_multirows_mma" => Strategy::SimpleCyclicMma(Inferred(simple(true))),
            "simple_async_cyclic_cmma" => Strategy::SimpleAsyncCyclicCmma(Inferred(simple(false))),
            "simple_async_cyclic_mma" => Strategy::SimpleAsyncCyclicMma(Inferred(simple(false))),
            "double_cyclic_cmma" => Strategy::DoubleCyclicCmma(Inferred(double(false))),
            "double_cyclic_mma" => Strategy::DoubleCyclicMma(Inferred(double(false))),
            "double_tilewise_cmma" => Strategy::DoubleTilewiseCmma(Inferred(double(false))),
            "double_tilewise_mma" => Strategy::DoubleTilewiseMma(Inferred(double(false))),
            "double_hybrid_cmma" => Strategy::DoubleHybridCmma(Inferred(double(false))),
            "double_hybrid_mma" => Strategy::DoubleHybridMma(Inferred(double(false))),
            "double_async_cyclic_cmma" => Strategy::DoubleAsyncCyclicCmma(Inferred(double(false))),
            "double_async_cyclic_mma" => Strategy::DoubleAsyncCyclicMma(Inferred(double(false))),
            "double_async_strided_cmma" => {
                Strategy::DoubleAsyncStridedCmma(Inferred(double(false)))
            }
            "double_async_strided_mma" => Strategy::DoubleAsyncStridedMma(Inferred(double(false))),
            "double_specialized_cmma" => Strategy::DoubleCyclicCmma(Inferred(double(true))),
            "double_specialized_mma" => Strategy::DoubleCyclicMma(Inferred(double(true))),
            "specialized_cyclic_cmma" => Strategy::SpecializedCyclicCmma(Inferred(specialized())),
            "specialized_cyclic_mma" => Strategy::SpecializedCyclicMma(Inferred(specialized())),
            "specialized_strided_cmma" => Strategy::SpecializedStridedCmma(Inferred(specialized())),
            "specialized_strided_mma" => Strategy::SpecializedStridedMma(Inferred(specialized())),
            "ordered_double_cmma" => Strategy::OrderedDoubleCmma(Inferred(ordered())),
            "ordered_double_mma" => Strategy::OrderedDoubleMma(Inferred(ordered())),
            _ => return None,
        })
    }
}

/// Products with fewer rows keep burn's path. Those are decode steps (one row per sequence),
/// where a tiled kernel mostly computes padding; they were not measured with these kernels, and
/// rollout on burn's path is already twice PyTorch's speed. Training and prefill products have
/// thousands of rows.
pub const MIN_ROWS: usize = 256;

/// `a @ b` with the [selected](MatmulKernel::selected) kernel where it applies (bf16 or f16
/// operands of one dtype on `Cuda` or `Autodiff<Cuda>`, equal batch dimensions, at least
/// [`MIN_ROWS`] rows); `a.matmul(b)` otherwise.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    matmul_with(MatmulKernel::selected(), a, b)
}

/// [`matmul`] with the kernel given (for benchmarks and tests that compare kernels in one
/// process).
pub fn matmul_with<B: Backend, const D: usize>(
    kernel: MatmulKernel,
    a: Tensor<B, D>,
    b: Tensor<B, D>,
) -> Tensor<B, D> {
    let half = matches!(a.dtype(), DType::BF16 | DType::F16) && a.dtype() == b.dtype();
    let (da, db) = (a.dims(), b.dims());
    let batches_equal = da[..D - 2] == db[..D - 2];
    if kernel == MatmulKernel::BURN || !half || !batches_equal || da[D - 2] < MIN_ROWS {
        return a.matmul(b);
    }
    let (a, b) = match (downcast::<B, CudaAutodiff, D>(a), downcast::<B, CudaAutodiff, D>(b)) {
        (Ok(a), Ok(b)) => return upcast(autodiff_matmul(kernel, a, b)),
        (Err(a), Err(b)) => (a, b),
        _ => unreachable!("both tensors have the backend B"),
    };
    match (downcast::<B, Cuda, D>(a), downcast::<B, Cuda, D>(b)) {
        (Ok(a), Ok(b)) => {
            let out =
                fusion_matmul(kernel, a.into_primitive().tensor(), b.into_primitive().tensor());
            upcast(Tensor::<Cuda, D>::from_primitive(TensorPrimitive::Float(out)))
        }
        (Err(a), Err(b)) => a.matmul(b),
        _ => unreachable!("both tensors have the backend B"),
    }
}

/// The product under autodiff, recorded with [`MatmulBackward`].
fn autodiff_matmul<const D: usize>(
    kernel: MatmulKernel,
    a: Tensor<CudaAutodiff, D>,
    b: Tensor<CudaAutodiff, D>,
) -> Tensor<CudaAutodiff, D> {
    let a = a.into_primitive().tensor();
    let b = b.into_primitive().tensor();
    let (a_tracked, b_tracked) = (a.is_tracked(), b.is_tracked());
    let prep = MatmulBackward { kernel }
        .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => {
            // Each gradient needs the other operand only.
            let state =
                (b_tracked.then(|| a.primitive.clone()), a_tracked.then(|| b.primitive.clone()));
            prep.finish(state, fusion_matmul(kernel, a.primitive, b.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(fusion_matmul(kernel, a.primitive, b.primitive)),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The backward step of `C = A B`: `dA = dC B^T`, `dB = A^T dC`, with the same kernel.
#[derive(Debug)]
struct MatmulBackward {
    kernel: MatmulKernel,
}

type Primitive = FloatTensor<Cuda>;

impl Backward<Cuda, 2> for MatmulBackward {
    /// `A` when `B` needs a gradient, `B` when `A` does.
    type State = (Option<Primitive>, Option<Primitive>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Cuda>(&ops.node);
        let (a, b) = ops.state;
        let [a_parent, b_parent] = ops.parents;
        if let (Some(parent), Some(b)) = (a_parent, b) {
            let grad_a = fusion_matmul(self.kernel, grad.clone(), Cuda::float_transpose(b));
            grads.register::<Cuda>(parent.id, grad_a);
        }
        if let (Some(parent), Some(a)) = (b_parent, a) {
            let grad_b = fusion_matmul(self.kernel, Cuda::float_transpose(a), grad);
            grads.register::<Cuda>(parent.id, grad_b);
        }
    }
}

/// Registers `a @ b` with burn-fusion as one custom operation run by [`MatmulOp`].
fn fusion_matmul(
    kernel: MatmulKernel,
    a: FusionTensor<Runtime>,
    b: FusionTensor<Runtime>,
) -> Primitive {
    let client = a.client.clone();
    let rank = a.shape.num_dims();
    let mut shape: Shape = a.shape.clone();
    shape[rank - 1] = b.shape[rank - 1];
    let out = TensorIr::uninit(client.create_empty_handle(), shape, a.dtype);
    let streams = OperationStreams::with_inputs([&a, &b]);
    let desc = CustomOpIr::new("spiral_matmul", &[a.into_ir(), b.into_ir()], &[out]);
    client.register(streams, OperationIr::Custom(desc.clone()), MatmulOp { desc, kernel }).output()
}

/// The custom operation: launches the kernel on the tensors burn-fusion hands it.
#[derive(Debug, Clone)]
struct MatmulOp {
    desc: CustomOpIr,
    kernel: MatmulKernel,
}

impl Operation<Runtime> for MatmulOp {
    fn execute(&self, handles: &mut HandleContainer<Handle>) {
        let ([a, b], [out]) = self.desc.as_fixed();
        let a = handles.get_float_tensor::<Inner>(a);
        let b = handles.get_float_tensor::<Inner>(b);
        let result = launch(self.kernel, a, b);
        handles.register_float_tensor::<Inner>(&out.id, result);
    }
}

/// `a @ b` with `kernel`, or with burn's default kernel where `kernel` cannot take the problem.
fn launch(
    kernel: MatmulKernel,
    a: CubeTensor<CudaRuntime>,
    b: CubeTensor<CudaRuntime>,
) -> CubeTensor<CudaRuntime> {
    let dtype = a.dtype;
    let out = init_matmul_output(&a, &b, dtype);
    if kernel == MatmulKernel::CUBLAS {
        match crate::cuda_cublas::matmul(&a, &b, &out) {
            Ok(()) => return out,
            Err(reason) => note_fallback(kernel, &out, &reason),
        }
    } else if let Some(strategy) = kernel.strategy() {
        let mut elems = MatmulElems::from_globals(&MatmulGlobalElems {
            lhs: a.dtype.into(),
            rhs: b.dtype.into(),
            out: dtype.into(),
        });
        let launched = cubek::matmul::launch::launch_ref(
            &strategy,
            &out.client,
            InputBinding::new(a.clone().binding(), a.dtype.into()),
            InputBinding::new(b.clone().binding(), b.dtype.into()),
            out.clone().binding(),
            &mut elems,
        );
        match launched {
            Ok(()) => return out,
            Err(error) => note_fallback(kernel, &out, &error),
        }
    }
    burn_cubecl::kernel::matmul::matmul(a, b, Some(out), MatmulStrategy::default(), dtype)
        .expect("burn's default matmul takes every problem")
}

/// How many products fell back to burn's default kernel, in this process.
static FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// How many products so far the selected kernel could not take (they ran on burn's default).
pub fn fallback_count() -> usize {
    FALLBACKS.load(Ordering::Relaxed)
}

/// Counts a fallback, and says so on stderr the first time, naming the kernel, the output shape
/// and cubek's reason: a kernel that silently never runs would make its benchmark a lie.
fn note_fallback(
    kernel: MatmulKernel,
    out: &CubeTensor<CudaRuntime>,
    error: &impl std::fmt::Debug,
) {
    if FALLBACKS.fetch_add(1, Ordering::Relaxed) == 0 {
        let reason = format!("{error:?}");
        eprintln!(
            "warning: matmul kernel `{}` cannot take a product of shape {:?} ({}); \
             burn's default kernel runs it (and any others it cannot take)",
            kernel.name(),
            out.meta.shape(),
            reason.trim(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_name_resolves_and_unknown_names_do_not() {
        for &name in MatmulKernel::ALL {
            let kernel = MatmulKernel::named(name).expect("listed");
            assert_eq!(kernel.name(), name);
            let not_cubek = [MatmulKernel::BURN, MatmulKernel::CUBLAS].contains(&kernel);
            assert_eq!(kernel.strategy().is_none(), not_cubek, "{name}");
        }
        assert!(MatmulKernel::named("tma").is_none());
        assert!(MatmulKernel::named(MatmulKernel::DEFAULT.name()).is_some());
    }
}
