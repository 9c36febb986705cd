//! bf16 and f16 matrix products through cuBLAS: the `cublas` choice of
//! [`crate::cuda_matmul::MatmulKernel`] (`SPIRAL_CUDA_MATMUL=cublas`).
//!
//! cuBLAS runs bf16 products at about 790 TFLOP/s on an H100, where cubek-matmul's best kernel
//! averaged about 110 over a training step (`docs/results/gpu-h100-2026-11-23-matmul.md`). It is
//! reached through cudarc, the CUDA binding cubecl-cuda is built on, which loads `libcublas` at
//! run time (`LD_LIBRARY_PATH` must find it); nothing is linked at build time.
//!
//! cubecl launches its kernels on a stream of its own that it does not expose, so cuBLAS cannot
//! be queued behind them. Each product therefore waits for cubecl's stream to finish the kernels
//! that write its operands, runs on a stream of this module, and waits for it before returning,
//! after which cubecl may queue the kernels that read the result. Operands are read in place,
//! transposed views included ([`crate::gemm_layout`]).
//!
//! Unlike the rest of the CUDA path, this module has not yet been measured on a GPU, so it is
//! chosen only by name. The GPU test
//! `every_bf16_matmul_kernel_gives_burns_product_and_gradients` covers it with every other kernel.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, OnceLock};

use burn::tensor::DType;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::cubecl::future::block_on;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasHandle_t, cublasOperation_t, cudaDataType_t,
};
use cudarc::driver::result::{ctx, device, primary_ctx, stream};
use cudarc::driver::sys::{CUcontext, CUstream};

use crate::gemm_layout::{GemmArgs, Operand, gemm_args};

type Tensor = CubeTensor<CudaRuntime>;

/// `out = a @ b` with cuBLAS, `out` being contiguous and of the product's shape and dtype. An
/// error says why cuBLAS did not take the product (nothing was written then).
pub(crate) fn matmul(a: &Tensor, b: &Tensor, out: &Tensor) -> Result<(), String> {
    let data_type = match a.dtype {
        DType::BF16 => cudaDataType_t::CUDA_R_16BF,
        DType::F16 => cudaDataType_t::CUDA_R_16F,
        other => return Err(format!("cuBLAS is used for bf16 and f16 products, not {other:?}")),
    };
    let operand = |t: &Tensor| {
        Operand::from_strided(t.meta.shape(), t.meta.strides()).ok_or_else(|| {
            format!("strides {:?} of a {:?} operand", &t.meta.strides()[..], &t.meta.shape()[..])
        })
    };
    let args = gemm_args(operand(a)?, operand(b)?)
        .ok_or_else(|| format!("shapes {:?} and {:?}", &a.meta.shape()[..], &b.meta.shape()[..]))?;
    let blas = Blas::for_device(out.device.index)?;
    // Holding the resources keeps their memory from being reused until the product is done;
    // asking for them also makes this thread's cubecl stream wait for the streams that wrote them.
    let resource = |t: &Tensor| {
        t.client.get_resource(t.handle.clone()).map_err(|e| format!("device memory: {e:?}"))
    };
    let (a_mem, b_mem, out_mem) = (resource(a)?, resource(b)?, resource(out)?);
    let (a_ptr, b_ptr, out_ptr) =
        (a_mem.resource().ptr, b_mem.resource().ptr, out_mem.resource().ptr);
    block_on(out.client.sync()).map_err(|e| format!("waiting for the device: {e:?}"))?;
    let blas = blas.lock().map_err(|_| "a cuBLAS call panicked earlier".to_string())?;
    let done = blas.gemm(&args, data_type, b_ptr, a_ptr, out_ptr);
    drop((a_mem, b_mem, out_mem));
    done
}

/// A cuBLAS handle bound to a stream of its own, in the device's primary context (the one
/// cubecl-cuda uses, so device pointers are shared).
struct Blas {
    handle: cublasHandle_t,
    stream: CUstream,
    context: CUcontext,
}

// SAFETY: the raw handles are only used under the `Mutex` of `Blas::for_device`, one call at a
// time; cuBLAS handles and CUDA streams may be used from any thread whose current context is
// theirs, which `Blas::gemm` makes it.
unsafe impl Send for Blas {}

impl Blas {
    /// This process's handle for GPU `ordinal`, made on first use; the error of a failed first
    /// use (no `libcublas`, say) is kept and returned each time.
    fn for_device(ordinal: usize) -> Result<&'static Mutex<Blas>, String> {
        type Handles = Mutex<HashMap<usize, Result<&'static Mutex<Blas>, String>>>;
        static HANDLES: OnceLock<Handles> = OnceLock::new();
        let mut handles = HANDLES.get_or_init(Default::default).lock().expect("not poisoned");
        handles
            .entry(ordinal)
            .or_insert_with(|| Blas::open(ordinal).map(|b| &*Box::leak(Box::new(Mutex::new(b)))))
            .clone()
    }

    fn open(ordinal: usize) -> Result<Blas, String> {
        // SAFETY: only tries to load the library.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err("libcublas was not found: add its folder to LD_LIBRARY_PATH".into());
        }
        let cuda = |what: &str, e: cudarc::driver::DriverError| format!("{what}: {e}");
        let dev = device::get(ordinal as i32).map_err(|e| cuda("CUDA device", e))?;
        // SAFETY: `dev` is a device; the primary context is retained for the process's life.
        let context = unsafe { primary_ctx::retain(dev) }.map_err(|e| cuda("CUDA context", e))?;
        // SAFETY: `context` is a live context.
        unsafe { ctx::set_current(context) }.map_err(|e| cuda("CUDA context", e))?;
        let stream =
            stream::create(stream::StreamKind::NonBlocking).map_err(|e| cuda("CUDA stream", e))?;
        let handle = cudarc::cublas::result::create_handle().map_err(|e| format!("cuBLAS: {e}"))?;
        // SAFETY: both were just created.
        unsafe { cudarc::cublas::result::set_stream(handle, stream as _) }
            .map_err(|e| format!("cuBLAS stream: {e}"))?;
        Ok(Blas { handle, stream, context })
    }

    /// Runs the call `args` (see [`GemmArgs`]: `a` is the product's right operand, `b` its left)
    /// in float32 accumulation, and waits for it.
    fn gemm(
        &self,
        args: &GemmArgs,
        data_type: cudaDataType_t,
        a: u64,
        b: u64,
        c: u64,
    ) -> Result<(), String> {
        let int = |x: usize| i32::try_from(x).map_err(|_| format!("{x} exceeds cuBLAS's int"));
        let long = |x: usize| i64::try_from(x).map_err(|_| format!("{x} exceeds cuBLAS's long"));
        let op = |t: bool| {
            if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N }
        };
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: the pointers are live device allocations of the context, held by the caller
        // until this returns, and `gemm_args` sized the call within them (tested); alpha and beta
        // are host floats, as the default pointer mode reads them.
        unsafe {
            ctx::set_current(self.context).map_err(|e| format!("CUDA context: {e}"))?;
            cudarc::cublas::result::gemm_strided_batched_ex(
                self.handle,
                op(args.transa),
                op(args.transb),
                int(args.m)?,
                int(args.n)?,
                int(args.k)?,
                (&alpha as *const f32).cast::<c_void>(),
                a as *const c_void,
                data_type,
                int(args.lda)?,
                long(args.stride_a)?,
                b as *const c_void,
                data_type,
                int(args.ldb)?,
                long(args.stride_b)?,
                (&beta as *const f32).cast::<c_void>(),
                c as *mut c_void,
                data_type,
                int(args.ldc)?,
                long(args.stride_c)?,
                int(args.batch)?,
                cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
            )
            .map_err(|e| format!("cuBLAS: {e}"))?;
            stream::synchronize(self.stream).map_err(|e| format!("cuBLAS stream: {e}"))
        }
    }
}
