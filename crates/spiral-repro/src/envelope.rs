//! The study's pre-registered scaling-efficiency comparison (`docs/study.md`, secondary
//! metrics): each setting's best-method envelope of accuracy against generated tokens per
//! problem, over majority vote and aggregation across N traces and RSA's rounds, reduced over
//! seeds; and SPIRAL's scaling efficiency over every other setting on those envelopes at the
//! accuracy targets [`TARGETS`], fixed before the runs, with intervals
//! ([`spiral_eval::efficiency_at_targets`]).

use std::fmt::Write;

use serde::Serialize;
use spiral_eval::{Curve, TargetEfficiency, best_method_envelope, efficiency_at_targets};

use crate::summary::mean_curve;
use crate::{Measured, VARIANTS};

/// The accuracy targets at which envelopes are compared, fixed before any run was measured on
/// them: spread over the range every task's models span, not chosen from their curves.
pub const TARGETS: [f64; 4] = [0.25, 0.5, 0.75, 0.9];

/// SPIRAL against one other setting at every target.
#[derive(Debug, Clone, Serialize)]
pub struct Against {
    /// The other setting's name in the report.
    pub against: String,
    /// One entry per target of [`TARGETS`].
    pub targets: Vec<TargetEfficiency>,
}

/// Each measured setting's best-method envelope (the warm start first), from the mean over its
/// seeds of each method's curve. RSA's rounds count where every seed measured their tokens.
pub fn envelopes(measured: &[Measured]) -> Vec<Curve> {
    let mut groups: Vec<(&str, Vec<&Measured>)> =
        vec![("warm start", measured.iter().filter(|m| m.variant.is_none()).collect())];
    for setting in VARIANTS {
        let seeds = Measured::of_setting(measured, setting.stem);
        groups.push((setting.label, seeds.collect()));
    }
    groups
        .into_iter()
        .filter(|(_, seeds)| !seeds.is_empty())
        .map(|(label, seeds)| {
            let mean = |pick: fn(&Measured) -> Option<&Curve>| -> Option<Curve> {
                let curves: Option<Vec<&Curve>> = seeds.iter().map(|m| pick(m)).collect();
                Some(mean_curve(label, &curves?))
            };
            let methods = [
                mean(|m| Some(&m.curves.tokens_majority)),
                mean(|m| Some(&m.curves.tokens_aggregation)),
                mean(|m| m.curves.tokens_rsa.as_ref()),
            ];
            let methods: Vec<&Curve> = methods.iter().flatten().collect();
            best_method_envelope(label, &methods)
        })
        .collect()
}

/// SPIRAL's envelope against every other setting's (the warm start's aside), at [`TARGETS`];
/// empty until SPIRAL is measured.
pub fn comparisons(envelopes: &[Curve]) -> anyhow::Result<Vec<Against>> {
    let Some(spiral) = envelopes.iter().find(|c| c.label == "SPIRAL") else {
        return Ok(Vec::new());
    };
    envelopes
        .iter()
        .filter(|c| c.label != "SPIRAL" && c.label != "warm start")
        .map(|other| {
            Ok(Against {
                against: other.label.clone(),
                targets: efficiency_at_targets(other, spiral, &TARGETS, "tokens")?,
            })
        })
        .collect()
}

/// The comparisons as a markdown table: a row per target, a column per other setting.
pub fn table(comparisons: &[Against]) -> String {
    if comparisons.is_empty() {
        return "Not measured: SPIRAL and another setting are needed.\n".into();
    }
    let mut text = String::from("| accuracy |");
    for c in comparisons {
        let _ = write!(text, " SPIRAL over {} |", c.against);
    }
    text.push_str("\n|---|");
    text.push_str(&"---|".repeat(comparisons.len()));
    text.push('\n');
    for (i, target) in TARGETS.iter().enumerate() {
        let _ = write!(text, "| {target:.2} |");
        for c in comparisons {
            let _ = write!(text, " {} |", cell(&c.targets[i]));
        }
        text.push('\n');
    }
    text
}

/// One ratio with its bound marker and interval, or a dash where an envelope never reaches the
/// target.
fn cell(at: &TargetEfficiency) -> String {
    let Some(e) = &at.efficiency else { return "-".into() };
    let end = |v: Option<f64>, open: &str| v.map_or(open.to_string(), |v| format!("{v:.2}"));
    format!("{}{:.2}x [{}, {}]", e.bound(), e.ratio, end(at.lo, "0"), end(at.hi, "inf"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spiral_eval::{CurvePoint, Interval};

    fn curve(label: &str, points: &[(f64, f64)]) -> Curve {
        let points = points
            .iter()
            .map(|&(x, y)| CurvePoint { x, y, ci: Some(Interval { lo: y - 0.02, hi: y + 0.02 }) })
            .collect();
        Curve { label: label.into(), points }
    }

    #[test]
    fn spiral_is_compared_with_every_other_setting_at_every_target() {
        let envelopes = [
            curve("warm start", &[(100.0, 0.1), (400.0, 0.3)]),
            curve("GRPO", &[(100.0, 0.3), (400.0, 0.6)]),
            curve("SPIRAL", &[(100.0, 0.2), (200.0, 0.6), (400.0, 0.8)]),
        ];
        let comparisons = comparisons(&envelopes).unwrap();
        assert_eq!(comparisons.len(), 1, "the warm start is not a baseline");
        let text = table(&comparisons);
        assert!(text.contains("| accuracy | SPIRAL over GRPO |"), "{text}");
        // At 0.5: GRPO needs 100 * 4^(0.2/0.3) tokens, SPIRAL 100 * 2^(0.3/0.4).
        let expected = 4f64.powf(2.0 / 3.0) / 2f64.powf(0.75);
        let ratio = comparisons[0].targets[1].efficiency.as_ref().unwrap().ratio;
        assert!((ratio - expected).abs() < 1e-9, "{ratio} against {expected}");
        // GRPO never reaches 0.75 or 0.9: dashes.
        assert!(text.contains("| 0.75 | - |") && text.contains("| 0.90 | - |"), "{text}");
    }
}
