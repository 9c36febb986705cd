//! The SwiGLU gate (Shazeer, 2020, "GLU Variants Improve Transformer", arXiv:2002.05202),
//! `z = silu(g) * u` with `silu(g) = g s` and `s = sigmoid(g)`, and its analytic backward pass:
//!
//! ```text
//! du = dz g s        dg = dz u s (1 + g (1 - s))
//! ```
//!
//! Composed from burn's differentiable operations (a sigmoid and two products), autodiff keeps
//! four tensors of the MLP's width for each layer (`g`, `s`, `silu(g)` and `u`) and walks them in
//! several backward steps; at the `train-cpu` shapes that was 9% of a training step. So:
//!
//! - on the CPU in float32 (burn-flex, `Autodiff<Flex>`) one fused kernel computes the gate and
//!   one its two gradients, reading the inputs in logical order even when they are strided views;
//! - under autodiff on the GPU the backward pass keeps `g` and `u` only and is one element-wise
//!   expression with two outputs, computed in float32 and returned in the inputs' dtype
//!   (`SPIRAL_CUDA_BACKWARD=composed` keeps autodiff's composition, to compare);
//! - everywhere else, burn's composition `silu(g) * u`, which is also the tests' reference.

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{DType, Tensor, TensorPrimitive, backend::Backend};

use crate::dispatch::{FlexAutodiff, downcast, from_flex, like, to_flex, upcast, values};
use crate::precision::{cast, to_f32};

/// `silu(gate) * up`, for tensors of the same shape.
pub fn swiglu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    #[cfg(feature = "cuda")]
    let (gate, up) = if gate.dims() == up.dims() {
        use crate::dispatch::to_cuda_analytic;
        match (to_cuda_analytic(gate), to_cuda_analytic(up)) {
            (Ok(gate), Ok(up)) => return upcast(swiglu_autodiff(gate, up)),
            (Err(gate), Err(up)) => (gate, up),
            _ => unreachable!("both tensors have the backend B"),
        }
    } else {
        (gate, up)
    };
    swiglu_cpu(gate, up)
}

/// `silu(gate) * up` on the CPU backends as the fused kernel; composed from burn's operations
/// elsewhere, for other dtypes and for shapes that differ.
fn swiglu_cpu<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
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

fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn swiglu_forward(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    let (g, u) = (values(gate), values(up));
    let (g, u) = (g.storage::<f32>(), u.storage::<f32>());
    let out = g.iter().zip(u).map(|(&g, &u)| g * sigmoid_f32(g) * u).collect();
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
        let s = sigmoid_f32(g[i]);
        d_up[i] = dz[i] * g[i] * s;
        d_gate[i] = dz[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
    }
    (like(gate, d_gate), like(up, d_up))
}

/// Keeps both inputs as given; the sigmoid is recomputed.
// Taken only on `Autodiff<Cuda>` (and in the tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
#[derive(Debug)]
struct SwigluBackward;

impl<B: Backend> Backward<B, 2> for SwigluBackward {
    type State = (Tensor<B, 2>, Tensor<B, 2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let dz = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grad));
        let (gate, up) = ops.state;
        let [gate_parent, up_parent] = ops.parents;
        let (gate_dtype, up_dtype) = (gate.dtype(), up.dtype());
        let (g, u, dz) = (to_f32(gate), to_f32(up), to_f32(dz));
        let s = sigmoid(g.clone());
        if let Some(parent) = up_parent {
            let du = dz.clone() * g.clone() * s.clone();
            grads.register::<B>(parent.id, cast(du, up_dtype).into_primitive().tensor());
        }
        if let Some(parent) = gate_parent {
            let dg = dz * u * s.clone() * (g * (s.neg() + 1.0) + 1.0);
            grads.register::<B>(parent.id, cast(dg, gate_dtype).into_primitive().tensor());
        }
    }
}

/// [`swiglu`] under `Autodiff<I>`, recorded with [`SwigluBackward`] on the inputs viewed as
/// `[rows, width]`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn swiglu_autodiff<I: Backend, const D: usize>(
    gate: Tensor<Autodiff<I>, D>,
    up: Tensor<Autodiff<I>, D>,
) -> Tensor<Autodiff<I>, D> {
    let shape = gate.dims();
    let width = shape[D - 1].max(1);
    let flat = [shape.iter().product::<usize>() / width, width];
    let gate = gate.reshape(flat).into_primitive().tensor();
    let up = up.reshape(flat).into_primitive().tensor();
    let prep = <SwigluBackward as Backward<I, 2>>::prepare::<NoCheckpointing>(
        SwigluBackward,
        [gate.node.clone(), up.node.clone()],
    )
    .compute_bound()
    .stateful();
    let gate = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(gate.primitive));
    let up = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(up.primitive));
    let out = (silu(gate.clone()) * up.clone()).into_primitive().tensor();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((gate, up), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::<Autodiff<I>, 2>::from_primitive(TensorPrimitive::Float(out)).reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_data::{assert_close, max_abs_diff, random, uniform, value_and_grads, values};

    type A = Autodiff<Flex>;

    /// The output and both gradients of `f` on `[2, 5, 12]` inputs in `dtype`, under a fixed
    /// random upstream gradient.
    fn run(
        dtype: DType,
        f: impl Fn(Tensor<A, 3>, Tensor<A, 3>) -> Tensor<A, 3>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let shape = [2, 5, 12];
        let leaf = |seed| {
            let x =
                Tensor::<Flex, 3>::from_data(uniform(shape, 6.0, 0.0, seed), &Default::default());
            Tensor::<A, 3>::from_inner(cast(x, dtype)).require_grad()
        };
        let (gate, up) = (leaf(1), leaf(2));
        let z = f(gate.clone(), up.clone());
        let grads = (z.clone() * leaf(3)).sum().backward();
        let (dg, du) = (gate.grad(&grads).unwrap(), up.grad(&grads).unwrap());
        assert_eq!((dg.dtype(), du.dtype()), (dtype, dtype));
        (values(z), values(dg), values(du))
    }

    #[test]
    fn output_and_gradients_match_autodiffs_through_the_composition() {
        let composed = |g, u| silu(g) * u;
        let (z, dg, du) = run(DType::F32, swiglu_autodiff);
        let (z0, dg0, du0) = run(DType::F32, composed);
        assert_eq!(z, z0);
        assert!(max_abs_diff(&dg, &dg0) < 1e-4, "dgate");
        assert!(max_abs_diff(&du, &du0) < 1e-4, "dup");
        // In bf16 the analytic pass computes in float32, autodiff in bf16: equal to bf16 rounding.
        let (z, dg, du) = run(DType::BF16, swiglu_autodiff);
        let (z0, dg0, du0) = run(DType::BF16, composed);
        assert_eq!(z, z0);
        let scale = |v: &[f32]| v.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(max_abs_diff(&dg, &dg0) <= scale(&dg0) / 32.0, "dgate");
        assert!(max_abs_diff(&du, &du0) <= scale(&du0) / 32.0, "dup");
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

    #[test]
    fn a_transposed_view_is_read_in_logical_order() {
        let gate = random([4, 6, 5], 2.0);
        let up = random([4, 5, 6], 1.0).swap_dims(1, 2);
        let expected = silu(gate.clone()) * up.clone();
        assert_close(&swiglu(gate, up), &expected, "swiglu of a transposed view");
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
