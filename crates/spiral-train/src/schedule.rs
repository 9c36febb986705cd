//! Optimiser settings and the learning-rate schedule: linear warm-up to `lr`, then cosine decay
//! to `min_lr_ratio * lr` at `total_steps` (the schedule of most RLVR recipes, e.g. verl's
//! `warmup_style = cosine`).

use serde::{Deserialize, Serialize};

/// AdamW and schedule settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Adam's first-moment decay.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// Adam's epsilon.
    pub eps: f32,
    /// Steps of linear warm-up.
    pub warmup_steps: usize,
    /// Steps after which the learning rate stays at its floor.
    pub total_steps: usize,
    /// Floor of the cosine decay, as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// Rescale gradients so their global L2 norm is at most this; `None` disables.
    pub max_grad_norm: Option<f64>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-5,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            warmup_steps: 0,
            total_steps: 1,
            min_lr_ratio: 0.1,
            max_grad_norm: Some(1.0),
        }
    }
}

/// The learning rate at each optimiser step.
pub trait LrSchedule {
    /// Learning rate for 0-based step `step`.
    fn lr_at(&self, step: usize) -> f64;
}

impl LrSchedule for OptimConfig {
    fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_the_floor() {
        let c = OptimConfig {
            lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
            min_lr_ratio: 0.1,
            ..Default::default()
        };
        assert_eq!(c.lr_at(0), 0.25);
        assert_eq!(c.lr_at(3), 1.0);
        assert!((c.lr_at(4) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(9) - 0.55).abs() < 1e-12, "half way: floor + half the range");
        assert!((c.lr_at(14) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(100) - 0.1).abs() < 1e-12);
        let mut prev = f64::INFINITY;
        for s in 4..20 {
            assert!(c.lr_at(s) <= prev);
            prev = c.lr_at(s);
        }
    }
}
