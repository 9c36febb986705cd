//! JSONL and Parquet datasets: one JSON object per line, or one Parquet row per problem
//! ([`parquet_rows`]: a file, a folder or a glob of shards), with configurable field names that
//! may be dotted paths into nested values (`reward_model.ground_truth`); a seeded train/test
//! split; de-duplication.
//!
//! Follows the Hugging Face `datasets` JSON loader's conventions (one object per line, blank lines
//! ignored, a UTF-8 byte-order mark tolerated) and its `train_test_split(test_size, seed)`.
//! Errors name the file, the 1-based line (or Parquet row) and the field. Reference answers in
//! GSM8K's format (`...reasoning #### 42`) are cut to the text after the last `####`. A problem
//! field holding a chat conversation (`[{"role": "user", "content": ...}]`, verl's `prompt`
//! column) gives the problem its one user message, which the prompt builders and chat templates
//! then render as they render any question.
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

mod parquet_rows;

pub use parquet_rows::is_parquet;

/// The JSONL fields holding a problem and its reference answer. A name that is not a key of the
/// record is read as a dotted path into nested objects and arrays (`reward_model.ground_truth`,
/// `prompt.0.content`).
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

/// Loads the problems of a JSONL file, or of Parquet data chosen by extension: a `.parquet` file,
/// a glob of them (`data/train-*.parquet`) or a folder of them, shards read in name order.
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
    if parquet_rows::is_parquet(path) {
        return parquet_rows::load(path, task, fields);
    }
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
    /// A record of an object read from elsewhere (a Parquet row); its text is the object's JSON.
    pub(crate) fn from_object(line: usize, object: Map<String, Value>) -> Self {
        let text = serde_json::to_string(&object).expect("JSON values serialise");
        Self { line, object, text }
    }

    /// Field `name`: the key itself, else a dotted path through objects and arrays.
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        if let Some(value) = self.object.get(name) {
            return Some(value);
        }
        let mut parts = name.split('.');
        let mut value = self.object.get(parts.next()?)?;
        for part in parts {
            value = match value {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// The source text of field `name`'s value (`1.50`, `123456789012345678901234567890`),
    /// following a dotted path as [`Record::field`] does.
    fn raw_text(&self, name: &str) -> Option<String> {
        let raw: HashMap<String, &RawValue> = serde_json::from_str(&self.text).ok()?;
        if let Some(value) = raw.get(name) {
            return Some(value.get().to_owned());
        }
        let mut parts = name.split('.');
        let mut value: &RawValue = raw.get(parts.next()?)?;
        for part in parts {
            value = match part.parse::<usize>() {
                Ok(i) => *serde_json::from_str::<Vec<&RawValue>>(value.get()).ok()?.get(i)?,
                Err(_) => {
                    let map: HashMap<&str, &RawValue> = serde_json::from_str(value.get()).ok()?;
                    *map.get(part)?
                }
            };
        }
        Some(value.get().to_owned())
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
    let get = |name: &str| record.field(name).ok_or_else(|| format!("missing field `{name}`"));
    let text = |name: &str| -> Result<String, String> {
        match get(name) {
            Ok(Value::String(s)) => Ok(s.clone()),
            Ok(Value::Array(items)) if is_conversation(items) => user_message(name, items),
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

/// Whether `items` are chat messages (objects with a `role`), as in verl's `prompt` column.
fn is_conversation(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|m| m.get("role").is_some_and(Value::is_string))
}

/// The question a conversation holds: the `content` of its one message, which must come from
/// the user. A problem holds one question, rendered into the model's chat template as one user
/// message, so a conversation with other turns (a system prompt) is refused rather than cut.
fn user_message(name: &str, messages: &[Value]) -> Result<String, String> {
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    match messages {
        [message] if roles == ["user"] => match message.get("content") {
            Some(Value::String(content)) => Ok(content.clone()),
            other => Err(format!(
                "field `{name}`: the message's `content` must be a string, got {}",
                other.map_or("nothing", kind)
            )),
        },
        _ => Err(format!(
            "field `{name}` holds a conversation with roles {roles:?}; only one user message \
             can be a problem's question"
        )),
    }
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
mod tests;
