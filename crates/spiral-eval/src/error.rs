//! The library's one error type (STYLE.md, item 9): unreadable or malformed sample files, metrics
//! asked of data that cannot give them, datasets, models and generation that fail, curves that do
//! not support a scaling-efficiency number, and reports that cannot be written. Messages name the
//! file, line, problem or value at fault.

use std::path::PathBuf;

/// Errors of the metrics, scaling curves and reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// One line of a JSONL input is malformed.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file as the caller named it (`<stdin>` for standard input).
        file: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The data cannot give the metric asked for (k larger than a problem's samples, no data).
    #[error("{0}")]
    Metric(String),
    /// A curve is malformed or does not reach the accuracy asked about.
    #[error("{0}")]
    Curve(String),
    /// A dataset could not be loaded (names the file, line and field).
    #[error(transparent)]
    Data(#[from] spiral_rewards::RewardError),
    /// The model or tokenizer failed (names the file or token).
    #[error(transparent)]
    Model(#[from] spiral_model::ModelError),
    /// The rollout engine refused a request.
    #[error(transparent)]
    Rollout(#[from] spiral_rollout::RolloutError),
    /// Aggregation prompts or an RSA run failed.
    #[error(transparent)]
    Aggregation(#[from] spiral_aggregation::AggregationError),
    /// Generation settings that cannot work together (chat without a template, no room left in
    /// the context).
    #[error("{0}")]
    Settings(String),
    /// A plot could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The image file.
        path: PathBuf,
        /// The plotting library's message.
        message: String,
    },
}

impl EvalError {
    /// An [`EvalError::Line`] error.
    pub(crate) fn line(file: &str, line: usize, message: impl Into<String>) -> Self {
        Self::Line { file: file.to_owned(), line, message: message.into() }
    }

    /// An [`EvalError::Io`] error for writing `path`.
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action: "write", path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_line() {
        let e = EvalError::line("s.jsonl", 3, "`reward` must be 0 or 1, got 0.5");
        assert_eq!(e.to_string(), "s.jsonl:3: `reward` must be 0 or 1, got 0.5");
        let e = EvalError::write("out/r.md", std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "cannot write out/r.md: disk full");
    }
}
