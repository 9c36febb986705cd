//! SPIRAL set beside each other setting, seed with seed. A study is built up call by call, so
//! settings can be measured at different RL seeds for a while; every comparison pairs a seed of
//! SPIRAL with the same seed of the other setting and uses only the seeds both share (an unpaired
//! seed would mix training-run variation into a paired difference), and the report says how many
//! seeds each setting's means rest on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use spiral_set_rl::mean;

use super::measure::Pick;
use super::primary::{self, Difference, Method, PerProblem};
use super::summary::mean_interval;
use super::{Measured, VARIANTS};

/// The RL models of setting `stem`, by their seed (a model without a kept config has none and
/// pairs with nothing).
fn by_seed<'a>(measured: &'a [Measured], stem: &str) -> BTreeMap<u64, &'a Measured> {
    Measured::of_setting(measured, stem).filter_map(|m| Some((m.seed()?, m))).collect()
}

/// The seeds at which settings `a` and `b` were both measured, in seed order, with both models:
/// a comparison pairs seed with seed, so a setting measured at more seeds than the other is
/// compared on the seeds they share.
fn shared_seeds<'a>(
    measured: &'a [Measured],
    a: &str,
    b: &str,
) -> Vec<(u64, &'a Measured, &'a Measured)> {
    let b = by_seed(measured, b);
    by_seed(measured, a)
        .into_iter()
        .filter_map(|(seed, x)| Some((seed, x, *b.get(&seed)?)))
        .collect()
}

/// SPIRAL minus GRPO at point `index` of a curve: per-seed differences on the seeds both were
/// measured at, with their 95% t-interval.
pub(crate) fn difference(measured: &[Measured], pick: Pick, index: usize) -> String {
    let d: Vec<f64> = shared_seeds(measured, "default", "grpo")
        .into_iter()
        .filter_map(|(_, s, g)| {
            Some(pick(&s.curves).points.get(index)?.y - pick(&g.curves).points.get(index)?.y)
        })
        .collect();
    match d.len() {
        0 => return "n/a".into(),
        1 => return format!("{:+.3} (one seed paired: no interval over seeds)", d[0]),
        _ => {}
    }
    let (mean, ci) = mean_interval(&d);
    let verdict = if ci.lo > 0.0 {
        "SPIRAL higher"
    } else if ci.hi < 0.0 {
        "GRPO higher"
    } else {
        "no significant difference"
    };
    format!("{mean:+.3} [{:+.3}, {:+.3}] over {} seeds: {verdict}", ci.lo, ci.hi, d.len())
}

/// How the report's means and brackets were formed, given how many seeds each RL setting was
/// measured at: a setting at one seed keeps that seed's bootstrap interval over problems.
pub(crate) fn intervals_text(measured: &[Measured]) -> String {
    let counts: Vec<(&str, usize)> = VARIANTS
        .iter()
        .map(|v| (v.label, by_seed(measured, v.stem).len()))
        .filter(|&(_, n)| n > 0)
        .collect();
    let one_seed = "brackets are 95% bootstrap intervals over problems, which do not include \
                    seed-to-seed variation";
    match counts.iter().map(|&(_, n)| n).max() {
        None => "No RL run measured yet: the warm start alone".into(),
        Some(1) => format!("One seed: {one_seed}"),
        Some(n) if counts.iter().all(|&(_, c)| c == n) => {
            format!("Means over {n} RL seeds with 95% Student-t intervals over seeds (in brackets)")
        }
        Some(_) => {
            let each: Vec<String> =
                counts.iter().map(|(label, n)| format!("{label} {n}")).collect();
            format!(
                "Means over each setting's measured seeds ({}); brackets are 95% Student-t \
                 intervals over seeds for a setting with two or more, and for a setting with one, \
                 {one_seed}",
                each.join(", ")
            )
        }
    }
}

/// SPIRAL minus one setting on the pre-registered primary metric.
pub(crate) struct PrimaryComparison {
    /// The setting's label.
    pub(crate) against: &'static str,
    /// The seeds both were measured at, which the difference pairs.
    pub(crate) seeds: Vec<u64>,
    /// SPIRAL minus the setting's best method, with its interval.
    pub(crate) difference: Difference,
}

/// The pre-registered primary metric: SPIRAL (the default setting) against every other setting
/// measured, paired by seed and problem on the seeds both were measured at.
pub(crate) fn primary_differences(measured: &[Measured]) -> Vec<PrimaryComparison> {
    VARIANTS
        .iter()
        .filter(|v| v.stem != "default")
        .filter_map(|v| {
            let pairs: Vec<(u64, &PerProblem, &PerProblem)> =
                shared_seeds(measured, "default", v.stem)
                    .into_iter()
                    .filter_map(|(seed, s, b)| {
                        Some((seed, s.curves.per_problem.as_ref()?, b.curves.per_problem.as_ref()?))
                    })
                    .collect();
            let spiral: Vec<&PerProblem> = pairs.iter().map(|p| p.1).collect();
            let baseline: Vec<&PerProblem> = pairs.iter().map(|p| p.2).collect();
            Some(PrimaryComparison {
                against: v.label,
                seeds: pairs.iter().map(|p| p.0).collect(),
                difference: primary::difference(&spiral, &baseline, 11)?,
            })
        })
        .collect()
}

/// Each setting's pipeline accuracy at the primary budget, seed by seed: SPIRAL's agg@1 over `n`
/// traces and every other setting's value on the method its primary comparison chose, so that
/// the spread over seeds shows beside the pooled differences. A setting with no comparison (no
/// seed shared with SPIRAL) is left out; the table is empty when nothing is compared.
pub(crate) fn per_seed_table(
    measured: &[Measured],
    primary: &[PrimaryComparison],
    n: usize,
) -> String {
    // A comparison needs SPIRAL and the other setting at a shared seed, so with one there is
    // always a row of each.
    if primary.is_empty() {
        return String::new();
    }
    let rows: Vec<(&str, Method, BTreeMap<u64, f64>)> = VARIANTS
        .iter()
        .filter_map(|v| {
            let method = if v.stem == "default" {
                Method::AggAtN
            } else {
                primary.iter().find(|p| p.against == v.label)?.difference.method
            };
            let values: BTreeMap<u64, f64> = by_seed(measured, v.stem)
                .into_iter()
                .filter_map(|(seed, m)| {
                    Some((seed, mean(method.values(m.curves.per_problem.as_ref()?))))
                })
                .collect();
            (!values.is_empty()).then_some((v.label, method, values))
        })
        .collect();
    let seeds: BTreeSet<u64> =
        rows.iter().flat_map(|(_, _, values)| values.keys().copied()).collect();
    let mut table = String::from("| setting | method |");
    for seed in &seeds {
        let _ = write!(table, " seed {seed} |");
    }
    let _ = writeln!(table, "\n|---|---|{}", "---|".repeat(seeds.len()));
    for (label, method, values) in rows {
        let _ = write!(table, "| {label} | {} |", method.name(n));
        for seed in &seeds {
            let _ = match values.get(seed) {
                Some(v) => write!(table, " {v:.3} |"),
                None => table.write_str("  |"),
            };
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use spiral_eval::Curve;
    use spiral_train::RunConfig;

    use super::*;
    use crate::ReproOptions;
    use crate::measure::ModelCurves;

    /// An RL model of setting `stem` at RL seed `seed` that aggregates every one of 40 problems
    /// with accuracy `agg` and votes with accuracy `maj`.
    fn model(stem: &str, seed: u64, agg: f64, maj: f64) -> Measured {
        let mut config = RunConfig::default_with(&[]).unwrap();
        config.train.seed = Some(seed);
        let flat = |y: f64| Curve::new("", [(1.0, y)]);
        let problems = 40;
        Measured {
            name: format!("{stem}-seed{seed}"),
            variant: Some(stem.into()),
            checkpoint: PathBuf::new(),
            options: ReproOptions::study().measure,
            problems,
            curves: ModelCurves {
                pass_at_k: flat(0.0),
                maj_at_k: flat(maj),
                parallel_majority: flat(maj),
                parallel_aggregation: flat(agg),
                tokens_majority: flat(maj),
                tokens_aggregation: flat(agg),
                sequential: flat(0.0),
                rsa_pass_at_1: flat(0.0),
                per_problem: Some(PerProblem {
                    n: 4,
                    agg_at_n: vec![agg; problems],
                    maj_at_n_plus_1: vec![maj; problems],
                    pass_at_1: vec![0.0; problems],
                }),
                tokens_rsa: None,
            },
            config: Some(config),
            parameters: None,
            evals: Vec::new(),
            commit: None,
            training: None,
        }
    }

    #[test]
    fn settings_measured_at_different_seeds_are_compared_on_the_seeds_they_share() {
        // SPIRAL at seeds 1 and 3, GRPO at 1 to 3, Dr.GRPO at 2 alone.
        let measured = vec![
            model("default", 3, 0.8, 0.0),
            model("grpo", 2, 0.0, 0.9),
            model("default", 1, 0.6, 0.0),
            model("grpo", 1, 0.0, 0.5),
            model("grpo", 3, 0.0, 0.5),
            model("dr_grpo", 2, 0.0, 0.1),
        ];
        let primary = primary_differences(&measured);
        assert_eq!(primary.len(), 1, "Dr.GRPO shares no seed with SPIRAL");
        let grpo = &primary[0];
        assert_eq!((grpo.against, grpo.seeds.as_slice()), ("GRPO", &[1, 3][..]));
        assert_eq!(grpo.difference.method, primary::Method::MajAtNPlus1);
        // Seed 1: 0.6 - 0.5, seed 3: 0.8 - 0.5; GRPO's seed 2 (0.9) is left out.
        assert!((grpo.difference.mean - 0.2).abs() < 1e-12, "{:?}", grpo.difference);

        let headline = difference(&measured, |c| &c.parallel_aggregation, 0);
        assert!(
            headline.starts_with("+0.700 [") && headline.contains("over 2 seeds"),
            "{headline}"
        );
        let one = difference(&measured[..4], |c| &c.parallel_aggregation, 0);
        assert!(one.contains("one seed paired"), "{one}");

        let text = intervals_text(&measured);
        assert!(text.contains("GRPO 3, Dr.GRPO 1, SPIRAL 2"), "{text}");

        // Seed by seed, each on its method; Dr.GRPO, compared with nothing, is left out.
        let table = per_seed_table(&measured, &primary, 4);
        assert_eq!(
            table,
            "| setting | method | seed 1 | seed 2 | seed 3 |\n|---|---|---|---|---|\n\
             | GRPO | maj@5 | 0.500 | 0.900 | 0.500 |\n\
             | SPIRAL | agg@1 over 4 | 0.600 |  | 0.800 |\n"
        );
        assert!(per_seed_table(&measured[1..2], &[], 4).is_empty());
    }

    #[test]
    fn the_intervals_are_named_for_the_seeds_measured() {
        assert!(intervals_text(&[]).starts_with("No RL run"));
        let one = [model("default", 1, 0.5, 0.5), model("grpo", 1, 0.5, 0.5)];
        assert!(intervals_text(&one).starts_with("One seed"));
        let two = [
            model("default", 1, 0.5, 0.5),
            model("grpo", 1, 0.5, 0.5),
            model("default", 2, 0.5, 0.5),
            model("grpo", 2, 0.5, 0.5),
        ];
        assert!(intervals_text(&two).starts_with("Means over 2 RL seeds"));
    }
}
