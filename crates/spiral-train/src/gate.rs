//! The aggregator gate: whether the model RL starts from aggregates well enough for a study of
//! set RL to mean anything. Set RL credits a search trace through the aggregator's answers, so
//! an aggregator that picks worse than a majority vote, or worse than a single trace, gives it
//! little to learn from; a comparison run from such a start can only be inconclusive.
//!
//! Measured on the evaluation before RL, over `n` traces per problem:
//!
//! - agg@1 >= pass@1 + 0.05 (aggregating beats copying one trace by five points);
//! - agg@1 >= maj@n (the model beats a majority vote over the same traces);
//! - agg@1 on problems where some trace is correct >= 0.6 (it finds a correct trace);
//! - RSA's first round above round 0, where RSA is measured (`cargo xtask repro`).

use crate::metrics::EvalRecord;

/// The accuracy an aggregator must reach on sets holding a correct candidate.
const FINDS_CORRECT: f64 = 0.6;

/// One criterion of the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// What is compared, in words.
    pub name: String,
    /// The measured value and the threshold it must reach; `None` when not measured.
    pub measured: Option<(f64, f64)>,
}

impl Criterion {
    /// Whether the criterion holds (`None`: not measured).
    pub fn passes(&self) -> Option<bool> {
        self.measured.map(|(value, threshold)| value >= threshold)
    }
}

/// The gate's criteria from the evaluation before RL, and RSA's round accuracies when known.
pub fn gate(before_rl: &EvalRecord, rsa_rounds: Option<&[f64]>) -> Vec<Criterion> {
    let e = before_rl;
    let rsa = rsa_rounds.filter(|r| r.len() >= 2).map(|r| (r[1], r[0] + 1e-12));
    vec![
        Criterion {
            name: format!("agg@1 >= pass@1 + 0.05 (n = {})", e.n),
            measured: Some((e.agg_at_1, e.pass_at_1 + 0.05)),
        },
        Criterion { name: "agg@1 >= maj@n".into(), measured: Some((e.agg_at_1, e.maj_at_n)) },
        Criterion {
            name: format!("agg@1 when some trace is correct >= {FINDS_CORRECT}"),
            measured: e.agg_given_correct.map(|v| (v, FINDS_CORRECT)),
        },
        Criterion { name: "RSA round 1 above round 0".into(), measured: rsa },
    ]
}

/// Whether every measured criterion holds, and every criterion was measured.
pub fn passes(criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| c.passes() == Some(true))
}

/// Why an aggregator falls short, in words (not a criterion): how often its answer is one of its
/// candidates' and how often such a pick is right, against pass@1, the accuracy of a candidate
/// drawn at random; for problems of parts, how often it gets right a part that some candidate
/// solved; and, where measured, how it aggregates candidates the task makes up, which tells a
/// weak aggregator from weak candidates. `None` for evaluations recorded without these counts.
pub fn diagnosis(before_rl: &EvalRecord) -> Option<String> {
    let (picks, accuracy) = (before_rl.agg_picks?, before_rl.agg_given_pick);
    let accuracy = match accuracy {
        Some(a) => format!(
            "those picks are correct {a:.3} of the time, against {:.3} for a candidate drawn at \
             random (pass@1): {}",
            before_rl.pass_at_1,
            if a > before_rl.pass_at_1 + 0.02 {
                "it selects better than chance"
            } else {
                "it does not select better than chance, so it cannot tell right candidates from \
                 wrong ones"
            }
        ),
        None => "it never picks one".into(),
    };
    // An answer assembled part by part from several candidates is no one candidate's answer,
    // so on such tasks the part-level rate is the one that says whether it selects.
    let parts = before_rl.agg_part_given_solved.map_or(String::new(), |rate| {
        format!(
            " Part by part, it answers correctly {:.1}% of the parts that some candidate solved.",
            100.0 * rate
        )
    });
    // Made-up candidates hold correct ones more or less often than the model's own traces, so
    // the comparison is on sets (or parts) that hold one: there the aggregator only has to find it.
    let e = before_rl;
    let made_up = match (e.agg_part_made_up, e.agg_part_given_solved) {
        (Some(made_up), Some(own)) => Some(("parts some candidate solved", made_up, own)),
        _ => e
            .agg_made_up_given_correct
            .zip(e.agg_given_correct)
            .map(|(made_up, own)| ("sets holding a correct candidate", made_up, own)),
    };
    let made_up = made_up.map_or(String::new(), |(what, made_up, own)| {
        let verdict = if own >= FINDS_CORRECT {
            "on its own traces it finds the correct candidate as the gate asks"
        } else if made_up < own + 0.05 {
            "no better than on its own traces, so the aggregator itself falls short"
        } else if made_up >= FINDS_CORRECT {
            "the aggregator works on such candidates, so its own search traces are what it \
             cannot use"
        } else {
            "better than on its own traces but short of the gate's 0.6, so both the aggregator \
             and its own search traces fall short"
        };
        format!(
            " Over candidates made up as the warm start's aggregation examples are, it answers \
             correctly {:.1}% of the {what} (against {:.1}% over its own traces): {verdict}.",
            100.0 * made_up,
            100.0 * own
        )
    });
    Some(format!(
        "Diagnosis (not a criterion): {:.1}% of aggregation traces answer with one of their \
         candidates' answers, the rest with an answer of their own; {accuracy}.{parts}{made_up}",
        100.0 * picks
    ))
}

/// The gate as a Markdown table, with a verdict line.
pub fn markdown(criteria: &[Criterion]) -> String {
    let mut text = String::from("| criterion | measured | needed | holds |\n|---|---|---|---|\n");
    for c in criteria {
        let (value, needed) = match c.measured {
            Some((v, t)) => (format!("{v:.3}"), format!("{t:.3}")),
            None => ("-".into(), "-".into()),
        };
        let holds = match c.passes() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not measured",
        };
        text.push_str(&format!("| {} | {value} | {needed} | {holds} |\n", c.name));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pass: f64, maj: f64, agg: f64, given: Option<f64>) -> EvalRecord {
        EvalRecord {
            step: 0,
            pass_at_1: pass,
            maj_at_n: maj,
            agg_at_1: agg,
            agg_given_correct: given,
            agg_given_none: None,
            agg_picks: None,
            agg_given_pick: None,
            agg_part_given_solved: None,
            agg_made_up_given_correct: None,
            agg_part_made_up: None,
            search_entropy: None,
            distinct_answers: None,
            n: 4,
            problems: 100,
            pass_at_k: Default::default(),
        }
    }

    #[test]
    fn the_gate_needs_every_criterion() {
        let good = gate(&record(0.10, 0.14, 0.20, Some(0.7)), Some(&[0.2, 0.25]));
        assert!(passes(&good), "{good:?}");
        // Below a majority vote.
        assert!(!passes(&gate(&record(0.10, 0.22, 0.20, Some(0.7)), Some(&[0.2, 0.25]))));
        // Not five points above a single trace.
        assert!(!passes(&gate(&record(0.17, 0.14, 0.20, Some(0.7)), Some(&[0.2, 0.25]))));
        // RSA falls, or was not measured.
        assert!(!passes(&gate(&record(0.10, 0.14, 0.20, Some(0.7)), Some(&[0.2, 0.19]))));
        let unmeasured = gate(&record(0.10, 0.14, 0.20, Some(0.7)), None);
        assert!(!passes(&unmeasured));
        assert!(markdown(&unmeasured).contains("not measured"));
    }

    #[test]
    fn the_diagnosis_compares_picks_with_chance() {
        let mut e = record(0.20, 0.25, 0.15, Some(0.3));
        assert_eq!(diagnosis(&e), None, "older records have no counts");
        e.agg_picks = Some(0.8);
        e.agg_given_pick = Some(0.19);
        let text = diagnosis(&e).unwrap();
        assert!(text.contains("80.0%") && text.contains("not select better than chance"), "{text}");
        e.agg_given_pick = Some(0.35);
        assert!(diagnosis(&e).unwrap().contains("selects better than chance"));
        e.agg_given_pick = None;
        assert!(diagnosis(&e).unwrap().contains("never picks"));
        assert!(!diagnosis(&e).unwrap().contains("Part by part"), "only for tasks of parts");
        e.agg_part_given_solved = Some(0.25);
        assert!(diagnosis(&e).unwrap().contains("25.0% of the parts that some candidate solved"));
        // Made-up candidates read far better than its own traces: the search side falls short.
        e.agg_made_up_given_correct = Some(0.5);
        e.agg_part_made_up = Some(0.8);
        let text = diagnosis(&e).unwrap();
        assert!(text.contains("80.0% of the parts some candidate solved (against 25.0%"), "{text}");
        assert!(text.contains("its own search traces are what it cannot use"), "{text}");
        // Without parts, sets holding a correct candidate are compared (0.3 over its own).
        e.agg_part_given_solved = None;
        e.agg_part_made_up = None;
        e.agg_made_up_given_correct = Some(0.32);
        let text = diagnosis(&e).unwrap();
        assert!(text.contains("32.0% of the sets holding a correct candidate"), "{text}");
        assert!(text.contains("the aggregator itself falls short"), "{text}");
        // Better on made-up candidates, yet far from the gate's bar: both sides fall short.
        e.agg_made_up_given_correct = Some(0.45);
        assert!(diagnosis(&e).unwrap().contains("both the aggregator and its own search traces"));
        // Finding the correct candidate on its own traces too: nothing falls short.
        e.agg_given_correct = Some(0.99);
        e.agg_made_up_given_correct = Some(0.98);
        let text = diagnosis(&e).unwrap();
        assert!(text.contains("finds the correct candidate as the gate asks"), "{text}");
    }
}
