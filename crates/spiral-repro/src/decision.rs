//! The study's decision rule, written before its runs (`docs/study.md`) and applied here to the
//! tasks' `results.json`:
//!
//! - **confirms** if SPIRAL's primary difference is >= +3 points with its 95% interval above 0
//!   against every baseline on `combination` and >= 0 on Countdown, SPIRAL beats the multitask
//!   control on `combination`, RSA accuracy rises over rounds, and there is no SPIRAL win on
//!   `arith`;
//! - **refutes** if the gate passed, the baselines have plateaued, and the interval's upper
//!   bound is below +1 point against every baseline on both tasks;
//! - **inconclusive** otherwise, and whenever a task's gate fails or a needed number is missing.
//!
//! The rule reads a task only once every setting of [`ReproOptions::study`] is measured at every
//! one of its seeds: a difference against some baselines, or over one seed whose interval holds
//! no seed-to-seed variation, would decide on less than the study registered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::primary::Difference;
use crate::{Measured, ReproOptions, variant};

/// What one task's study measured, as the rule reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvidence {
    /// Whether every gate criterion held.
    pub gate_passes: bool,
    /// SPIRAL minus each other setting on the primary metric, by the setting's label.
    pub primary: Vec<(String, Difference)>,
    /// Whether SPIRAL's RSA accuracy rose from round 0 to its last round.
    pub rsa_rises: Option<bool>,
    /// Whether every baseline's accuracy changed by under a point over its last evaluations.
    pub baselines_plateaued: Option<bool>,
    /// How many RL seeds each setting was measured at, by config stem.
    pub seeds: BTreeMap<String, usize>,
    /// How far each baseline's held-out pass@1 moved between its last two evaluations, by
    /// config stem ([`baseline_moves`]); empty while unknown.
    pub baseline_moves: BTreeMap<String, f64>,
}

/// How far each baseline's held-out pass@1, averaged over its seeds, moved between its runs'
/// last two evaluations during training, by config stem; `None` while a baseline run has fewer
/// than two. The control and the SPIRAL settings are not baselines.
pub fn baseline_moves(measured: &[Measured]) -> Option<BTreeMap<String, f64>> {
    moves(measured.iter().filter_map(|m| {
        let curve = m.evals.iter().filter(|e| e.step > 0).map(|e| e.pass_at_1).collect();
        Some((m.variant.as_deref()?, curve))
    }))
}

/// [`baseline_moves`] over each RL run's setting and held-out pass@1 at its evaluations.
fn moves<'a>(runs: impl Iterator<Item = (&'a str, Vec<f64>)>) -> Option<BTreeMap<String, f64>> {
    let mut last_two: BTreeMap<&str, Vec<[f64; 2]>> = BTreeMap::new();
    for (stem, curve) in runs {
        if variant(stem).is_ok_and(|v| v.label.starts_with("SPIRAL") || v.stem == "multitask") {
            continue;
        }
        let [.., before, last] = curve[..] else { return None };
        last_two.entry(stem).or_default().push([before, last]);
    }
    if last_two.is_empty() {
        return None;
    }
    let moved =
        |seeds: &[[f64; 2]]| seeds.iter().map(|[b, l]| l - b).sum::<f64>() / seeds.len() as f64;
    Some(last_two.into_iter().map(|(stem, seeds)| (stem.to_string(), moved(&seeds))).collect())
}

/// Whether every baseline moved by under a point: the rule's plateau.
pub fn plateaued(moves: &BTreeMap<String, f64>) -> bool {
    moves.values().all(|moved| moved.abs() < 0.01)
}

impl TaskEvidence {
    /// The differences against the baselines proper (the control and the other SPIRAL setting
    /// excluded).
    fn baselines(&self) -> impl Iterator<Item = &Difference> {
        self.baseline_labels().map(|(_, d)| d)
    }

    /// The same, each with the baseline's label.
    fn baseline_labels(&self) -> impl Iterator<Item = (&str, &Difference)> {
        self.primary
            .iter()
            .filter(|(label, _)| !label.starts_with("SPIRAL") && label != "Multitask")
            .map(|(label, d)| (label.as_str(), d))
    }

    fn against(&self, label: &str) -> Option<&Difference> {
        self.primary.iter().find(|(l, _)| l == label).map(|(_, d)| d)
    }

    /// The settings the study registered that are measured at fewer of its seeds, each with
    /// its count (`grpo 1/5`); empty once the task is complete.
    fn missing(&self) -> Vec<String> {
        let study = ReproOptions::study();
        study
            .variants
            .iter()
            .filter_map(|stem| {
                let have = self.seeds.get(stem).copied().unwrap_or(0);
                (have < study.seeds.len()).then(|| format!("{stem} {have}/{}", study.seeds.len()))
            })
            .collect()
    }
}

impl TaskEvidence {
    /// The evidence a task's `results.json` (written by `spiral-repro`) holds.
    pub fn from_results(results: &serde_json::Value) -> anyhow::Result<Self> {
        let gate = results["gate"].as_array().map(Vec::as_slice).unwrap_or_default();
        let gate_passes = !gate.is_empty() && gate.iter().all(|c| c["holds"] == true);
        let primary = results["primary"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let label = p["against"].as_str().unwrap_or_default().to_string();
                Ok((label, serde_json::from_value(p["difference"].clone())?))
            })
            .collect::<anyhow::Result<_>>()?;
        let measured = results["measured"].as_array().map(Vec::as_slice).unwrap_or_default();
        // SPIRAL's RSA pass@1, round by round, averaged over its seeds.
        let rounds: Vec<Vec<f64>> = measured
            .iter()
            .filter(|m| m["variant"] == "default")
            .map(|m| {
                let points = m["curves"]["rsa_pass_at_1"]["points"].as_array();
                points
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| p["y"].as_f64())
                    .collect()
            })
            .collect();
        let rsa_rises = (!rounds.is_empty() && rounds.iter().all(|r| r.len() >= 2)).then(|| {
            let at = |i: usize| rounds.iter().map(|r| r[i]).sum::<f64>() / rounds.len() as f64;
            at(rounds[0].len() - 1) > at(0)
        });
        let mut seeds_of: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for m in measured {
            if let (Some(stem), Some(seed)) =
                (m["variant"].as_str(), m["config"]["train"]["seed"].as_u64())
            {
                seeds_of.entry(stem.to_string()).or_default().insert(seed);
            }
        }
        let seeds = seeds_of.into_iter().map(|(stem, seeds)| (stem, seeds.len())).collect();
        // Each RL run's held-out pass@1 at its evaluations during training.
        let curves = measured.iter().filter_map(|m| {
            let evals = m["evals"].as_array().map(Vec::as_slice).unwrap_or_default();
            let after_step_0 = evals.iter().filter(|e| e["step"].as_u64().is_some_and(|s| s > 0));
            Some((
                m["variant"].as_str()?,
                after_step_0.filter_map(|e| e["pass@1"].as_f64()).collect(),
            ))
        });
        Ok(Self {
            gate_passes,
            primary,
            rsa_rises,
            baselines_plateaued: results["baselines_plateaued"].as_bool(),
            seeds,
            baseline_moves: moves(curves).unwrap_or_default(),
        })
    }
}

/// The verdict, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// SPIRAL's claimed advantage holds at this scale.
    Confirms,
    /// It does not.
    Refutes,
    /// The study cannot tell, and why.
    Inconclusive(String),
}

/// One condition of the rule, with the numbers it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What must hold, and the measured numbers behind it.
    pub text: String,
    /// Whether it holds on what is measured; `None` while nothing it reads is measured.
    pub holds: Option<bool>,
}

/// `GRPO -0.050 [-0.088, -0.013]; Dr.GRPO ...`, or `not measured`.
fn differences<'a>(of: impl Iterator<Item = (&'a str, &'a Difference)>) -> String {
    let listed: Vec<String> = of
        .map(|(label, d)| format!("{label} {:+.3} [{:+.3}, {:+.3}]", d.mean, d.lo, d.hi))
        .collect();
    if listed.is_empty() { "not measured".into() } else { listed.join("; ") }
}

/// Whether `test` holds for every difference, `None` when there are none.
fn all_of<'a>(
    mut of: impl Iterator<Item = &'a Difference>,
    test: impl Fn(&Difference) -> bool,
) -> Option<bool> {
    let first = of.next()?;
    Some(test(first) && of.all(&test))
}

/// The confirming conditions, each read on what the tasks have measured; the rule confirms when
/// every one holds on complete tasks.
pub fn confirming(
    comb: Option<&TaskEvidence>,
    count: Option<&TaskEvidence>,
    arith: Option<&TaskEvidence>,
) -> Vec<Condition> {
    let over = |task: Option<&TaskEvidence>, text: &str, test: fn(&Difference) -> bool| Condition {
        text: format!(
            "{text} ({})",
            task.map_or("not run".into(), |e| differences(e.baseline_labels()))
        ),
        holds: task.and_then(|e| all_of(e.baselines(), test)),
    };
    let control = comb.and_then(|e| e.against("Multitask"));
    vec![
        over(
            comb,
            "combination: SPIRAL at least +3 points above every baseline, its interval above 0",
            |d| d.mean >= 0.03 && d.lo > 0.0,
        ),
        over(count, "countdown: SPIRAL at or above every baseline", |d| d.mean >= 0.0),
        Condition {
            text: format!(
                "combination: SPIRAL above the multitask control, its interval above 0 ({})",
                differences(control.map(|d| ("Multitask", d)).into_iter())
            ),
            holds: control.map(|d| d.lo > 0.0),
        },
        Condition {
            text: "combination: SPIRAL's RSA accuracy rises from round 0 to its last round".into(),
            holds: comb.and_then(|e| e.rsa_rises),
        },
        over(arith, "arith (control): no SPIRAL win, every interval reaching 0 or below", |d| {
            d.lo <= 0.0
        }),
    ]
}

/// The refuting conditions, read the same way.
pub fn refuting(comb: Option<&TaskEvidence>, count: Option<&TaskEvidence>) -> Vec<Condition> {
    let both = [comb, count];
    let each = |read: fn(&TaskEvidence) -> Option<bool>| -> Option<bool> {
        // Fails as soon as one task fails it; holds only once both are read.
        let read: Vec<Option<bool>> = both.iter().map(|e| e.and_then(read)).collect();
        if read.contains(&Some(false)) {
            Some(false)
        } else {
            read.into_iter().all(|r| r.is_some()).then_some(true)
        }
    };
    let listed = both.iter().zip(["combination", "countdown"]).map(|(e, task)| {
        format!("{task}: {}", e.map_or("not run".into(), |e| differences(e.baseline_labels())))
    });
    vec![
        Condition {
            text: "the aggregator gate passed on combination and countdown".into(),
            holds: each(|e| Some(e.gate_passes)),
        },
        Condition {
            text: format!(
                "every baseline's held-out pass@1 moved by under a point between its last two \
                 evaluations, on combination and countdown ({})",
                both.iter()
                    .zip(["combination", "countdown"])
                    .map(|(e, task)| {
                        let moves = e.map(|e| &e.baseline_moves).filter(|m| !m.is_empty());
                        format!(
                            "{task}: {}",
                            moves.map_or("not measured".into(), |m| {
                                m.iter()
                                    .map(|(stem, moved)| {
                                        let label =
                                            variant(stem).map_or(stem.as_str(), |v| v.label);
                                        format!("{label} {moved:+.3}")
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            holds: each(|e| e.baselines_plateaued),
        },
        Condition {
            text: format!(
                "SPIRAL's interval below +1 point against every baseline on both tasks ({})",
                listed.collect::<Vec<_>>().join("; ")
            ),
            holds: match (comb, count) {
                (Some(a), Some(b)) => all_of(a.baselines().chain(b.baselines()), |d| d.hi < 0.01),
                _ => None,
            },
        },
    ]
}

/// The rule applied to the three tasks.
pub fn verdict(
    combination: Option<&TaskEvidence>,
    countdown: Option<&TaskEvidence>,
    arith: Option<&TaskEvidence>,
) -> Verdict {
    let (Some(comb), Some(count)) = (combination, countdown) else {
        return Verdict::Inconclusive("the combination or Countdown study has not run".into());
    };
    if !(comb.gate_passes && count.gate_passes) {
        return Verdict::Inconclusive("the aggregator gate failed before RL".into());
    }
    let missing: Vec<String> = [("combination", comb), ("countdown", count)]
        .into_iter()
        .filter_map(|(task, e)| {
            let missing = e.missing();
            (!missing.is_empty()).then(|| format!("{task}: {}", missing.join(", ")))
        })
        .collect();
    if !missing.is_empty() {
        return Verdict::Inconclusive(format!(
            "not every setting is measured at every seed; seeds measured of those registered: {}",
            missing.join("; ")
        ));
    }
    let all_hold = |conditions: Vec<Condition>| conditions.iter().all(|c| c.holds == Some(true));
    if all_hold(confirming(combination, countdown, arith))
        && arith.is_some_and(|a| a.missing().is_empty())
    {
        return Verdict::Confirms;
    }
    if all_hold(refuting(combination, countdown)) {
        return Verdict::Refutes;
    }
    Verdict::Inconclusive("neither the confirming nor the refuting conditions all hold".into())
}

/// Applies the decision rule to `dir/study-<task>/results.json` for the three tasks, writes
/// `dir/study-verdict.md` and returns its text.
pub fn write_verdict(dir: &Path) -> anyhow::Result<String> {
    let read = |task: &str| -> anyhow::Result<Option<TaskEvidence>> {
        let path = dir.join(format!("study-{task}/results.json"));
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        Ok(Some(TaskEvidence::from_results(&json)?))
    };
    let (comb, count, arith) = (read("combination")?, read("countdown")?, read("arith")?);
    let verdict = verdict(comb.as_ref(), count.as_ref(), arith.as_ref());
    let mut text = String::from(
        "# Study verdict\n\nThe decision rule of `docs/study.md`, applied by `cargo xtask repro -- --verdict docs/results`.\n\n",
    );
    for (task, e) in [("combination", &comb), ("countdown", &count), ("arith", &arith)] {
        match e {
            None => text.push_str(&format!("- {task}: not run\n")),
            Some(e) => text.push_str(&format!(
                "- {task}: gate {}, {} primary comparison{}, RSA {}, baselines {}\n",
                if e.gate_passes { "passed" } else { "failed" },
                e.primary.len(),
                if e.primary.len() == 1 { "" } else { "s" },
                match e.rsa_rises {
                    Some(true) => "rises",
                    Some(false) => "does not rise",
                    None => "not measured",
                },
                match e.baselines_plateaued {
                    Some(true) => "plateaued",
                    Some(false) => "still moving",
                    None => "not measured",
                },
            )),
        }
    }
    text.push_str(&format!(
        "\n**Verdict: {}**\n",
        match &verdict {
            Verdict::Confirms => "confirms SPIRAL's advantage at this scale".to_string(),
            Verdict::Refutes => "refutes SPIRAL's advantage at this scale".to_string(),
            Verdict::Inconclusive(why) => format!("inconclusive ({why})"),
        }
    ));
    text.push_str(&conditions_section(comb.as_ref(), count.as_ref(), arith.as_ref()));
    spiral_model::write_atomically(&dir.join("study-verdict.md"), text.as_bytes())?;
    Ok(text)
}

/// Where each condition stands on what is measured, so a reader sees how far the study is from
/// either outcome before the rule may read it.
fn conditions_section(
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
         SPIRAL minus each setting on the primary metric, means over the measured seeds, with \
         95% hierarchical bootstrap intervals).\n\n\
         Confirms if every one holds:\n\n{}\nRefutes if every one holds:\n\n{}",
        list(confirming(comb, count, arith)),
        list(refuting(comb, count)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primary::Method;

    fn d(mean: f64, lo: f64, hi: f64) -> Difference {
        Difference { method: Method::MajAtNPlus1, mean, lo, hi }
    }

    fn task(gate: bool, grpo: Difference, control: Difference) -> TaskEvidence {
        TaskEvidence {
            gate_passes: gate,
            primary: vec![
                ("GRPO".into(), grpo),
                ("Dr.GRPO".into(), grpo),
                ("Multitask".into(), control),
                ("SPIRAL K=4".into(), d(0.0, -0.01, 0.01)),
            ],
            rsa_rises: Some(true),
            baselines_plateaued: Some(true),
            seeds: ReproOptions::study().variants.into_iter().map(|stem| (stem, 5)).collect(),
            baseline_moves: BTreeMap::new(),
        }
    }

    #[test]
    fn the_rule_confirms_refutes_or_cannot_tell() {
        let win = task(true, d(0.05, 0.02, 0.08), d(0.02, 0.005, 0.04));
        let even = task(true, d(0.0, -0.01, 0.005), d(0.0, -0.01, 0.01));
        let no_arith_win = task(true, d(0.0, -0.02, 0.02), d(0.0, -0.01, 0.01));
        assert_eq!(verdict(Some(&win), Some(&even), Some(&no_arith_win)), Verdict::Confirms);
        // A win on the control task too: not the pattern the claim predicts.
        assert!(matches!(verdict(Some(&win), Some(&even), Some(&win)), Verdict::Inconclusive(_)));
        assert_eq!(verdict(Some(&even), Some(&even), None), Verdict::Refutes);
        let failed_gate = task(false, d(0.05, 0.02, 0.08), d(0.02, 0.005, 0.04));
        let Verdict::Inconclusive(why) = verdict(Some(&failed_gate), Some(&even), None) else {
            panic!("a failed gate decides nothing");
        };
        assert!(why.contains("gate"), "{why}");
        assert!(matches!(verdict(None, Some(&even), None), Verdict::Inconclusive(_)));
    }

    #[test]
    fn a_task_short_of_a_setting_or_a_seed_decides_nothing() {
        let even = task(true, d(0.0, -0.01, 0.005), d(0.0, -0.01, 0.01));
        let mut one_seed = even.clone();
        one_seed.seeds.insert("paragator".into(), 1);
        one_seed.seeds.remove("multitask");
        let Verdict::Inconclusive(why) = verdict(Some(&even), Some(&one_seed), None) else {
            panic!("a refutation on one seed of ParaGator and no multitask control");
        };
        assert!(why.contains("countdown: paragator 1/5, multitask 0/5"), "{why}");
        assert!(!why.contains("combination"), "{why}");
    }

    #[test]
    fn seeds_are_counted_from_the_measured_runs_configs() {
        let results = serde_json::json!({
            "gate": [{"holds": true}],
            "measured": [
                {"variant": null, "config": {"train": {"seed": 0}}},
                {"variant": "grpo", "config": {"train": {"seed": 1}}},
                {"variant": "grpo", "config": {"train": {"seed": 2}}},
                {"variant": "default", "config": {"train": {"seed": 1}}},
            ],
        });
        let e = TaskEvidence::from_results(&results).unwrap();
        assert_eq!(e.seeds, BTreeMap::from([("default".into(), 1), ("grpo".into(), 2)]));
        assert!(e.missing().contains(&"grpo 2/5".to_string()), "{:?}", e.missing());
    }

    #[test]
    fn a_baseline_plateaus_when_its_mean_over_seeds_stops_moving() {
        let runs = [
            ("grpo", vec![0.5, 0.6, 0.62]),
            ("grpo", vec![0.4, 0.45, 0.465]),
            ("dr_grpo", vec![0.3, 0.305]),
            // SPIRAL and the control are not baselines: their climb does not count.
            ("default", vec![0.1, 0.5]),
            ("multitask", vec![0.1, 0.5]),
        ];
        let moved = moves(runs.iter().map(|(s, c)| (*s, c.clone()))).unwrap();
        assert_eq!(moved.keys().collect::<Vec<_>>(), ["dr_grpo", "grpo"]);
        assert!((moved["grpo"] - 0.0175).abs() < 1e-12, "{moved:?}");
        assert!((moved["dr_grpo"] - 0.005).abs() < 1e-12, "{moved:?}");
        assert!(!plateaued(&moved));
        assert!(plateaued(&BTreeMap::from([("grpo".into(), -0.009), ("dr_grpo".into(), 0.0)])));
        // A baseline evaluated once during training cannot say.
        assert_eq!(moves([("grpo", vec![0.5])].into_iter()), None);
        assert_eq!(moves(std::iter::empty()), None);
    }

    #[test]
    fn each_condition_is_read_on_what_is_measured() {
        let behind = task(true, d(-0.05, -0.09, -0.01), d(0.0, -0.04, 0.03));
        let mut moving = behind.clone();
        moving.baselines_plateaued = Some(false);
        moving.baseline_moves = BTreeMap::from([("grpo".into(), 0.057)]);
        let confirm = confirming(Some(&moving), None, None);
        assert_eq!(confirm.len(), 5);
        assert_eq!(confirm[0].holds, Some(false));
        assert!(confirm[0].text.contains("GRPO -0.050 [-0.090, -0.010]"), "{}", confirm[0].text);
        assert_eq!(confirm[1].holds, None, "Countdown has not run");
        assert_eq!(confirm[2].holds, Some(false), "level with the control");
        assert_eq!(confirm[4].holds, None, "arith has not run");
        let refute = refuting(Some(&moving), None);
        assert_eq!(refute[0].holds, None, "one gate read, the other not yet");
        assert_eq!(refute[1].holds, Some(false), "one task still moving fails it outright");
        assert!(refute[1].text.contains("GRPO +0.057"), "{}", refute[1].text);
        assert_eq!(refute[2].holds, None);
        let refute = refuting(Some(&behind), Some(&behind));
        assert!(refute.iter().all(|c| c.holds == Some(true)), "{refute:?}");
        assert_eq!(verdict(Some(&behind), Some(&behind), None), Verdict::Refutes);
    }
}
