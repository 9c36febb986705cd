//! JSONL datasets: one JSON object per line, with configurable field names; a seeded train/test
//! split; de-duplication.
//!
//! Follows the Hugging Face `datasets` JSON loader's conventions (one object per line, blank lines
//! ignored, a UTF-8 byte-order mark tolerated) and its `train_test_split(test_size, seed)`.
//! Errors name the file, the 1-based line and the field. Reference answers in GSM8K's format
//! (`...reasoning #### 42`) are cut to the text after the last `####`.
//!
//! A math reference given as a JSON number is read as written: serde_json turns numbers beyond
//! `u64`/`i64` and all fractions into `f64`, which would make `123456789012345678901234567890`
//! the reference `1.2345678901234568e29` and accept `...891` within the decimal tolerance. Such
//! numbers are re-read as their source text (serde_json's additive `raw_value` feature). Its
//! `arbitrary_precision` feature would also keep the digits, but it is global to the workspace
//! and changes how every crate deserialises numbers: inside internally tagged or untagged enums
//! and `#[serde(flatten)]` structs (spiral-set-rl's request lines, spiral-model's `config.json`)
//! numbers arrive as maps and fail to parse, so it is not enabled.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::arith::ArithProblem;
use crate::combination::CombinationProblem;
use crate::countdown::CountdownProblem;
use crate::error::RewardError;
use crate::math::MathProblem;
use crate::task::{Problem, Task};

/// The JSONL fields holding a problem and its reference answer.
///
/// For Countdown, `problem` holds the numbers (an array of integers, or a string such as
/// `"75 25 2"`) and `answer` the target. For combination, `problem` holds the congruences as the
/// compact prompt writes them (`"3x+4=5 (mod 10)\n7x+1=2 (mod 10)"`, or separated by `;`) and
/// `answer` their solutions in order (`[7, 3]` or `"7 3"`), which are checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldNames {
    /// The question (math), the numbers (Countdown), the expression (arithmetic) or the
    /// congruences (combination).
    pub problem: String,
    /// The reference answer (math), the target (Countdown), the value (arithmetic) or the
    /// solutions (combination).
    pub answer: String,
}

impl FieldNames {
    /// The usual names: `problem`/`answer` (MATH, arithmetic and combination), `nums`/`target`
    /// (TinyZero's Countdown).
    pub fn for_task(task: Task) -> Self {
        let (problem, answer) = match task {
            Task::Math | Task::Arith | Task::Combination => ("problem", "answer"),
            Task::Countdown => ("nums", "target"),
        };
        Self { problem: problem.into(), answer: answer.into() }
    }
}

/// Loads the problems of a JSONL file.
///
/// ```
/// use spiral_rewards::{FieldNames, Task, load_jsonl};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("gsm8k.jsonl");
/// std::fs::write(&path, "{\"question\": \"2+2?\", \"answer\": \"2+2=4 #### 4\"}\n").unwrap();
/// let fields = FieldNames { problem: "question".into(), answer: "answer".into() };
/// let problems = load_jsonl(&path, Task::Math, &fields).unwrap();
/// assert_eq!(problems[0].reference(), "4");
/// ```
pub fn load_jsonl(
    path: impl AsRef<Path>,
    task: Task,
    fields: &FieldNames,
) -> Result<Vec<Problem>, RewardError> {
    let path = path.as_ref();
    let file =
        File::open(path).map_err(|source| RewardError::Io { path: path.to_owned(), source })?;
    read_jsonl(BufReader::new(file), &path.display().to_string(), task, fields)
}

/// Reads the problems of JSONL text; `source` names it in errors (a path, or `<stdin>`).
pub fn read_jsonl(
    reader: impl BufRead,
    source: &str,
    task: Task,
    fields: &FieldNames,
) -> Result<Vec<Problem>, RewardError> {
    let mut problems = Vec::new();
    for record in JsonlRecords::new(reader, source) {
        let record = record?;
        let problem = problem_from_record(task, &record, fields, true)
            .map_err(|m| RewardError::line(source, record.line, m))?;
        problems.push(problem);
    }
    Ok(problems)
}

/// Removes later duplicates (same question, same Countdown numbers and target, same expression),
/// keeping the first of each; returns how many were removed.
pub fn dedup(problems: &mut Vec<Problem>) -> usize {
    let before = problems.len();
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.dedup_key()));
    before - problems.len()
}

/// A train/test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split<T> {
    /// The training items, in their original order.
    pub train: Vec<T>,
    /// The test items, in their original order.
    pub test: Vec<T>,
}

/// Splits `items` at random (from `seed`) into train and test, with `round(len * test_fraction)`
/// test items; both keep the items' original order.
///
/// ```
/// use spiral_rewards::split;
///
/// let s = split((0..10).collect(), 0.3, 42).unwrap();
/// assert_eq!((s.train.len(), s.test.len()), (7, 3));
/// assert_eq!(s, split((0..10).collect(), 0.3, 42).unwrap());
/// ```
pub fn split<T>(items: Vec<T>, test_fraction: f64, seed: u64) -> Result<Split<T>, RewardError> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(RewardError::config(
            "split",
            format!("test_fraction must be within 0..=1, got {test_fraction}"),
        ));
    }
    let n = items.len();
    let n_test = (((n as f64) * test_fraction).round() as usize).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut is_test = vec![false; n];
    for &i in &order[..n_test] {
        is_test[i] = true;
    }
    let (mut train, mut test) = (Vec::with_capacity(n - n_test), Vec::with_capacity(n_test));
    for (item, test_item) in items.into_iter().zip(is_test) {
        if test_item { test.push(item) } else { train.push(item) }
    }
    Ok(Split { train, test })
}

/// One JSON object of a JSONL input.
pub(crate) struct Record {
    /// The 1-based line number.
    pub(crate) line: usize,
    /// The parsed object.
    pub(crate) object: Map<String, Value>,
    /// The line's text, for reading a number as written.
    text: String,
}

impl Record {
    /// The source text of field `name`'s value (`1.50`, `123456789012345678901234567890`).
    fn raw_text(&self, name: &str) -> Option<String> {
        let raw: HashMap<String, &RawValue> = serde_json::from_str(&self.text).ok()?;
        raw.get(name).map(|v| v.get().to_owned())
    }
}

/// The JSON objects of a JSONL reader with their 1-based line numbers; blank lines are skipped.
pub(crate) struct JsonlRecords<'s, R> {
    lines: std::io::Lines<R>,
    source: &'s str,
    line: usize,
}

impl<'s, R: BufRead> JsonlRecords<'s, R> {
    pub(crate) fn new(reader: R, source: &'s str) -> Self {
        Self { lines: reader.lines(), source, line: 0 }
    }
}

impl<R: BufRead> Iterator for JsonlRecords<'_, R> {
    /// `Err` for a line that cannot be read or is not a JSON object.
    type Item = Result<Record, RewardError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = self.lines.next()?;
            self.line += 1;
            let text = match text {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(RewardError::line(
                        self.source,
                        self.line,
                        format!("cannot read: {e}"),
                    )));
                }
            };
            let text = match text.strip_prefix('\u{feff}') {
                Some(rest) if self.line == 1 => rest.to_owned(),
                _ => text,
            };
            if text.trim().is_empty() {
                continue;
            }
            let parsed = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(object)) => Ok(Record { line: self.line, object, text }),
                Ok(other) => Err(format!("expected a JSON object, got {}", kind(&other))),
                Err(e) => Err(format!("invalid JSON: {e}")),
            };
            return Some(parsed.map_err(|m| RewardError::line(self.source, self.line, m)));
        }
    }
}

/// The JSON type of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The problem in one record. With `need_problem` false (scoring), a missing question or
/// expression is allowed (empty).
pub(crate) fn problem_from_record(
    task: Task,
    record: &Record,
    fields: &FieldNames,
    need_problem: bool,
) -> Result<Problem, String> {
    let get = |name: &str| record.object.get(name).ok_or_else(|| format!("missing field `{name}`"));
    let text = |name: &str| -> Result<String, String> {
        match get(name) {
            Ok(Value::String(s)) => Ok(s.clone()),
            Ok(other) => Err(format!("field `{name}` must be a string, got {}", kind(other))),
            Err(_) if !need_problem => Ok(String::new()),
            Err(e) => Err(e),
        }
    };
    Ok(match task {
        Task::Math => {
            let question = text(&fields.problem)?;
            let answer = answer_text(record, &fields.answer, get(&fields.answer)?)?;
            Problem::Math(MathProblem { question, answer })
        }
        Task::Countdown => {
            let numbers = numbers(&fields.problem, get(&fields.problem)?)?;
            let target = integer(&fields.answer, get(&fields.answer)?)?;
            let target = u64::try_from(target)
                .map_err(|_| format!("field `{}` must be a non-negative integer", fields.answer))?;
            Problem::Countdown(CountdownProblem { numbers, target })
        }
        Task::Arith => {
            let expression = text(&fields.problem)?;
            let answer = integer(&fields.answer, get(&fields.answer)?)?;
            Problem::Arith(ArithProblem { expression, answer })
        }
        Task::Combination => {
            // Grading substitutes into the congruences, so they are needed even when scoring.
            get(&fields.problem)?;
            let problem = CombinationProblem::from_text(&text(&fields.problem)?)
                .map_err(|m| format!("field `{}`: {m}", fields.problem))?;
            let answers = numbers(&fields.answer, get(&fields.answer)?)?;
            let solutions = problem.solutions();
            if answers.iter().map(|&a| u32::try_from(a).ok()).ne(solutions.iter().copied()) {
                let solutions: Vec<u32> = solutions.into_iter().flatten().collect();
                return Err(format!(
                    "field `{}` must hold the solutions of the congruences in order, {solutions:?}, \
                     got {answers:?}",
                    fields.answer
                ));
            }
            Problem::Combination(problem)
        }
    })
}

/// A reference answer: a string (GSM8K's `... #### 42` cut to `42`) or a number, as written.
fn answer_text(record: &Record, name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(match s.rfind("####") {
            Some(i) => s[i + 4..].trim().to_owned(),
            None => s.clone(),
        }),
        // An `i64` or `u64` prints exactly.
        Value::Number(n) if !n.is_f64() => Ok(n.to_string()),
        // Anything else went through `f64` (module docs): take the text as written.
        Value::Number(_) => record.raw_text(name).ok_or_else(|| {
            format!("field `{name}`: cannot read the number as written; give it as a string")
        }),
        other => Err(format!("field `{name}` must be a string or a number, got {}", kind(other))),
    }
}

/// An integer, given as a JSON integer or a string of one.
fn integer(name: &str, v: &Value) -> Result<i64, String> {
    let parsed = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("field `{name}` must be an integer, got {v}"))
}

/// Countdown numbers: an array of non-negative integers, or a string of them separated by spaces
/// or commas (brackets allowed).
fn numbers(name: &str, v: &Value) -> Result<Vec<u64>, String> {
    let bad =
        || format!("field `{name}` must be a non-empty array of non-negative integers, got {v}");
    let numbers: Vec<u64> = match v {
        Value::Array(items) => {
            items.iter().map(|i| i.as_u64().ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        Value::String(s) => s
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']'))
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if numbers.is_empty() {
        return Err(bad());
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(task: Task, text: &str) -> Result<Vec<Problem>, RewardError> {
        read_jsonl(text.as_bytes(), "data.jsonl", task, &FieldNames::for_task(task))
    }

    #[test]
    fn reads_each_task() {
        let math = read(
            Task::Math,
            "{\"problem\": \"1+1?\", \"answer\": \"2\"}\n\n{\"problem\": \"x\", \"answer\": 3.5}\n",
        )
        .unwrap();
        assert_eq!(math.len(), 2);
        assert_eq!(math[1].reference(), "3.5");
        let cd = read(
            Task::Countdown,
            "{\"nums\": [75, 25, 2], \"target\": 100}\n{\"nums\": \"3, 4\", \"target\": \"12\"}",
        )
        .unwrap();
        assert_eq!(cd[1], Problem::Countdown(CountdownProblem::new(vec![3, 4], 12)));
        let ar = read(Task::Arith, "{\"problem\": \"2+3\", \"answer\": 5}").unwrap();
        assert_eq!(ar[0].solution_trace().unwrap(), "2+3=5\n\\boxed{5}");
        let co = read(
            Task::Combination,
            "{\"problem\": \"3x+4=5 (mod 10)\\n7x+1=2 (mod 10)\", \"answer\": [7, 3]}\n\
             {\"problem\": \"3x+4=5 (mod 10); 7x+1=2 (mod 10)\", \"answer\": \"7, 3\"}",
        )
        .unwrap();
        assert_eq!(co[0], co[1]);
        assert_eq!(co[0].reference(), "x1=7 x2=3");
        assert_eq!(co[0].solution_trace().unwrap(), "3*7+4=25=5 x1=7\n7*3+1=22=2 x2=3");
    }

    #[test]
    fn combination_problems_round_trip_through_jsonl() {
        let problems = crate::CombinationConfig::default().generate(50, 8).unwrap();
        let text: String = problems
            .iter()
            .map(|p| {
                let answers: Vec<u32> = p.solutions().into_iter().flatten().collect();
                let line = serde_json::json!({
                    "problem": p.prompt(crate::PromptStyle::Compact),
                    "answer": answers,
                });
                format!("{line}\n")
            })
            .collect();
        let read_back = read(Task::Combination, &text).unwrap();
        let expected: Vec<Problem> = problems.into_iter().map(Problem::from).collect();
        assert_eq!(read_back, expected);
    }

    #[test]
    fn custom_fields_bom_and_gsm8k_answers() {
        let fields = FieldNames { problem: "question".into(), answer: "solution".into() };
        let text = "\u{feff}{\"question\": \"q\", \"solution\": \"work\\n#### 1,234\"}";
        let p = read_jsonl(text.as_bytes(), "gsm.jsonl", Task::Math, &fields).unwrap();
        assert_eq!(p[0].reference(), "1,234");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let err = |task, text: &str| read(task, text).unwrap_err().to_string();
        assert_eq!(err(Task::Math, "{\"problem\": \"q\"}"), "data.jsonl:1: missing field `answer`");
        assert_eq!(
            err(Task::Math, "{\"problem\": \"q\", \"answer\": \"1\"}\n\nnot json"),
            "data.jsonl:3: invalid JSON: expected ident at line 1 column 2"
        );
        assert!(err(Task::Math, "[1]").contains("expected a JSON object, got an array"));
        assert!(
            err(Task::Math, "{\"problem\": 5, \"answer\": \"1\"}")
                .contains("`problem` must be a string")
        );
        assert!(
            err(Task::Math, "{\"problem\": \"q\", \"answer\": null}")
                .contains("string or a number")
        );
        assert!(err(Task::Countdown, "{\"nums\": [1, -2], \"target\": 3}").contains("`nums`"));
        assert!(err(Task::Countdown, "{\"nums\": [], \"target\": 3}").contains("non-empty"));
        assert!(err(Task::Countdown, "{\"nums\": [1], \"target\": -3}").contains("`target`"));
        assert!(
            err(Task::Arith, "{\"problem\": \"1+1\", \"answer\": \"two\"}")
                .contains("`answer` must be an integer")
        );
        let co = |problem: &str, answer: &str| {
            err(Task::Combination, &format!("{{\"problem\": \"{problem}\", \"answer\": {answer}}}"))
        };
        assert_eq!(
            co("3x+4=5 (mod 10)", "[8]"),
            "data.jsonl:1: field `answer` must hold the solutions of the congruences in order, \
             [7], got [8]"
        );
        assert!(co("3x+4=5 (mod 10)", "[7, 1]").contains("got [7, 1]"));
        assert!(co("3x+4=5 (mod 10)", "[-7]").contains("`answer` must be a non-empty array"));
        assert!(co("3x+4=5", "[7]").contains("field `problem`: `3x+4=5` is not a congruence"));
        assert!(co("2x+4=6 (mod 10)", "[1]").contains("exactly one solution"));
        assert!(err(Task::Combination, "{\"answer\": [7]}").contains("missing field `problem`"));
        let e = load_jsonl("/nonexistent/x.jsonl", Task::Math, &FieldNames::for_task(Task::Math));
        assert!(e.unwrap_err().to_string().starts_with("cannot read /nonexistent/x.jsonl"));
    }

    /// Numbers beyond `u64` became `f64` and printed as `1.2345678901234568e29`, which matched
    /// `...891` within the decimal tolerance.
    #[test]
    fn numeric_references_keep_every_digit() {
        let text = [
            "{\"problem\": \"q\", \"answer\": 123456789012345678901234567890}",
            "{\"problem\": \"q\", \"answer\": 1.50}",
            "{\"problem\": \"q\", \"answer\": 0.1000000000000000000001}",
            "{\"problem\": \"q\", \"answer\": -123456789012345678901234567890}",
            "{\"problem\": \"q\", \"answer\": 18446744073709551615}",
            "{\"problem\": \"q\", \"answer\": -7}",
            "{\"problem\": \"q\", \"answer\": 1, \"answer\": 2.50}",
        ];
        let math = read(Task::Math, &text.join("\n")).unwrap();
        let refs: Vec<String> = math.iter().map(|p| p.reference().to_owned()).collect();
        assert_eq!(
            refs,
            [
                "123456789012345678901234567890",
                "1.50",
                "0.1000000000000000000001",
                "-123456789012345678901234567890",
                "18446744073709551615",
                "-7",
                "2.50",
            ]
        );
        let reward = crate::MathReward::default();
        let wrong = "\\boxed{123456789012345678901234567891}";
        assert!(!reward.score_answer(&refs[0], wrong).is_correct());
        assert!(reward.score_answer(&refs[0], &wrong.replace("891", "890")).is_correct());
        // serde_json refuses numbers beyond `f64` outright (before the text could be read).
        let err = read(Task::Math, "{\"problem\": \"q\", \"answer\": 1e400}").unwrap_err();
        assert!(err.to_string().starts_with("data.jsonl:1: invalid JSON"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        let bytes: &[u8] = b"{\"problem\": \"q\", \"answer\": \"1\"}\n\xff\xfe\n";
        let e = read_jsonl(bytes, "bin.jsonl", Task::Math, &FieldNames::for_task(Task::Math));
        assert!(e.unwrap_err().to_string().starts_with("bin.jsonl:2: cannot read"));
    }

    #[test]
    fn dedup_keeps_first_occurrences() {
        let mut ps: Vec<Problem> = ["a", "b", "a", " a ", "c", "b"]
            .iter()
            .map(|q| Problem::from(MathProblem::new(*q, "1")))
            .collect();
        assert_eq!(dedup(&mut ps), 3);
        let qs: Vec<String> = ps.iter().map(|p| p.prompt(Default::default())).collect();
        assert_eq!(qs, ["a", "b", "c"]);
    }

    #[test]
    fn split_is_seeded_disjoint_and_ordered() {
        let s = split((0..100).collect::<Vec<_>>(), 0.2, 1).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (80, 20));
        assert!(s.test.windows(2).all(|w| w[0] < w[1]));
        assert!(s.test.iter().all(|t| !s.train.contains(t)));
        assert_ne!(s.test, split((0..100).collect(), 0.2, 2).unwrap().test);
        assert_eq!(split(Vec::<u8>::new(), 0.5, 0).unwrap().test.len(), 0);
        assert_eq!(split(vec![1, 2], 1.0, 0).unwrap().train.len(), 0);
        assert!(split(vec![1], 1.5, 0).is_err());
        assert!(split(vec![1], f64::NAN, 0).is_err());
    }
}
