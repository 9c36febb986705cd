//! The rotary position embedding (Su et al., 2021, "RoFormer", arXiv:2104.09864) as one fused CPU
//! kernel: each pair `(x_i, x_{i + d/2})` of every head is rotated by the angle `a_i`, and the
//! gradient is the rotation of `dy` by `-a_i`.
//!
//! Queries and keys are transposed to `[batch, heads, time, dim]` after the rotation, so its
//! gradient arrives as a transposed view, which burn-flex's element-wise operations walk one index
//! at a time; here the rotation and its gradient each read their input once in logical order.
//! The tables (`cos`, `sin`) come from `spiral_model`'s `RopeTables`, which composes the same
//! rotation from burn's operations on every backend this kernel does not cover.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorPrimitive, backend::Backend};

use crate::dispatch::{FlexAutodiff, downcast, from_flex, like, to_flex, upcast, values};

/// Rotates `x: [batch, time, heads, head_dim]` by the rotary tables `cos` and `sin`
/// (`[batch, time, 1, head_dim]`, the same angle at `i` and `i + head_dim / 2`):
/// `x * cos + rotate_half(x) * sin`. Gives `x` back (`Err`) where there is no fused kernel.
pub fn try_rope<B: Backend>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{assert_close, random, value_and_grads};

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
}
