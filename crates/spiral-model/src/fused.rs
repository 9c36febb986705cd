//! Fused CPU kernels, with their own backward passes, for the element-wise work that dominated a
//! training step on burn-flex after the matrix products: the attention softmax (with its mask),
//! the SwiGLU gate and the rotary embedding.
//!
//! Under autodiff, burn composes `softmax` from five differentiable operations (max, subtract,
//! exp, sum, divide) and `silu(gate) * up` from three, each a pass over memory forward and more
//! passes backward; at the `train-cpu` shapes they were 18% and 9% of a step (measured by
//! removing each). The rotary embedding's gradient arrives as a transposed view (queries and keys
//! are transposed to `[batch, heads, time, dim]` after it), which burn-flex's element-wise
//! operations walk one index at a time. Here each is one operation with the analytic gradient:
//!
//! - softmax `y = softmax(x)`: `dx = y * (dy - sum(dy * y))` per row; with an additive mask,
//!   `y = softmax(x + m)` has the same gradient with respect to `x`. Adding a per-sequence mask
//!   broadcast over the heads was burn-flex's slowest operation in a rollout (it walks such
//!   broadcasts one index at a time: 8% of an RL step, measured), and `exp` of a masked score
//!   takes glibc's underflow path, which sets `errno` (another 6%); the fused kernel adds the
//!   mask while reading each row and gives masked positions 0 without calling `exp`;
//! - SwiGLU `z = silu(g) * u` with `s = sigmoid(g)`: `du = dz * g * s` and
//!   `dg = dz * u * s * (1 + g * (1 - s))`;
//! - RoPE, a rotation of each pair `(x_i, x_{i + d/2})` by the angle `a_i`: the gradient is the
//!   rotation of `dy` by `-a_i`.
//!
//! The model stays generic over the backend: each function checks at run time whether the
//! backend is burn-flex (for inference) or `Autodiff<Flex>` (for training), and uses burn's own
//! composition on every other backend (CUDA fuses element-wise work itself) and for dtypes other
//! than float32.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive, backend::Backend};
use rayon::prelude::*;

use crate::contiguous::contiguous;
use crate::dispatch::{downcast, from_flex, to_flex, upcast};

/// The training backend these kernels differentiate (the CPU one of [`crate::device`]).
type FlexAutodiff = Autodiff<Flex>;

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

/// `silu(gate) * up`, the SwiGLU gate (Shazeer, 2020), for tensors of the same shape.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    if gate.dtype() != DType::F32 || up.dtype() != DType::F32 || gate.dims() != up.dims() {
        return silu(gate) * up;
    }
    let (gate, up) =
        match (downcast::<B, FlexAutodiff, D>(gate), downcast::<B, FlexAutodiff, D>(up)) {
            (Ok(gate), Ok(up)) => return upcast(swiglu_flex_autodiff(gate, up)),
            (Err(gate), Err(up)) => (gate, up),
            _ => unreachable!("both tensors have the backend B"),
        };
    match (to_flex(gate), to_flex(up)) {
        (Ok(gate), Ok(up)) => from_flex(swiglu_forward(&gate, &up)),
        (Err(gate), Err(up)) => silu(gate) * up,
        _ => unreachable!("both tensors have the backend B"),
    }
}

/// Rotates `x: [batch, time, heads, head_dim]` by the rotary tables `cos` and `sin`
/// (`[batch, time, 1, head_dim]`, the same angle at `i` and `i + head_dim / 2`):
/// `x * cos + rotate_half(x) * sin`. Gives `x` back (`Err`) where there is no fused kernel.
pub(crate) fn try_rope<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    if [x.dtype(), cos.dtype(), sin.dtype()].iter().any(|&d| d != DType::F32) {
        return Err(x);
    }
    let flex = |t: &Tensor<B, 4>| -> Option<FlexTensor> {
        match downcast::<B, FlexAutodiff, 4>(t.clone()) {
            Ok(t) => Some(t.inner().into_primitive().tensor()),
            Err(t) => to_flex(t).ok(),
        }
    };
    let [b, t, _, d] = x.dims();
    if cos.dims() != [b, t, 1, d] || sin.dims() != [b, t, 1, d] || d % 2 != 0 {
        return Err(x);
    }
    let (Some(cos), Some(sin)) = (flex(cos), flex(sin)) else { return Err(x) };
    let x = match downcast::<B, FlexAutodiff, 4>(x) {
        Ok(x) => return Ok(upcast(rope_flex_autodiff(x, cos, sin))),
        Err(x) => x,
    };
    let x = to_flex(x)?;
    Ok(from_flex(rope_forward(&x, &cos, &sin, 1.0)))
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

fn swiglu_flex_autodiff<const D: usize>(
    gate: Tensor<FlexAutodiff, D>,
    up: Tensor<FlexAutodiff, D>,
) -> Tensor<FlexAutodiff, D> {
    /// Keeps both inputs; the sigmoid is recomputed rather than stored.
    #[derive(Debug)]
    struct SwigluBackward;

    impl Backward<Flex, 2> for SwigluBackward {
        type State = (FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let grad = grads.consume::<Flex>(&ops.node);
            let (gate, up) = &ops.state;
            let [gate_parent, up_parent] = ops.parents;
            let (d_gate, d_up) = swiglu_backward(gate, up, &grad);
            if let Some(parent) = gate_parent {
                grads.register::<Flex>(parent.id, d_gate);
            }
            if let Some(parent) = up_parent {
                grads.register::<Flex>(parent.id, d_up);
            }
        }
    }

    let gate = gate.into_primitive().tensor();
    let up = up.into_primitive().tensor();
    let prep = SwigluBackward
        .prepare::<NoCheckpointing>([gate.node.clone(), up.node.clone()])
        .compute_bound()
        .stateful();
    let out = swiglu_forward(&gate.primitive, &up.primitive);
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((gate.primitive, up.primitive), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

fn rope_flex_autodiff(
    x: Tensor<FlexAutodiff, 4>,
    cos: FlexTensor,
    sin: FlexTensor,
) -> Tensor<FlexAutodiff, 4> {
    /// Keeps the tables; the input is not needed.
    #[derive(Debug)]
    struct RopeBackward;

    impl Backward<Flex, 1> for RopeBackward {
        type State = (FlexTensor, FlexTensor);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let grad = grads.consume::<Flex>(&ops.node);
            let (cos, sin) = &ops.state;
            let [parent] = ops.parents;
            if let Some(parent) = parent {
                grads.register::<Flex>(parent.id, rope_forward(&grad, cos, sin, -1.0));
            }
        }
    }

    let x = x.into_primitive().tensor();
    let prep = RopeBackward.prepare::<NoCheckpointing>([x.node.clone()]).compute_bound().stateful();
    let out = rope_forward(&x.primitive, &cos, &sin, 1.0);
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((cos, sin), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The float32 elements of `t` in row-major order (copied only if `t` is a strided view).
fn values(t: &FlexTensor) -> FlexTensor {
    contiguous(t)
}

/// A contiguous float32 tensor of `t`'s shape holding `data`.
fn like(t: &FlexTensor, data: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, t.layout().shape().clone()))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn swiglu_forward(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    let (g, u) = (values(gate), values(up));
    let (g, u) = (g.storage::<f32>(), u.storage::<f32>());
    let out = g.iter().zip(u).map(|(&g, &u)| g * sigmoid(g) * u).collect();
    like(gate, out)
}

fn swiglu_backward(
    gate: &FlexTensor,
    up: &FlexTensor,
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let (g, u, dz) = (values(gate), values(up), values(grad));
    let (g, u, dz) = (g.storage::<f32>(), u.storage::<f32>(), dz.storage::<f32>());
    let n = g.len();
    let (mut d_gate, mut d_up) = (vec![0.0f32; n], vec![0.0f32; n]);
    for i in 0..n {
        let s = sigmoid(g[i]);
        d_up[i] = dz[i] * g[i] * s;
        d_gate[i] = dz[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
    }
    (like(gate, d_gate), like(up, d_up))
}

/// Rotates every head of `x: [b, t, h, d]` by the angles of `cos`/`sin` (`[b, t, 1, d]`), or by
/// their negatives when `direction` is -1 (the gradient of the rotation).
fn rope_forward(x: &FlexTensor, cos: &FlexTensor, sin: &FlexTensor, direction: f32) -> FlexTensor {
    let (xv, cv, sv) = (values(x), values(cos), values(sin));
    let (xv, cv, sv) = (xv.storage::<f32>(), cv.storage::<f32>(), sv.storage::<f32>());
    let dims = x.layout().shape();
    let (heads, d) = (dims[2], dims[3]);
    let half = d / 2;
    let mut out = vec![0.0f32; xv.len()];
    for ((out, x), (cos, sin)) in
        out.chunks_mut(heads * d).zip(xv.chunks(heads * d)).zip(cv.chunks(d).zip(sv.chunks(d)))
    {
        for (out, x) in out.chunks_mut(d).zip(x.chunks(d)) {
            let (x1, x2) = x.split_at(half);
            let (o1, o2) = out.split_at_mut(half);
            for i in 0..half {
                let (c, s) = (cos[i], direction * sin[i]);
                o1[i] = x1[i] * c - x2[i] * s;
                o2[i] = x2[i] * c + x1[i] * s;
            }
        }
    }
    like(x, out)
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
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// Gradients of `sum(f(inputs) * weights)` with respect to each input, and the output.
    fn value_and_grads<const N: usize>(
        inputs: [&Tensor<Flex, 3>; N],
        weights: &Tensor<Flex, 3>,
        f: impl Fn([Tensor<FlexAutodiff, 3>; N]) -> Tensor<FlexAutodiff, 3>,
    ) -> (Tensor<Flex, 3>, [Tensor<Flex, 3>; N]) {
        let leaves =
            inputs.map(|x| Tensor::<FlexAutodiff, 3>::from_inner(x.clone()).require_grad());
        let out = f(leaves.clone());
        let loss = (out.clone() * Tensor::from_inner(weights.clone())).sum();
        let grads = loss.backward();
        (out.inner(), leaves.map(|x| x.grad(&grads).expect("the input requires a gradient")))
    }

    fn assert_close(a: &Tensor<Flex, 3>, b: &Tensor<Flex, 3>, what: &str) {
        let worst = (a.clone() - b.clone()).abs().max().into_scalar();
        assert!(worst < 1e-5, "{what}: worst difference {worst}");
    }

    fn random(shape: [usize; 3], scale: f64) -> Tensor<Flex, 3> {
        Tensor::random(shape, Distribution::Normal(0.0, scale), &Default::default())
    }

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
    fn swiglu_and_its_gradients_match_burns_composition() {
        // Gates over the sigmoid's whole range, including where it saturates.
        let gate = random([2, 7, 33], 6.0);
        let up = random([2, 7, 33], 1.0);
        let w = random([2, 7, 33], 1.0);
        let (fused, [dg_fused, du_fused]) =
            value_and_grads([&gate, &up], &w, |[g, u]| swiglu(g, u));
        let (composed, [dg_composed, du_composed]) =
            value_and_grads([&gate, &up], &w, |[g, u]| silu(g) * u);
        assert_close(&fused, &composed, "swiglu");
        assert_close(&dg_fused, &dg_composed, "swiglu gradient of the gate");
        assert_close(&du_fused, &du_composed, "swiglu gradient of the up projection");
        assert_close(&swiglu(gate.clone(), up.clone()), &composed, "swiglu without autodiff");
    }

    /// `x * cos + rotate_half(x) * sin` from burn's operations, with `rotate_half(x) =
    /// cat(-x2, x1)`.
    fn rope_reference<B: Backend>(
        x: Tensor<B, 4>,
        cos: Tensor<B, 4>,
        sin: Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let [b, t, h, d] = x.dims();
        let x1 = x.clone().slice([0..b, 0..t, 0..h, 0..d / 2]);
        let x2 = x.clone().slice([0..b, 0..t, 0..h, d / 2..d]);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }

    #[test]
    fn rope_and_its_gradient_match_burns_composition() {
        let [b, t, h, d] = [2, 5, 3, 8];
        let half = random([b, t, d / 2], 2.0).reshape([b, t, 1, d / 2]);
        let angles = Tensor::cat(vec![half.clone(), half], 3);
        let (cos, sin) = (angles.clone().cos(), angles.sin());
        let x = random([b * t, h, d], 1.0);
        let w = random([b * t, h, d], 1.0);
        let with = |f: fn(
            Tensor<FlexAutodiff, 4>,
            Tensor<FlexAutodiff, 4>,
            Tensor<FlexAutodiff, 4>,
        ) -> Tensor<FlexAutodiff, 4>| {
            let (cos, sin) = (Tensor::from_inner(cos.clone()), Tensor::from_inner(sin.clone()));
            value_and_grads([&x], &w, move |[x]| {
                f(x.reshape([b, t, h, d]), cos.clone(), sin.clone()).reshape([b * t, h, d])
            })
        };
        let (fused, [d_fused]) =
            with(|x, cos, sin| try_rope(x, &cos, &sin).expect("fused on Flex"));
        let (composed, [d_composed]) = with(rope_reference);
        assert_close(&fused, &composed, "rope");
        assert_close(&d_fused, &d_composed, "rope gradient");
        let inference =
            try_rope(x.clone().reshape([b, t, h, d]), &cos, &sin).expect("fused on Flex");
        assert_close(&inference.reshape([b * t, h, d]), &composed, "rope without autodiff");
    }

    #[test]
    fn strided_inputs_are_read_in_logical_order() {
        let gate = random([4, 6, 5], 2.0);
        let up = random([4, 5, 6], 1.0).swap_dims(1, 2);
        let expected = silu(gate.clone()) * up.clone();
        assert_close(&swiglu(gate, up), &expected, "swiglu of a transposed view");
        let x = random([4, 5, 6], 2.0).swap_dims(1, 2);
        assert_close(&softmax_last_dim(x.clone()), &softmax(x, 2), "softmax of a transposed view");
    }

    #[test]
    fn a_frozen_input_gets_no_gradient() {
        let gate = Tensor::<FlexAutodiff, 3>::from_inner(random([2, 3, 4], 1.0)).require_grad();
        let up = Tensor::<FlexAutodiff, 3>::from_inner(random([2, 3, 4], 1.0));
        let grads = swiglu(gate.clone(), up.clone()).sum().backward();
        assert!(gate.grad(&grads).is_some());
        assert!(up.grad(&grads).is_none());
    }
}
