//! The backend operations under `spiral-model`: how each step of a transformer runs on burn's
//! CPU backend (burn-flex) and on CUDA, apart from what the network computes.
//!
//! One file per operation holds its dispatch (which backend and dtype take which path), its
//! reference composition from burn's differentiable operations, and its fused kernel or
//! analytic backward pass; the tests hold each fast path to its composition.
//!
//! - [`softmax`], [`attention_probs`]: attention's (masked) softmax, fused on the CPU, with an
//!   analytic backward pass on the GPU;
//! - [`flash_attention`]: attention in memory linear in the context (online softmax over key
//!   blocks, the backward pass recomputing the weights), fused on the CPU and in chunks of
//!   query rows elsewhere;
//! - [`swiglu`], [`rms_norm`], [`rope`]: the MLP gate, the norm and the rotary embedding;
//! - [`logit_scores`], [`long_rows`]: log-probs over a whole vocabulary, and reductions along
//!   rows that long;
//! - [`precision`]: bf16 compute with float32 parameters, and the products it runs;
//! - [`cuda_matmul`] (with the `cuda` feature): the GPU matrix products (cubek or cuBLAS);
//! - [`cuda_nccl`] (with the `cuda` feature): a tensor summed over data-parallel ranks on the
//!   GPUs, with NCCL;
//! - [`device`]: the `--device cpu | cuda[:N]` flag and the backend it selects;
//! - [`shards`], [`allocator`]: running a batch's shards side by side on the CPU, and the
//!   binaries' allocator.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Tensor;
//! use spiral_kernels::swiglu::swiglu;
//!
//! let gate = Tensor::<Flex, 2>::from_floats([[0.5, -1.0]], &Default::default());
//! let up = Tensor::<Flex, 2>::from_floats([[2.0, 3.0]], &Default::default());
//! let z = swiglu(gate, up); // silu(gate) * up, one fused pass on the CPU
//! assert_eq!(z.dims(), [1, 2]);
//! ```

pub mod allocator;
pub mod attention_probs;
pub mod contiguous;
#[cfg(feature = "cuda")]
mod cuda_cublas;
#[cfg(feature = "cuda")]
pub mod cuda_matmul;
#[cfg(feature = "cuda")]
pub mod cuda_nccl;
pub mod device;
pub mod dispatch;
pub mod fast_exp;
pub mod flash_attention;
// Used by `cuda_cublas` only; compiled (and tested) in every build.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod gemm_layout;
pub mod logit_scores;
pub mod long_rows;
pub mod precision;
pub mod rms_norm;
pub mod rope;
pub mod shards;
pub mod softmax;
pub mod swiglu;
#[cfg(test)]
mod test_data;
pub mod wide_vectors;

pub use device::{BackendJob, DeviceSpec};
pub use precision::Precision;
