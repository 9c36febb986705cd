//! Each condition of the decision rule ([`super`]), read on whatever the tasks have measured so
//! far. The rule itself waits for complete tasks; this reading says, meanwhile, how far the
//! study stands from either outcome, with the numbers behind each condition.

use super::TaskEvidence;
use crate::VARIANTS;
use crate::primary::Difference;

/// One condition of the rule, with the numbers it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What must hold, and the measured numbers behind it.
    pub text: String,
    /// Whether it holds on what is measured: `Some(false)` as soon as any part read fails it,
    /// `Some(true)` once every part is read and holds, `None` in between.
    pub holds: Option<bool>,
}

impl Condition {
    /// `text`, with the numbers in brackets when there are any.
    fn new(text: &str, numbers: Option<String>, holds: Option<bool>) -> Self {
        let text = match numbers {
            Some(numbers) => format!("{text} ({numbers})"),
            None => text.to_string(),
        };
        Self { text, holds }
    }
}

/// The parts of a condition combined: it fails if any part fails, holds once all hold.
fn every(parts: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let parts: Vec<Option<bool>> = parts.into_iter().collect();
    if parts.contains(&Some(false)) {
        Some(false)
    } else {
        parts.into_iter().collect::<Option<Vec<bool>>>().map(|_| true)
    }
}

/// Whether `test` holds for every baseline of `task`; `None` without a task or a baseline.
fn against_every_baseline(
    task: Option<&TaskEvidence>,
    test: impl Fn(&Difference) -> bool,
) -> Option<bool> {
    let differences: Vec<&Difference> = task?.baselines().collect();
    (!differences.is_empty()).then(|| differences.into_iter().all(test))
}

/// `GRPO -0.050 [-0.088, -0.013]; Dr.GRPO ...`; `None` when there is nothing to list.
fn differences<'a>(of: impl Iterator<Item = (&'a str, &'a Difference)>) -> Option<String> {
    let listed: Vec<String> = of
        .map(|(label, d)| format!("{label} {:+.3} [{:+.3}, {:+.3}]", d.mean, d.lo, d.hi))
        .collect();
    (!listed.is_empty()).then(|| listed.join("; "))
}

/// The baselines' differences of one task, `not run` / `not measured` where there are none.
fn baseline_differences(task: Option<&TaskEvidence>) -> String {
    match task {
        None => "not run".into(),
        Some(e) => differences(e.labelled_baselines()).unwrap_or_else(|| "not measured".into()),
    }
}

/// How far each baseline of `task` moved at its end, in the study's order of settings.
fn moves(task: Option<&TaskEvidence>) -> String {
    let Some(e) = task else { return "not run".into() };
    let listed: Vec<String> = VARIANTS
        .iter()
        .filter_map(|v| Some(format!("{} {:+.3}", v.label, e.baseline_moves.get(v.stem)?)))
        .collect();
    if listed.is_empty() { "not measured".into() } else { listed.join(", ") }
}

/// `combination: ...; countdown: ...`.
fn per_task(
    comb: Option<&TaskEvidence>,
    count: Option<&TaskEvidence>,
    show: fn(Option<&TaskEvidence>) -> String,
) -> String {
    format!("combination: {}; countdown: {}", show(comb), show(count))
}

/// The confirming conditions, each read on what the tasks have measured; the rule confirms when
/// every one holds on complete tasks.
pub fn confirming(
    comb: Option<&TaskEvidence>,
    count: Option<&TaskEvidence>,
    arith: Option<&TaskEvidence>,
) -> Vec<Condition> {
    let control = comb.and_then(|e| e.against("Multitask"));
    vec![
        Condition::new(
            "combination: SPIRAL at least +3 points above every baseline, its interval above 0",
            Some(baseline_differences(comb)),
            against_every_baseline(comb, |d| d.mean >= 0.03 && d.lo > 0.0),
        ),
        Condition::new(
            "countdown: SPIRAL at or above every baseline",
            Some(baseline_differences(count)),
            against_every_baseline(count, |d| d.mean >= 0.0),
        ),
        Condition::new(
            "combination: SPIRAL above the multitask control, its interval above 0",
            control.and_then(|d| differences([("Multitask", d)].into_iter())),
            control.map(|d| d.lo > 0.0),
        ),
        Condition::new(
            "combination: SPIRAL's RSA accuracy rises from round 0 to its last round",
            None,
            comb.and_then(|e| e.rsa_rises),
        ),
        Condition::new(
            "arith (control): no SPIRAL win, every interval reaching 0 or below",
            Some(baseline_differences(arith)),
            against_every_baseline(arith, |d| d.lo <= 0.0),
        ),
    ]
}

/// The refuting conditions, read the same way.
pub fn refuting(comb: Option<&TaskEvidence>, count: Option<&TaskEvidence>) -> Vec<Condition> {
    let both =
        |read: &dyn Fn(Option<&TaskEvidence>) -> Option<bool>| every([read(comb), read(count)]);
    vec![
        Condition::new(
            "the aggregator gate passed on combination and countdown",
            None,
            both(&|e| e.map(|e| e.gate_passes)),
        ),
        Condition::new(
            "every baseline's held-out pass@1 moved by under a point between its last two \
             evaluations, on combination and countdown",
            Some(per_task(comb, count, moves)),
            both(&|e| e.and_then(|e| e.baselines_plateaued)),
        ),
        Condition::new(
            "SPIRAL's interval below +1 point against every baseline on both tasks",
            Some(per_task(comb, count, baseline_differences)),
            both(&|e| against_every_baseline(e, |d| d.hi < 0.01)),
        ),
    ]
}

/// The verdict file's section: where each condition stands on what is measured, so a reader
/// sees how far the study is from either outcome before the rule may read it.
pub fn section(
    comb: Option<&TaskEvidence>,
    count: Option<&TaskEvidence>,
    arith: Option<&TaskEvidence>,
) -> String {
    let list = |conditions: Vec<Condition>| -> String {
        conditions
            .iter()
            .map(|c| {
                let mark = match c.holds {
                    Some(true) => "holds",
                    Some(false) => "fails",
                    None => "not measured",
                };
                format!("- **{mark}**: {}\n", c.text)
            })
            .collect()
    };
    format!(
        "\n## Each condition on what is measured\n\n\
         The rule reads a task only once every setting is measured at every seed. Until then, this \
         is where each of its conditions stands on the seeds measured so far (differences are \
         SPIRAL minus each setting on the primary metric, means over the seeds both were measured \
         at, with 95% hierarchical bootstrap intervals; a baseline's move is its held-out pass@1 \
         at its last evaluation during training minus the one before).\n\n\
         Confirms if every one holds:\n\n{}\nRefutes if every one holds:\n\n{}",
        list(confirming(comb, count, arith)),
        list(refuting(comb, count)),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::decision::tests::{d, task};

    #[test]
    fn parts_combine_failing_first_then_holding_once_all_are_read() {
        assert_eq!(every([Some(true), Some(false)]), Some(false));
        assert_eq!(every([None, Some(false)]), Some(false));
        assert_eq!(every([None, Some(true)]), None);
        assert_eq!(every([Some(true), Some(true)]), Some(true));
    }

    #[test]
    fn each_condition_is_read_on_what_is_measured() {
        let behind = task(true, d(-0.05, -0.09, -0.01), d(0.0, -0.04, 0.03));
        let mut moving = behind.clone();
        moving.baselines_plateaued = Some(false);
        moving.baseline_moves = BTreeMap::from([("grpo".into(), 0.057), ("dr_grpo".into(), 0.05)]);
        let confirm = confirming(Some(&moving), None, None);
        assert_eq!(confirm.len(), 5);
        assert_eq!(confirm[0].holds, Some(false));
        assert!(confirm[0].text.contains("GRPO -0.050 [-0.090, -0.010]"), "{}", confirm[0].text);
        assert_eq!(confirm[1].holds, None, "Countdown has not run");
        assert!(confirm[1].text.ends_with("(not run)"), "{}", confirm[1].text);
        assert_eq!(confirm[2].holds, Some(false), "level with the control");
        assert_eq!(confirm[4].holds, None, "arith has not run");
        let refute = refuting(Some(&moving), None);
        assert_eq!(refute[0].holds, None, "one gate read, the other not yet");
        assert_eq!(refute[1].holds, Some(false), "one task still moving fails it outright");
        // Listed in the study's order of settings, not by config stem.
        assert!(refute[1].text.contains("GRPO +0.057, Dr.GRPO +0.050"), "{}", refute[1].text);
        assert_eq!(refute[2].holds, None);
        let refute = refuting(Some(&behind), Some(&behind));
        assert!(refute.iter().all(|c| c.holds == Some(true)), "{refute:?}");
        // An interval reaching +1 point on one task fails the bound before the other is run.
        let level = task(true, d(0.0, -0.02, 0.02), d(0.0, -0.02, 0.02));
        assert_eq!(refuting(Some(&level), None)[2].holds, Some(false));
    }

    #[test]
    fn a_condition_without_numbers_says_so_once() {
        let no_control =
            TaskEvidence { primary: vec![], ..task(true, d(0.0, 0.0, 0.0), d(0.0, 0.0, 0.0)) };
        let confirm = confirming(Some(&no_control), None, None);
        assert_eq!(confirm[0].holds, None, "no baseline measured yet");
        assert!(confirm[0].text.ends_with("(not measured)"), "{}", confirm[0].text);
        assert_eq!(
            confirm[2].text,
            "combination: SPIRAL above the multitask control, its interval above 0"
        );
        assert!(
            section(Some(&no_control), None, None)
                .contains("- **not measured**: combination: SPIRAL above")
        );
    }
}
