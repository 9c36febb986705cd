//! Mixed precision (Micikevicius et al., 2018, "Mixed Precision Training"), as PyTorch's
//! autocast does it for transformers: the parameters stay float32 (so gradients and AdamW's
//! moments are float32), each projection multiplies in the compute dtype, and the
//! steps where bf16's 8-bit mantissa would lose information run in float32: RMSNorm's mean of
//! squares, attention's mask and softmax, and the log-softmax over the vocabulary.
//!
//! Only the model's entry and exit know the compute dtype ([`CausalLm::precision`]); every
//! layer in between follows the dtype of its input. In float32 every cast below is skipped, so
//! the float32 path is the one it always was, except that off the CPU each float32 product is
//! split to get past the GPU's TF32 tensor cores (see `matmul`).

use burn::tensor::{DType, FloatDType, Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::device::is_cpu;

/// The dtype a model computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32 (the reference for parity tests).
    #[default]
    Float32,
    /// bf16 weights and activations in projections; float32 where it matters (above).
    Bfloat16,
}

impl Precision {
    /// The tensor dtype of activations.
    pub fn dtype(self) -> DType {
        match self {
            Self::Float32 => DType::F32,
            Self::Bfloat16 => DType::BF16,
        }
    }

    /// The name used in configs and flags: `float32` or `bfloat16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Bfloat16 => "bfloat16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "float32" | "f32" | "fp32" => Ok(Self::Float32),
            "bfloat16" | "bf16" => Ok(Self::Bfloat16),
            other => Err(format!("unknown precision `{other}`: expected `float32` or `bfloat16`")),
        }
    }
}

/// `x` in `dtype`: unchanged (and no autodiff node recorded) when it already is.
pub fn cast<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(FloatDType::from(dtype)) }
}

/// `a @ b`, at float32 accuracy for float32 operands on every backend.
///
/// burn-cubecl multiplies float32 matrices on tensor cores in TF32, a 10-bit mantissa
/// (cubek-matmul's `adjust_dtypes`, with no switch to turn it off): on an H200 that put float32
/// log-probs 1.1e-2 away from transformers. Off the CPU a float32 product is therefore split as
/// in CUTLASS's 3xTF32 (after Henry et al., 2019, "Leveraging the bfloat16 Artificial
/// Intelligence Datatype for Higher-Precision Computations"): each operand is a bf16-exact high
/// part plus a float32 remainder, and the four partial products, only the small terms of which
/// TF32 rounds, sum to about 2^-19 relative error instead of 2^-10, for four times the matmul
/// work. Float32 is the parity mode; bf16 operands, and the CPU, take a single product.
///
/// On the CUDA backend, bf16 products go through [`crate::cuda_matmul`], which picks a faster
/// kernel than burn's default.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    if is_cpu::<B>() {
        return a.matmul(b);
    }
    if a.dtype() != DType::F32 {
        #[cfg(feature = "cuda")]
        return crate::cuda_matmul::matmul(a, b);
        #[cfg(not(feature = "cuda"))]
        return a.matmul(b);
    }
    split_matmul(a, b)
}

/// The four-product float32 matmul of [`matmul`].
fn split_matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    let split = |x: Tensor<B, D>| {
        let high = x.clone().cast(FloatDType::BF16).cast(FloatDType::F32);
        (high.clone(), x - high)
    };
    let (a_high, a_low) = split(a);
    let (b_high, b_low) = split(b);
    // Smallest terms first, so that they are not lost against the large one.
    let small = a_low.clone().matmul(b_low.clone())
        + a_low.matmul(b_high.clone())
        + a_high.clone().matmul(b_low);
    small + a_high.matmul(b_high)
}

/// `x` in float32.
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    cast(x, DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_and_bad_ones_are_named() {
        for p in [Precision::Float32, Precision::Bfloat16] {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bfloat16));
        let err = "fp16".parse::<Precision>().unwrap_err();
        assert!(err.contains("`fp16`") && err.contains("bfloat16"), "{err}");
        // Configs spell them as the flags do.
        let parsed: Precision = serde_json::from_str("\"bfloat16\"").unwrap();
        assert_eq!(parsed, Precision::Bfloat16);
        assert_eq!(serde_json::to_string(&Precision::Float32).unwrap(), "\"float32\"");
    }

    /// Where products are exact float32 (the CPU), the split product is the plain one to
    /// float32 rounding: the four terms add back up to `a @ b`.
    #[test]
    fn the_split_product_adds_back_up_to_the_plain_one() {
        use burn::tensor::Distribution;
        type B = burn::backend::Flex;
        let device = Default::default();
        let a = Tensor::<B, 2>::random([7, 33], Distribution::Normal(0.0, 3.0), &device);
        let b = Tensor::<B, 2>::random([33, 5], Distribution::Normal(0.0, 0.1), &device);
        let plain = a.clone().matmul(b.clone());
        let split = split_matmul(a, b);
        let scale: f32 = plain.clone().abs().max().into_scalar();
        let worst: f32 = (split - plain).abs().max().into_scalar();
        assert!(worst <= 1e-6 * scale, "{worst:e} of {scale:e}");
    }
}
