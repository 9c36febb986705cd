//! Scaling curves and the scaling-efficiency number (SPIRAL's "up to 11x scaling efficiency").
//!
//! A [`Curve`] is accuracy against compute: parallel (samples N, with majority vote or with model
//! aggregation), sequential (max tokens per trace), token efficiency (total tokens spent, the
//! aggregation traces included) or RSA rounds. **Scaling efficiency** at a target accuracy `a` is
//! `C_base(a) / C_model(a)`, the compute the baseline needs to reach `a` over what the compared
//! model needs ([`SCALING_EFFICIENCY_DEFINITION`] is printed next to every such number):
//! - each curve is first made monotone by its running maximum (the best accuracy reached with at
//!   most that compute);
//! - `C(a)` is the smallest compute at which that envelope reaches `a`, interpolated linearly in
//!   log(compute) between measured points (scaling curves are straight-ish against log compute);
//! - when `a` is at or below a curve's first point, `C(a)` is that point's compute, an upper
//!   bound: the ratio is then reported as a bound (`>=` when the model's side is bounded, `<=`
//!   for the baseline's);
//! - an accuracy a curve never reaches has no ratio.

use std::fmt;

use serde::{Deserialize, Serialize};
use spiral_aggregation::RsaRun;
use spiral_set_rl::mean;

use crate::error::EvalError;
use crate::metrics::bootstrap::{BootstrapOptions, Interval, bootstrap_mean_ci};
use crate::metrics::majority::{MajorityOptions, maj_at_k_per_problem};
use crate::metrics::passk::pass_at_k_per_problem;
use crate::metrics::samples::ProblemSamples;

/// The definition printed next to every scaling-efficiency number.
pub const SCALING_EFFICIENCY_DEFINITION: &str = "scaling efficiency at accuracy a = C_base(a) / \
     C_model(a), where C(a) is the least compute at which a curve's running-maximum accuracy \
     reaches a, interpolated linearly in log(compute) between measured points";

/// One measured point: compute `x`, accuracy `y`, and optionally its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Compute (samples, tokens, rounds, ...).
    pub x: f64,
    /// Accuracy.
    pub y: f64,
    /// Interval of `y`, if known.
    pub ci: Option<Interval>,
}

/// Accuracy against compute for one model or method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// The legend entry.
    pub label: String,
    /// The points, by increasing `x`.
    pub points: Vec<CurvePoint>,
}

impl Curve {
    /// A curve from `(x, y)` pairs, without intervals.
    pub fn new(label: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let points = points.into_iter().map(|(x, y)| CurvePoint { x, y, ci: None }).collect();
        Self { label: label.into(), points }
    }

    /// The smallest compute at which the curve reaches `target` (module docs); `None` when it
    /// never does. Errors unless the x are positive, finite and increasing.
    pub fn compute_to_reach(&self, target: f64) -> Result<Option<Reach>, EvalError> {
        self.check()?;
        let mut best = f64::NEG_INFINITY;
        let mut previous: Option<(f64, f64)> = None;
        for p in &self.points {
            let envelope = best.max(p.y);
            if envelope >= target {
                let Some((x0, y0)) = previous else {
                    return Ok(Some(Reach { compute: p.x, bounded: true }));
                };
                // y0 < target <= envelope, so the segment rises.
                let t = (target - y0) / (envelope - y0);
                let compute = (x0.ln() + t * (p.x.ln() - x0.ln())).exp();
                return Ok(Some(Reach { compute, bounded: false }));
            }
            best = envelope;
            previous = Some((p.x, best));
        }
        Ok(None)
    }

    /// The best accuracy reached.
    pub fn best(&self) -> f64 {
        self.points.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max)
    }

    fn check(&self) -> Result<(), EvalError> {
        let bad = |m: String| Err(EvalError::Curve(format!("curve `{}`: {m}", self.label)));
        if self.points.is_empty() {
            return bad("has no points".into());
        }
        for (i, p) in self.points.iter().enumerate() {
            if !(p.x.is_finite() && p.x > 0.0 && p.y.is_finite()) {
                return bad(format!(
                    "point {i} ({}, {}) needs a positive compute and a finite accuracy",
                    p.x, p.y
                ));
            }
            if i > 0 && p.x <= self.points[i - 1].x {
                return bad(format!(
                    "compute must increase, but point {i} has {} after {}",
                    p.x,
                    self.points[i - 1].x
                ));
            }
        }
        Ok(())
    }
}

/// The compute a curve needs to reach an accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reach {
    /// The compute.
    pub compute: f64,
    /// Whether the curve's first point already reaches the accuracy, so `compute` is only an
    /// upper bound.
    pub bounded: bool,
}

/// A scaling-efficiency number; it displays with its definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// The target accuracy.
    pub target: f64,
    /// What the baseline needs.
    pub baseline: Reach,
    /// What the compared model needs.
    pub model: Reach,
    /// `baseline.compute / model.compute`.
    pub ratio: f64,
    /// The compute unit, e.g. `samples` or `tokens`.
    pub unit: String,
}

impl Efficiency {
    /// How the ratio is bounded, written before it: `>= ` when only the model's compute is an
    /// upper bound, `<= ` when only the baseline's is, `~` when both are, nothing when neither.
    pub fn bound(&self) -> &'static str {
        match (self.model.bounded, self.baseline.bounded) {
            (true, false) => ">= ",
            (false, true) => "<= ",
            (true, true) => "~",
            (false, false) => "",
        }
    }
}

impl fmt::Display for Efficiency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = self.bound();
        write!(
            f,
            "{bound}{:.2}x at accuracy {:.3} (baseline {:.4} {unit}, model {:.4} {unit}; {})",
            self.ratio,
            self.target,
            self.baseline.compute,
            self.model.compute,
            SCALING_EFFICIENCY_DEFINITION,
            unit = self.unit,
        )
    }
}

/// Scaling efficiency of `model` over `baseline` at accuracy `target` (module docs). Errors when
/// either curve is malformed or never reaches `target`.
///
/// ```
/// use spiral_eval::{Curve, scaling_efficiency};
///
/// // The model reaches every accuracy with 4x fewer samples.
/// let baseline = Curve::new("GRPO", [(1.0, 0.2), (4.0, 0.4), (16.0, 0.6)]);
/// let model = Curve::new("SPIRAL", [(1.0, 0.4), (4.0, 0.6), (16.0, 0.7)]);
/// let e = scaling_efficiency(&baseline, &model, 0.5, "samples").unwrap();
/// assert!((e.ratio - 4.0).abs() < 1e-12);
/// assert!(e.to_string().starts_with("4.00x at accuracy 0.500 (baseline 8.0000 samples"));
/// ```
pub fn scaling_efficiency(
    baseline: &Curve,
    model: &Curve,
    target: f64,
    unit: &str,
) -> Result<Efficiency, EvalError> {
    let reach = |c: &Curve| {
        c.compute_to_reach(target)?.ok_or_else(|| {
            EvalError::Curve(format!(
                "curve `{}` never reaches accuracy {target} (best {})",
                c.label,
                c.best()
            ))
        })
    };
    let (b, m) = (reach(baseline)?, reach(model)?);
    Ok(Efficiency {
        target,
        baseline: b,
        model: m,
        ratio: b.compute / m.compute,
        unit: unit.into(),
    })
}

/// The largest scaling efficiency over the accuracies both curves reach, from the baseline's
/// first accuracy up (below it the baseline's compute is only a bound). Between measured points
/// `log C(a)` is linear in `a` on both curves, so the maximum lies at an accuracy of one of the
/// points, and only those are tried. When the model's first point already beats the baseline
/// the maximum is often there, as a lower bound (displayed `>=`): the supremum of the exact
/// ratios just above that accuracy. `None` when the curves share no such accuracy.
pub fn max_scaling_efficiency(
    baseline: &Curve,
    model: &Curve,
    unit: &str,
) -> Result<Option<Efficiency>, EvalError> {
    baseline.check()?;
    model.check()?;
    let low = baseline.points[0].y;
    let high = baseline.best().min(model.best());
    let mut best: Option<Efficiency> = None;
    for a in baseline.points.iter().chain(&model.points).map(|p| p.y) {
        if a < low || a > high {
            continue;
        }
        let e = scaling_efficiency(baseline, model, a, unit)?;
        if best.as_ref().is_none_or(|b| e.ratio > b.ratio) {
            best = Some(e);
        }
    }
    Ok(best)
}

/// pass@k against k (log-spaced k, with bootstrap intervals): the parallel-scaling curve of
/// independent samples.
pub fn pass_at_k_curve(
    label: impl Into<String>,
    problems: &[ProblemSamples],
    ks: &[usize],
    bootstrap: &BootstrapOptions,
) -> Result<Curve, EvalError> {
    curve_over_k(label, ks, bootstrap, |k| pass_at_k_per_problem(problems, k))
}

/// maj@k against k: parallel scaling with rule-based aggregation.
pub fn maj_at_k_curve(
    label: impl Into<String>,
    problems: &[ProblemSamples],
    ks: &[usize],
    bootstrap: &BootstrapOptions,
    majority: &MajorityOptions,
) -> Result<Curve, EvalError> {
    curve_over_k(label, ks, bootstrap, |k| maj_at_k_per_problem(problems, k, majority))
}

fn curve_over_k(
    label: impl Into<String>,
    ks: &[usize],
    bootstrap: &BootstrapOptions,
    per_problem: impl Fn(usize) -> Result<Vec<f64>, EvalError>,
) -> Result<Curve, EvalError> {
    let points = ks
        .iter()
        .map(|&k| {
            let values = per_problem(k)?;
            Ok(CurvePoint {
                x: k as f64,
                y: mean(&values),
                ci: Some(bootstrap_mean_ci(&values, bootstrap)),
            })
        })
        .collect::<Result<_, EvalError>>()?;
    Ok(Curve { label: label.into(), points })
}

/// The RSA curves of a run against the round (0 = the initial population): pass@1 (mean
/// reward), maj@N and pass@N, with bootstrap intervals over problems.
pub fn rsa_curves(run: &RsaRun, bootstrap: &BootstrapOptions) -> [Curve; 3] {
    let metric = |label: &str, f: fn(&spiral_aggregation::ProblemRound) -> f64| Curve {
        label: label.into(),
        points: run
            .rounds
            .iter()
            .map(|r| {
                let values: Vec<f64> = r.problems.iter().map(f).collect();
                let ci = Some(bootstrap_mean_ci(&values, bootstrap));
                CurvePoint { x: r.summary.round as f64, y: mean(&values), ci }
            })
            .collect(),
    };
    [
        metric("pass@1", spiral_aggregation::ProblemRound::mean_reward),
        metric("maj@N", spiral_aggregation::ProblemRound::vote_reward),
        metric("pass@N", spiral_aggregation::ProblemRound::best_reward),
    ]
}

/// RSA's token-efficiency curve: pass@1 after each round against the generated tokens spent per
/// problem up to that round (the initial population and every aggregation trace).
pub fn rsa_token_curve(label: impl Into<String>, run: &RsaRun) -> Curve {
    let mut spent = 0.0;
    let points = run.rounds.iter().map(|r| {
        spent += r.summary.generated_tokens;
        (spent, r.summary.pass_at_1)
    });
    Curve::new(label, points.collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = slope * log2(x) + offset at x = 1, 2, 4, ..., 2^max.
    fn log_curve(label: &str, slope: f64, offset: f64, max: i32) -> Curve {
        Curve::new(label, (0..=max).map(|e| (2f64.powi(e), slope * f64::from(e) + offset)))
    }

    #[test]
    fn constant_factor_is_recovered_everywhere() {
        // The model is the baseline shifted by 2 doublings: it needs 4x less compute.
        let baseline = log_curve("base", 0.1, 0.0, 10);
        let model = log_curve("model", 0.1, 0.2, 10);
        for target in [0.25, 0.3, 0.55, 0.77, 1.0] {
            let e = scaling_efficiency(&baseline, &model, target, "samples").unwrap();
            assert!((e.ratio - 4.0).abs() < 1e-9, "{target}: {}", e.ratio);
            assert!(!e.model.bounded && !e.baseline.bounded);
        }
        // At the model's first accuracy its compute is a bound.
        let e = scaling_efficiency(&baseline, &model, 0.1, "samples").unwrap();
        assert!(e.model.bounded && (e.ratio - 2.0).abs() < 1e-9);
        assert!(e.to_string().starts_with(">= 2.00x at accuracy 0.100"));
        assert!(e.to_string().contains(SCALING_EFFICIENCY_DEFINITION));
    }

    #[test]
    fn interpolation_is_exact_on_log_linear_curves_at_any_points() {
        // y = 0.05 ln(x) measured at irregular x: C(a) = exp(a / 0.05) exactly.
        let xs = [1.0, 3.0, 7.5, 20.0, 111.0, 400.0];
        let c = Curve::new("c", xs.map(|x: f64| (x, 0.05 * x.ln())));
        for a in [0.01, 0.1, 0.2, 0.29] {
            let r = c.compute_to_reach(a).unwrap().unwrap();
            assert!((r.compute - (a / 0.05).exp()).abs() < 1e-9 * r.compute, "{a}");
        }
        assert_eq!(c.compute_to_reach(0.5).unwrap(), None);
        assert_eq!(c.compute_to_reach(-1.0).unwrap(), Some(Reach { compute: 1.0, bounded: true }));
    }

    #[test]
    fn the_maximum_is_found_at_a_measured_accuracy() {
        // Baseline 0.1 log2 x, model 0.15 log2 x: ratio 2^(10a - a / 0.15), largest at the
        // highest accuracy both reach, a = 1.0: 2^(10/3).
        let baseline = log_curve("base", 0.1, 0.0, 10);
        let model = log_curve("model", 0.15, 0.0, 10);
        let e = max_scaling_efficiency(&baseline, &model, "tokens").unwrap().unwrap();
        assert!((e.target - 1.0).abs() < 1e-12);
        assert!((e.ratio - 2f64.powf(10.0 / 3.0)).abs() < 1e-9, "{}", e.ratio);
        // Against a dense scan of targets.
        let scanned = (0..=1000)
            .map(|i| f64::from(i) / 1000.0)
            .filter_map(|a| scaling_efficiency(&baseline, &model, a, "tokens").ok())
            .map(|e| e.ratio)
            .fold(0.0, f64::max);
        assert!((scanned - e.ratio).abs() < 1e-9);
        // A model that is worse everywhere shares no reachable accuracy above its best.
        let worse = log_curve("worse", 0.01, -1.0, 3);
        assert!(max_scaling_efficiency(&baseline, &worse, "samples").unwrap().is_none());
    }

    #[test]
    fn noisy_curves_use_their_running_maximum() {
        let c = Curve::new("noisy", [(1.0, 0.3), (2.0, 0.5), (4.0, 0.4), (8.0, 0.7)]);
        // 0.6 is crossed between x = 4 (envelope 0.5) and x = 8 (0.7): halfway in log2.
        let r = c.compute_to_reach(0.6).unwrap().unwrap();
        assert!((r.compute - 32f64.sqrt()).abs() < 1e-12);
        assert!(
            (c.compute_to_reach(0.45).unwrap().unwrap().compute - 2f64.powf(0.75)).abs() < 1e-12
        );
    }

    #[test]
    fn malformed_curves_and_unreached_targets_are_errors() {
        let unsorted = Curve::new("u", [(2.0, 0.1), (1.0, 0.2)]);
        let err = unsorted.compute_to_reach(0.1).unwrap_err().to_string();
        assert_eq!(err, "curve `u`: compute must increase, but point 1 has 1 after 2");
        let zero = Curve::new("z", [(0.0, 0.1)]);
        assert!(zero.compute_to_reach(0.1).is_err());
        assert!(Curve::new("e", []).compute_to_reach(0.1).is_err());
        let low = Curve::new("low", [(1.0, 0.1), (2.0, 0.2)]);
        let err = scaling_efficiency(&low, &low, 0.5, "samples").unwrap_err().to_string();
        assert_eq!(err, "curve `low` never reaches accuracy 0.5 (best 0.2)");
    }
}
