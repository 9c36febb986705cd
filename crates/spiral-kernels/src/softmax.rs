//! Softmax over the last dimension, and attention's masked softmax `softmax(scores + mask)`, as
//! one fused CPU kernel each with its analytic backward pass:
//!
//! ```text
//! y = softmax(x)            dx = y * (dy - sum(dy * y))   per row
//! y = softmax(x + m)        the same gradient with respect to x (the mask is a constant)
//! ```
//!
//! Under autodiff burn composes `softmax` from five differentiable operations (max, subtract, exp,
//! sum, divide), each a pass over memory forward and more passes backward; at the `train-cpu`
//! shapes that was 18% of a training step (measured by removing it). Adding a per-sequence mask
//! broadcast over the heads was burn-flex's slowest operation in a rollout (it walks such
//! broadcasts one index at a time: 8% of an RL step, measured), and `exp` of a masked score takes
//! glibc's underflow path, which sets `errno` (another 6%); the fused kernel adds the mask while
//! reading each row and gives masked positions 0 without calling `exp`.
//!
//! The kernel is taken on burn-flex (inference) and `Autodiff<Flex>` (training) in float32; every
//! other backend and dtype uses burn's composition, which is also the reference the tests hold the
//! kernel to.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::activation::softmax;
use burn::tensor::{DType, Tensor, TensorPrimitive, backend::Backend};
use rayon::prelude::*;

use crate::dispatch::{FlexAutodiff, downcast, from_flex, like, to_flex, upcast, values};

/// Softmax over the last dimension.
pub fn softmax_last_dim<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() != DType::F32 {
        return softmax(x, D - 1);
    }
    let x = match downcast::<B, FlexAutodiff, D>(x) {
        Ok(x) => return upcast(softmax_flex_autodiff(x)),
        Err(x) => x,
    };
    // burn-flex's own softmax is already one fused pass; every other backend composes its own.
    softmax(x, D - 1)
}

/// `softmax(scores + mask)` over the last dimension, for attention: `scores` is
/// `[b, kv, groups * t, tk]` (the query heads that share a KV head stacked along the query axis)
/// and the additive `mask` is `[1 or b, 1, t, tk]`, shared by every head (0 = attend, large
/// negative = skip).
pub fn masked_softmax<B: Backend>(scores: Tensor<B, 4>, mask: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, _, rows, tk] = scores.dims();
    let [mask_rows, _, t, mask_tk] = mask.dims();
    let fits = mask_tk == tk && t > 0 && rows % t == 0 && (mask_rows == 1 || mask_rows == b);
    if scores.dtype() != DType::F32 || mask.dtype() != DType::F32 || !fits {
        return softmax_last_dim(add_mask(scores, mask));
    }
    let (scores, mask) =
        match (downcast::<B, FlexAutodiff, 4>(scores), downcast::<B, FlexAutodiff, 4>(mask)) {
            (Ok(scores), Ok(mask)) => {
                return upcast(masked_softmax_flex_autodiff(scores, mask.inner()));
            }
            (Err(scores), Err(mask)) => (scores, mask),
            _ => unreachable!("both tensors have the backend B"),
        };
    match (to_flex(scores), to_flex(mask)) {
        (Ok(scores), Ok(mask)) => from_flex(masked_softmax_forward(&scores, &mask)),
        (Err(scores), Err(mask)) => softmax_last_dim(add_mask(scores, mask)),
        _ => unreachable!("both tensors have the backend B"),
    }
}

/// Adds the additive `mask` (`[1 or b, 1, t, tk]`) to the grouped scores `[b, kv, groups * t, tk]`:
/// the composition [`masked_softmax`] fuses, for the backends it does not cover.
///
/// A mask shared by every sequence (no padding: training, scoring) is added as one row shared by
/// every (sequence, head, group). A per-sequence mask (padded prompts) is broadcast over the heads
/// rather than materialised per head, which on a GPU would cost memory quadratic in the prompt.
fn add_mask<B: Backend>(scores: Tensor<B, 4>, mask: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = scores.dims();
    let [b, kv, rows, tk] = shape;
    let [mask_rows, _, t, _] = mask.dims();
    let groups = rows / t;
    if mask_rows == 1 {
        (scores.reshape([b * kv * groups, t * tk]) + mask.reshape([1, t * tk])).reshape(shape)
    } else {
        (scores.reshape([b, kv * groups, t * tk]) + mask.reshape([b, 1, t * tk])).reshape(shape)
    }
}

/// The softmax's backward step, plain or masked. Keeps the output `y`, from which the gradient
/// follows without the input.
#[derive(Debug)]
struct SoftmaxBackward;

impl Backward<Flex, 1> for SoftmaxBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            grads.register::<Flex>(parent.id, softmax_backward(&ops.state, &grad));
        }
    }
}

fn softmax_flex_autodiff<const D: usize>(x: Tensor<FlexAutodiff, D>) -> Tensor<FlexAutodiff, D> {
    with_softmax_backward(x, |x| {
        let x = Tensor::<Flex, D>::from_primitive(TensorPrimitive::Float(x.clone()));
        softmax(x, D - 1).into_primitive().tensor()
    })
}

/// The masked softmax under autodiff: the mask is a constant, so the gradient with respect to the
/// scores is the plain softmax's, from the output alone.
fn masked_softmax_flex_autodiff(
    scores: Tensor<FlexAutodiff, 4>,
    mask: Tensor<Flex, 4>,
) -> Tensor<FlexAutodiff, 4> {
    let mask = mask.into_primitive().tensor();
    with_softmax_backward(scores, |scores| masked_softmax_forward(scores, &mask))
}

/// `forward(x)`, a softmax of `x` over the last dimension, recorded with [`SoftmaxBackward`].
fn with_softmax_backward<const D: usize>(
    x: Tensor<FlexAutodiff, D>,
    forward: impl FnOnce(&FlexTensor) -> FlexTensor,
) -> Tensor<FlexAutodiff, D> {
    let x = x.into_primitive().tensor();
    let prep =
        SoftmaxBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful();
    let y = forward(&x.primitive);
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Below this, `exp` underflows float32 (to denormals, then 0); such entries are written as 0.
const EXP_UNDERFLOW: f32 = -88.0;

/// `softmax(scores + mask)` per row of `scores: [b, kv, groups * t, tk]`, row `(i, h, g * t + q)`
/// reading mask row `(i or 0, q)` of `mask: [1 or b, 1, t, tk]`.
fn masked_softmax_forward(scores: &FlexTensor, mask: &FlexTensor) -> FlexTensor {
    let (sv, mv) = (values(scores), values(mask));
    let (sv, mv) = (sv.storage::<f32>(), mv.storage::<f32>());
    let dims = scores.layout().shape();
    let (heads, rows, tk) = (dims[1], dims[2], dims[3]);
    let mask_dims = mask.layout().shape();
    let (per_sequence, t) = (mask_dims[0] > 1, mask_dims[2]);
    let mut out = vec![0.0f32; sv.len()];
    let row = |(r, (out, x)): (usize, (&mut [f32], &[f32]))| {
        let sequence = if per_sequence { r / (heads * rows) } else { 0 };
        let q = r % rows % t;
        let m = &mv[(sequence * t + q) * tk..][..tk];
        let mut max = f32::NEG_INFINITY;
        for ((o, &x), &m) in out.iter_mut().zip(x).zip(m) {
            *o = x + m;
            max = max.max(*o);
        }
        let mut sum = 0.0f32;
        for o in out.iter_mut() {
            let z = *o - max;
            *o = if z < EXP_UNDERFLOW { 0.0 } else { z.exp() };
            sum += *o;
        }
        let inv = 1.0 / sum;
        out.iter_mut().for_each(|o| *o *= inv);
    };
    // Rows in parallel, as burn-flex's own softmax runs them, in blocks large enough to pay for it.
    out.par_chunks_mut(tk).zip(sv.par_chunks(tk)).enumerate().with_min_len(64).for_each(row);
    like(scores, out)
}

fn softmax_backward(y: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (yv, dy) = (values(y), values(grad));
    let (yv, dy) = (yv.storage::<f32>(), dy.storage::<f32>());
    let row = *y.layout().shape().last().expect("softmax of a tensor with dimensions");
    let mut dx = vec![0.0f32; yv.len()];
    for ((dx, y), dy) in dx.chunks_mut(row).zip(yv.chunks(row)).zip(dy.chunks(row)) {
        let dot: f32 = y.iter().zip(dy).map(|(y, dy)| y * dy).sum();
        for ((dx, y), dy) in dx.iter_mut().zip(y).zip(dy) {
            *dx = y * (dy - dot);
        }
    }
    like(y, dx)
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;
    use crate::test_data::{assert_close, random, value_and_grads};

    #[test]
    fn softmax_and_its_gradient_match_burns_composition() {
        let x = random([3, 5, 17], 3.0);
        let w = random([3, 5, 17], 1.0);
        let (fused, [d_fused]) = value_and_grads([&x], &w, |[x]| softmax_last_dim(x));
        let (composed, [d_composed]) = value_and_grads([&x], &w, |[x]| softmax(x, 2));
        assert_close(&fused, &composed, "softmax");
        assert_close(&d_fused, &d_composed, "softmax gradient");
        assert_close(&softmax_last_dim(x.clone()), &composed, "softmax without autodiff");
    }

    #[test]
    fn masked_softmax_and_its_gradient_match_adding_the_mask() {
        // Two KV heads with three query heads each over 4 queries and 6 keys (2 cached); a
        // causal mask shared by every sequence, and one per sequence that also hides padding,
        // with a fully masked row (a padding query) among them.
        let [b, kv, groups, t, tk] = [2, 2, 3, 4, 6];
        let causal = |k: usize, q: usize| k > 2 + q;
        let mask = |rows: usize, hidden: &dyn Fn(usize, usize, usize) -> bool| {
            let values = (0..rows * t * tk)
                .map(|i| if hidden(i / (t * tk), i / tk % t, i % tk) { -1.0e9 } else { 0.0 })
                .collect::<Vec<f32>>();
            Tensor::<Flex, 4>::from_data(
                TensorData::new(values, [rows, 1, t, tk]),
                &Default::default(),
            )
        };
        let shared = mask(1, &|_, q, k| causal(k, q));
        let padded = mask(b, &|r, q, k| causal(k, q) || (r == 1 && k < 3) || (r == 1 && q == 0));
        let scores = random([b * kv, groups * t, tk], 3.0);
        let w = random([b * kv, groups * t, tk], 1.0);
        for mask in [shared, padded] {
            let with = |fused: bool| {
                let mask = Tensor::<FlexAutodiff, 4>::from_inner(mask.clone());
                value_and_grads([&scores], &w, move |[x]| {
                    let x = x.reshape([b, kv, groups * t, tk]);
                    let y = if fused {
                        masked_softmax(x, mask.clone())
                    } else {
                        softmax(add_mask(x, mask.clone()), 3)
                    };
                    y.reshape([b * kv, groups * t, tk])
                })
            };
            let ((fused, [d_fused]), (composed, [d_composed])) = (with(true), with(false));
            assert_close(&fused, &composed, "masked softmax");
            assert_close(&d_fused, &d_composed, "masked softmax gradient");
            let inference = masked_softmax(scores.clone().reshape([b, kv, groups * t, tk]), mask);
            assert_close(&inference.reshape([b * kv, groups * t, tk]), &composed, "no autodiff");
        }
    }

    #[test]
    fn strided_inputs_are_read_in_logical_order() {
        let x = random([4, 5, 6], 2.0).swap_dims(1, 2);
        assert_close(&softmax_last_dim(x.clone()), &softmax(x, 2), "softmax of a transposed view");
    }
}
