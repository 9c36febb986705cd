//! Seeded random tensor data for unit tests. burn's `Tensor::random` draws from a generator
//! shared by the whole process, which tests running on other threads also seed and draw from, so
//! two draws after the same seed may differ; a generator per call may not.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Values drawn uniformly from `[-scale, scale)`, then shifted by `offset`, from `seed` alone.
pub(crate) fn uniform<const D: usize>(
    shape: [usize; D],
    scale: f32,
    offset: f32,
    seed: u64,
) -> TensorData {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| offset + rng.random_range(-scale..scale)).collect();
    TensorData::new(values, shape)
}

/// The largest `|a_i - b_i|`, infinite if any difference is NaN (a fold with `f32::max` would
/// drop it).
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// The values of `t`, as float32.
pub(crate) fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Gradients of `sum(f(inputs) * weights)` with respect to each input, and the output.
pub(crate) fn value_and_grads<const N: usize>(
    inputs: [&Tensor<Flex, 3>; N],
    weights: &Tensor<Flex, 3>,
    f: impl Fn([Tensor<Autodiff<Flex>, 3>; N]) -> Tensor<Autodiff<Flex>, 3>,
) -> (Tensor<Flex, 3>, [Tensor<Flex, 3>; N]) {
    let leaves = inputs.map(|x| Tensor::<Autodiff<Flex>, 3>::from_inner(x.clone()).require_grad());
    let out = f(leaves.clone());
    let loss = (out.clone() * Tensor::from_inner(weights.clone())).sum();
    let grads = loss.backward();
    (out.inner(), leaves.map(|x| x.grad(&grads).expect("the input requires a gradient")))
}

/// Fails with `what` unless `a` and `b` agree within 1e-5 everywhere.
pub(crate) fn assert_close(a: &Tensor<Flex, 3>, b: &Tensor<Flex, 3>, what: &str) {
    let worst = (a.clone() - b.clone()).abs().max().into_scalar();
    assert!(worst < 1e-5, "{what}: worst difference {worst}");
}

/// Normal values of standard deviation `scale` from burn's process-wide generator (for tests
/// that compare two computations on the same draw, never against fixed numbers).
pub(crate) fn random(shape: [usize; 3], scale: f64) -> Tensor<Flex, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, scale), &Default::default())
}
