//! The study's pre-registered primary metric (`docs/study.md`): pipeline accuracy at a fixed
//! inference budget of n search traces plus one aggregation. SPIRAL spends it on agg@1 over n
//! traces; each baseline spends it on its best method at that budget or below (the best, by
//! mean, of its agg@1 over n, maj@(n+1) and pass@1: choosing after the fact favours the
//! baseline, so a SPIRAL win is conservative). The difference is paired by problem and seed, and
//! its 95% interval comes from a hierarchical bootstrap: seeds resampled, then problems within
//! each resampled seed, since both the training run and the problem vary.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use spiral_set_rl::mean;

/// One model's per-problem results at the primary budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerProblem {
    /// Search traces per aggregation (the trained set size n).
    pub n: usize,
    /// agg@1 over the first n traces, per problem.
    pub agg_at_n: Vec<f64>,
    /// maj@(n+1), per problem.
    pub maj_at_n_plus_1: Vec<f64>,
    /// pass@1, per problem.
    pub pass_at_1: Vec<f64>,
}

/// A method a model may spend the budget on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// One aggregation over n traces.
    AggAtN,
    /// A majority vote over n + 1 traces.
    MajAtNPlus1,
    /// One trace.
    PassAt1,
}

impl Method {
    /// The method's per-problem results in `p`.
    pub(crate) fn values(self, p: &PerProblem) -> &[f64] {
        match self {
            Self::AggAtN => &p.agg_at_n,
            Self::MajAtNPlus1 => &p.maj_at_n_plus_1,
            Self::PassAt1 => &p.pass_at_1,
        }
    }

    /// The method's name in the report.
    pub fn name(self, n: usize) -> String {
        match self {
            Self::AggAtN => format!("agg@1 over {n}"),
            Self::MajAtNPlus1 => format!("maj@{}", n + 1),
            Self::PassAt1 => "pass@1".into(),
        }
    }
}

/// SPIRAL minus one baseline on the primary metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// The baseline's best method.
    pub method: Method,
    /// Mean difference over seeds and problems.
    pub mean: f64,
    /// 95% hierarchical-bootstrap interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
}

/// Bootstrap resamples of [`difference`].
pub const RESAMPLES: usize = 2000;

/// SPIRAL's agg@1 over n (`spiral`, one entry per seed) minus the baseline's best method
/// (`baseline`, the same seeds in the same order), paired by seed and problem; `None` without
/// paired seeds.
pub fn difference(
    spiral: &[&PerProblem],
    baseline: &[&PerProblem],
    seed: u64,
) -> Option<Difference> {
    if spiral.is_empty() || spiral.len() != baseline.len() {
        return None;
    }
    let problems = spiral[0].agg_at_n.len();
    let paired = spiral.iter().chain(baseline).all(|p| {
        [&p.agg_at_n, &p.maj_at_n_plus_1, &p.pass_at_1].iter().all(|v| v.len() == problems)
    });
    if !paired || problems == 0 {
        return None;
    }
    let overall =
        |m: Method| mean(&baseline.iter().flat_map(|p| m.values(p)).copied().collect::<Vec<_>>());
    let method = [Method::AggAtN, Method::MajAtNPlus1, Method::PassAt1]
        .into_iter()
        .max_by(|a, b| overall(*a).total_cmp(&overall(*b)))
        .expect("three methods");
    // d[s][p]: the paired difference of seed s on problem p.
    let d: Vec<Vec<f64>> = spiral
        .iter()
        .zip(baseline)
        .map(|(s, b)| s.agg_at_n.iter().zip(method.values(b)).map(|(x, y)| x - y).collect())
        .collect();
    let all: Vec<f64> = d.iter().flatten().copied().collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..d.len() {
                let row = &d[rng.random_range(0..d.len())];
                for _ in 0..problems {
                    sum += row[rng.random_range(0..problems)];
                }
            }
            sum / (d.len() * problems) as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some(Difference { method, mean: mean(&all), lo: at(0.025), hi: at(0.975) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(agg: f64, maj: f64, pass: f64, problems: usize, seed: u64) -> PerProblem {
        let mut rng = StdRng::seed_from_u64(seed);
        let draw = |p: f64, rng: &mut StdRng| -> Vec<f64> {
            (0..problems).map(|_| f64::from(u8::from(rng.random::<f64>() < p))).collect()
        };
        PerProblem {
            n: 4,
            agg_at_n: draw(agg, &mut rng),
            maj_at_n_plus_1: draw(maj, &mut rng),
            pass_at_1: draw(pass, &mut rng),
        }
    }

    #[test]
    fn the_baseline_spends_the_budget_on_its_best_method() {
        let spiral: Vec<PerProblem> = (0..3).map(|s| model(0.6, 0.2, 0.2, 400, s)).collect();
        let base: Vec<PerProblem> = (0..3).map(|s| model(0.1, 0.4, 0.3, 400, 10 + s)).collect();
        let d = difference(&spiral.iter().collect::<Vec<_>>(), &base.iter().collect::<Vec<_>>(), 1)
            .unwrap();
        assert_eq!(d.method, Method::MajAtNPlus1);
        assert!((d.mean - 0.2).abs() < 0.05, "{d:?}");
        assert!(d.lo > 0.0 && d.lo < d.mean && d.mean < d.hi, "{d:?}");
    }

    fn refs(v: &[PerProblem]) -> Vec<&PerProblem> {
        v.iter().collect()
    }

    #[test]
    fn equal_models_give_an_interval_around_zero_and_unpaired_seeds_none() {
        let a: Vec<PerProblem> = (0..4).map(|s| model(0.3, 0.3, 0.3, 300, s)).collect();
        let b: Vec<PerProblem> = (0..4).map(|s| model(0.3, 0.3, 0.3, 300, 50 + s)).collect();
        let d = difference(&refs(&a), &refs(&b), 2).unwrap();
        assert!(d.lo < 0.0 && d.hi > 0.0, "{d:?}");
        assert!(difference(&refs(&a), &refs(&b[..3]), 2).is_none());
    }
}
