//! Evaluation for SPIRAL models: metrics (unbiased pass@k, maj@k, RSA curves, scaling
//! efficiency) and reports. The `spiral-eval` binary in this crate exposes the workspace's
//! capabilities as commands.
