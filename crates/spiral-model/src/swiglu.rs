//! The SwiGLU gate (Shazeer, 2020), `z = silu(g) * u` with `silu(g) = g s` and `s = sigmoid(g)`,
//! with an analytic backward pass on the GPU:
//!
//! ```text
//! du = dz g s        dg = dz u s (1 + g (1 - s))
//! ```
//!
//! Composed from burn's differentiable operations (a sigmoid and two products), autodiff keeps
//! four tensors of the MLP's width for each layer (`g`, `s`, `silu(g)` and `u`) and walks them in
//! several backward steps. Under autodiff on the GPU this keeps `g` and `u` only, and the backward
//! pass is one element-wise expression with two outputs, computed in float32 and returned in the
//! inputs' dtype. On the CPU in float32 burn-flex's fused kernel ([`crate::fused::swiglu`]) does
//! the same, and other dtypes compose; `SPIRAL_CUDA_BACKWARD=composed` keeps the composition on
//! the GPU.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};

use crate::precision::{cast, to_f32};

/// `silu(gate) * up`, for tensors of the same shape.
pub(crate) fn swiglu<B: Backend, const D: usize>(
    gate: Tensor<B, D>,
    up: Tensor<B, D>,
) -> Tensor<B, D> {
    #[cfg(feature = "cuda")]
    let (gate, up) = if gate.dims() == up.dims() {
        use crate::dispatch::{to_cuda_analytic, upcast};
        match (to_cuda_analytic(gate), to_cuda_analytic(up)) {
            (Ok(gate), Ok(up)) => return upcast(swiglu_autodiff(gate, up)),
            (Err(gate), Err(up)) => (gate, up),
            _ => unreachable!("both tensors have the backend B"),
        }
    } else {
        (gate, up)
    };
    crate::fused::swiglu(gate, up)
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
    use burn::backend::Flex;
    use burn::tensor::DType;

    use crate::test_data::{max_abs_diff, uniform, values};

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
}
