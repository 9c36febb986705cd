//! Gradient clipping by the global L2 norm over every parameter, as `torch.nn.utils.
//! clip_grad_norm_` does, in the model's parameter order.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use spiral_kernels::long_rows::sum_all;
use spiral_model::CausalLm;

/// Scales all gradients so their global L2 norm is at most `max_norm`; returns the norm before.
///
/// The per-parameter sums of squares stay on the device and come back in one read: reading each
/// as it is made waits for the device once per parameter, hundreds of round trips a step on a
/// GPU. They are added on the host in float64, in parameter order.
pub(super) fn clip_global_norm<B: AutodiffBackend>(
    model: &CausalLm<B>,
    grads: &mut GradientsParams,
    max_norm: Option<f64>,
) -> f64 {
    struct SquaredSums<'a, I: Backend> {
        grads: &'a GradientsParams,
        sums: Vec<Tensor<I, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredSums<'_, B::InnerBackend> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                // Staged off the CPU: see `sum_all`.
                self.sums.push(sum_all(g.square()));
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    let mut squared = SquaredSums { grads, sums: Vec::new() };
    Module::<B>::visit(model, &mut squared);
    let total = if squared.sums.is_empty() {
        0.0
    } else {
        Tensor::cat(squared.sums, 0).into_data().iter::<f64>().sum::<f64>().sqrt()
    };
    if let Some(max) = max_norm
        && total > max
        && total.is_finite()
    {
        let mut scale = Scale { grads, factor: max / (total + 1e-6) };
        Module::<B>::visit(model, &mut scale);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learner::{TrainSequence, completion_logprobs};
    use burn::backend::{Autodiff, Flex};
    use spiral_model::ModelConfig;

    type B = Autodiff<Flex>;

    #[test]
    fn clipping_rescales_to_the_global_norm() {
        let model =
            CausalLm::<B>::random(ModelConfig::small(16, 16, 1, 2), 1, 0.1, &Default::default())
                .unwrap();
        let seqs = [TrainSequence {
            tokens: vec![1, 2, 3, 4],
            prompt_len: 1,
            advantage: 0.0,
            old_logprobs: None,
            ref_logprobs: None,
            rollout_logprobs: None,
            weight: 1.0,
        }];
        let (logp, mask, _, _) = completion_logprobs(&model, &seqs, false, false, 1.0).unwrap();
        let loss = logp.mul(mask).sum().neg();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        // The norm read in one go equals the one summed element by element on the host.
        struct HostSquares<'a>(&'a GradientsParams, f64);
        impl ModuleVisitor<B> for HostSquares<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if let Some(g) = self.0.get::<Flex, D>(param.id) {
                    self.1 += g.into_data().iter::<f64>().map(|x| x * x).sum::<f64>();
                }
            }
        }
        let mut host = HostSquares(&grads, 0.0);
        Module::<B>::visit(&model, &mut host);
        let expected = host.1.sqrt();
        let before = clip_global_norm(&model, &mut grads, Some(0.01));
        assert!((before - expected).abs() <= 1e-6 * expected, "{before} against {expected}");
        assert!(before > 0.01, "the test needs a gradient larger than the bound: {before}");
        let after = clip_global_norm(&model, &mut grads, None);
        assert!((after - 0.01).abs() < 1e-5, "norm after clipping {after}");
        // A bound above the norm leaves the gradients alone.
        let again = clip_global_norm(&model, &mut grads, Some(1.0));
        assert!((again - after).abs() < 1e-9);
        assert!((clip_global_norm(&model, &mut grads, None) - after).abs() < 1e-9);
    }
}
