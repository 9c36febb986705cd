//! The crate's one error type, used at its boundaries: files, JSONL records and configurations.
//!
//! Scoring itself never fails: a response that cannot be graded gets reward 0 and a
//! [`Failure`](crate::Failure) saying why. Errors are for the caller's inputs (a missing file, a
//! malformed dataset line, an impossible generator configuration), and their messages name the
//! file, line, field or value at fault and what was expected (STYLE.md, item 9).

use std::path::PathBuf;

/// Errors of dataset loading, scoring files and task generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewardError {
    /// A file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// One line of a JSONL input is malformed (not JSON, not an object, a missing or mistyped
    /// field).
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file name as given by the caller (`<stdin>` for standard input).
        file: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Writing scored output failed.
    #[error("cannot write output: {0}")]
    Write(#[source] std::io::Error),
    /// A generator or split configuration is impossible.
    #[error("invalid {what}: {message}")]
    Config {
        /// The configuration or field at fault, e.g. `countdown config`.
        what: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A task name is not one of `math`, `countdown`, `arith`, `combination`.
    #[error("unknown task `{0}`: expected one of math, countdown, arith, combination")]
    UnknownTask(String),
}

impl RewardError {
    /// A [`RewardError::Config`] error.
    pub(crate) fn config(what: &'static str, message: impl Into<String>) -> Self {
        Self::Config { what, message: message.into() }
    }

    /// A [`RewardError::Line`] error.
    pub(crate) fn line(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self::Line { file: file.to_owned(), line, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_line_and_value() {
        let e = RewardError::line("data.jsonl", 7, "missing field `answer`");
        assert_eq!(e.to_string(), "data.jsonl:7: missing field `answer`");
        let e = RewardError::config("countdown config", "min_numbers must be >= 2, got 1");
        assert_eq!(e.to_string(), "invalid countdown config: min_numbers must be >= 2, got 1");
        let e = RewardError::UnknownTask("gsm".into());
        assert!(e.to_string().contains("`gsm`"));
        let e = RewardError::Io {
            path: "x/y.jsonl".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(e.to_string(), "cannot read x/y.jsonl: no such file");
    }
}
