//! The JSONL request/response format behind `spiral-eval advantages`, for users who sample
//! elsewhere and want these estimators.
//!
//! One JSON object per line in, one per line out, same order, same `id` (any JSON value, echoed
//! back as it came). Blank lines are skipped. Group estimators:
//!
//! ```text
//! {"id": "q1", "estimator": "grpo", "rewards": [1, 0, 0, 1]}
//! {"id": "q1", "advantages": [0.866, -0.866, -0.866, 0.866]}
//! ```
//!
//! `estimator` is one of `grpo`, `dr_grpo`, `rloo`, `pass_at_k` (which also needs `"k"` and takes
//! an optional `"normalize_std"`). SPIRAL:
//!
//! ```text
//! {"id": "q2", "estimator": "spiral", "num_search": 4, "sets": [[0, 1], [1, 2]],
//!  "aggregation_rewards": [[1, 1], [0, 0]]}
//! {"id": "q2", "search_advantages": [0.5, 0.0, -0.5, 0.0],
//!  "aggregation_advantages": [[0.0, 0.0], [0.0, 0.0]], "set_advantages": [0.5, -0.5]}
//! ```
//!
//! (each shown on two lines here; one line each in the files), with an optional
//! `"normalize_std"`. `num_search` is at most [`MAX_SEARCH_TRACES`](crate::MAX_SEARCH_TRACES)
//! (checked before anything is allocated). Unknown fields are refused so a misspelt option is
//! not silently ignored.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SetRlError;
use crate::estimator::Estimator;
use crate::spiral::{SpiralConfig, spiral_advantages};

/// One input line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdvantageRequest {
    /// GRPO on one group.
    Grpo {
        /// Echoed back.
        id: Value,
        /// `[N]` rewards.
        rewards: Vec<f64>,
    },
    /// Dr.GRPO on one group.
    DrGrpo {
        /// Echoed back.
        id: Value,
        /// `[N]` rewards.
        rewards: Vec<f64>,
    },
    /// RLOO on one group.
    Rloo {
        /// Echoed back.
        id: Value,
        /// `[N]` rewards.
        rewards: Vec<f64>,
    },
    /// pass@k on one group of 0/1 rewards.
    PassAtK {
        /// Echoed back.
        id: Value,
        /// `[N]` rewards, each 0 or 1.
        rewards: Vec<f64>,
        /// Subset size, `1 <= k <= N`.
        k: usize,
        /// Divide by the subset reward's std (Chen et al.); default false (ParaGator).
        #[serde(default)]
        normalize_std: bool,
    },
    /// SPIRAL on one problem.
    Spiral {
        /// Echoed back.
        id: Value,
        /// N1, the number of search traces (at most [`MAX_SEARCH_TRACES`](crate::MAX_SEARCH_TRACES)).
        num_search: usize,
        /// `[K][n]` search-trace indices of each set.
        sets: Vec<Vec<usize>>,
        /// `[K][N2]` rewards of each set's aggregation traces.
        aggregation_rewards: Vec<Vec<f64>>,
        /// Divide by the std (off in the paper).
        #[serde(default)]
        normalize_std: bool,
    },
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AdvantageResponse {
    /// The answer to a group estimator.
    Group {
        /// The request's id.
        id: Value,
        /// `[N]` advantages.
        advantages: Vec<f64>,
    },
    /// The answer to a SPIRAL request.
    Spiral {
        /// The request's id.
        id: Value,
        /// `[N1]` search-trace advantages.
        search_advantages: Vec<f64>,
        /// `[K][N2]` aggregation-trace advantages.
        aggregation_advantages: Vec<Vec<f64>>,
        /// `[K]` set advantages (for inspection).
        set_advantages: Vec<f64>,
    },
}

impl AdvantageRequest {
    /// Parses one line; serde's message without its "at line 1 column N" (the caller knows the
    /// line), with the column kept when serde knows it. Errors found after the object was read
    /// (an unknown estimator, a missing field: the tag makes serde buffer the object) have no
    /// position, and get none rather than a meaningless "column 0".
    pub fn parse(line: &str) -> Result<Self, SetRlError> {
        serde_json::from_str(line).map_err(|e| {
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            SetRlError::Parse(if e.line() == 0 {
                message.to_string()
            } else {
                format!("{message} (column {})", e.column())
            })
        })
    }

    /// Computes the advantages the request asks for.
    pub fn respond(self) -> Result<AdvantageResponse, SetRlError> {
        let group = |id, est: Estimator, rewards: Vec<f64>| {
            Ok(AdvantageResponse::Group { id, advantages: est.advantages(&rewards)? })
        };
        match self {
            AdvantageRequest::Grpo { id, rewards } => group(id, Estimator::Grpo, rewards),
            AdvantageRequest::DrGrpo { id, rewards } => group(id, Estimator::DrGrpo, rewards),
            AdvantageRequest::Rloo { id, rewards } => group(id, Estimator::Rloo, rewards),
            AdvantageRequest::PassAtK { id, rewards, k, normalize_std } => {
                group(id, Estimator::PassAtK { k, normalize_std }, rewards)
            }
            AdvantageRequest::Spiral {
                id,
                num_search,
                sets,
                aggregation_rewards,
                normalize_std,
            } => {
                let config = SpiralConfig { normalize_std, ..Default::default() };
                let a = spiral_advantages(num_search, &sets, &aggregation_rewards, &config)?;
                Ok(AdvantageResponse::Spiral {
                    id,
                    search_advantages: a.search_advantages,
                    aggregation_advantages: a.aggregation_advantages,
                    set_advantages: a.set_advantages,
                })
            }
        }
    }
}

/// Reads requests from `input` and writes one response line per request to `output`.
///
/// All lines are processed before anything is written, so a bad line leaves `output` empty. The
/// error for a bad line is [`SetRlError::Line`] with its 1-based number. Returns the number of
/// responses written.
pub fn process_jsonl<R: BufRead, W: Write>(input: R, mut output: W) -> Result<usize, SetRlError> {
    let mut responses = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let at_line = |error| SetRlError::Line { line: i + 1, error: Box::new(error) };
        let line = line.map_err(|e| at_line(SetRlError::Io(e.to_string())))?;
        if line.trim().is_empty() {
            continue;
        }
        let response = AdvantageRequest::parse(&line).and_then(AdvantageRequest::respond);
        responses.push(response.map_err(at_line)?);
    }
    for response in &responses {
        let json = serde_json::to_string(response).expect("responses hold only finite numbers");
        writeln!(output, "{json}").map_err(|e| SetRlError::Io(e.to_string()))?;
    }
    output.flush().map_err(|e| SetRlError::Io(e.to_string()))?;
    Ok(responses.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(input: &str) -> Result<Vec<Value>, SetRlError> {
        let mut out = Vec::new();
        let n = process_jsonl(input.as_bytes(), &mut out)?;
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), n);
        Ok(lines)
    }

    #[test]
    fn every_estimator_in_order_with_ids() {
        let input = r#"{"id": "a", "estimator": "dr_grpo", "rewards": [1, 0, 0, 1]}

{"id": 7, "estimator": "rloo", "rewards": [1, 0, 0]}
{"id": "c", "estimator": "pass_at_k", "rewards": [1, 0, 0, 0], "k": 2}
{"id": "d", "estimator": "grpo", "rewards": [0.5, 0.5]}
{"id": "e", "estimator": "spiral", "num_search": 4, "sets": [[0, 1], [1, 2]], "aggregation_rewards": [[1, 1], [0, 0]]}
"#;
        let out = run(input).unwrap();
        assert_eq!(out[0], json!({"id": "a", "advantages": [0.5, -0.5, -0.5, 0.5]}));
        assert_eq!(out[1], json!({"id": 7, "advantages": [1.0, -0.5, -0.5]}));
        assert_eq!(out[2]["id"], "c");
        let pk = out[2]["advantages"].as_array().unwrap();
        assert!((pk[0].as_f64().unwrap() - 0.5).abs() < 1e-12);
        assert!((pk[1].as_f64().unwrap() + 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(out[3], json!({"id": "d", "advantages": [0.0, 0.0]}));
        assert_eq!(
            out[4],
            json!({
                "id": "e",
                "search_advantages": [0.5, 0.0, -0.5, 0.0],
                "aggregation_advantages": [[0.0, 0.0], [0.0, 0.0]],
                "set_advantages": [0.5, -0.5],
            })
        );
    }

    #[test]
    fn bad_lines_name_line_and_problem() {
        let cases = [
            (r#"{"id": 1, "estimator": "ppo", "rewards": [1]}"#, "unknown variant `ppo`"),
            (r#"{"id": 1, "rewards": [1]}"#, "missing field `estimator`"),
            (r#"{"id": 1, "estimator": "pass_at_k", "rewards": [1, 0]}"#, "missing field `k`"),
            (r#"{"id": 1, "estimator": "pass_at_k", "rewards": [1, 0], "k": 3}"#, "k = 3"),
            (r#"{"id": 1, "estimator": "grpo", "rewards": [1], "k": 3}"#, "unknown field `k`"),
            (r#"{"id": 1, "estimator": "grpo", "rewards": [1]"#, "EOF"),
            (r#"{"id": 1, "estimator": "grpo", "rewards": [1e400]}"#, "(column"),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 1000000000000, "sets": [[0]], "aggregation_rewards": [[1]]}"#,
                "num_search = 1000000000000 is above the limit of 1000000",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 18446744073709551615, "sets": [[0]], "aggregation_rewards": [[1]]}"#,
                "num_search = 18446744073709551615 is above the limit",
            ),
            (
                r#"{"id": 1, "estimator": "dr_grpo", "rewards": [1.7e308, -1.7e308, -1.7e308]}"#,
                "overflows f64",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 3, "sets": [[0], [1], [2]], "aggregation_rewards": [[1.7e308], [-1.7e308], [-1.7e308]]}"#,
                "set_advantages[0] is inf",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 2, "sets": [[0, 2]], "aggregation_rewards": [[1]]}"#,
                "set 0 contains trace 2, but there are only 2 search traces",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 3, "sets": [[0, 0]], "aggregation_rewards": [[1]]}"#,
                "contains trace 0 twice",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 3, "sets": [[0, 1], [1, 0]], "aggregation_rewards": [[1], [0]]}"#,
                "sets 0 and 1 hold the same traces",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 3, "sets": [[0, 1], [2]], "aggregation_rewards": [[1], [0]]}"#,
                "sets[1] has length 1, expected 2",
            ),
            (
                r#"{"id": 1, "estimator": "spiral", "num_search": 3, "sets": [[0], [2]], "aggregation_rewards": [[1, 0], [0]]}"#,
                "aggregation_rewards[1] has length 1, expected 2",
            ),
        ];
        for (bad, want) in cases {
            let input =
                format!("{}\n{bad}\n", r#"{"id": 0, "estimator": "grpo", "rewards": [1, 0]}"#);
            let mut out = Vec::new();
            let err = process_jsonl(input.as_bytes(), &mut out).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("line 2: ") && msg.contains(want), "{msg}");
            assert!(!msg.contains("at line 1"), "{msg}");
            assert!(!msg.contains("column 0"), "{msg}");
            assert!(out.is_empty(), "nothing is written when a line is bad");
        }
    }

    #[test]
    fn requests_round_trip_through_serde() {
        let req = AdvantageRequest::PassAtK {
            id: json!("x"),
            rewards: vec![1.0, 0.0],
            k: 1,
            normalize_std: true,
        };
        let line = serde_json::to_string(&req).unwrap();
        assert_eq!(AdvantageRequest::parse(&line).unwrap(), req);
    }
}
