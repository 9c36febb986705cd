//! Batched, KV-cached sampling for reinforcement learning on language models.
//!
//! [`RolloutEngine::generate`] takes prompts (token ids) and returns `n` samples per prompt with
//! the log-prob of every sampled token, its finish reason and token counts. Each prompt is
//! prefilled once and its cache shared by its samples; all live sequences decode together;
//! finished ones leave the batch. Samplers: greedy, temperature, top-k, top-p, min-p, seeded
//! per sample so results do not depend on batching. On a GPU, draws without top-k/p or min-p
//! are made on the device (Gumbel-max), from the backend's generator seeded per chunk.
//!
//! ```no_run
//! use burn::backend::Flex;
//! use spiral_model::Checkpoint;
//! use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};
//!
//! let ckpt = Checkpoint::<Flex>::load("path/to/model", &Default::default())?;
//! let request = RolloutRequest {
//!     prompts: vec![ckpt.tokenizer.encode("Use 3 5 7 to make 22.\n", false)?],
//!     n: 8,
//!     sampling: SamplingParams { temperature: 1.0, seed: 1, ..Default::default() },
//!     stop: StopConditions {
//!         eos_token_ids: ckpt.tokenizer.eos_token_ids().to_vec(),
//!         stop_strings: vec!["\n\n".into()],
//!         max_new_tokens: 128,
//!     },
//!     max_total_tokens: None,
//! };
//! let out = RolloutEngine::default().generate(&ckpt.model, Some(&ckpt.tokenizer), &request)?;
//! for s in &out.samples {
//!     println!("{:?}: {}", s.finish, ckpt.tokenizer.decode(&s.tokens, true)?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod device_sampling;
mod engine;
mod error;
mod sampling;
mod seed;
mod stop;

pub use engine::{
    EngineConfig, RolloutEngine, RolloutOutput, RolloutRequest, RolloutStats, Sample,
};
pub use error::RolloutError;
pub use sampling::{SamplingParams, argmax, sample_rng, sample_token};
pub use seed::stream_seed;
pub use stop::{FinishReason, StopConditions, StopStringMatcher};
