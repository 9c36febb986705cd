//! RMSNorm (Zhang & Sennrich, 2019), `y = x / rms(x) * w` with `rms(x) = sqrt(mean(x²) + eps)`
//! over the last axis, with an analytic backward pass on the GPU.
//!
//! As transformers does, `x / rms(x)` is computed in float32, rounded to the input's dtype, then
//! scaled by the weight in that dtype. Composed from burn's differentiable operations (a cast, a
//! square, a mean, a square root, a division, two casts, a product), autodiff keeps several
//! float32 intermediates the size of `x` for each of a layer's four norms, and walks them again in
//! the backward pass. With `r = 1 / rms(x)`, `n = x r` and `g = dy * w` per row of `d` elements:
//!
//! ```text
//! dx = r (g - n mean(g n))        dw = Σ_rows dy n
//! ```
//!
//! The rounding of `n` to the input's dtype is taken as the identity in the backward pass (its
//! derivative is 1 almost everywhere), as autodiff takes a cast. Under autodiff on the GPU the
//! backward pass keeps `x` as given and one float per row, and is one reduction for `dx` and one
//! for `dw`, each after one element-wise pass. On the CPU the composition is unchanged, and
//! `SPIRAL_CUDA_BACKWARD=composed` keeps it on the GPU too.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};

use crate::long_rows::sum_columns;
use crate::precision::{cast, to_f32};

/// `x / rms(x) * weight` over the last axis of `x`; `weight` is `[d]`, `x` is `[.., d]`.
pub fn rms_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    #[cfg(feature = "cuda")]
    let (x, weight) = {
        use crate::dispatch::{to_cuda_analytic, upcast};
        match (to_cuda_analytic(x), to_cuda_analytic(weight)) {
            (Ok(x), Ok(weight)) => return upcast(rms_norm_autodiff(x, weight, eps)),
            (Err(x), Err(weight)) => (x, weight),
            _ => unreachable!("both tensors have the backend B"),
        }
    };
    forward(x, weight, eps).0
}

/// The forward pass, differentiable on every backend, and `rms(x)`, `[.., 1]`.
fn forward<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> (Tensor<B, D>, Tensor<B, D>) {
    let dtype = x.dtype();
    let x = to_f32(x);
    let rms = x.clone().square().mean_dim(D - 1).add_scalar(eps).sqrt();
    let d = weight.dims()[0];
    let mut shape = [1; D];
    shape[D - 1] = d;
    let y = cast(x.div(rms.clone()), dtype).mul(cast(weight, dtype).reshape(shape));
    (y, rms)
}

/// What the backward pass keeps: `x` as given (`[rows, d]`), the weight, and `r` per row.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    x: Tensor<B, 2>,
    weight: Tensor<B, 1>,
    r: Tensor<B, 2>,
}

// Taken only on `Autodiff<Cuda>` (and in the tests).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
#[derive(Debug)]
struct RmsNormBackward;

impl<B: Backend> Backward<B, 2> for RmsNormBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let grad = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grad));
        let [x_parent, weight_parent] = ops.parents;
        // A frozen weight (LoRA) or input (the first layer's, under a frozen embedding) needs no
        // gradient; neither is computed then.
        let (dx, dw) = gradients(ops.state, grad, x_parent.is_some(), weight_parent.is_some());
        if let (Some(parent), Some(dx)) = (x_parent, dx) {
            grads.register::<B>(parent.id, dx.into_primitive().tensor());
        }
        if let (Some(parent), Some(dw)) = (weight_parent, dw) {
            grads.register::<B>(parent.id, dw.into_primitive().tensor());
        }
    }
}

/// `dx = r (g - n mean(g n))` with `g = dy w`, in `x`'s dtype, and `dw = Σ_rows dy n` in the
/// weight's dtype (see the module's header), each if asked for.
fn gradients<B: Backend>(
    saved: Saved<B>,
    dy: Tensor<B, 2>,
    want_dx: bool,
    want_dw: bool,
) -> (Option<Tensor<B, 2>>, Option<Tensor<B, 1>>) {
    let Saved { x, weight, r } = saved;
    let [_, d] = x.dims();
    let (x_dtype, w_dtype) = (x.dtype(), weight.dtype());
    let n = to_f32(x) * r.clone();
    let dy = to_f32(dy);
    let dw = want_dw.then(|| cast(sum_columns(dy.clone() * n.clone()), w_dtype));
    let dx = want_dx.then(|| {
        let g = dy * to_f32(weight).reshape([1, d]);
        let mean = (g.clone() * n.clone()).mean_dim(1);
        cast(r * (g - n * mean), x_dtype)
    });
    (dx, dw)
}

/// [`rms_norm`] under `Autodiff<I>`, recorded with [`RmsNormBackward`] on `x` viewed as
/// `[rows, d]`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn rms_norm_autodiff<I: Backend, const D: usize>(
    x: Tensor<Autodiff<I>, D>,
    weight: Tensor<Autodiff<I>, 1>,
    eps: f64,
) -> Tensor<Autodiff<I>, D> {
    let shape = x.dims();
    let d = shape[D - 1];
    let x = x.reshape([shape.iter().product::<usize>() / d.max(1), d]).into_primitive().tensor();
    let weight = weight.into_primitive().tensor();
    let prep = <RmsNormBackward as Backward<I, 2>>::prepare::<NoCheckpointing>(
        RmsNormBackward,
        [x.node.clone(), weight.node.clone()],
    )
    .compute_bound()
    .stateful();
    let x = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(x.primitive));
    let weight = Tensor::<I, 1>::from_primitive(TensorPrimitive::Float(weight.primitive));
    let (y, rms) = forward(x.clone(), weight.clone(), eps);
    let y = y.into_primitive().tensor();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish(Saved { x, weight, r: rms.recip() }, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Tensor::<Autodiff<I>, 2>::from_primitive(TensorPrimitive::Float(out)).reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::{DType, TensorData};

    use crate::test_data::{max_abs_diff, uniform, values};

    type A = Autodiff<Flex>;

    fn random<const D: usize>(shape: [usize; D], seed: u64) -> TensorData {
        uniform(shape, 3.0, 0.5, seed)
    }

    /// The output and the gradients against `x` and the weight of `norm`, under a fixed random
    /// upstream gradient, for `x: [2, 3, 4, 16]` in `dtype` and a float32 weight.
    fn run(
        dtype: DType,
        norm: impl Fn(Tensor<A, 4>, Tensor<A, 1>) -> Tensor<A, 4>,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (y, dx, dw) = run_tracking(dtype, true, true, norm);
        (y, dx.unwrap(), dw.unwrap())
    }

    /// [`run`] with `x` or the weight tracked or not (frozen).
    fn run_tracking(
        dtype: DType,
        track_x: bool,
        track_w: bool,
        norm: impl Fn(Tensor<A, 4>, Tensor<A, 1>) -> Tensor<A, 4>,
    ) -> (Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>) {
        let device = Default::default();
        let shape = [2, 3, 4, 16];
        let x = cast(Tensor::<Flex, 4>::from_data(random(shape, 1), &device), dtype);
        let x = Tensor::<A, 4>::from_inner(x).set_require_grad(track_x);
        let w = Tensor::<A, 1>::from_data(random([16], 2), &device).set_require_grad(track_w);
        let y = norm(x.clone(), w.clone());
        let upstream = cast(Tensor::<Flex, 4>::from_data(random(shape, 3), &device), dtype);
        let grads = (y.clone() * Tensor::from_inner(upstream)).sum().backward();
        let (dx, dw) = (x.grad(&grads), w.grad(&grads));
        assert_eq!(dx.as_ref().map(|g| g.dtype()), track_x.then_some(dtype));
        assert_eq!(dw.as_ref().map(|g| g.dtype()), track_w.then_some(DType::F32));
        (values(y), dx.map(values), dw.map(values))
    }

    /// A frozen weight (LoRA) or input leaves the other gradient as it was.
    #[test]
    fn a_frozen_weight_or_input_leaves_the_other_gradient() {
        let norm = |x, w| rms_norm_autodiff(x, w, 1e-6);
        let (_, dx, dw) = run(DType::F32, norm);
        let (_, only_dx, none) = run_tracking(DType::F32, true, false, norm);
        assert_eq!((only_dx, none), (Some(dx), None));
        let (_, none, only_dw) = run_tracking(DType::F32, false, true, norm);
        assert_eq!((none, only_dw), (None, Some(dw)));
    }

    #[test]
    fn output_and_gradients_match_autodiffs_through_the_composition() {
        let eps = 1e-6;
        let (y, dx, dw) = run(DType::F32, |x, w| rms_norm_autodiff(x, w, eps));
        let (y0, dx0, dw0) = run(DType::F32, |x, w| forward(x, w, eps).0);
        assert!(max_abs_diff(&y, &y0) < 1e-6);
        assert!(max_abs_diff(&dx, &dx0) < 1e-5, "dx");
        assert!(max_abs_diff(&dw, &dw0) < 1e-4, "dw");
        assert!(dx.iter().any(|g| g.abs() > 1e-2) && dw.iter().any(|g| g.abs() > 1e-2));
    }

    /// In bf16 the rounding of `x / rms(x)` is differentiated as the identity, as autodiff
    /// differentiates a cast: the same gradients, to bf16 rounding.
    #[test]
    fn bf16_gradients_match_to_bf16_rounding() {
        let (y, dx, dw) = run(DType::BF16, |x, w| rms_norm_autodiff(x, w, 1e-6));
        let (y0, dx0, dw0) = run(DType::BF16, |x, w| forward(x, w, 1e-6).0);
        assert_eq!(y, y0, "the same forward pass");
        let scale = |v: &[f32]| v.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(max_abs_diff(&dx, &dx0) <= scale(&dx0) / 64.0, "dx");
        assert!(max_abs_diff(&dw, &dw0) <= scale(&dw0) / 64.0, "dw");
    }
}
