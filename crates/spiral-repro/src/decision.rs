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

mod conditions;

pub use conditions::{Condition, confirming, refuting};
use spiral_train::EvalRecord;

use crate::primary::Difference;
use crate::{ReproOptions, VARIANTS, variant};

/// What one task's study measured, as the rule reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvidence {
    /// Whether every gate criterion held.
    pub gate_passes: bool,
    /// SPIRAL minus each other setting on the primary metric, by the setting's label.
    pub primary: Vec<(String, Difference)>,
    /// Whether SPIRAL's RSA accuracy rose from round 0 to its last round.
    pub rsa_rises: Option<bool>,
    /// Whether every baseline's accuracy changed by under a point over its last evaluations
    /// ([`plateaued`]); `None` while a baseline has fewer than two.
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
///
/// Each run is its setting's config stem and its evaluations (the warm start's, step 0, are
/// left out).
pub fn baseline_moves<'a>(
    runs: impl Iterator<Item = (&'a str, &'a [EvalRecord])>,
) -> Option<BTreeMap<String, f64>> {
    let mut last_two: BTreeMap<&str, Vec<[f64; 2]>> = BTreeMap::new();
    for (stem, evals) in runs {
        if variant(stem).is_ok_and(|v| !v.is_baseline()) {
            continue;
        }
        let curve: Vec<f64> = evals.iter().filter(|e| e.step > 0).map(|e| e.pass_at_1).collect();
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
        self.labelled_baselines().map(|(_, d)| d)
    }

    /// The same, each with the baseline's label (a label the study does not know counts as a
    /// baseline).
    fn labelled_baselines(&self) -> impl Iterator<Item = (&str, &Difference)> {
        self.primary
            .iter()
            .filter(|(label, _)| {
                VARIANTS.iter().find(|v| v.label == label).is_none_or(|v| v.is_baseline())
            })
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
        // Each RL run's evaluations during training, read as the report wrote them.
        let mut runs: Vec<(&str, Vec<EvalRecord>)> = Vec::new();
        for (i, m) in measured.iter().enumerate() {
            // Reports written before evaluations were kept have none.
            if let (Some(stem), false) = (m["variant"].as_str(), m["evals"].is_null()) {
                let evals = serde_json::from_value(m["evals"].clone())
                    .with_context(|| format!("measured[{i}].evals: not a list of evaluations"))?;
                runs.push((stem, evals));
            }
        }
        let moves = baseline_moves(runs.iter().map(|(stem, evals)| (*stem, evals.as_slice())));
        Ok(Self {
            gate_passes,
            primary,
            rsa_rises,
            // Such reports kept only the plateau they found.
            baselines_plateaued: moves
                .as_ref()
                .map(plateaued)
                .or_else(|| results["baselines_plateaued"].as_bool()),
            seeds,
            baseline_moves: moves.unwrap_or_default(),
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
    if all_hold(confirming(combination, countdown, arith)) {
        let arith_missing = arith.map(TaskEvidence::missing).unwrap_or_default();
        if arith_missing.is_empty() {
            return Verdict::Confirms;
        }
        return Verdict::Inconclusive(format!(
            "the confirming conditions hold, but arith, the control, is not measured at every \
             seed: {}",
            arith_missing.join(", ")
        ));
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
    text.push_str(&conditions::section(comb.as_ref(), count.as_ref(), arith.as_ref()));
    spiral_model::write_atomically(&dir.join("study-verdict.md"), text.as_bytes())?;
    Ok(text)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::primary::Method;

    pub(super) fn d(mean: f64, lo: f64, hi: f64) -> Difference {
        Difference { method: Method::MajAtNPlus1, mean, lo, hi }
    }

    pub(super) fn task(gate: bool, grpo: Difference, control: Difference) -> TaskEvidence {
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

    /// Evaluations at steps 0 (the warm start's), 50, 100, ... with these pass@1 from step 50.
    fn evals(pass_at_1: &[f64]) -> serde_json::Value {
        let at = |step: usize, pass: f64| {
            serde_json::json!({"step": step, "pass@1": pass, "maj@n": 0.0, "agg@1": 0.0,
                               "n": 4, "problems": 100})
        };
        let steps = pass_at_1.iter().enumerate().map(|(i, &p)| at(50 * (i + 1), p));
        serde_json::Value::Array(std::iter::once(at(0, 0.9)).chain(steps).collect())
    }

    #[test]
    fn seeds_and_plateaus_are_read_from_the_measured_runs() {
        let results = serde_json::json!({
            "gate": [{"holds": true}],
            "measured": [
                {"variant": null, "config": {"train": {"seed": 0}}, "evals": evals(&[])},
                {"variant": "grpo", "config": {"train": {"seed": 1}}, "evals": evals(&[0.5, 0.6, 0.62])},
                {"variant": "grpo", "config": {"train": {"seed": 2}}, "evals": evals(&[0.4, 0.45, 0.465])},
                {"variant": "dr_grpo", "config": {"train": {"seed": 1}}, "evals": evals(&[0.3, 0.305])},
                // SPIRAL and the control are not baselines: their climb does not count.
                {"variant": "default", "config": {"train": {"seed": 1}}, "evals": evals(&[0.1, 0.5])},
                {"variant": "multitask", "config": {"train": {"seed": 1}}, "evals": evals(&[0.1, 0.5])},
            ],
        });
        let e = TaskEvidence::from_results(&results).unwrap();
        assert_eq!(e.seeds["grpo"], 2);
        assert_eq!(e.seeds["default"], 1);
        assert!(e.missing().contains(&"grpo 2/5".to_string()), "{:?}", e.missing());
        // Means over seeds of the last move: grpo (0.02 + 0.015) / 2, dr_grpo 0.005.
        assert_eq!(e.baseline_moves.keys().collect::<Vec<_>>(), ["dr_grpo", "grpo"]);
        assert!((e.baseline_moves["grpo"] - 0.0175).abs() < 1e-12, "{:?}", e.baseline_moves);
        assert!((e.baseline_moves["dr_grpo"] - 0.005).abs() < 1e-12, "{:?}", e.baseline_moves);
        assert_eq!(e.baselines_plateaued, Some(false));
        assert!(plateaued(&BTreeMap::from([("grpo".into(), -0.009), ("dr_grpo".into(), 0.0)])));
        // A baseline evaluated once during training cannot say.
        let mut once = results.clone();
        once["measured"][3]["evals"] = evals(&[0.3]);
        let e = TaskEvidence::from_results(&once).unwrap();
        assert_eq!((e.baselines_plateaued, e.baseline_moves.len()), (None, 0));
        let mut broken = results;
        broken["measured"][1]["evals"][1]["pass@1"] = serde_json::json!("high");
        let err = TaskEvidence::from_results(&broken).unwrap_err();
        assert!(format!("{err:#}").contains("measured[1].evals"), "{err:#}");
    }

    #[test]
    fn a_report_from_before_evaluations_were_kept_gives_its_own_plateau() {
        let results = serde_json::json!({
            "gate": [{"holds": false}],
            "baselines_plateaued": true,
            "measured": [{"variant": "grpo", "config": {"train": {"seed": 1}}, "evals": null}],
        });
        let e = TaskEvidence::from_results(&results).unwrap();
        assert_eq!((e.baselines_plateaued, e.baseline_moves.len()), (Some(true), 0));
    }

    #[test]
    fn a_task_without_a_baseline_measured_decides_nothing() {
        let mut no_baselines = task(true, d(0.05, 0.02, 0.08), d(0.02, 0.005, 0.04));
        no_baselines.primary.retain(|(label, _)| label == "Multitask");
        let even = task(true, d(0.0, -0.01, 0.005), d(0.0, -0.01, 0.01));
        assert!(matches!(
            verdict(Some(&no_baselines), Some(&even), Some(&even)),
            Verdict::Inconclusive(_)
        ));
        assert!(matches!(
            verdict(Some(&even), Some(&no_baselines), None),
            Verdict::Inconclusive(_)
        ));
    }

    #[test]
    fn confirming_on_an_incomplete_control_says_what_the_control_lacks() {
        let win = task(true, d(0.05, 0.02, 0.08), d(0.02, 0.005, 0.04));
        let even = task(true, d(0.0, -0.01, 0.005), d(0.0, -0.01, 0.01));
        let mut arith = task(true, d(0.0, -0.02, 0.02), d(0.0, -0.01, 0.01));
        arith.seeds.insert("grpo".into(), 1);
        let Verdict::Inconclusive(why) = verdict(Some(&win), Some(&even), Some(&arith)) else {
            panic!("arith short of seeds cannot confirm");
        };
        assert!(why.contains("arith, the control") && why.contains("grpo 1/5"), "{why}");
    }
}
