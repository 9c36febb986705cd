//! Overlong shaping (DAPO, Yu et al., 2025, section 3.4): traces cut at the length limit are
//! either left out of the update (their reward says nothing about the answer they never wrote)
//! or penalised softly over the last tokens of the budget.
//!
//! With the limit `L` (`max_new_tokens`), the buffer `b` and the penalty `p`, a trace of `len`
//! tokens gets
//!
//! ```text
//! 0                                  len <= L - b
//! -p * (len - (L - b)) / b           L - b < len <= L      (-p at the limit)
//! ```
//!
//! added to its reward before the advantages; the rewards logged stay the raw ones.

use serde::{Deserialize, Serialize};
use spiral_rollout::{FinishReason, Sample};

/// `[train.overlong]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverlongConfig {
    /// Traces cut at `max_new_tokens` get no gradient (they leave the batch).
    pub mask_truncated: bool,
    /// The soft penalty's buffer: the last `buffer` tokens of the budget (0: no penalty).
    pub buffer: usize,
    /// The penalty at the limit, `p >= 0`.
    pub penalty: f64,
}

impl OverlongConfig {
    /// Checks the ranges against the traces' length limit.
    pub fn validate(&self, max_new_tokens: usize) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.buffer <= max_new_tokens,
            "train.overlong.buffer = {} exceeds the traces' length limit ({max_new_tokens} \
             tokens); expected 0..={max_new_tokens}",
            self.buffer
        );
        anyhow::ensure!(
            self.penalty >= 0.0 && self.penalty.is_finite(),
            "train.overlong.penalty = {}, expected a finite value >= 0",
            self.penalty
        );
        Ok(())
    }

    /// `reward` with the soft penalty of a trace of `len` tokens under the limit `limit`.
    pub(crate) fn shaped(&self, reward: f64, len: usize, limit: usize) -> f64 {
        if self.buffer == 0 || self.penalty == 0.0 {
            return reward;
        }
        let free = limit.saturating_sub(self.buffer);
        let over = len.saturating_sub(free).min(self.buffer);
        reward - self.penalty * over as f64 / self.buffer as f64
    }

    /// Whether `sample` may be trained on.
    pub(crate) fn trains(&self, sample: &Sample) -> bool {
        !(self.mask_truncated && sample.finish == FinishReason::Length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DAPO's piecewise-linear penalty, written out.
    fn dapo(len: usize, limit: usize, buffer: usize) -> f64 {
        let free = (limit - buffer) as f64;
        let len = len as f64;
        if len <= free {
            0.0
        } else if len <= limit as f64 {
            (free - len) / buffer as f64
        } else {
            -1.0
        }
    }

    #[test]
    fn the_penalty_is_dapos_linear_ramp() {
        let c = OverlongConfig { buffer: 8, penalty: 0.5, ..Default::default() };
        for len in 0..=32 {
            let want = 1.0 + 0.5 * dapo(len, 32, 8);
            assert!((c.shaped(1.0, len, 32) - want).abs() < 1e-12, "{len}");
        }
        assert_eq!(c.shaped(1.0, 32, 32), 0.5);
        assert_eq!(OverlongConfig::default().shaped(1.0, 32, 32), 1.0);
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(OverlongConfig { buffer: 9, ..Default::default() }.validate(8).is_err());
        assert!(OverlongConfig { penalty: -1.0, ..Default::default() }.validate(8).is_err());
        assert!(
            OverlongConfig { buffer: 8, penalty: 1.0, ..Default::default() }.validate(8).is_ok()
        );
    }
}
