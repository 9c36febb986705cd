//! The crate's one error type: every message names the value at fault and what was expected.

use thiserror::Error;

/// An input the estimators or the loss cannot use.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SetRlError {
    /// A reward (or a log-prob, advantage, weight) that is NaN or infinite.
    #[error("{what}[{index}] is {value}, expected a finite number")]
    NonFinite {
        /// Which array holds the value (`rewards`, `aggregation_rewards[2]`, ...).
        what: String,
        /// Position inside that array.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A result that does not fit in `f64` although every input did (rewards near `f64::MAX`).
    #[error(
        "{what}[{index}] is {value}: the result overflows f64 although every reward is finite; \
         rescale the rewards"
    )]
    Overflow {
        /// Which result (`advantages`, `set_advantages`, `aggregation_advantages[2]`, ...).
        what: String,
        /// Position inside it.
        index: usize,
        /// The non-finite value it came to.
        value: f64,
    },
    /// More search traces than [`MAX_SEARCH_TRACES`](crate::MAX_SEARCH_TRACES).
    #[error(
        "num_search = {num_search} is above the limit of {max} search traces per problem (the \
         sets index at most a few thousand in practice)"
    )]
    TooManySearchTraces {
        /// The requested N1.
        num_search: usize,
        /// The limit.
        max: usize,
    },
    /// pass@k needs verifiable 0/1 rewards.
    #[error("rewards[{index}] is {value}, but pass@k needs binary rewards (0 or 1)")]
    NonBinaryReward {
        /// Position of the reward.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// pass@k with `k = 0` or `k` larger than the group.
    #[error("pass@k needs 1 <= k <= N, got k = {k} for a group of N = {n}")]
    InvalidK {
        /// The requested k.
        k: usize,
        /// The group size.
        n: usize,
    },
    /// SPIRAL input with no sets.
    #[error("SPIRAL needs at least one set, got none")]
    NoSets,
    /// A set with no traces.
    #[error("set {set} is empty, expected n >= 1 search-trace indices")]
    EmptySet {
        /// Index of the set.
        set: usize,
    },
    /// A set names a search trace that does not exist.
    #[error("set {set} contains trace {index}, but there are only {num_search} search traces")]
    IndexOutOfRange {
        /// Index of the set.
        set: usize,
        /// The out-of-range trace index.
        index: usize,
        /// Number of search traces N1.
        num_search: usize,
    },
    /// A set names the same search trace twice.
    #[error("set {set} contains trace {index} twice, expected distinct traces")]
    DuplicateInSet {
        /// Index of the set.
        set: usize,
        /// The repeated trace index.
        index: usize,
    },
    /// Two sets hold the same traces (order ignored).
    #[error("sets {first} and {second} hold the same traces, expected distinct sets")]
    DuplicateSet {
        /// Index of the earlier set.
        first: usize,
        /// Index of the later, equal set.
        second: usize,
    },
    /// Rows of one array differ in length.
    #[error("{what}[{row}] has length {len}, expected {expected} like {what}[0]")]
    Ragged {
        /// Which array is ragged (`sets`, `aggregation_rewards`).
        what: String,
        /// The row at fault.
        row: usize,
        /// Its length.
        len: usize,
        /// The length of row 0.
        expected: usize,
    },
    /// Two arrays that must have the same length do not.
    #[error("{what}: expected length {expected}, got {actual}")]
    LengthMismatch {
        /// What was compared.
        what: String,
        /// The required length.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// A tensor of the wrong shape was passed to the loss.
    #[error("{what} has shape {actual:?}, expected {expected:?}")]
    Shape {
        /// Which input.
        what: String,
        /// The required shape.
        expected: Vec<usize>,
        /// The shape found.
        actual: Vec<usize>,
    },
    /// A configuration value out of range.
    #[error("invalid config: {0}")]
    Config(String),
    /// The KL coefficient is positive but no reference log-probs were passed.
    #[error("kl beta = {beta} > 0 needs reference log-probs, but none were passed")]
    MissingReference {
        /// The KL coefficient.
        beta: f64,
    },
    /// A JSONL request line that is not valid JSON or has the wrong fields.
    #[error("{0}")]
    Parse(String),
    /// An error on one line of a JSONL input (1-based line number).
    #[error("line {line}: {error}")]
    Line {
        /// 1-based line number in the input.
        line: usize,
        /// What was wrong with it.
        error: Box<SetRlError>,
    },
    /// Reading the input or writing the output failed.
    #[error("i/o: {0}")]
    Io(String),
}

/// Checks that every value is finite; `what` names the array in the error.
pub(crate) fn check_finite(what: &str, values: &[f64]) -> Result<(), SetRlError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => {
            Err(SetRlError::NonFinite { what: what.to_string(), index, value: values[index] })
        }
    }
}

/// Checks that every computed value is finite (the inputs were): `what` names the result.
pub(crate) fn check_overflow(what: &str, values: &[f64]) -> Result<(), SetRlError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => {
            Err(SetRlError::Overflow { what: what.to_string(), index, value: values[index] })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_value_at_fault() {
        let err = SetRlError::IndexOutOfRange { set: 2, index: 9, num_search: 8 };
        assert_eq!(err.to_string(), "set 2 contains trace 9, but there are only 8 search traces");
        let err = SetRlError::Line { line: 3, error: Box::new(SetRlError::NoSets) };
        assert_eq!(err.to_string(), "line 3: SPIRAL needs at least one set, got none");
    }

    #[test]
    fn check_finite_reports_first_bad_index() {
        assert!(check_finite("rewards", &[0.0, 1.0]).is_ok());
        let err = check_finite("rewards", &[0.0, f64::NAN, f64::INFINITY]).unwrap_err();
        assert!(matches!(err, SetRlError::NonFinite { index: 1, .. }), "{err}");
    }
}
