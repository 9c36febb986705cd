//! Samples files: one JSON object per line, `{"problem_id": "...", "reward": 0 or 1, "answer":
//! "..."}`, in any order and any number per problem, grouped here by problem.
//!
//! `problem_id` is a string or an integer; `reward` is 0, 1, `true` or `false`; `answer` (the
//! extracted final answer, `null` when there was none) is optional but, for majority vote to be
//! well defined, either every line has it or none does. Other fields (the response text, the
//! prompt) are ignored. Blank lines and a UTF-8 byte-order mark are tolerated, as in
//! `spiral-rewards`' JSONL datasets.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use crate::error::EvalError;

/// The samples of one problem, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProblemSamples {
    /// The problem's id.
    pub id: String,
    /// Whether each sample is correct (reward 1).
    pub correct: Vec<bool>,
    /// Each sample's extracted answer; empty when the file has no answers.
    pub answers: Vec<Option<String>>,
}

impl ProblemSamples {
    /// Number of samples.
    pub fn n(&self) -> usize {
        self.correct.len()
    }

    /// Number of correct samples.
    pub fn num_correct(&self) -> usize {
        self.correct.iter().filter(|&&c| c).count()
    }
}

/// The samples of a file, grouped by problem in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleSet {
    /// One entry per problem.
    pub problems: Vec<ProblemSamples>,
    /// Whether the lines carry answers (then majority vote can be computed).
    pub has_answers: bool,
}

impl SampleSet {
    /// Total number of samples.
    pub fn num_samples(&self) -> usize {
        self.problems.iter().map(ProblemSamples::n).sum()
    }
}

/// Reads a samples file (module docs).
pub fn load_samples(path: impl AsRef<Path>) -> Result<SampleSet, EvalError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| EvalError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    read_samples(BufReader::new(file), &path.display().to_string())
}

/// Reads samples from JSONL text; `source` names it in errors.
///
/// ```
/// let text = "{\"problem_id\": \"a\", \"reward\": 1}\n{\"problem_id\": 7, \"reward\": false}\n";
/// let set = spiral_eval::read_samples(text.as_bytes(), "inline").unwrap();
/// assert_eq!(set.problems[1].id, "7");
/// assert!(!set.has_answers);
/// ```
pub fn read_samples(reader: impl BufRead, source: &str) -> Result<SampleSet, EvalError> {
    let mut problems: Vec<ProblemSamples> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // The first line with an answer and the first without, to refuse a mix.
    let (mut with_answer, mut without_answer) = (None, None);
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line =
            line.map_err(|e| EvalError::line(source, line_no, format!("cannot read: {e}")))?;
        let text = if i == 0 { line.trim_start_matches('\u{feff}') } else { &line };
        if text.trim().is_empty() {
            continue;
        }
        let sample = parse_line(text).map_err(|m| EvalError::line(source, line_no, m))?;
        match sample.answer {
            Some(_) => with_answer = with_answer.or(Some(line_no)),
            None => without_answer = without_answer.or(Some(line_no)),
        }
        let slot = *index.entry(sample.id.clone()).or_insert_with(|| {
            problems.push(ProblemSamples { id: sample.id, ..ProblemSamples::default() });
            problems.len() - 1
        });
        problems[slot].correct.push(sample.correct);
        problems[slot].answers.push(sample.answer.flatten());
    }
    if let (Some(with), Some(without)) = (with_answer, without_answer) {
        return Err(EvalError::line(
            source,
            without,
            format!(
                "no `answer` field, but line {with} has one: give every line an `answer` (null \
                 when none was extracted) or none"
            ),
        ));
    }
    let has_answers = with_answer.is_some();
    if !has_answers {
        problems.iter_mut().for_each(|p| p.answers.clear());
    }
    Ok(SampleSet { problems, has_answers })
}

/// One parsed line: `answer` is `None` without the field, `Some(None)` for `null`.
struct Sample {
    id: String,
    correct: bool,
    answer: Option<Option<String>>,
}

fn parse_line(text: &str) -> Result<Sample, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("expected a JSON object".into());
    };
    let id = match object.get("problem_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(other) => {
            return Err(format!("`problem_id` must be a string or an integer, got {other}"));
        }
        None => return Err("missing field `problem_id`".into()),
    };
    let correct = match object.get("reward") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_f64() == Some(1.0) => true,
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => false,
        Some(other) => return Err(format!("`reward` must be 0 or 1, got {other}")),
        None => return Err("missing field `reward`".into()),
    };
    let answer = match object.get("answer") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(other) => return Err(format!("`answer` must be a string or null, got {other}")),
    };
    Ok(Sample { id, correct, answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<SampleSet, EvalError> {
        read_samples(text.as_bytes(), "s.jsonl")
    }

    #[test]
    fn groups_by_problem_in_order_of_appearance() {
        let text = "\u{feff}{\"problem_id\": \"b\", \"reward\": 1, \"answer\": \"4\"}\n\n\
                    {\"problem_id\": \"a\", \"reward\": 0.0, \"answer\": null, \"response\": \"x\"}\n\
                    {\"problem_id\": \"b\", \"reward\": false, \"answer\": \"5\"}\n";
        let set = read(text).unwrap();
        assert!(set.has_answers);
        assert_eq!(set.num_samples(), 3);
        let b = &set.problems[0];
        assert_eq!(
            (b.id.as_str(), b.correct.clone(), b.num_correct()),
            ("b", vec![true, false], 1)
        );
        assert_eq!(b.answers, [Some("4".to_owned()), Some("5".to_owned())]);
        assert_eq!(set.problems[1].answers, [None]);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "{\"problem_id\": \"a\", \"reward\": 0.5}",
                "s.jsonl:1: `reward` must be 0 or 1, got 0.5",
            ),
            ("{\"reward\": 1}", "s.jsonl:1: missing field `problem_id`"),
            ("{\"problem_id\": \"a\"}", "s.jsonl:1: missing field `reward`"),
            ("[1]", "s.jsonl:1: expected a JSON object"),
            (
                "{\"problem_id\": 1.5, \"reward\": 1}",
                "s.jsonl:1: `problem_id` must be a string or an integer, got 1.5",
            ),
            (
                "{\"problem_id\": \"a\", \"reward\": 1, \"answer\": 3}",
                "s.jsonl:1: `answer` must be a string or null, got 3",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(read(text).unwrap_err().to_string(), message);
        }
        assert!(read("{oops").unwrap_err().to_string().starts_with("s.jsonl:1: not JSON"));
        let mixed = "{\"problem_id\": \"a\", \"reward\": 1}\n{\"problem_id\": \"a\", \"reward\": 1, \"answer\": \"2\"}";
        let err = read(mixed).unwrap_err().to_string();
        assert!(err.starts_with("s.jsonl:1: no `answer` field, but line 2 has one"), "{err}");
        let err = load_samples("/no/such/file.jsonl").unwrap_err().to_string();
        assert!(err.starts_with("cannot read /no/such/file.jsonl"), "{err}");
    }
}
