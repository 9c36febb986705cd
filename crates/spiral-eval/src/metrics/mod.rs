//! Test-time-scaling metrics over problems: unbiased pass@k, maj@k, mean accuracy, bootstrap
//! intervals, and the samples files they are computed from.

pub mod bootstrap;
pub mod majority;
pub mod passk;
pub mod samples;
pub mod summary;
