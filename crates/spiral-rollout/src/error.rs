//! The error type of `spiral-rollout`.

/// Errors of a rollout call.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The request is malformed (names the field and value).
    #[error("invalid rollout request: {0}")]
    Request(String),
    /// The model refused the inputs (token ids out of range, sequence too long).
    #[error(transparent)]
    Model(#[from] spiral_model::ModelError),
}
