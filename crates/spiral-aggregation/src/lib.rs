//! Aggregation for SPIRAL: aggregation prompts, drawing K distinct sets of n traces, packing
//! candidates under a token budget, majority vote, and recursive self-aggregation (RSA).
//!
//! Not built yet (issue 6).
