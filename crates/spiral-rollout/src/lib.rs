//! Batched, KV-cached sampling for reinforcement learning on language models.
//!
//! Not built yet (issue 3): this crate will prefill each prompt once, fork `n` samples from the
//! shared KV cache, decode all live sequences together and record the log-prob of every sampled
//! token.
