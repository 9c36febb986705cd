//! The crate's one error type (STYLE.md, item 9): impossible configurations, prompts that cannot
//! fit their token budget, set draws that cannot be satisfied, and failures of the aggregator
//! plugged into the RSA driver. Messages name the field or value at fault and what was expected.

/// Errors of prompt building, set drawing and RSA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AggregationError {
    /// A configuration field is invalid (a template without its placeholder, a zero set size).
    #[error("invalid {field}: {message}")]
    Config {
        /// The field at fault, e.g. `aggregation.template`.
        field: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The prompt cannot be made to fit the token budget under the configured policy.
    #[error("aggregation prompt cannot fit {budget} tokens: {reason}")]
    Budget {
        /// The budget, in tokens.
        budget: usize,
        /// Why not (what alone already needs more).
        reason: String,
    },
    /// More distinct sets were asked for than exist.
    #[error(
        "cannot draw {requested} distinct sets of {size} out of {pool}: only C({pool}, {size}) = \
         {available} exist"
    )]
    TooManySets {
        /// Sets asked for (K).
        requested: usize,
        /// Traces per set (n).
        size: usize,
        /// Traces to draw from (N1).
        pool: usize,
        /// The number of distinct sets, C(pool, size).
        available: u128,
    },
    /// The aggregator plugged into the RSA driver failed.
    #[error("aggregator failed: {0}")]
    Aggregator(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The aggregator answered a different number of prompts than it was given.
    #[error("aggregator returned {got} responses for {expected} prompts")]
    ResponseCount {
        /// Prompts given.
        expected: usize,
        /// Responses returned.
        got: usize,
    },
}

impl AggregationError {
    /// An [`AggregationError::Config`] error.
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::Config { field, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values() {
        let e = AggregationError::TooManySets { requested: 7, size: 2, pool: 4, available: 6 };
        assert_eq!(
            e.to_string(),
            "cannot draw 7 distinct sets of 2 out of 4: only C(4, 2) = 6 exist"
        );
        let e = AggregationError::config("rsa.k", "must be at least 1, got 0");
        assert_eq!(e.to_string(), "invalid rsa.k: must be at least 1, got 0");
        let e =
            AggregationError::Budget { budget: 10, reason: "the template alone needs 12".into() };
        assert!(e.to_string().starts_with("aggregation prompt cannot fit 10 tokens"));
    }
}
