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

use crate::ReproOptions;
use crate::primary::Difference;

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
}

impl TaskEvidence {
    /// The differences against the baselines proper (the control and the other SPIRAL setting
    /// excluded).
    fn baselines(&self) -> impl Iterator<Item = &Difference> {
        self.primary
            .iter()
            .filter(|(label, _)| !label.starts_with("SPIRAL") && label != "Multitask")
            .map(|(_, d)| d)
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
        // SPIRAL's RSA pass@1, round by round, averaged over its seeds.
        let rounds: Vec<Vec<f64>> = results["measured"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
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
        for m in results["measured"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let (Some(stem), Some(seed)) =
                (m["variant"].as_str(), m["config"]["train"]["seed"].as_u64())
            {
                seeds_of.entry(stem.to_string()).or_default().insert(seed);
            }
        }
        let seeds = seeds_of.into_iter().map(|(stem, seeds)| (stem, seeds.len())).collect();
        Ok(Self {
            gate_passes,
            primary,
            rsa_rises,
            baselines_plateaued: results["baselines_plateaued"].as_bool(),
            seeds,
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
    let confirms = comb.baselines().all(|d| d.mean >= 0.03 && d.lo > 0.0)
        && count.baselines().all(|d| d.mean >= 0.0)
        && comb.against("Multitask").is_some_and(|d| d.lo > 0.0)
        && comb.rsa_rises == Some(true)
        && arith.is_some_and(|a| a.missing().is_empty() && a.baselines().all(|d| d.lo <= 0.0));
    if confirms {
        return Verdict::Confirms;
    }
    let refutes = comb.baselines_plateaued == Some(true)
        && count.baselines_plateaued == Some(true)
        && comb.baselines().chain(count.baselines()).all(|d| d.hi < 0.01);
    if refutes {
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
                "- {task}: gate {}, {} primary comparisons, RSA {}, baselines {}\n",
                if e.gate_passes { "passed" } else { "failed" },
                e.primary.len(),
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
    spiral_model::write_atomically(&dir.join("study-verdict.md"), text.as_bytes())?;
    Ok(text)
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
}
