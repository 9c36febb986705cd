//! The SPIRAL training orchestrator. Today: the learner that every phase trains through
//! ([`Learner`]: supervised and clipped policy-gradient steps with AdamW, warm-up + cosine
//! learning rate, global gradient-norm clipping and micro-batch accumulation). The run loop,
//! configs, checkpoints and reports of issue 7 build on it.
//!
//! ```no_run
//! use burn::backend::{Autodiff, Flex};
//! use spiral_model::{CausalLm, ModelConfig};
//! use spiral_train::{Learner, OptimConfig, TrainSequence};
//!
//! let model = CausalLm::<Autodiff<Flex>>::random(ModelConfig::small(64, 32, 2, 4), 0, 0.02, &Default::default())?;
//! let mut learner = Learner::new(model, OptimConfig::default());
//! let batch = vec![TrainSequence { tokens: vec![1, 5, 7, 9], prompt_len: 2, advantage: 1.0, old_logprobs: None, weight: 1.0 }];
//! let stats = learner.sft_step(&batch)?;
//! println!("loss {:.3}, grad norm {:.3}", stats.loss, stats.grad_norm);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod learner;
mod schedule;

pub use learner::{Learner, StepStats, TrainError, TrainSequence};
pub use schedule::{LrSchedule, OptimConfig};
