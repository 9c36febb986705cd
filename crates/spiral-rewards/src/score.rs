//! Scoring a JSONL file of responses: the logic of `spiral-eval score`.
//!
//! Each input line is a JSON object with a response and the problem's reference fields; each
//! output line is `{"reward": 1.0, "extracted": "...", "failure": null, "line": 3}`, in input
//! order (blank input lines are skipped; `line` is the input line number, so outputs can be joined
//! back to inputs even when lines are skipped). A malformed line is an error naming its line, or,
//! with `skip_bad`, is counted and reported in the summary.

use std::fmt;
use std::io::{BufRead, Write};

use serde::Serialize;

use crate::dataset::{FieldNames, JsonlRecords, problem_from_record};
use crate::error::RewardError;
use crate::reward::{Failure, Reward};
use crate::task::{Task, TaskReward};

/// How many malformed lines the summary keeps the messages of.
const MAX_REPORTED: usize = 20;

/// What to score and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreOptions {
    /// The task of every line.
    pub task: Task,
    /// The field holding the response text.
    pub response_field: String,
    /// The fields holding the problem and answer (see [`FieldNames`]).
    pub fields: FieldNames,
    /// Count malformed lines instead of stopping at the first.
    pub skip_bad: bool,
    /// The rewards used.
    pub reward: TaskReward,
}

impl ScoreOptions {
    /// Defaults for `task`: response in `response`, the task's usual field names, stop at the
    /// first malformed line.
    pub fn new(task: Task) -> Self {
        Self {
            task,
            response_field: "response".into(),
            fields: FieldNames::for_task(task),
            skip_bad: false,
            reward: TaskReward::default(),
        }
    }
}

/// Totals of a scored file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// Lines scored.
    pub count: usize,
    /// Sum of their rewards.
    pub reward_sum: f64,
    /// Lines judged correct.
    pub correct: usize,
    /// Lines whose response had no final answer.
    pub no_answer: usize,
    /// Malformed lines skipped (with `skip_bad`).
    pub skipped: usize,
    /// The first malformed lines' errors.
    pub skipped_errors: Vec<String>,
}

impl ScoreSummary {
    /// Mean reward over scored lines (0 when none).
    pub fn mean_reward(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.reward_sum / self.count as f64 }
    }
}

impl fmt::Display for ScoreSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scored {} line{}: mean reward {:.4}, {} correct, {} without an answer, {} skipped",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.mean_reward(),
            self.correct,
            self.no_answer,
            self.skipped
        )
    }
}

/// One output line.
#[derive(Serialize)]
struct ScoredLine<'a> {
    reward: f64,
    extracted: Option<&'a str>,
    failure: Option<String>,
    line: usize,
}

/// Scores every line of `input` (named `source` in errors), writing one JSON line per scored
/// input line to `out`.
///
/// ```
/// use spiral_rewards::{ScoreOptions, Task, score_jsonl};
///
/// let input = "{\"response\": \"\\\\boxed{4}\", \"answer\": \"4\"}\n\
///              {\"response\": \"no idea\", \"answer\": \"5\"}\n";
/// let mut out = Vec::new();
/// let summary = score_jsonl(input.as_bytes(), "in.jsonl", &ScoreOptions::new(Task::Math), &mut out).unwrap();
/// assert_eq!((summary.count, summary.correct, summary.mean_reward()), (2, 1, 0.5));
/// let first = String::from_utf8(out).unwrap().lines().next().unwrap().to_owned();
/// assert_eq!(first, r#"{"reward":1.0,"extracted":"4","failure":null,"line":1}"#);
/// ```
pub fn score_jsonl(
    input: impl BufRead,
    source: &str,
    options: &ScoreOptions,
    out: &mut impl Write,
) -> Result<ScoreSummary, RewardError> {
    let mut summary = ScoreSummary::default();
    for record in JsonlRecords::new(input, source) {
        let scored = record.and_then(|record| {
            let line = record.line;
            let response = match record.object.get(&options.response_field) {
                Some(serde_json::Value::String(s)) => s.as_str(),
                Some(_) => {
                    let m = format!("field `{}` must be a string", options.response_field);
                    return Err(RewardError::line(source, line, m));
                }
                None => {
                    let m = format!("missing field `{}`", options.response_field);
                    return Err(RewardError::line(source, line, m));
                }
            };
            let problem = problem_from_record(options.task, &record, &options.fields, false)
                .map_err(|m| RewardError::line(source, line, m))?;
            Ok((line, options.reward.score(&problem, response)))
        });
        let (line, scored) = match scored {
            Ok(ok) => ok,
            Err(e) if options.skip_bad && matches!(e, RewardError::Line { .. }) => {
                summary.skipped += 1;
                if summary.skipped_errors.len() < MAX_REPORTED {
                    summary.skipped_errors.push(e.to_string());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        summary.count += 1;
        summary.reward_sum += scored.reward;
        summary.correct += usize::from(scored.is_correct());
        summary.no_answer += usize::from(scored.failure == Some(Failure::NoAnswer));
        let row = ScoredLine {
            reward: scored.reward,
            extracted: scored.extracted.as_deref(),
            failure: scored.failure.as_ref().map(Failure::to_string),
            line,
        };
        serde_json::to_writer(&mut *out, &row).map_err(|e| RewardError::Write(e.into()))?;
        out.write_all(b"\n").map_err(RewardError::Write)?;
    }
    out.flush().map_err(RewardError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        options: &ScoreOptions,
        input: &str,
    ) -> Result<(ScoreSummary, Vec<String>), RewardError> {
        let mut out = Vec::new();
        let summary = score_jsonl(input.as_bytes(), "in.jsonl", options, &mut out)?;
        let lines = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
        Ok((summary, lines))
    }

    #[test]
    fn scores_each_task() {
        let (s, lines) = run(
            &ScoreOptions::new(Task::Countdown),
            "{\"nums\": [75, 25, 2], \"target\": 100, \"response\": \"\\\\boxed{(75-25)*2}\"}\n\
             {\"nums\": \"3 4\", \"target\": 12, \"response\": \"\\\\boxed{3+4}\"}",
        )
        .unwrap();
        assert_eq!((s.count, s.correct), (2, 1));
        assert!(lines[1].contains("\"failure\":\"expression equals 7, not the target 12\""));
        let (s, _) =
            run(&ScoreOptions::new(Task::Arith), "{\"answer\": 5, \"response\": \"\\\\boxed{5}\"}")
                .unwrap();
        assert_eq!(s.correct, 1);
    }

    #[test]
    fn custom_fields_and_summary_text() {
        let options = ScoreOptions {
            response_field: "completion".into(),
            fields: FieldNames { problem: "q".into(), answer: "gold".into() },
            ..ScoreOptions::new(Task::Math)
        };
        let (s, lines) = run(
            &options,
            "{\"completion\": \"The answer is 7.\", \"gold\": \"7\"}\n\n{\"completion\": \"\", \"gold\": \"1\"}",
        )
        .unwrap();
        assert_eq!(
            lines[1],
            r#"{"reward":0.0,"extracted":null,"failure":"no final answer found (expected \\boxed{...} or \"the answer is ...\")","line":3}"#
        );
        assert_eq!(
            s.to_string(),
            "scored 2 lines: mean reward 0.5000, 1 correct, 1 without an answer, 0 skipped"
        );
    }

    #[test]
    fn malformed_lines_stop_or_are_skipped() {
        let input = "{\"response\": \"\\\\boxed{1}\", \"answer\": \"1\"}\n{\"answer\": \"1\"}\nnot json\n{\"response\": 3, \"answer\": \"1\"}";
        let err = run(&ScoreOptions::new(Task::Math), input).unwrap_err();
        assert_eq!(err.to_string(), "in.jsonl:2: missing field `response`");
        let skip = ScoreOptions { skip_bad: true, ..ScoreOptions::new(Task::Math) };
        let (s, lines) = run(&skip, input).unwrap();
        assert_eq!((s.count, s.skipped, lines.len()), (1, 3, 1));
        assert!(s.skipped_errors[1].starts_with("in.jsonl:3: invalid JSON"));
        assert!(s.skipped_errors[2].contains("`response` must be a string"));
    }

    #[test]
    fn big_numeric_references_are_exact() {
        let input = "{\"answer\": 123456789012345678901234567890, \"response\": \"\\\\boxed{123456789012345678901234567891}\"}\n\
                     {\"answer\": 123456789012345678901234567890, \"response\": \"\\\\boxed{123456789012345678901234567890}\"}";
        let (s, lines) = run(&ScoreOptions::new(Task::Math), input).unwrap();
        assert_eq!((s.count, s.correct), (2, 1), "{lines:?}");
        assert!(lines[0].starts_with("{\"reward\":0.0"), "{}", lines[0]);
    }

    #[test]
    fn empty_input() {
        let (s, lines) = run(&ScoreOptions::new(Task::Math), "").unwrap();
        assert_eq!((s.count, s.mean_reward(), lines.len()), (0, 0.0, 0));
    }
}
