//! What each RL run did while it trained, and the report's section on it.
//!
//! A run's `metrics.jsonl` is read when the run is measured, and what it says is kept with the
//! measurement ([`TrainingSummary`]): the tokens it generated and trained on per step (the
//! study matches generated tokens per problem across settings, but not trained tokens: the
//! settings that aggregate train on long aggregation prompts), its time per step, and, for the
//! settings that aggregate while training, the correlation of a search trace's credit with
//! the trace's own reward (how much set credit says about the trace; logged each step as
//! `search_credit_correlation`). With the held-out evaluations during training, the report
//! shows each setting's course: pass@1 and agg@1 by RL step, the search policy's entropy, and
//! agg@1 split by whether some candidate was correct (the study's secondary metrics).

use serde::{Deserialize, Serialize};
use spiral_eval::{Curve, Figure, Scale, Section, Table};
use spiral_set_rl::mean;
use spiral_train::{EvalRecord, Record, TrainRecord};

use super::summary::mean_curve;
use super::{Measured, VARIANTS};

/// One RL run's training, summarised over its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// RL steps recorded.
    pub steps: usize,
    /// Tokens sampled per step (search and aggregation traces), mean over the steps.
    pub generated_tokens_per_step: f64,
    /// Tokens the update trained on per step, mean over the steps.
    pub trained_tokens_per_step: f64,
    /// Seconds per step (sampling, rewards, reference and update), mean over the steps.
    pub seconds_per_step: f64,
    /// Mean over the steps that logged it of the correlation of a search trace's advantage
    /// with its own reward; `None` for settings that do not aggregate while training (their
    /// search traces are credited by their own rewards alone, and it is not logged).
    pub search_credit_correlation: Option<f64>,
    /// The learner's shard counts over the steps, each once, sorted (one per CPU thread by
    /// default; a rerun with as many repeats the run bit for bit); empty where the log
    /// predates them.
    #[serde(default)]
    pub learner_shards: Vec<usize>,
}

/// The summary of `records`' RL steps; `None` without any (a warm start). A step written
/// twice (a run resumed from an older checkpoint) counts once, as last written.
pub fn summarize(records: &[Record]) -> Option<TrainingSummary> {
    let mut by_step = std::collections::BTreeMap::<usize, &TrainRecord>::new();
    for r in records {
        if let Record::Train(t) = r {
            by_step.insert(t.step, t);
        }
    }
    if by_step.is_empty() {
        return None;
    }
    let steps: Vec<&TrainRecord> = by_step.into_values().collect();
    let mean_of =
        |f: fn(&TrainRecord) -> f64| mean(&steps.iter().map(|t| f(t)).collect::<Vec<_>>());
    let correlations: Vec<f64> = steps
        .iter()
        .filter_map(|t| t.search_credit_correlation)
        .filter(|c| c.is_finite())
        .collect();
    Some(TrainingSummary {
        steps: steps.len(),
        generated_tokens_per_step: mean_of(|t| t.generated_tokens as f64),
        trained_tokens_per_step: mean_of(|t| t.trained_tokens as f64),
        seconds_per_step: mean_of(|t| {
            t.rollout_seconds + t.reward_seconds + t.reference_seconds + t.learn_seconds
        }),
        search_credit_correlation: (!correlations.is_empty()).then(|| mean(&correlations)),
        learner_shards: steps
            .iter()
            .filter_map(|t| t.learner_shards)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    })
}

/// The report's "Training" section: a table of each setting's training and of its last
/// held-out evaluation (means over the seeds that recorded each value), and pass@1 and agg@1
/// against the RL step.
pub fn section(measured: &[Measured]) -> Section {
    let mut rows = Vec::new();
    if let Some(warm) = measured.iter().find(|m| m.variant.is_none()) {
        let at_start: Vec<&EvalRecord> = warm.evals.iter().filter(|e| e.step == 0).collect();
        rows.push(row("warm start", "", &[], &at_start));
    }
    let mut pass = Vec::new();
    let mut agg = Vec::new();
    for setting in VARIANTS {
        let seeds: Vec<&Measured> = Measured::of_setting(measured, setting.stem).collect();
        if seeds.is_empty() {
            continue;
        }
        let summaries: Vec<&TrainingSummary> =
            seeds.iter().filter_map(|m| m.training.as_ref()).collect();
        let last: Vec<&EvalRecord> = seeds.iter().filter_map(|m| m.evals.last()).collect();
        rows.push(row(setting.label, &seeds.len().to_string(), &summaries, &last));
        pass.extend(by_step(setting.label, &seeds, |e| e.pass_at_1));
        agg.extend(by_step(setting.label, &seeds, |e| e.agg_at_1));
    }
    let columns = [
        "setting",
        "seeds",
        "generated tokens / step",
        "trained tokens / step",
        "s / step",
        "search credit vs own reward",
        "learner shards",
        "search entropy",
        "agg@1, some correct",
        "agg@1, none correct",
    ];
    let figure = |name: &str, title: &str, curves: Vec<Curve>| Figure {
        name: name.into(),
        title: title.into(),
        x_label: "RL step".into(),
        y_label: "accuracy".into(),
        x_scale: Scale::Linear,
        curves,
    };
    Section {
        heading: "Training".into(),
        text: "Each setting's RL runs, means over the seeds that recorded each value (`-`: \
               none did; runs measured before their training was kept with their measurement). \
               Tokens and seconds are per step of the run's own logs; the search credit column \
               is the mean over steps of the correlation of a search trace's advantage with its \
               own reward, logged by the settings that aggregate while training. Learner shards: \
               the most pieces the update split a micro-batch into, whose gradients it sums in \
               order (one per CPU thread by default, one on a GPU or with adapter dropout); a \
               rerun with as many repeats the run bit for bit. The last three \
               columns are the last held-out evaluation during training (the warm start's \
               before RL): the search policy's entropy in nats per token, and agg@1 over the \
               evaluation's traces split by whether one of them was correct. Below, pass@1 and \
               agg@1 at each of those evaluations."
            .into(),
        table: Some(Table { columns: columns.iter().map(|c| c.to_string()).collect(), rows }),
        figures: vec![
            figure("training_pass_at_1", "held-out pass@1 during training", pass),
            figure("training_agg_at_1", "held-out agg@1 during training", agg),
        ],
        ..Default::default()
    }
}

/// One table row: `label`, its seed count, and the means over `summaries` and `evals`.
fn row(
    label: &str,
    seeds: &str,
    summaries: &[&TrainingSummary],
    evals: &[&EvalRecord],
) -> Vec<String> {
    let show = |values: Vec<f64>, decimals: usize| {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() { "-".to_string() } else { format!("{:.*}", decimals, mean(&values)) }
    };
    let of = |f: fn(&TrainingSummary) -> f64, decimals| {
        show(summaries.iter().map(|s| f(s)).collect(), decimals)
    };
    let at =
        |f: fn(&EvalRecord) -> Option<f64>| show(evals.iter().filter_map(|e| f(e)).collect(), 3);
    vec![
        label.to_string(),
        seeds.to_string(),
        of(|s| s.generated_tokens_per_step, 0),
        of(|s| s.trained_tokens_per_step, 0),
        of(|s| s.seconds_per_step, 1),
        show(summaries.iter().filter_map(|s| s.search_credit_correlation).collect(), 2),
        shards(summaries),
        at(|e| e.search_entropy),
        at(|e| e.agg_given_correct),
        at(|e| e.agg_given_none),
    ]
}

/// The learner shard counts `summaries` ran with (`2`, or `1, 2` across seeds or resumes).
fn shards(summaries: &[&TrainingSummary]) -> String {
    let all: std::collections::BTreeSet<usize> =
        summaries.iter().flat_map(|s| s.learner_shards.iter().copied()).collect();
    if all.is_empty() {
        return "-".into();
    }
    all.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

/// `metric` at each held-out evaluation of `seeds`' runs, averaged over the seeds that were
/// evaluated at the same steps as the first; `None` without evaluations.
fn by_step(label: &str, seeds: &[&Measured], metric: fn(&EvalRecord) -> f64) -> Option<Curve> {
    let steps = |m: &Measured| m.evals.iter().map(|e| e.step).collect::<Vec<_>>();
    let first = steps(seeds.first()?);
    if first.is_empty() {
        return None;
    }
    let curves: Vec<Curve> = seeds
        .iter()
        .filter(|m| steps(m) == first)
        .map(|m| Curve::new(label, m.evals.iter().map(|e| (e.step as f64, metric(e)))))
        .collect();
    Some(mean_curve(label, &curves.iter().collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        step: usize,
        generated: usize,
        correlation: Option<f64>,
        shards: Option<usize>,
    ) -> Record {
        let mut line = serde_json::json!({
            "kind": "train", "step": step, "search_reward": 0.5, "aggregation_reward": null,
            "mean_abs_advantage": 0.1, "zero_signal_fraction": 0.0, "trained_sequences": 4,
            "loss": 0.0, "clip_fraction": 0.0, "approx_kl": 0.0, "ref_kl": 0.0, "entropy": 0.1,
            "lr": 1e-4, "grad_norm": 1.0, "skipped_update": false,
            "generated_tokens": generated, "trained_tokens": generated / 2,
            "rollout_seconds": 1.0, "reward_seconds": 0.5, "reference_seconds": 0.0,
            "learn_seconds": 2.5, "rollout_tokens_per_s": 1.0, "learn_tokens_per_s": 1.0,
        });
        if let Some(c) = correlation {
            line["search_credit_correlation"] = serde_json::json!(c);
        }
        if let Some(shards) = shards {
            line["learner_shards"] = serde_json::json!(shards);
        }
        serde_json::from_value(line).unwrap()
    }

    #[test]
    fn a_summary_averages_each_step_once() {
        let records = [
            step(1, 100, Some(0.2), Some(2)),
            step(2, 300, None, Some(3)),
            // Step 2 again, as a run resumed from step 1's checkpoint writes it, elsewhere.
            step(2, 500, Some(0.4), Some(1)),
        ];
        let s = summarize(&records).unwrap();
        assert_eq!(s.steps, 2);
        assert_eq!(s.generated_tokens_per_step, 300.0);
        assert_eq!(s.trained_tokens_per_step, 150.0);
        assert_eq!(s.seconds_per_step, 4.0);
        assert!((s.search_credit_correlation.unwrap() - 0.3).abs() < 1e-12);
        // Step 1 on 2 shards, step 2 (as rewritten) on 1.
        assert_eq!(s.learner_shards, [1, 2]);
        assert_eq!(shards(&[&s]), "1, 2");
    }

    #[test]
    fn no_rl_steps_no_summary_and_no_correlation_where_none_was_logged() {
        assert_eq!(summarize(&[]), None);
        let s = summarize(&[step(1, 10, None, None)]).unwrap();
        assert_eq!(s.search_credit_correlation, None);
        assert_eq!(shards(&[&s]), "-", "a log from before shard counts were kept");
    }
}
