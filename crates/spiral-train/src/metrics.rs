//! `metrics.jsonl`, the record of a run: one JSON object per line, typed as a [`Record`]
//! (`{"kind": "warm_start" | "train" | "eval", "step": ..., ...}`), appended and flushed line by
//! line so that a crash loses nothing already measured, and read back by the report and the
//! tests. Non-finite numbers (the loss of a skipped update) are written as `null` and read back
//! as NaN.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize};

use crate::evaluate::EvalMetrics;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A supervised warm-start step (every tenth, and the last).
    WarmStart(WarmStartRecord),
    /// An RL step.
    Train(TrainRecord),
    /// An evaluation on the held-out problems (step 0: the warm start).
    Eval(EvalRecord),
}

/// A warm-start step: the supervised loss and the optimiser's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmStartRecord {
    /// Warm-start step, from 0.
    pub step: usize,
    /// Mean token cross-entropy.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// Learning rate of the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    /// Global gradient norm before clipping.
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    /// Tokens trained on.
    pub tokens: usize,
    /// Wall-clock seconds of the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub step_seconds: f64,
    /// Trained tokens per second.
    #[serde(deserialize_with = "nan_if_null")]
    pub tokens_per_s: f64,
    /// The most pieces the step split a micro-batch into, as [`TrainRecord::learner_shards`];
    /// `None` in older logs.
    #[serde(default)]
    pub learner_shards: Option<usize>,
}

/// An RL step: what was collected, what the update did, and where the time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// RL step, from 1.
    pub step: usize,
    /// Mean reward of the search traces.
    #[serde(deserialize_with = "nan_if_null")]
    pub search_reward: f64,
    /// Mean reward of the aggregation traces (algorithms that aggregate).
    pub aggregation_reward: Option<f64>,
    /// Mean absolute advantage of the trained sequences.
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_abs_advantage: f64,
    /// Fraction of problems whose advantages were all zero.
    #[serde(deserialize_with = "nan_if_null")]
    pub zero_signal_fraction: f64,
    /// Sequences in the update.
    pub trained_sequences: usize,
    /// The policy-gradient loss.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// Fraction of tokens whose ratio was clipped.
    #[serde(deserialize_with = "nan_if_null")]
    pub clip_fraction: f64,
    /// Approximate KL between the sampling policy and the updated one.
    #[serde(deserialize_with = "nan_if_null")]
    pub approx_kl: f64,
    /// KL to the reference model (0 without a KL penalty).
    #[serde(deserialize_with = "nan_if_null")]
    pub ref_kl: f64,
    /// Mean token entropy of the policy.
    #[serde(deserialize_with = "nan_if_null")]
    pub entropy: f64,
    /// Learning rate of the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    /// Global gradient norm before clipping.
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    /// Whether the update was skipped (a non-finite loss or gradient).
    pub skipped_update: bool,
    /// Tokens sampled during collection.
    pub generated_tokens: usize,
    /// Tokens the update trained on.
    pub trained_tokens: usize,
    /// Seconds spent sampling.
    #[serde(deserialize_with = "nan_if_null")]
    pub rollout_seconds: f64,
    /// Seconds spent computing rewards.
    #[serde(deserialize_with = "nan_if_null")]
    pub reward_seconds: f64,
    /// Seconds spent scoring under the reference model.
    #[serde(deserialize_with = "nan_if_null")]
    pub reference_seconds: f64,
    /// Seconds spent in the update.
    #[serde(deserialize_with = "nan_if_null")]
    pub learn_seconds: f64,
    /// Generated tokens per rollout second.
    #[serde(deserialize_with = "nan_if_null")]
    pub rollout_tokens_per_s: f64,
    /// Trained tokens per learning second.
    #[serde(deserialize_with = "nan_if_null")]
    pub learn_tokens_per_s: f64,
    /// Mean k3 estimate of `KL(pi_rollout || pi_learner)` over the sampled tokens, before the
    /// update: how far the policy that sampled is from the one the learner computes.
    #[serde(default)]
    pub rollout_mismatch_kl: Option<f64>,
    /// The largest `exp(|log pi_learner - log pi_rollout|)` over the sampled tokens.
    #[serde(default)]
    pub rollout_mismatch_max_ratio: Option<f64>,
    /// Fraction of tokens the loss's correction (`train.loss.correction`) truncated or masked.
    #[serde(default)]
    pub corrected_fraction: f64,
    /// Rounds of collection the step took (`train.dynamic_sampling`; 1 without it).
    #[serde(default = "one")]
    pub dynamic_rounds: usize,
    /// Problems dynamic sampling dropped for carrying no training signal.
    #[serde(default)]
    pub dynamic_dropped: usize,
    /// Model FLOPs utilisation of sampling ([`crate::mfu`]).
    #[serde(default)]
    pub mfu_rollout: Option<f64>,
    /// Model FLOPs utilisation of the update.
    #[serde(default)]
    pub mfu_learn: Option<f64>,
    /// For algorithms that credit search traces through aggregation: the correlation of a
    /// search trace's advantage with its own reward (how much its credit says about it).
    #[serde(default)]
    pub search_credit_correlation: Option<f64>,
    /// Ranks the step ran on; with more than one, the seconds above are the ranks' mean.
    #[serde(default = "one_rank")]
    pub world_size: usize,
    /// The slowest rank's sampling seconds (the mean's excess over it is idle time elsewhere).
    #[serde(default, deserialize_with = "nan_if_null")]
    pub slowest_rollout_seconds: f64,
    /// The slowest rank's update seconds.
    #[serde(default, deserialize_with = "nan_if_null")]
    pub slowest_learn_seconds: f64,
    /// The most pieces the update split a micro-batch into on the first rank (one per CPU
    /// thread by default, or `RAYON_NUM_THREADS`; one on a GPU or with adapter dropout). Their
    /// gradients are summed in order, so a rerun must use as many to repeat the run bit for
    /// bit. `None` without an update, and in older logs.
    #[serde(default)]
    pub learner_shards: Option<usize>,
}

fn one_rank() -> usize {
    1
}

/// An evaluation: the headline metrics of [`EvalMetrics`] at an RL step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// RL step (0: the warm start, or the starting model).
    pub step: usize,
    /// Mean accuracy of single search traces.
    #[serde(rename = "pass@1", deserialize_with = "nan_if_null")]
    pub pass_at_1: f64,
    /// Accuracy of the majority answer of the n traces.
    #[serde(rename = "maj@n", deserialize_with = "nan_if_null")]
    pub maj_at_n: f64,
    /// Accuracy of one aggregation over the n traces.
    #[serde(rename = "agg@1", deserialize_with = "nan_if_null")]
    pub agg_at_1: f64,
    /// The same on problems with at least one correct trace.
    #[serde(rename = "agg@1|some_correct")]
    pub agg_given_correct: Option<f64>,
    /// The same on problems with no correct trace.
    #[serde(rename = "agg@1|none_correct")]
    pub agg_given_none: Option<f64>,
    /// Share of aggregation traces that answer with one of their candidates' answers.
    #[serde(rename = "agg_picks_candidate", default)]
    pub agg_picks: Option<f64>,
    /// Accuracy of those aggregation traces.
    #[serde(rename = "agg@1|picks_candidate", default)]
    pub agg_given_pick: Option<f64>,
    /// Combination only: accuracy of the aggregation on the parts some candidate answers
    /// correctly.
    #[serde(rename = "agg@1|part_solved", default)]
    pub agg_part_given_solved: Option<f64>,
    /// `agg@1|some_correct` over candidates the task makes up, where measured (the evaluation
    /// before RL).
    #[serde(
        rename = "agg@1|some_correct_made_up",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub agg_made_up_given_correct: Option<f64>,
    /// `agg@1|part_solved` over candidates the task makes up (combination).
    #[serde(
        rename = "agg@1|part_solved_made_up",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub agg_part_made_up: Option<f64>,
    /// The search policy's entropy, nats per token (mean surprise of its sampled tokens).
    #[serde(default)]
    pub search_entropy: Option<f64>,
    /// Distinct answers among a problem's n traces, averaged over problems.
    #[serde(default)]
    pub distinct_answers: Option<f64>,
    /// Traces per problem.
    pub n: usize,
    /// Problems evaluated.
    pub problems: usize,
    /// Unbiased pass@k for k = 2, 4, ... up to n, as `"pass@k": value`, in k order.
    #[serde(flatten)]
    pub pass_at_k: serde_json::Map<String, serde_json::Value>,
}

impl EvalRecord {
    /// The record of evaluation `e` at RL step `step`.
    pub fn new(step: usize, e: &EvalMetrics) -> Self {
        let pass_at_k =
            e.pass_at_k.iter().map(|(k, v)| (format!("pass@{k}"), serde_json::json!(v))).collect();
        Self {
            step,
            pass_at_1: e.pass_at_1,
            maj_at_n: e.maj_at_n,
            agg_at_1: e.agg_at_1,
            agg_given_correct: e.agg_given_correct,
            agg_given_none: e.agg_given_none,
            agg_picks: e.agg_picks,
            agg_given_pick: e.agg_given_pick,
            agg_part_given_solved: e.agg_part_given_solved,
            agg_made_up_given_correct: e.agg_made_up_given_correct,
            agg_part_made_up: e.agg_part_made_up,
            search_entropy: e.search_entropy,
            distinct_answers: Some(e.distinct_answers),
            n: e.n,
            problems: e.problems,
            pass_at_k,
        }
    }

    /// pass@k for each k recorded, in k order.
    pub fn pass_at_k(&self) -> Vec<(usize, f64)> {
        let mut values: Vec<(usize, f64)> = self
            .pass_at_k
            .iter()
            .filter_map(|(key, v)| Some((key.strip_prefix("pass@")?.parse().ok()?, v.as_f64()?)))
            .collect();
        values.sort_by_key(|&(k, _)| k);
        values
    }
}

/// `null` (how JSON writes a non-finite number) as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Reads every record of a `metrics.jsonl`; the error names the line that is not one.
pub fn read_metrics(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!("{}:{}: not a metrics record (kind, step, ...)", path.display(), i + 1)
            })
        })
        .collect()
}

/// Appends [`Record`]s to `metrics.jsonl`, one line each, flushed after each line.
pub(crate) struct MetricsWriter {
    /// `None` on ranks other than 0 of a data-parallel run, which count but do not write.
    file: Option<std::fs::File>,
    /// The file's length: where a checkpoint taken now would cut it on resume.
    pub(crate) bytes: u64,
}

impl MetricsWriter {
    /// Opens `path` keeping its first `keep` bytes (0: a new file), the length a checkpoint
    /// recorded, so that a resumed run rewrites the lines that followed it.
    pub(crate) fn open(path: &Path, keep: u64) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        anyhow::ensure!(
            keep <= len,
            "{} has {len} bytes but the checkpoint recorded {keep}: it was truncated after the \
             checkpoint was taken",
            path.display()
        );
        file.set_len(keep)?;
        Ok(Self { file: Some(file), bytes: keep })
    }

    /// A writer that writes nothing: the metrics of a data-parallel run are rank 0's to write.
    pub(crate) fn discard(keep: u64) -> Self {
        Self { file: None, bytes: keep }
    }

    /// Appends `record` as one line.
    pub(crate) fn log(&mut self, record: Record) -> anyhow::Result<()> {
        let line = format!("{}\n", serde_json::to_string(&record)?);
        if let Some(file) = &mut self.file {
            file.write_all(line.as_bytes())?;
            file.flush()?;
        }
        self.bytes += line.len() as u64;
        Ok(())
    }
}

/// The default of counts that are 1 unless said otherwise.
fn one() -> usize {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_with_non_finite_numbers_as_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut writer = MetricsWriter::open(&path, 0).unwrap();
        let warm = WarmStartRecord {
            step: 0,
            loss: f64::NAN,
            lr: 1e-3,
            grad_norm: 2.0,
            tokens: 10,
            step_seconds: 0.5,
            tokens_per_s: 20.0,
            learner_shards: Some(2),
        };
        writer.log(Record::WarmStart(warm.clone())).unwrap();
        let eval = EvalRecord::new(
            0,
            &EvalMetrics {
                pass_at_1: 0.25,
                pass_at_k: vec![(2, 0.4), (4, 0.5)],
                maj_at_n: 0.3,
                agg_at_1: 0.35,
                problems: 8,
                n: 4,
                agg_given_correct: Some(0.5),
                agg_given_none: None,
                agg_picks: Some(0.75),
                agg_given_pick: Some(0.4),
                agg_part_given_solved: Some(0.6),
                agg_made_up_given_correct: None,
                agg_part_made_up: None,
                search_entropy: Some(0.9),
                distinct_answers: 2.5,
                transcripts: vec![],
            },
        );
        writer.log(Record::Eval(eval.clone())).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with(r#"{"kind":"warm_start","step":0,"loss":null,"#), "{first}");
        assert!(text.contains(r#""pass@1":0.25"#) && text.contains(r#""pass@4":0.5}"#), "{text}");

        let records = read_metrics(&path).unwrap();
        let Record::WarmStart(read) = &records[0] else { panic!("{records:?}") };
        assert!(read.loss.is_nan());
        assert_eq!(
            WarmStartRecord { loss: 0.0, ..read.clone() },
            WarmStartRecord { loss: 0.0, ..warm }
        );
        assert_eq!(records[1], Record::Eval(eval.clone()));
        let Record::Eval(read) = &records[1] else { unreachable!() };
        assert_eq!(read.pass_at_k(), vec![(2, 0.4), (4, 0.5)]);

        // Reopened at the first line's length, the file loses the second.
        let reopened = MetricsWriter::open(&path, first.len() as u64 + 1).unwrap();
        assert_eq!(read_metrics(&path).unwrap().len(), 1);
        drop(reopened);
        let err = MetricsWriter::open(&path, 1 << 20).err().unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
        std::fs::write(&path, "{\"kind\": \"nonsense\"}\n").unwrap();
        let err = read_metrics(&path).unwrap_err();
        assert!(err.to_string().contains("metrics.jsonl:1"), "{err}");
    }
}
