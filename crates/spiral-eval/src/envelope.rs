//! A model's best-method envelope, and scaling efficiency on envelopes at accuracy targets fixed
//! in advance, with intervals.
//!
//! Each inference method of a model (majority vote over N traces, aggregation over N traces,
//! recursive self-aggregation after r rounds) gives accuracy against the tokens it generates per
//! problem. The **best-method envelope** is, at every token budget, the best accuracy any of
//! them reaches within it: what a user who picks the best method for their budget gets. The
//! SPIRAL paper's scaling efficiency at accuracy `a`, `C_base(a) / C_model(a)`
//! ([`crate::SCALING_EFFICIENCY_DEFINITION`]), is then read off two envelopes at targets chosen
//! before the measurements rather than at the accuracy that flatters the model most.
//!
//! **Interval.** Every point carries a 95% interval; enveloping the interval ends the same way
//! gives a lower and an upper band. The upper band reaches `a` no later than the envelope and the
//! lower band no earlier, so while both envelopes lie within their bands the ratio lies within
//! `[C_base(upper) / C_model(lower), C_base(lower) / C_model(upper)]`. Built from pointwise
//! intervals this is conservative, not a joint 95% interval; an end is open when the band it
//! needs never reaches `a`.

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::metrics::bootstrap::Interval;
use crate::scaling::{Curve, CurvePoint, Efficiency, scaling_efficiency};

/// The best-method envelope of `curves` (accuracy against the same compute): their points merged
/// in order of compute, each the best accuracy any curve reaches with at most that compute; the
/// ends of the points' intervals (the point itself where it has none) are enveloped alike.
///
/// ```
/// use spiral_eval::{Curve, best_method_envelope};
///
/// let vote = Curve::new("maj@N", [(100.0, 0.3), (400.0, 0.4)]);
/// let aggregate = Curve::new("agg@1", [(150.0, 0.5), (500.0, 0.45)]);
/// let best = best_method_envelope("best", &[&vote, &aggregate]);
/// let ys: Vec<f64> = best.points.iter().map(|p| p.y).collect();
/// assert_eq!(ys, [0.3, 0.5, 0.5, 0.5]);
/// ```
pub fn best_method_envelope(label: impl Into<String>, curves: &[&Curve]) -> Curve {
    let mut points: Vec<CurvePoint> =
        curves.iter().flat_map(|c| c.points.iter().copied()).collect();
    points.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut out: Vec<CurvePoint> = Vec::with_capacity(points.len());
    for p in points {
        let ci = p.ci.unwrap_or(Interval { lo: p.y, hi: p.y });
        let (y, lo, hi) = match out.last() {
            Some(last) => {
                let last_ci = last.ci.expect("every envelope point has an interval");
                (last.y.max(p.y), last_ci.lo.max(ci.lo), last_ci.hi.max(ci.hi))
            }
            None => (p.y, ci.lo, ci.hi),
        };
        let point = CurvePoint { x: p.x, y, ci: Some(Interval { lo, hi }) };
        match out.last_mut() {
            // Equal compute: one point, the best of both.
            Some(last) if last.x == p.x => *last = point,
            _ => out.push(point),
        }
    }
    Curve { label: label.into(), points: out }
}

/// Scaling efficiency at one target accuracy, with its interval (module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetEfficiency {
    /// The target accuracy.
    pub target: f64,
    /// The ratio and the compute each side needs; `None` when either envelope never reaches the
    /// target.
    pub efficiency: Option<Efficiency>,
    /// Lower end of the interval; `None` when open (the model's lower band never reaches it).
    pub lo: Option<f64>,
    /// Upper end of the interval; `None` when open (the baseline's lower band never reaches it).
    pub hi: Option<f64>,
}

/// The scaling efficiency of `model` over `baseline` (both envelopes, [`best_method_envelope`])
/// at each of `targets`, with intervals from their bands. Errors when a curve is malformed.
pub fn efficiency_at_targets(
    baseline: &Curve,
    model: &Curve,
    targets: &[f64],
    unit: &str,
) -> Result<Vec<TargetEfficiency>, EvalError> {
    let band = |c: &Curve, end: fn(&Interval) -> f64| Curve {
        label: c.label.clone(),
        points: c
            .points
            .iter()
            .map(|p| CurvePoint { y: p.ci.as_ref().map_or(p.y, end), ci: None, ..*p })
            .collect(),
    };
    let lower = |c: &Curve| band(c, |i| i.lo);
    let upper = |c: &Curve| band(c, |i| i.hi);
    let (base_lo, base_hi, model_lo, model_hi) =
        (lower(baseline), upper(baseline), lower(model), upper(model));
    targets
        .iter()
        .map(|&target| {
            let reach = |c: &Curve| -> Result<Option<f64>, EvalError> {
                Ok(c.compute_to_reach(target)?.map(|r| r.compute))
            };
            let both = baseline.compute_to_reach(target)?.is_some()
                && model.compute_to_reach(target)?.is_some();
            let efficiency =
                if both { Some(scaling_efficiency(baseline, model, target, unit)?) } else { None };
            let ratio = |b: Option<f64>, m: Option<f64>| Some(b? / m?);
            Ok(TargetEfficiency {
                target,
                efficiency,
                lo: ratio(reach(&base_hi)?, reach(&model_lo)?),
                hi: ratio(reach(&base_lo)?, reach(&model_hi)?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_band(points: &[(f64, f64)], half: f64) -> Curve {
        Curve {
            label: "c".into(),
            points: points
                .iter()
                .map(|&(x, y)| CurvePoint {
                    x,
                    y,
                    ci: Some(Interval { lo: y - half, hi: y + half }),
                })
                .collect(),
        }
    }

    #[test]
    fn the_envelope_keeps_the_best_method_at_each_budget_and_merges_equal_compute() {
        let a = with_band(&[(10.0, 0.2), (40.0, 0.6)], 0.1);
        let b = with_band(&[(10.0, 0.3), (20.0, 0.25)], 0.05);
        let e = best_method_envelope("e", &[&a, &b]);
        let xs: Vec<f64> = e.points.iter().map(|p| p.x).collect();
        let ys: Vec<f64> = e.points.iter().map(|p| p.y).collect();
        assert_eq!(xs, [10.0, 20.0, 40.0]);
        assert_eq!(ys, [0.3, 0.3, 0.6]);
        // The bands are enveloped on their own: at 10 the lower end is b's 0.25, the upper a's
        // or b's 0.35 (both).
        let ci = e.points[0].ci.unwrap();
        assert!((ci.lo - 0.25).abs() < 1e-12 && (ci.hi - 0.35).abs() < 1e-12, "{ci:?}");
    }

    #[test]
    fn the_ratio_at_a_target_lies_within_its_band_interval() {
        // The model needs 4x fewer tokens at every accuracy, bands of +-0.05.
        let baseline = with_band(&[(100.0, 0.2), (400.0, 0.4), (1600.0, 0.6)], 0.05);
        let model = with_band(&[(25.0, 0.2), (100.0, 0.4), (400.0, 0.6)], 0.05);
        let at = &efficiency_at_targets(&baseline, &model, &[0.5], "tokens").unwrap()[0];
        let e = at.efficiency.as_ref().unwrap();
        assert!((e.ratio - 4.0).abs() < 1e-9, "{e}");
        let (lo, hi) = (at.lo.unwrap(), at.hi.unwrap());
        assert!(lo < 4.0 && 4.0 < hi, "[{lo}, {hi}]");
        // Closed form: the baseline's upper band reaches 0.5 at 400 * 4^(0.05/0.2) = 565.7, the
        // model's lower band at 100 * 4^(0.15/0.2) = 282.8; the ratio's lower end is 2.
        assert!((lo - 2.0).abs() < 1e-9, "{lo}");
    }

    #[test]
    fn a_target_beyond_a_curve_has_no_ratio_and_an_open_end() {
        let baseline = with_band(&[(100.0, 0.2), (400.0, 0.4)], 0.05);
        let model = with_band(&[(100.0, 0.3), (400.0, 0.5)], 0.05);
        let at = &efficiency_at_targets(&baseline, &model, &[0.5], "tokens").unwrap()[0];
        assert!(at.efficiency.is_none(), "the baseline never reaches 0.5");
        assert!(at.hi.is_none(), "its lower band neither");
        assert!(at.lo.is_none(), "its upper band (0.45) neither");
    }
}
