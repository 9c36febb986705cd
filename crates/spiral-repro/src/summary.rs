//! Several seeds' curves of one algorithm reduced to one curve: the mean over seeds with a 95%
//! Student-t interval (`mean +- t_{0.975, s-1} * sd / sqrt(s)` over the s seeds). With one seed
//! there is no spread to measure, and the seed's own bootstrap interval over problems is kept.

use spiral_eval::{Curve, CurvePoint, Interval};
use spiral_set_rl::mean;

/// Two-sided 97.5% quantiles of Student's t with 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The t quantile for `df` degrees of freedom (the normal 1.96 beyond the table).
fn t_quantile(df: usize) -> f64 {
    T_975.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

/// Mean and 95% t-interval of `values` (at least two).
pub fn mean_interval(values: &[f64]) -> (f64, Interval) {
    let n = values.len() as f64;
    let m = mean(values);
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t_quantile(values.len() - 1) * (var / n).sqrt();
    (m, Interval { lo: m - half, hi: m + half })
}

/// The per-point mean over `curves` of accuracies (same points in the same order; `x` is
/// averaged too, since token counts differ by seed), labelled `label`, its intervals kept within
/// [0, 1].
pub fn mean_curve(label: &str, curves: &[&Curve]) -> Curve {
    assert!(!curves.is_empty(), "at least one seed");
    if curves.len() == 1 {
        return Curve { label: label.into(), points: curves[0].points.clone() };
    }
    let points = (0..curves[0].points.len())
        .map(|i| {
            let ys: Vec<f64> = curves.iter().map(|c| c.points[i].y).collect();
            let x = mean(&curves.iter().map(|c| c.points[i].x).collect::<Vec<_>>());
            let (y, ci) = mean_interval(&ys);
            // Every curve's y is an accuracy: the t-interval of a few seeds can reach past 0 or
            // 1, where no mean of accuracies can lie.
            let ci = Interval { lo: ci.lo.max(0.0), hi: ci.hi.min(1.0) };
            CurvePoint { x, y, ci: Some(ci) }
        })
        .collect();
    Curve { label: label.into(), points }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_textbook_t_interval() {
        // mean 2, sd 1, n 3: half-width 4.303 / sqrt(3).
        let (mean, ci) = mean_interval(&[1.0, 2.0, 3.0]);
        assert_eq!(mean, 2.0);
        let half = 4.303 / 3f64.sqrt();
        assert!((ci.hi - (2.0 + half)).abs() < 1e-12 && (ci.lo - (2.0 - half)).abs() < 1e-12);
    }

    #[test]
    fn mean_curves_average_points_and_keep_one_seed_as_is() {
        let a = Curve::new("a", [(1.0, 0.2), (2.0, 0.4)]);
        let b = Curve::new("b", [(3.0, 0.4), (2.0, 0.6)]);
        let m = mean_curve("m", &[&a, &b]);
        assert_eq!(m.label, "m");
        assert_eq!((m.points[0].x, m.points[0].y), (2.0, 0.30000000000000004));
        assert!((m.points[1].y - 0.5).abs() < 1e-12);
        assert_eq!(mean_curve("one", &[&a]).points, a.points);
    }

    #[test]
    fn mean_intervals_of_accuracies_stay_within_zero_and_one() {
        // Two seeds 0.6 and 1.0: the t-interval is 0.8 +- 12.706 * 0.2, far past both ends.
        let a = Curve::new("a", [(1.0, 0.6)]);
        let b = Curve::new("b", [(1.0, 1.0)]);
        let ci = mean_curve("m", &[&a, &b]).points[0].ci.unwrap();
        assert_eq!((ci.lo, ci.hi), (0.0, 1.0));
    }
}
