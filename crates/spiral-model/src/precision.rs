//! Mixed precision (Micikevicius et al., 2018, "Mixed Precision Training"), as PyTorch's
//! autocast does it for transformers: the parameters stay float32 (so gradients and AdamW's
//! moments are float32), each projection multiplies in the compute dtype, and the
//! steps where bf16's 8-bit mantissa would lose information run in float32: RMSNorm's mean of
//! squares, attention's mask and softmax, and the log-softmax over the vocabulary.
//!
//! Only the model's entry and exit know the compute dtype ([`CausalLm::precision`]); every
//! layer in between follows the dtype of its input. In float32 every cast below is skipped, so
//! the float32 path is the one it always was.

use burn::tensor::{DType, FloatDType, Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

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
pub(crate) fn cast<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(FloatDType::from(dtype)) }
}

/// `x` in float32.
pub(crate) fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
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
}
