//! Parquet datasets as the Hugging Face hub exports them (`data/train-00000-of-00002.parquet`)
//! and verl's preprocessing writes them (a `prompt` column of chat messages, the reference in
//! `reward_model.ground_truth`): a `.parquet` file, a folder of them, or a glob of them, read in
//! name order, each row turned into the JSON object the JSONL loader reads, so fields, dotted
//! paths and checks are the same for both formats.
//!
//! The file format is Apache Parquet's (<https://parquet.apache.org/docs/file-format/>), read
//! with the `parquet` crate's row reader (nested groups become objects, LIST columns arrays,
//! MAP columns objects); snappy and zstd pages, the codecs of hub exports, are supported.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Number, Value};

use super::{FieldNames, Record, problem_from_record};
use crate::error::RewardError;
use crate::task::{Problem, Task};

/// The extension that selects this reader.
const EXTENSION: &str = "parquet";

/// Whether `path` names Parquet data: a `.parquet` file or glob, or a folder.
pub fn is_parquet(path: &Path) -> bool {
    path.is_dir() || path.extension().is_some_and(|e| e == EXTENSION)
}

/// The problems of every row of the Parquet files `path` names, in file-name order.
pub(crate) fn load(
    path: &Path,
    task: Task,
    fields: &FieldNames,
) -> Result<Vec<Problem>, RewardError> {
    let mut problems = Vec::new();
    for file in shard_paths(path)? {
        for (row, object) in read_rows(&file)?.into_iter().enumerate() {
            let record = Record::from_object(row + 1, object);
            let problem = problem_from_record(task, &record, fields, true)
                .map_err(|m| row_error(&file, row + 1, &m))?;
            problems.push(problem);
        }
    }
    Ok(problems)
}

/// An error naming the file and the 1-based row.
fn row_error(file: &Path, row: usize, message: &str) -> RewardError {
    RewardError::Io {
        path: file.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("row {row}: {message}"),
        ),
    }
}

/// The files `path` names: itself, the `.parquet` files of a folder, or the files matching a
/// glob in its last component (`*`, `?`), each set sorted by name.
pub(crate) fn shard_paths(path: &Path) -> Result<Vec<PathBuf>, RewardError> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let not_found = |message: String| RewardError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, message),
    };
    let (folder, pattern) = if path.is_dir() {
        (path.to_owned(), format!("*.{EXTENSION}"))
    } else {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.contains(['*', '?']) {
            return Err(not_found("no such file".into()));
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        (folder, name)
    };
    let entries = std::fs::read_dir(&folder)
        .map_err(|source| RewardError::Io { path: folder.clone(), source })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter(|e| matches_glob(&pattern, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(not_found(format!("no file in {} matches `{pattern}`", folder.display())));
    }
    Ok(files)
}

/// Shell-style matching of a file name: `*` any run of characters, `?` one character.
fn matches_glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy match with backtracking to the last `*`: linear in practice for file names.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Every row of one file as a JSON object.
fn read_rows(file: &Path) -> Result<Vec<Map<String, Value>>, RewardError> {
    let io = |source: std::io::Error| RewardError::Io { path: file.to_owned(), source };
    let invalid = |e: parquet::errors::ParquetError| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a readable Parquet file: {e}"),
        ))
    };
    let reader = SerializedFileReader::new(File::open(file).map_err(io)?).map_err(invalid)?;
    let mut rows = Vec::new();
    for (i, row) in reader.get_row_iter(None).map_err(invalid)?.enumerate() {
        let row = row.map_err(|e| row_error(file, i + 1, &format!("cannot decode: {e}")))?;
        rows.push(row.get_column_iter().map(|(name, field)| (name.clone(), json(field))).collect());
    }
    Ok(rows)
}

/// A Parquet value as JSON: groups as objects, lists as arrays, maps as objects keyed by the
/// key's text; dates, times and decimals as their text.
fn json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Float16(x) => float(f64::from(*x)),
        Field::Float(x) => float(f64::from(*x)),
        Field::Double(x) => float(*x),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => match std::str::from_utf8(b.data()) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => Value::Array(b.data().iter().map(|&x| Value::from(x)).collect()),
        },
        Field::Group(row) => {
            Value::Object(row.get_column_iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(json).collect()),
        Field::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, json(v))
                })
                .collect(),
        ),
        // Decimals, dates, times and timestamps: the reader's text for them.
        other => Value::String(other.to_string()),
    }
}

/// A finite float as a JSON number; NaN and infinities (which JSON lacks) as null.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::basic::{Compression, ZstdLevel};
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;
    use crate::dataset::load_jsonl;

    /// One leaf column's values (only where defined), definition and repetition levels.
    enum Values {
        Text(Vec<String>),
        Long(Vec<i64>),
        Double(Vec<f64>),
    }

    struct Leaf {
        values: Values,
        def: Vec<i16>,
        rep: Option<Vec<i16>>,
    }

    impl Leaf {
        /// A top-level optional column (`max_def` 1) or a field of an optional group (2), with
        /// a value in every row.
        fn flat(values: Values, max_def: i16) -> Self {
            let rows = match &values {
                Values::Text(v) => v.len(),
                Values::Long(v) => v.len(),
                Values::Double(v) => v.len(),
            };
            Self { values, def: vec![max_def; rows], rep: None }
        }
    }

    fn text(values: &[&str]) -> Values {
        Values::Text(values.iter().map(|s| s.to_string()).collect())
    }

    /// Writes one row group of `leaves` (in the schema's leaf order) with `compression`.
    fn write(path: &Path, schema: &str, leaves: Vec<Leaf>, compression: Compression) {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let props = Arc::new(WriterProperties::builder().set_compression(compression).build());
        let file = File::create(path).unwrap();
        let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut leaves = leaves.into_iter();
        while let Some(mut column) = group.next_column().unwrap() {
            let leaf = leaves.next().expect("a leaf per column");
            let (def, rep) = (Some(leaf.def.as_slice()), leaf.rep.as_deref());
            match leaf.values {
                Values::Text(v) => {
                    let v: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                    column.typed::<ByteArrayType>().write_batch(&v, def, rep).unwrap()
                }
                Values::Long(v) => column.typed::<Int64Type>().write_batch(&v, def, rep).unwrap(),
                Values::Double(v) => {
                    column.typed::<DoubleType>().write_batch(&v, def, rep).unwrap()
                }
            };
            column.close().unwrap();
        }
        group.close().unwrap();
        writer.close().unwrap();
    }

    /// The layout of verl's preprocessed datasets (`examples/data_preprocess/gsm8k.py`), as
    /// pyarrow writes it: `prompt` a list of {role, content}, `reward_model` and `extra_info`
    /// structs.
    const VERL_SCHEMA: &str = "
        message schema {
            optional binary data_source (STRING);
            optional group prompt (LIST) {
                repeated group list {
                    optional group element {
                        optional binary role (STRING);
                        optional binary content (STRING);
                    }
                }
            }
            optional binary ability (STRING);
            optional group reward_model {
                optional binary ground_truth (STRING);
                optional binary style (STRING);
            }
            optional group extra_info {
                optional int64 index;
                optional binary split (STRING);
            }
        }";

    /// A verl-style file of `rows`: (conversation as (role, content) pairs, ground truth).
    fn write_verl(path: &Path, rows: &[(Vec<(&str, &str)>, &str)], compression: Compression) {
        let n = rows.len();
        let (mut roles, mut contents, mut def, mut rep) = (vec![], vec![], vec![], vec![]);
        for (messages, _) in rows {
            for (i, (role, content)) in messages.iter().enumerate() {
                roles.push(role.to_string());
                contents.push(content.to_string());
                // Defined down to the leaf (prompt, list, element, field); repeated after the
                // first message of a row.
                def.push(4);
                rep.push(if i == 0 { 0 } else { 1 });
            }
        }
        let truths: Vec<&str> = rows.iter().map(|(_, t)| *t).collect();
        let list = |values| Leaf { values, def: def.clone(), rep: Some(rep.clone()) };
        let leaves = vec![
            Leaf::flat(text(&vec!["openai/gsm8k"; n]), 1),
            list(Values::Text(roles)),
            list(Values::Text(contents)),
            Leaf::flat(text(&vec!["math"; n]), 1),
            Leaf::flat(text(&truths), 2),
            Leaf::flat(text(&vec!["rule"; n]), 2),
            Leaf::flat(Values::Long((0..n as i64).collect()), 2),
            Leaf::flat(text(&vec!["train"; n]), 2),
        ];
        write(path, VERL_SCHEMA, leaves, compression);
    }

    /// A flat file with `problem` (text) and `answer` (double) columns, as hub exports of
    /// simple datasets look.
    fn write_flat(path: &Path, problems: &[&str], answers: &[f64], compression: Compression) {
        let schema = "message schema { optional binary problem (STRING); optional double answer; }";
        let leaves =
            vec![Leaf::flat(text(problems), 1), Leaf::flat(Values::Double(answers.to_vec()), 1)];
        write(path, schema, leaves, compression);
    }

    fn verl_fields() -> FieldNames {
        FieldNames { problem: "prompt".into(), answer: "reward_model.ground_truth".into() }
    }

    #[test]
    fn verl_conversations_and_nested_references_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.parquet");
        let rows = [
            (vec![("user", "What is 2 + 3? Let's think step by step.")], "5"),
            (vec![("user", "Natalia sold 48 clips. How many?")], "72"),
        ];
        write_verl(&path, &rows, Compression::SNAPPY);
        let problems = load_jsonl(&path, Task::Math, &verl_fields()).unwrap();
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[0].prompt(Default::default()),
            "What is 2 + 3? Let's think step by step."
        );
        assert_eq!((problems[0].reference(), problems[1].reference()), ("5".into(), "72".into()));

        // The row as the JSONL loader would see it.
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows[1]["prompt"][0]["role"], "user");
        assert_eq!(rows[1]["extra_info"]["index"], 1);
        assert_eq!(rows[1]["reward_model"]["style"], "rule");
    }

    #[test]
    fn a_folder_or_glob_of_shards_is_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // Written out of order, with both codecs hub exports use.
        write_flat(&data.join("train-00001-of-00002.parquet"), &["c"], &[2.5], Compression::SNAPPY);
        let zstd = Compression::ZSTD(ZstdLevel::default());
        write_flat(&data.join("train-00000-of-00002.parquet"), &["a", "b"], &[1.0, 7.0], zstd);
        write_flat(&data.join("test-00000-of-00001.parquet"), &["t"], &[0.0], zstd);
        std::fs::write(data.join("README.md"), "not data").unwrap();
        let fields = FieldNames::for_task(Task::Math);
        let read = |path: &Path| -> Vec<(String, String)> {
            load_jsonl(path, Task::Math, &fields)
                .unwrap()
                .iter()
                .map(|p| (p.prompt(Default::default()), p.reference()))
                .collect()
        };
        let train = read(&data.join("train-*.parquet"));
        let expected = [("a", "1.0"), ("b", "7.0"), ("c", "2.5")];
        assert_eq!(train, expected.map(|(p, a)| (p.to_string(), a.to_string())));
        let all = read(&data);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].0, "t", "test-* sorts before train-*");

        let e = load_jsonl(data.join("valid-*.parquet"), Task::Math, &fields).unwrap_err();
        assert!(e.to_string().contains("no file in") && e.to_string().contains("valid-*.parquet"));
        let e = load_jsonl(data.join("absent.parquet"), Task::Math, &fields).unwrap_err();
        assert!(e.to_string().contains("absent.parquet"), "{e}");
    }

    #[test]
    fn errors_name_the_file_the_row_and_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.parquet");
        let rows = [
            (vec![("user", "fine")], "1"),
            (vec![("system", "Be brief."), ("user", "2 + 2?")], "4"),
        ];
        write_verl(&path, &rows, Compression::SNAPPY);
        let e = load_jsonl(&path, Task::Math, &verl_fields()).unwrap_err().to_string();
        assert!(
            e.contains("train.parquet") && e.contains("row 2") && e.contains("`prompt`"),
            "{e}"
        );
        assert!(e.contains("system"), "{e}");

        write_verl(&path, &rows[..1], Compression::SNAPPY);
        let fields = FieldNames { problem: "prompt".into(), answer: "reward_model.truth".into() };
        let e = load_jsonl(&path, Task::Math, &fields).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("cannot read {}: row 1: missing field `reward_model.truth`", path.display())
        );

        std::fs::write(&path, b"PAR1 but not really").unwrap();
        let e = load_jsonl(&path, Task::Math, &verl_fields()).unwrap_err().to_string();
        assert!(e.contains("train.parquet") && e.contains("not a readable Parquet file"), "{e}");
    }

    #[test]
    fn globs_match_file_names() {
        assert!(matches_glob("*.parquet", "train-00000-of-00002.parquet"));
        assert!(matches_glob("train-*-of-*.parquet", "train-00001-of-00002.parquet"));
        assert!(!matches_glob("train-*.parquet", "test-00000.parquet"));
        assert!(matches_glob("part-?.parquet", "part-1.parquet"));
        assert!(!matches_glob("part-?.parquet", "part-10.parquet"));
        assert!(!matches_glob("*.parquet", "x.parquet.tmp"));
    }
}
