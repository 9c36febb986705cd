//! One module per `spiral-eval` subcommand: its clap arguments and its `run` function.

pub mod advantages;
pub mod generate;
pub mod logprobs;
pub mod passk;
pub mod rsa;
pub mod sample;
pub mod scaling;
pub mod score;
