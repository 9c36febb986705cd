//! The SPIRAL training orchestrator: a TOML [`RunConfig`], the task data ([`TaskData`]), the
//! [`Learner`] every phase trains through (supervised and clipped policy-gradient steps with
//! AdamW, warm-up + cosine learning rate, global gradient-norm clipping, micro-batches), data
//! collection per algorithm ([`collect`]: SPIRAL, ParaGator, GRPO, Dr.GRPO), evaluation
//! ([`evaluate`]: pass@1, pass@k, maj@n, agg@1), checkpoints that resume exactly
//! ([`TrainerState`]), the report ([`write_report`]) and the run loop ([`run`]) behind the
//! `spiral-train` binary. The study of SPIRAL against its baselines built on it is the
//! `spiral-repro` crate.
//!
//! ```no_run
//! use burn::backend::{Autodiff, Flex};
//! use spiral_model::{CausalLm, ModelConfig};
//! use spiral_train::{Learner, OptimConfig, TrainSequence};
//!
//! let model = CausalLm::<Autodiff<Flex>>::random(ModelConfig::small(64, 32, 2, 4), 0, 0.02, &Default::default())?;
//! let mut learner = Learner::new(model, OptimConfig::default());
//! let batch = vec![TrainSequence { tokens: vec![1, 5, 7, 9], prompt_len: 2, advantage: 1.0, old_logprobs: None, ref_logprobs: None, rollout_logprobs: None, weight: 1.0 }];
//! let stats = learner.sft_step(&batch)?;
//! println!("loss {:.3}, grad norm {:.3}", stats.loss, stats.grad_norm);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
mod checkpoint;
mod collect;
mod config;
mod config_source;
pub mod distributed;
mod evaluate;
pub mod gate;
mod learner;
mod metrics;
pub mod mfu;
mod packing;
mod progress;
pub mod ranges;
mod report;
mod run;
mod schedule;
mod score;
mod task;

pub use algorithm::{AggregationAdvantage, Algorithm, Credit, GroupAdvantage, SearchAdvantage};
pub use checkpoint::{Phase, TrainerState, latest as latest_checkpoint};
pub use collect::{Collected, Draws, OverlongConfig, collect};
pub use config::{DEFAULT_CONFIG, RunConfig};
pub use evaluate::{EvalMetrics, MadeUpCandidates, Transcript, evaluate, evaluate_on};
pub use learner::{Learner, StepStats, TrainError, TrainSequence};
pub use metrics::{EvalRecord, Record, TrainRecord, WarmStartRecord, read_metrics};
pub use report::{checkout_commit, write_report};
pub use run::{Outcome, RunControl, default_out_dir, run, summary};
pub use schedule::{LrSchedule, OptimConfig};
/// The seed mixer of every random stream of a run (defined in `spiral-rollout`).
pub use spiral_rollout::stream_seed;
pub use task::{EOS, TaskData};
