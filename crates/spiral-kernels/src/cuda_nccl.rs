//! A float32 tensor summed over the ranks of a data-parallel run on their GPUs, with NCCL
//! (NVIDIA's collective library, as Horovod and PyTorch's DDP use it): the gradient bucket of
//! `spiral-train` goes from one GPU to the others over NVLink or InfiniBand, never through the
//! host.
//!
//! NCCL is reached through cudarc, the CUDA binding cubecl-cuda is built on, which loads
//! `libnccl` at run time (`LD_LIBRARY_PATH` must find it); nothing is linked at build time. The
//! ranks meet through a unique id that one rank makes ([`unique_id`]) and the launcher's own
//! channel carries to the others (MPI in `spiral-train`), as NCCL's documentation describes.
//!
//! As in [`crate::cuda_matmul`]'s cuBLAS path, cubecl's stream is not exposed: [`NcclGroup::sum`]
//! waits for it to finish writing the tensor, runs the all-reduce on a stream of this module,
//! and waits for that before returning, after which cubecl may read the result.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::sync::Mutex;

use burn::tensor::ops::FloatTensorOps;
use burn::tensor::{DType, Tensor, TensorMetadata, TensorPrimitive, backend::Backend};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::cubecl::future::block_on;
use burn_cubecl::tensor::CubeTensor;
use burn_fusion::stream::OperationStreams;
use burn_fusion::{FusionBackend, FusionTensor, NoOp};
use burn_ir::{BackendIr, InitOperationIr, OperationIr, OperationOutput};
use cudarc::driver::result::{ctx, device, primary_ctx, stream};
use cudarc::driver::sys::{CUcontext, CUstream};
use cudarc::nccl::sys::{ncclComm_t, ncclDataType_t, ncclRedOp_t, ncclUniqueId};

use crate::device::Cuda;
use crate::dispatch::{downcast, upcast};

/// The backend burn-fusion runs on under [`Cuda`].
type Inner = CubeBackend<CudaRuntime, f32, i32, u8>;
type Runtime = <Inner as FusionBackend>::FusionRuntime;

/// The bytes of an NCCL unique id.
pub const UNIQUE_ID_BYTES: usize = 128;

/// A new NCCL unique id, made by one rank and given to every rank of the group ([`NcclGroup::join`]).
pub fn unique_id() -> Result<Vec<u8>, String> {
    library_present()?;
    let id = cudarc::nccl::result::get_uniqueid().map_err(|e| format!("NCCL unique id: {e:?}"))?;
    Ok(id.internal.iter().map(|&c| c as u8).collect())
}

/// Whether `libnccl` can be loaded, as an error that says what to do where it cannot.
fn library_present() -> Result<(), String> {
    // SAFETY: only tries to load the library.
    if unsafe { cudarc::nccl::sys::is_culib_present() } {
        Ok(())
    } else {
        Err("libnccl was not found: install NCCL and add its folder to LD_LIBRARY_PATH".into())
    }
}

/// This rank's member of an NCCL communicator, on one GPU.
pub struct NcclGroup {
    /// The communicator and its stream, one call at a time.
    inner: Mutex<Communicator>,
    ordinal: usize,
}

struct Communicator {
    comm: ncclComm_t,
    stream: CUstream,
    context: CUcontext,
}

// SAFETY: the raw handles are used only under the `Mutex`, one call at a time, from a thread
// whose current context is theirs (`NcclGroup::sum` makes it so); NCCL communicators may be used
// from any thread that way.
unsafe impl Send for Communicator {}

impl std::fmt::Debug for NcclGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NcclGroup {{ gpu: {} }}", self.ordinal)
    }
}

impl NcclGroup {
    /// Joins the group of `world_size` ranks that `id` names, as rank `rank`, on GPU `ordinal`.
    /// Every rank of the group must call this together: it returns once all have joined.
    pub fn join(ordinal: usize, rank: usize, world_size: usize, id: &[u8]) -> Result<Self, String> {
        library_present()?;
        if id.len() != UNIQUE_ID_BYTES {
            return Err(format!("an NCCL id has {UNIQUE_ID_BYTES} bytes, not {}", id.len()));
        }
        let int = |x: usize| i32::try_from(x).map_err(|_| format!("{x} exceeds NCCL's int"));
        let mut unique = ncclUniqueId { internal: [0; UNIQUE_ID_BYTES] };
        for (slot, &byte) in unique.internal.iter_mut().zip(id) {
            *slot = byte as _;
        }
        let cuda = |what: &str, e: cudarc::driver::DriverError| format!("{what}: {e}");
        let dev = device::get(int(ordinal)?).map_err(|e| cuda("CUDA device", e))?;
        // SAFETY: `dev` is a device; the primary context (cubecl-cuda's) is retained for the
        // process's life.
        let context = unsafe { primary_ctx::retain(dev) }.map_err(|e| cuda("CUDA context", e))?;
        // SAFETY: `context` is a live context.
        unsafe { ctx::set_current(context) }.map_err(|e| cuda("CUDA context", e))?;
        let stream =
            stream::create(stream::StreamKind::NonBlocking).map_err(|e| cuda("CUDA stream", e))?;
        let mut comm: ncclComm_t = std::ptr::null_mut();
        // SAFETY: `comm` is written by NCCL; the context current on this thread is the GPU's.
        unsafe {
            cudarc::nccl::result::comm_init_rank(&mut comm, int(world_size)?, unique, int(rank)?)
        }
        .map_err(|e| format!("NCCL: joining {world_size} ranks as rank {rank}: {e:?}"))?;
        Ok(Self { inner: Mutex::new(Communicator { comm, stream, context }), ordinal })
    }

    /// `bucket` summed element-wise over the ranks of the group, on their GPUs. Every rank calls
    /// this together with a bucket of the same length. `bucket` must be a float32 tensor of the
    /// CUDA backend ([`Cuda`]) on this group's GPU; another is refused, unchanged.
    pub fn sum<B: Backend>(&self, bucket: Tensor<B, 1>) -> Result<Tensor<B, 1>, String> {
        let bucket: Tensor<Cuda, 1> = downcast(bucket)
            .map_err(|_| "NCCL sums tensors of the CUDA backend only".to_string())?;
        if bucket.dtype() != DType::F32 {
            return Err(format!("NCCL sums float32 buckets here, not {:?}", bucket.dtype()));
        }
        let fusion: FusionTensor<Runtime> = bucket.into_primitive().tensor();
        let client = fusion.client.clone();
        let device = client.device().clone();
        if device.index != self.ordinal {
            return Err(format!(
                "the bucket is on GPU {}, the group on {}",
                device.index, self.ordinal
            ));
        }
        // Resolving runs the operations burn-fusion still holds for the tensor.
        let mut tensor: CubeTensor<CudaRuntime> = client.resolve_tensor_float::<Inner>(fusion);
        if !tensor.is_contiguous() {
            tensor = burn_cubecl::kernel::into_contiguous(tensor);
        }
        // In place where this is the buffer's only handle, as it is for a fresh bucket.
        let out = if tensor.can_mut() {
            tensor.clone()
        } else {
            Inner::float_empty(tensor.shape(), &device, burn::tensor::FloatDType::F32)
        };
        self.all_reduce(&tensor, &out)?;
        drop(tensor);
        let shape = out.shape();
        let handle = <Inner as BackendIr>::float_tensor_handle(out);
        let init =
            InitOperationIr::create(shape, DType::F32, || client.register_tensor_handle(handle));
        let summed = client
            .register(OperationStreams::default(), OperationIr::Init(init), NoOp::<Inner>::new())
            .output();
        Ok(upcast(Tensor::<Cuda, 1>::from_primitive(TensorPrimitive::Float(summed))))
    }

    /// `out = sum over ranks of input` with `ncclAllReduce`, `out` possibly `input` itself.
    fn all_reduce(
        &self,
        input: &CubeTensor<CudaRuntime>,
        out: &CubeTensor<CudaRuntime>,
    ) -> Result<(), String> {
        // Holding the resources keeps their memory from being reused until the sum is done;
        // asking for them also makes cubecl's stream wait for the streams that wrote them.
        let resource = |t: &CubeTensor<CudaRuntime>| {
            t.client.get_resource(t.handle.clone()).map_err(|e| format!("device memory: {e:?}"))
        };
        let (input_mem, out_mem) = (resource(input)?, resource(out)?);
        let (input_ptr, out_ptr) = (input_mem.resource().ptr, out_mem.resource().ptr);
        let count = input.shape().num_elements();
        block_on(out.client.sync()).map_err(|e| format!("waiting for the device: {e:?}"))?;
        let comm = self.inner.lock().map_err(|_| "an NCCL call panicked earlier".to_string())?;
        // SAFETY: both pointers are live float32 device allocations of `count` elements in the
        // group's context, held until this returns; NCCL allows `out` to be `input`.
        let done = unsafe {
            ctx::set_current(comm.context).map_err(|e| format!("CUDA context: {e}"))?;
            cudarc::nccl::result::all_reduce(
                input_ptr as *const c_void,
                out_ptr as *mut c_void,
                count,
                ncclDataType_t::ncclFloat32,
                ncclRedOp_t::ncclSum,
                comm.comm,
                comm.stream as _,
            )
            .map_err(|e| format!("NCCL all-reduce of {count} floats: {e:?}"))?;
            stream::synchronize(comm.stream).map_err(|e| format!("NCCL stream: {e}"))
        };
        drop((input_mem, out_mem));
        done
    }
}

impl Drop for NcclGroup {
    fn drop(&mut self) {
        if let Ok(comm) = self.inner.get_mut() {
            // SAFETY: the communicator is live and no call is running (`&mut self`).
            let _ = unsafe { cudarc::nccl::result::comm_destroy(comm.comm) };
        }
    }
}
