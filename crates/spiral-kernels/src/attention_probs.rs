//! The attention weights `P = softmax(S / sqrt(d) + M)` from the scores `S = Q K^T`, with an
//! analytic backward pass on the GPU.
//!
//! The softmax runs in float32 whatever the scores' dtype ([`crate::precision`]), and `P` goes on
//! to the product with `V` in the scores' dtype. Composed from burn's differentiable operations
//! (a cast, a scaling, the mask, a max, a subtraction, `exp`, a sum, a division, a cast back),
//! autodiff keeps float32 intermediates of the size of `S` for every layer, and its backward pass
//! walks several of them. On an H100 the forward passes over `[batch, kv heads, groups * t, t]`
//! took about 1.4 ms a layer, and the backward ones more (`docs/results/gpu-h100-2026-11-23.md`).
//!
//! The softmax's gradient follows from its output alone, `dX = P * (dP - Σ_j dP_j P_j)` per
//! row, and the mask is a constant. So under autodiff on the GPU the forward pass runs without
//! recording, and the backward pass keeps `P` as returned, in the scores' dtype. That is the
//! tensor the product with `V` keeps for its own backward pass anyway, so no float32 copy is kept.
//! It computes `dS = P * (dP - Σ_j dP_j P_j / Σ_j P_j) / sqrt(d)` in float32: one element-wise
//! pass after the row sums.
//!
//! In bf16, `P` is rounded (a relative error of up to 2^-8 on each weight) before the backward
//! pass uses it. The rounded weights no longer sum to exactly 1; dividing by their sum keeps the
//! gradient of a shift shared by a row of `dP` at exactly zero, as it is for the exact weights.
//! Without it, a large such shift (`dP = dO V^T` when the rows of `V` share a large component)
//! would leak into `dS` through the rounding error of the sum.
//!
//! On the CPU in float32, the fused masked softmax ([`crate::softmax`]) has its own backward
//! pass; the CPU keeps that, or the composition in other dtypes. `SPIRAL_CUDA_BACKWARD=composed`
//! keeps the composition on the GPU too.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};

use crate::precision::{cast, to_f32};
use crate::softmax::{masked_softmax, softmax_last_dim};

/// `softmax(scores / sqrt(head_dim) + mask)` over the last axis, in float32, returned in the
/// scores' dtype. `scores` is `[b, kv, groups * t, tk]` and `mask`, if any, `[1 or b, 1, t, tk]`
/// (see [`masked_softmax`]).
pub fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
    head_dim: usize,
) -> Tensor<B, 4> {
    #[cfg(feature = "cuda")]
    let scores = match crate::dispatch::to_cuda_analytic(scores) {
        Ok(scores) => {
            let mask = mask.map(|m| {
                crate::dispatch::to_cuda_analytic(m)
                    .unwrap_or_else(|_| unreachable!("the mask has the scores' backend"))
                    .inner()
            });
            return crate::dispatch::upcast(probs_autodiff(scores, mask, head_dim));
        }
        Err(scores) => scores,
    };
    forward(scores, mask, head_dim)
}

/// The forward pass, differentiable on every backend.
fn forward<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
    head_dim: usize,
) -> Tensor<B, 4> {
    let dtype = scores.dtype();
    let scores = to_f32(scores).div_scalar((head_dim as f64).sqrt());
    let probs = match mask {
        Some(mask) => masked_softmax(scores, mask),
        None => softmax_last_dim(scores),
    };
    cast(probs, dtype)
}

/// Keeps the weights `P` as returned.
// Taken only on `Autodiff<Cuda>` (and in the tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
#[derive(Debug)]
struct ProbsBackward {
    head_dim: usize,
}

impl<B: Backend> Backward<B, 1> for ProbsBackward {
    type State = Tensor<B, 4>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            let grad = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grad));
            let d_scores = scores_gradient(ops.state, grad, self.head_dim);
            grads.register::<B>(parent.id, d_scores.into_primitive().tensor());
        }
    }
}

// Taken only on `Autodiff<Cuda>` (and in the tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
/// `dS = P * (dP - Σ_j dP_j P_j / Σ_j P_j) / sqrt(d)`, in float32, returned in `P`'s dtype.
fn scores_gradient<B: Backend>(
    probs: Tensor<B, 4>,
    d_probs: Tensor<B, 4>,
    head_dim: usize,
) -> Tensor<B, 4> {
    let dtype = probs.dtype();
    let p = to_f32(probs);
    let dp = to_f32(d_probs);
    let mean = (dp.clone() * p.clone()).sum_dim(3) / p.clone().sum_dim(3);
    cast((p * (dp - mean)).div_scalar((head_dim as f64).sqrt()), dtype)
}

// Taken only on `Autodiff<Cuda>` (and in the tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
/// [`attention_probs`] under `Autodiff<I>`, recorded with [`ProbsBackward`]; the mask is a
/// constant of the inner backend.
fn probs_autodiff<I: Backend>(
    scores: Tensor<Autodiff<I>, 4>,
    mask: Option<Tensor<I, 4>>,
    head_dim: usize,
) -> Tensor<Autodiff<I>, 4> {
    let scores = scores.into_primitive().tensor();
    let prep = <ProbsBackward as Backward<I, 1>>::prepare::<NoCheckpointing>(
        ProbsBackward { head_dim },
        [scores.node.clone()],
    )
    .compute_bound()
    .stateful();
    let scores = Tensor::<I, 4>::from_primitive(TensorPrimitive::Float(scores.primitive));
    let probs = forward(scores, mask, head_dim);
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish(probs.clone(), probs.into_primitive().tensor()),
        OpsKind::UnTracked(prep) => prep.finish(probs.into_primitive().tensor()),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::activation::softmax;
    use burn::tensor::{DType, TensorData};

    use crate::test_data::{max_abs_diff, uniform, values};

    type A = Autodiff<Flex>;

    const MASKED: f32 = -1.0e9;

    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Flex, D> {
        Tensor::from_data(uniform(shape, 8.0, 0.0, seed), &Default::default())
    }

    /// A causal mask `[rows, 1, t, tk]` whose row `r` also hides the first `r` keys (left
    /// padding of a prompt).
    fn mask(rows: usize, t: usize, tk: usize) -> Tensor<Flex, 4> {
        let mut m = vec![0.0f32; rows * t * tk];
        for r in 0..rows {
            for i in 0..t {
                for j in 0..tk {
                    if j > i + (tk - t) || j < r {
                        m[(r * t + i) * tk + j] = MASKED;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(m, [rows, 1, t, tk]), &Default::default())
    }

    /// The reference: the mask written out at the scores' full shape, and burn's composed softmax
    /// differentiated by autodiff.
    fn reference(scores: Tensor<A, 4>, mask: Option<Tensor<Flex, 4>>, d: usize) -> Tensor<A, 4> {
        let dtype = scores.dtype();
        let shape = scores.dims();
        let [b, kv, rows, tk] = shape;
        let mut x = to_f32(scores).div_scalar((d as f64).sqrt());
        if let Some(mask) = mask {
            let [mask_rows, _, t, _] = mask.dims();
            let m = values(mask);
            let mut full = Vec::with_capacity(b * kv * rows * tk);
            for seq in 0..b {
                let r = if mask_rows == 1 { 0 } else { seq };
                for _head in 0..kv {
                    for row in 0..rows {
                        let i = row % t; // the groups are stacked along the query axis
                        full.extend_from_slice(&m[(r * t + i) * tk..(r * t + i + 1) * tk]);
                    }
                }
            }
            x = x + Tensor::from_data(TensorData::new(full, shape), &Default::default());
        }
        cast(softmax(x, 3), dtype)
    }

    /// Weights and gradient against the scores of `probs`, under a fixed random upstream
    /// gradient.
    fn run(
        scores: &TensorData,
        dtype: DType,
        probs: impl Fn(Tensor<A, 4>) -> Tensor<A, 4>,
    ) -> (Vec<f32>, Vec<f32>) {
        let dims: [usize; 4] = scores.shape.to_vec().try_into().expect("scores are 4-d");
        let upstream = random(dims, 21).into_data();
        run_with(scores, &upstream, dtype, probs)
    }

    /// [`run`] under the upstream gradient `upstream`.
    fn run_with(
        scores: &TensorData,
        upstream: &TensorData,
        dtype: DType,
        probs: impl Fn(Tensor<A, 4>) -> Tensor<A, 4>,
    ) -> (Vec<f32>, Vec<f32>) {
        let device = Default::default();
        let s = cast(Tensor::<Flex, 4>::from_data(scores.clone(), &device), dtype);
        let s = Tensor::<A, 4>::from_inner(s).require_grad();
        let p = probs(s.clone());
        let upstream = cast(Tensor::<Flex, 4>::from_data(upstream.clone(), &device), dtype);
        let upstream = Tensor::<A, 4>::from_inner(upstream);
        let grad = s.grad(&(p.clone() * upstream).sum().backward()).unwrap();
        assert_eq!(grad.dtype(), dtype);
        (values(p), values(grad))
    }

    #[test]
    fn weights_and_gradients_match_burns_composed_softmax() {
        // b = 2 sequences, 3 KV heads, 2 query heads per KV head, 4 queries over 6 keys.
        let (b, kv, groups, t, tk, d) = (2, 3, 2, 4, 6, 16);
        let scores = random([b, kv, groups * t, tk], 5).into_data();
        for (name, m) in
            [("none", None), ("shared", Some(mask(1, t, tk))), ("per row", Some(mask(b, t, tk)))]
        {
            let (p, grad) = run(&scores, DType::F32, |s| probs_autodiff(s, m.clone(), d));
            let (p0, grad0) = run(&scores, DType::F32, |s| reference(s, m.clone(), d));
            assert!(max_abs_diff(&p, &p0) < 1e-6, "weights, mask {name}");
            assert!(max_abs_diff(&grad, &grad0) < 1e-5, "gradients, mask {name}");
            assert!(grad.iter().any(|g| g.abs() > 1e-2), "the test needs a gradient");
        }
    }

    /// In bf16 the backward pass uses the rounded weights: the gradient stays within bf16
    /// rounding of the float32 one.
    #[test]
    fn bf16_gradients_are_the_float32_ones_to_bf16_rounding() {
        let (b, kv, groups, t, d) = (2, 2, 2, 5, 8);
        let scores = random([b, kv, groups * t, t], 7).into_data();
        let m = Some(mask(1, t, t));
        let (p, grad) = run(&scores, DType::BF16, |s| probs_autodiff(s, m.clone(), d));
        let (p0, grad0) = run(&scores, DType::BF16, |s| reference(s, m.clone(), d));
        assert!(max_abs_diff(&p, &p0) <= 1.0 / 128.0, "the same forward pass, to bf16 rounding");
        let scale = grad0.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(max_abs_diff(&grad, &grad0) <= scale / 64.0, "{grad:?}\n{grad0:?}");
    }

    /// A shift shared by a row of `dP` has no gradient, with `P` rounded to bf16 too: a shift of
    /// 256 would otherwise leak through the rounded weights' sum, which is not exactly 1.
    #[test]
    fn a_shift_shared_by_a_row_of_dp_has_no_gradient_in_bf16() {
        let (b, kv, groups, t, d) = (2, 2, 2, 6, 8);
        let shape = [b, kv, groups * t, t];
        let bf16 = |data: TensorData| {
            let x = cast(Tensor::<Flex, 4>::from_data(data, &Default::default()), DType::BF16);
            cast(x, DType::F32).into_data()
        };
        let scores = bf16(random(shape, 7).into_data());
        let upstream = bf16(uniform(shape, 8.0, 256.0, 8));
        let m = Some(mask(1, t, t));
        let (_, grad) =
            run_with(&scores, &upstream, DType::BF16, |s| probs_autodiff(s, m.clone(), d));
        // The exact weights, in float32, of the same bf16 scores under the same bf16 gradient.
        let (_, grad0) = run_with(&scores, &upstream, DType::F32, |s| reference(s, m.clone(), d));
        let scale = grad0.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(max_abs_diff(&grad, &grad0) <= scale / 32.0, "{grad:?}\n{grad0:?}");
    }
}
