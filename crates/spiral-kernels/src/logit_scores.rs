//! Scores of target tokens from vocabulary logits, with an analytic backward pass. For a row `z`
//! of logits (`[n, v]`) with target `y`, `lse = log Σ_i exp(z_i)` and `p_i = exp(z_i - lse)`:
//!
//! - the log-prob `log p_y = z_y - lse`;
//! - the entropy `H = -Σ_i p_i log p_i = lse - Σ_i p_i z_i`, if asked for.
//!
//! Composed from burn's differentiable operations this was `log_softmax` of float32 logits, a
//! gather, and `exp(lp) * lp` summed. Autodiff then keeps the `[n, v]` float32 log-probs for the
//! backward pass and walks several more `[n, v]` tensors in it. Along Qwen's 151,936-token
//! vocabulary a micro-batch's logits are gigabytes, the largest tensors of a training step.
//!
//! Here the forward pass reduces each row of logits, read in its own dtype (bf16 in training) and
//! widened to float32 as it is read, to per-row numbers. The backward pass keeps only the logits,
//! the targets and two floats a row, and is one element-wise expression. With `d lse / dz_i = p_i`
//! and `dH / dz_i = -p_i (log p_i + H)`:
//!
//! ```text
//! dz_i = g_lp (1[i = y] - p_i) - g_H p_i (log p_i + H)
//! ```
//!
//! The analytic backward pass is taken on the two training backends (`Autodiff<Flex>`, and
//! `Autodiff<Cuda>` with the `cuda` feature unless `SPIRAL_CUDA_BACKWARD=composed`). Every other
//! backend gets the same forward pass composed from differentiable operations, whose gradient
//! autodiff derives.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive, backend::Backend};

use crate::dispatch::{downcast, upcast};
use crate::long_rows::{max_rows, sum_rows};
use crate::precision::{cast, to_f32};

/// Per-row scores of [`logit_scores`].
#[derive(Debug, Clone)]
pub struct LogitScores<B: Backend> {
    /// `[n]`: the log-prob of each row's target.
    pub logprobs: Tensor<B, 1>,
    /// `[n]`: the entropy of each row's distribution, if asked for.
    pub entropy: Option<Tensor<B, 1>>,
}

/// The log-prob of `targets[r]` under `softmax(logits[r])` for each row `r` of `logits`
/// (`[n, v]`, any float dtype; reduced in float32), and the entropy of that distribution if
/// `with_entropy`. Differentiable with respect to the logits on every backend.
pub fn logit_scores<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[i64],
    with_entropy: bool,
) -> LogitScores<B> {
    let [n, _] = logits.dims();
    assert_eq!(n, targets.len(), "one target per row of logits");
    let scores = downcast::<B, Autodiff<Flex>, 2>(logits)
        .map(|z| upcast(scores_autodiff(z, targets, with_entropy)));
    #[cfg(feature = "cuda")]
    let scores = scores.or_else(|z| {
        crate::dispatch::to_cuda_analytic(z)
            .map(|z| upcast(scores_autodiff(z, targets, with_entropy)))
    });
    let scores = scores.unwrap_or_else(|z| {
        let targets = targets_on(targets, &z.device());
        forward(z, &targets, with_entropy).0
    });
    LogitScores {
        logprobs: scores.clone().slice_dim(1, 0..1).reshape([n]),
        entropy: with_entropy.then(|| scores.slice_dim(1, 1..2).reshape([n])),
    }
}

/// `targets` as a `[n, 1]` index tensor.
fn targets_on<B: Backend>(targets: &[i64], device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::from_data(TensorData::new(targets.to_vec(), [targets.len(), 1]), device)
}

/// The forward pass: `[n, 1]` log-probs, or `[n, 2]` log-probs then entropies, and the two parts
/// of the per-row `lse = max + log_sum`, each `[n, 1]`. Every step is differentiable, so on a
/// backend without the analytic backward pass autodiff differentiates this directly.
fn forward<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &Tensor<B, 2, Int>,
    with_entropy: bool,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let z = to_f32(logits);
    // Any per-row constant gives the same scores; the maximum keeps `exp` in range, and detaching
    // it keeps it out of the gradient.
    let max = max_rows(z.clone().detach());
    let shifted = z - max.clone();
    let exp = shifted.clone().exp();
    let sum_exp = sum_rows(exp.clone());
    let log_sum = sum_exp.clone().log();
    let logprob = shifted.clone().gather(1, targets.clone()) - log_sum.clone();
    let scores = if with_entropy {
        // `lse - Σ p_i z_i` with the maximum taken out of both terms.
        let entropy = log_sum.clone() - sum_rows(exp * shifted) / sum_exp;
        Tensor::cat(vec![logprob, entropy], 1)
    } else {
        logprob
    };
    (scores, max, log_sum)
}

/// What the backward pass keeps: the logits in their own dtype, the targets, and two floats a
/// row.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
    lse: Tensor<B, 2>,
    entropy: Option<Tensor<B, 2>>,
}

#[derive(Debug)]
struct ScoresBackward;

impl<B: Backend> Backward<B, 1> for ScoresBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let [parent] = ops.parents;
        if let Some(parent) = parent {
            let grad = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(grad));
            let d_logits = logits_gradient(ops.state, grad);
            grads.register::<B>(parent.id, d_logits.into_primitive().tensor());
        }
    }
}

/// `dz` from the gradient of the scores, `[n, 1]` or `[n, 2]` as the forward pass returned them
/// (see the module's header), in the logits' dtype.
fn logits_gradient<B: Backend>(saved: Saved<B>, grad: Tensor<B, 2>) -> Tensor<B, 2> {
    let Saved { logits, targets, lse, entropy } = saved;
    let [n, v] = logits.dims();
    let dtype = logits.dtype();
    let device = logits.device();
    let log_p = to_f32(logits) - lse;
    let p = log_p.clone().exp();
    let grad = to_f32(grad);
    let g_logprob = grad.clone().slice_dim(1, 0..1);
    let minus_dz = match entropy {
        Some(entropy) => {
            let g_entropy = grad.slice_dim(1, 1..2);
            p * (g_logprob.clone() + g_entropy * (log_p + entropy))
        }
        None => p * g_logprob.clone(),
    };
    let index = Tensor::<B, 1, Int>::arange(0..v as i64, &device).reshape([1, v]).expand([n, v]);
    let is_target = index.equal(targets.expand([n, v])).float();
    cast(is_target * g_logprob - minus_dz, dtype)
}

/// The scores under `Autodiff<I>`, recorded with [`ScoresBackward`].
fn scores_autodiff<I: Backend>(
    logits: Tensor<Autodiff<I>, 2>,
    targets: &[i64],
    with_entropy: bool,
) -> Tensor<Autodiff<I>, 2> {
    let logits = logits.into_primitive().tensor();
    let prep = <ScoresBackward as Backward<I, 1>>::prepare::<NoCheckpointing>(
        ScoresBackward,
        [logits.node.clone()],
    )
    .compute_bound()
    .stateful();
    let z = Tensor::<I, 2>::from_primitive(TensorPrimitive::Float(logits.primitive));
    let targets = targets_on::<I>(targets, &z.device());
    let (scores, max, log_sum) = forward(z.clone(), &targets, with_entropy);
    let out = match prep {
        OpsKind::Tracked(prep) => {
            let entropy = with_entropy.then(|| scores.clone().slice_dim(1, 1..2));
            let saved = Saved { logits: z, targets, lse: max + log_sum, entropy };
            prep.finish(saved, scores.into_primitive().tensor())
        }
        OpsKind::UnTracked(prep) => prep.finish(scores.into_primitive().tensor()),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;
    use burn::tensor::activation::log_softmax;

    use crate::test_data::{max_abs_diff, uniform, values};

    type A = Autodiff<Flex>;

    fn random(n: usize, v: usize, seed: u64) -> TensorData {
        uniform([n, v], 6.0, 0.0, seed)
    }

    /// Log-probs and entropies as the model composed them before: `log_softmax`, a gather, and
    /// `-Σ exp(lp) lp`.
    fn composed<B: Backend>(
        logits: Tensor<B, 2>,
        targets: &[i64],
        with_entropy: bool,
    ) -> (Tensor<B, 1>, Option<Tensor<B, 1>>) {
        let n = targets.len();
        let lp = log_softmax(to_f32(logits), 1);
        let entropy =
            with_entropy.then(|| lp.clone().exp().mul(lp.clone()).sum_dim(1).neg().reshape([n]));
        (lp.gather(1, targets_on(targets, &Default::default())).reshape([n]), entropy)
    }

    /// `data` in `dtype`, as a leaf that keeps its gradient.
    fn leaf(data: &TensorData, dtype: DType) -> Tensor<A, 2> {
        let z = cast(Tensor::<Flex, 2>::from_data(data.clone(), &Default::default()), dtype);
        Tensor::from_inner(z).require_grad()
    }

    /// The scores and their gradient against the logits under random upstream weights, through
    /// `scores` on `Autodiff<Flex>`.
    fn with_gradient(
        logits: &TensorData,
        targets: &[i64],
        dtype: DType,
        scores: impl Fn(Tensor<A, 2>) -> (Tensor<A, 1>, Option<Tensor<A, 1>>),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = targets.len();
        let device = Default::default();
        let z = leaf(logits, dtype);
        let (logprobs, entropy) = scores(z.clone());
        // Weights of both signs and sizes, so neither term of the gradient hides the other.
        let w_lp = Tensor::<A, 2>::from_data(random(1, n, 11), &device).reshape([n]);
        let w_h = Tensor::<A, 2>::from_data(random(1, n, 12), &device).reshape([n]);
        let mut loss = (logprobs.clone() * w_lp).sum();
        if let Some(entropy) = &entropy {
            loss = loss + (entropy.clone() * w_h).sum();
        }
        let grad = z.grad(&loss.backward()).unwrap();
        (values(logprobs), entropy.map(values).unwrap_or_default(), values(grad))
    }

    fn analytic_scores(
        z: Tensor<A, 2>,
        targets: &[i64],
        with_entropy: bool,
    ) -> (Tensor<A, 1>, Option<Tensor<A, 1>>) {
        let scores = logit_scores(z, targets, with_entropy);
        assert_eq!(scores.entropy.is_some(), with_entropy);
        (scores.logprobs, scores.entropy)
    }

    /// Rows with one dominant logit, rows with ties, and plain random ones; a target at each
    /// end of the vocabulary.
    fn cases(v: usize) -> (TensorData, Vec<i64>) {
        let mut data = random(6, v, 3).to_vec::<f32>().unwrap();
        data[v + 4] = 60.0; // row 1 nearly one-hot on its target
        data[2 * v..3 * v].fill(0.5); // row 2 uniform
        let targets = vec![0, 4, (v - 1) as i64, 7, 2, (v - 1) as i64];
        (TensorData::new(data, [6, v]), targets)
    }

    #[test]
    fn scores_and_gradients_match_the_composed_ones() {
        // Training differentiates the log-probs alone; with the entropy, both terms.
        for (v, entropy) in [(37, true), (300, true), (37, false), (300, false)] {
            let (logits, targets) = cases(v);
            let (lp, h, grad) = with_gradient(&logits, &targets, DType::F32, |z| {
                analytic_scores(z, &targets, entropy)
            });
            let (lp0, h0, grad0) =
                with_gradient(&logits, &targets, DType::F32, |z| composed(z, &targets, entropy));
            let case = format!("v = {v}, entropy {entropy}");
            assert!(max_abs_diff(&lp, &lp0) < 1e-5, "log-probs, {case}");
            assert!(max_abs_diff(&h, &h0) < 1e-5, "entropies, {case}");
            assert!(max_abs_diff(&grad, &grad0) < 1e-5, "gradients, {case}");
            // The uniform row: log-prob and entropy known in closed form.
            assert!((lp[2] + (v as f32).ln()).abs() < 1e-5);
            assert!(!entropy || (h[2] - (v as f32).ln()).abs() < 1e-5);
            assert!(grad.iter().any(|g| g.abs() > 1e-2), "the test needs a gradient");
        }
    }

    /// The composed forward pass, which every other backend differentiates through autodiff,
    /// has the analytic pass's gradient.
    #[test]
    fn the_composed_forward_pass_has_the_same_gradient() {
        let (logits, targets) = cases(50);
        let via_autodiff = |z: Tensor<A, 2>| {
            let (scores, ..) = forward(z, &targets_on(&targets, &Default::default()), true);
            let n = targets.len();
            (
                scores.clone().slice_dim(1, 0..1).reshape([n]),
                Some(scores.slice_dim(1, 1..2).reshape([n])),
            )
        };
        let (lp, h, grad) = with_gradient(&logits, &targets, DType::F32, via_autodiff);
        let (lp1, h1, grad1) =
            with_gradient(&logits, &targets, DType::F32, |z| analytic_scores(z, &targets, true));
        assert!(max_abs_diff(&lp, &lp1) < 1e-6);
        assert!(max_abs_diff(&h, &h1) < 1e-6);
        assert!(max_abs_diff(&grad, &grad1) < 1e-5);
    }

    /// bf16 logits (training's dtype): the float32 scores of their values, and a bf16 gradient
    /// that is the float32 one rounded.
    #[test]
    fn bf16_logits_give_the_float32_scores_of_their_values_and_a_bf16_gradient() {
        let (logits, targets) = cases(64);
        let grad_dtype = |dtype| {
            let z = leaf(&logits, dtype);
            let scores = logit_scores(z.clone(), &targets, false);
            assert!(scores.entropy.is_none());
            z.grad(&scores.logprobs.sum().backward()).unwrap().dtype()
        };
        assert_eq!(grad_dtype(DType::BF16), DType::BF16);
        assert_eq!(grad_dtype(DType::F32), DType::F32);
        let (lp, h, grad) =
            with_gradient(&logits, &targets, DType::BF16, |z| analytic_scores(z, &targets, true));
        let rounded = cast(Tensor::<Flex, 2>::from_data(logits, &Default::default()), DType::BF16);
        let (lp0, h0, grad0) =
            with_gradient(&cast(rounded, DType::F32).into_data(), &targets, DType::F32, |z| {
                composed(z, &targets, true)
            });
        assert!(max_abs_diff(&lp, &lp0) < 1e-5);
        assert!(max_abs_diff(&h, &h0) < 1e-5);
        let scale = grad0.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        assert!(max_abs_diff(&grad, &grad0) <= scale / 128.0, "bf16 rounds to 8 bits");
    }

    /// Without autodiff (scoring, rollout) the same forward pass runs.
    #[test]
    fn inference_backends_give_the_same_scores() {
        let (logits, targets) = cases(40);
        let z = Tensor::<Flex, 2>::from_data(logits, &Default::default());
        let (lp0, h0) = composed(z.clone(), &targets, true);
        let scores = logit_scores(z, &targets, true);
        assert!(max_abs_diff(&values(scores.logprobs), &values(lp0)) < 1e-5);
        assert!(max_abs_diff(&values(scores.entropy.unwrap()), &values(h0.unwrap())) < 1e-5);
    }
}
