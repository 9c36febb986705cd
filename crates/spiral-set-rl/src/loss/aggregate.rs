//! Loss aggregation: how per-token losses `[batch, time]` become one number.
//!
//! Names as in verl's `agg_loss` (`verl/trainer/ppo/core_algos.py`). `token-mean` is DAPO's
//! (Yu et al., 2025): every token weighs the same, so long answers are not diluted.
//! `seq-mean-token-mean` is the original GRPO (DeepSeekMath): each sequence's mean, then the mean
//! over sequences. These two compute what verl computes. `seq-mean-token-sum-norm` is Dr.GRPO's
//! (Liu et al., 2025): each sequence's sum divided by a constant length, which removes the length
//! bias that per-sequence means introduce.
//!
//! **`seq-mean-token-sum-norm` differs from verl by a factor.** verl computes
//! `sum_i sum_t m_it l_it / loss_mask.shape[-1]`: the sum over *all* sequences, divided by the
//! padded width of the batch, with no division by the number of sequences (its comment notes the
//! width "should ideally be constant"). Here the length is the fixed `max_len` of the config, and
//! the result is also divided by the number of sequences S, as in Dr.GRPO's objective
//! `(1/G) sum_i sum_t l_it / L`, so the loss scale does not grow with the batch size and a learning
//! rate carries over between batch sizes. verl's value is this one times S; to get it, pass
//! `denominator = Some(1.0)` to [`LossAggregation::reduce`] with `max_len` set to the padded
//! width.
//!
//! Per-sequence weights `w_i` multiply sequence i's contribution without changing the
//! denominators, so SPIRAL's search and aggregation traces can carry different weights in one loss
//! and `w = 1` is the plain mode.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

/// How per-token losses are reduced to the scalar loss (serde tag `mode`, kebab-case names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LossAggregation {
    /// `sum_i w_i sum_t m_it l_it / sum_it m_it` (DAPO).
    #[default]
    TokenMean,
    /// `(1/S) sum_i w_i (sum_t m_it l_it / sum_t m_it)`, S the sequences with a token (GRPO).
    SeqMeanTokenMean,
    /// `(1/S) sum_i w_i (sum_t m_it l_it / max_len)` (Dr.GRPO). Not verl's `sum_i ... / max_len`:
    /// the `1/S` is extra (module docs).
    SeqMeanTokenSumNorm {
        /// The fixed length L every sequence's sum is divided by (the generation budget).
        max_len: usize,
    },
}

impl LossAggregation {
    /// Reduces `per_token` `[batch, time]` under `mask` `[batch, time]` (1 = real token, 0 = pad)
    /// and optional `weights` `[batch]` to a `[1]` tensor.
    ///
    /// `denominator`, when given, replaces the count computed here (tokens for `token-mean`,
    /// sequences with at least one token for the other two), so that micro-batches of one batch
    /// add up to the loss of the whole batch. Counts are floored at 1 so an all-padding input
    /// gives 0, not NaN.
    pub fn reduce<B: Backend>(
        self,
        per_token: Tensor<B, 2>,
        mask: Tensor<B, 2>,
        weights: Option<Tensor<B, 1>>,
        denominator: Option<f64>,
    ) -> Tensor<B, 1> {
        let sums = (per_token * mask.clone()).sum_dim(1); // [batch, 1]
        let lengths = mask.sum_dim(1); // [batch, 1]
        let per_seq = match self {
            LossAggregation::TokenMean => sums,
            LossAggregation::SeqMeanTokenMean => sums / lengths.clone().clamp_min(1.0),
            LossAggregation::SeqMeanTokenSumNorm { max_len } => sums.div_scalar(max_len as f64),
        };
        let per_seq = match weights {
            Some(w) => per_seq * w.unsqueeze_dim::<2>(1),
            None => per_seq,
        };
        let total = per_seq.sum();
        match denominator {
            Some(d) => total.div_scalar(d),
            None => {
                let count = match self {
                    LossAggregation::TokenMean => lengths.sum(),
                    _ => lengths.greater_elem(0.0).float().sum(),
                };
                total / count.clamp_min(1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    use super::*;

    fn t2(values: [[f32; 3]; 2]) -> Tensor<Flex, 2> {
        Tensor::from_data(TensorData::from(values), &Default::default())
    }

    fn scalar(x: Tensor<Flex, 1>) -> f64 {
        x.into_data().iter::<f64>().next().unwrap()
    }

    #[test]
    fn modes_by_hand() {
        // Row 0 has three tokens (1, 2, 3), row 1 one token (4) and two pads.
        let loss = t2([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]]);
        let mask = t2([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]);
        let reduce = |mode: LossAggregation, w: Option<[f32; 2]>, d: Option<f64>| {
            let w =
                w.map(|w| Tensor::<Flex, 1>::from_data(TensorData::from(w), &Default::default()));
            scalar(mode.reduce(loss.clone(), mask.clone(), w, d))
        };
        let norm = LossAggregation::SeqMeanTokenSumNorm { max_len: 4 };
        // token-mean: (1 + 2 + 3 + 4) / 4.
        assert!((reduce(LossAggregation::TokenMean, None, None) - 2.5).abs() < 1e-6);
        // seq-mean-token-mean: (2 + 4) / 2.
        assert!((reduce(LossAggregation::SeqMeanTokenMean, None, None) - 3.0).abs() < 1e-6);
        // seq-mean-token-sum-norm: (6/4 + 4/4) / 2.
        assert!((reduce(norm, None, None) - 1.25).abs() < 1e-6);
        // Weights [2, 0.5]: token-mean (2 * 6 + 0.5 * 4) / 4; seq-mean (2 * 2 + 0.5 * 4) / 2.
        assert!((reduce(LossAggregation::TokenMean, Some([2.0, 0.5]), None) - 3.5).abs() < 1e-6);
        let w = Some([2.0, 0.5]);
        assert!((reduce(LossAggregation::SeqMeanTokenMean, w, None) - 3.0).abs() < 1e-6);
        // An explicit denominator replaces the token count.
        assert!((reduce(LossAggregation::TokenMean, None, Some(8.0)) - 1.25).abs() < 1e-6);
        // verl's seq-mean-token-sum-norm, sum_i sum_t / max_len = (6 + 4) / 4, is the
        // denominator-1 form (the module docs state the difference).
        assert!((reduce(norm, None, Some(1.0)) - 2.5).abs() < 1e-6);
    }

    #[test]
    fn all_padding_is_zero_not_nan() {
        let loss = t2([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]]);
        for mode in [
            LossAggregation::TokenMean,
            LossAggregation::SeqMeanTokenMean,
            LossAggregation::SeqMeanTokenSumNorm { max_len: 3 },
        ] {
            assert_eq!(scalar(mode.reduce(loss.clone(), loss.zeros_like(), None, None)), 0.0);
        }
    }

    #[test]
    fn serde_names() {
        let m: LossAggregation =
            serde_json::from_str(r#"{"mode": "seq-mean-token-sum-norm", "max_len": 16}"#).unwrap();
        assert_eq!(m, LossAggregation::SeqMeanTokenSumNorm { max_len: 16 });
        let m: LossAggregation = serde_json::from_str(r#"{"mode": "token-mean"}"#).unwrap();
        assert_eq!(m, LossAggregation::TokenMean);
        assert!(serde_json::from_str::<LossAggregation>(r#"{"mode": "sum"}"#).is_err());
    }
}
