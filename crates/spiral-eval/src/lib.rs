//! Evaluation for SPIRAL models: the test-time-scaling metrics and reports of the SPIRAL paper
//! (Ibn Hamid et al., 2026). The `spiral-eval` binary in this crate exposes them, and the rest of
//! the workspace, as commands.
//!
//! - **Metrics** over problems: unbiased pass@k ([`pass_at_k_per_problem`], Chen et al., 2021,
//!   through `spiral-set-rl`), maj@k ([`maj_at_k_per_problem`], expected over k-subsets),
//!   mean accuracy, and percentile-bootstrap intervals over problems ([`bootstrap_mean_ci`]);
//!   [`summarize_samples`] is `spiral-eval passk`.
//! - **Scaling curves** ([`Curve`]) for parallel, sequential, token-efficiency and RSA scaling,
//!   and **scaling efficiency** ([`scaling_efficiency`]), printed with its definition
//!   ([`SCALING_EFFICIENCY_DEFINITION`]); a model's **best-method envelope** over its methods,
//!   and the efficiency between two envelopes at fixed accuracy targets with intervals
//!   ([`efficiency_at_targets`]).
//! - **Generation** ([`ModelSampler`], [`sample_problems`], [`run_rsa`]): samples files from a
//!   checkpoint and a dataset, and RSA with the rollout engine as the aggregator
//!   (`spiral-eval sample`, `spiral-eval rsa`).
//! - **Reports** ([`Report`]): markdown with tables and figures as PNG and SVG ([`Figure`]),
//!   headed by the commit and config.
//!
//! ```
//! use spiral_eval::{PasskOptions, read_samples, summarize_samples};
//!
//! let lines = [
//!     r#"{"problem_id": "q1", "reward": 1, "answer": "4"}"#,
//!     r#"{"problem_id": "q1", "reward": 0, "answer": "5"}"#,
//!     r#"{"problem_id": "q2", "reward": 0, "answer": "1"}"#,
//!     r#"{"problem_id": "q2", "reward": 0, "answer": null}"#,
//! ];
//! let set = read_samples(lines.join("\n").as_bytes(), "samples.jsonl").unwrap();
//! let options = PasskOptions { ks: vec![1, 2], ..PasskOptions::default() };
//! let summary = summarize_samples(&set, &options).unwrap();
//! let json = summary.to_json();
//! assert_eq!((json["pass@1"].as_f64(), json["pass@2"].as_f64()), (Some(0.25), Some(0.5)));
//! // q1's pair ties 4 against 5 (worth 1/2); q2's only answer is wrong.
//! assert_eq!(json["maj@2"].as_f64(), Some(0.25));
//! ```

mod envelope;
mod error;
mod generation;
mod metrics;
mod report;
mod scaling;
mod scaling_run;

pub use envelope::{TargetEfficiency, best_method_envelope, efficiency_at_targets};
pub use error::EvalError;
pub use generation::{
    ChatMode, Completion, DatasetProblem, EngineAggregator, ModelSampler, RsaOptions, RsaOutcome,
    SAMPLE_CHUNK, SampleRecord, SamplerSettings, finish_reason_name, load_problems, purpose,
    read_problems, rsa_report, rsa_summary_json, run_rsa, sample_problems,
};
pub use metrics::bootstrap::{BootstrapOptions, Interval, bootstrap_mean_ci};
pub use metrics::majority::{MajorityOptions, maj_at_k_per_problem};
pub use metrics::passk::{accuracy_per_problem, mean_accuracy, pass_at_k_per_problem};
pub use metrics::samples::{ProblemSamples, SampleSet, load_samples, read_samples};
pub use metrics::summary::{Metric, PasskOptions, PasskSummary, summarize_samples};
pub use report::{Figure, Report, Scale, Section, Table, git_commit};
pub use scaling::{
    Curve, CurvePoint, Efficiency, Reach, SCALING_EFFICIENCY_DEFINITION, maj_at_k_curve,
    max_scaling_efficiency, pass_at_k_curve, rsa_curves, rsa_token_curve, scaling_efficiency,
};
pub use scaling_run::{
    Comparison, ModelScaling, ScalingOptions, run_scaling, scaling_efficiencies, scaling_report,
};
