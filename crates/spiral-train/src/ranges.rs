//! The valid range of every numeric key of a run config, checked before any work: a value
//! outside it (a negative learning rate, a clip range above 1) stops with an error naming the
//! key, the value and the range. [`RANGES`] is also the documentation: `docs/config.md` lists
//! it, and a test holds the two and every numeric key of a config to each other. Relations
//! between keys (`n <= n1`, a buffer within `max_new_tokens`) are checked by
//! [`crate::RunConfig::validate`] after the ranges.

use std::fmt;

/// An interval of real numbers: `lo` (open or closed) up to `hi` (open or closed) or without
/// bound. Every value must also be finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    lo: f64,
    lo_open: bool,
    hi: Option<(f64, bool)>,
}

impl Range {
    /// `x >= lo`.
    const fn at_least(lo: f64) -> Self {
        Self { lo, lo_open: false, hi: None }
    }

    /// `x > lo`.
    const fn above(lo: f64) -> Self {
        Self { lo, lo_open: true, hi: None }
    }

    /// `lo <= x <= hi`.
    const fn closed(lo: f64, hi: f64) -> Self {
        Self { lo, lo_open: false, hi: Some((hi, false)) }
    }

    /// `lo <= x < hi`.
    const fn right_open(lo: f64, hi: f64) -> Self {
        Self { lo, lo_open: false, hi: Some((hi, true)) }
    }

    /// `lo < x <= hi`.
    const fn left_open(lo: f64, hi: f64) -> Self {
        Self { lo, lo_open: true, hi: Some((hi, false)) }
    }

    /// Whether `x` lies in the range.
    pub fn contains(&self, x: f64) -> bool {
        let above_lo = if self.lo_open { x > self.lo } else { x >= self.lo };
        let below_hi = match self.hi {
            None => true,
            Some((hi, true)) => x < hi,
            Some((hi, false)) => x <= hi,
        };
        x.is_finite() && above_lo && below_hi
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hi {
            None if self.lo_open => write!(f, "> {}", self.lo),
            None => write!(f, ">= {}", self.lo),
            Some((hi, hi_open)) => write!(
                f,
                "{}{}, {}{}",
                if self.lo_open { "(" } else { "[" },
                self.lo,
                hi,
                if hi_open { ")" } else { "]" }
            ),
        }
    }
}

/// Every numeric key, its range and what it is.
pub const RANGES: &[(&str, Range, &str)] = &[
    ("run.seed", Range::at_least(0.0), "seed of the run's random draws"),
    ("run.peak_flops", Range::above(0.0), "device peak FLOP/s for MFU"),
    ("task.train_problems", Range::at_least(1.0), "training problems"),
    ("task.test_problems", Range::at_least(1.0), "held-out problems"),
    ("task.countdown.min_numbers", Range::at_least(2.0), "numbers per problem, fewest"),
    ("task.countdown.max_numbers", Range::at_least(2.0), "numbers per problem, most"),
    ("task.countdown.min_number", Range::at_least(1.0), "smallest number"),
    ("task.countdown.max_number", Range::at_least(1.0), "largest number"),
    ("task.countdown.min_target", Range::at_least(1.0), "smallest target"),
    ("task.countdown.max_target", Range::at_least(1.0), "largest target"),
    (
        "task.countdown.tries",
        Range::closed(0.0, 64.0),
        "tries a warm-start trace makes, each checked against the target (0: the solver's solution)",
    ),
    ("task.arith.min_operands", Range::at_least(1.0), "operands per expression, fewest"),
    ("task.arith.max_operands", Range::at_least(1.0), "operands per expression, most"),
    ("task.arith.max_operand", Range::at_least(1.0), "largest operand"),
    ("task.combination.parts", Range::closed(1.0, 8.0), "independent parts per problem"),
    ("task.combination.modulus", Range::closed(2.0, 50.0), "modulus of every part"),
    (
        "task.combination.tries",
        Range::closed(0.0, 50.0),
        "values a warm-start trace tries per part (0: direct); at most the modulus",
    ),
    ("model.hidden_size", Range::at_least(1.0), "width"),
    ("model.num_layers", Range::at_least(1.0), "decoder layers"),
    ("model.num_heads", Range::at_least(1.0), "attention heads"),
    ("model.num_kv_heads", Range::at_least(1.0), "key/value heads"),
    ("model.head_dim", Range::at_least(1.0), "width of a head"),
    ("model.intermediate_size", Range::at_least(1.0), "MLP width"),
    ("model.max_position_embeddings", Range::at_least(1.0), "context length"),
    ("model.init_std", Range::above(0.0), "standard deviation of the initial weights"),
    ("warm_start.steps", Range::at_least(0.0), "supervised steps"),
    ("warm_start.batch_size", Range::at_least(1.0), "sequences per supervised step"),
    ("warm_start.lr", Range::above(0.0), "supervised learning rate"),
    ("warm_start.aggregation_fraction", Range::closed(0.0, 1.0), "share of aggregation examples"),
    ("warm_start.aggregator_steps", Range::at_least(0.0), "steps of the aggregator stage"),
    ("warm_start.aggregator_search_fraction", Range::closed(0.0, 1.0), "search share, stage two"),
    ("algorithm.n1", Range::at_least(1.0), "search traces per problem"),
    ("algorithm.n", Range::at_least(1.0), "traces per aggregation set"),
    ("algorithm.k", Range::at_least(1.0), "sets per problem"),
    ("algorithm.n2", Range::at_least(1.0), "aggregation traces per set"),
    ("algorithm.tokens_per_problem", Range::at_least(1.0), "generation budget per problem"),
    ("algorithm.search_weight", Range::at_least(0.0), "loss weight of search traces"),
    ("algorithm.aggregation_weight", Range::at_least(0.0), "loss weight of aggregation traces"),
    ("rollout.temperature", Range::at_least(0.0), "sampling temperature (0: greedy)"),
    ("rollout.top_p", Range::left_open(0.0, 1.0), "nucleus mass"),
    ("rollout.max_new_tokens", Range::at_least(1.0), "longest trace"),
    ("train.steps", Range::at_least(0.0), "RL steps"),
    ("train.seed", Range::at_least(0.0), "seed of the RL phase"),
    ("train.problems_per_step", Range::at_least(1.0), "problems per RL step"),
    ("train.micro_batch", Range::at_least(1.0), "sequences per forward pass"),
    ("train.epochs", Range::at_least(1.0), "updates per batch"),
    ("train.max_skipped_updates", Range::at_least(1.0), "non-finite updates in a row to stop at"),
    ("train.keep_checkpoints", Range::at_least(1.0), "checkpoints kept"),
    ("train.checkpoint_every", Range::at_least(1.0), "steps between checkpoints"),
    ("train.dynamic_sampling_max_rounds", Range::at_least(1.0), "collection rounds per step"),
    ("train.optim.lr", Range::above(0.0), "learning rate"),
    ("train.optim.weight_decay", Range::at_least(0.0), "AdamW weight decay"),
    ("train.optim.beta1", Range::right_open(0.0, 1.0), "AdamW beta1"),
    ("train.optim.beta2", Range::right_open(0.0, 1.0), "AdamW beta2"),
    ("train.optim.eps", Range::above(0.0), "AdamW epsilon"),
    ("train.optim.warmup_steps", Range::at_least(0.0), "linear warm-up steps"),
    ("train.optim.total_steps", Range::at_least(0.0), "schedule length (set by the trainer)"),
    ("train.optim.min_lr_ratio", Range::closed(0.0, 1.0), "final learning rate over the peak"),
    ("train.optim.max_grad_norm", Range::above(0.0), "gradient clipping norm"),
    ("train.loss.clip_low", Range::right_open(0.0, 1.0), "ratio clip below, eps_low"),
    ("train.loss.clip_high", Range::at_least(0.0), "ratio clip above, eps_high"),
    ("train.loss.dual_clip", Range::above(1.0), "dual-clip constant c"),
    ("train.loss.kl_beta", Range::at_least(0.0), "KL coefficient"),
    ("train.loss.aggregation.max_len", Range::at_least(1.0), "seq-mean-token-sum-norm length"),
    ("train.loss.correction.cap", Range::above(1.0), "IS truncation or band edge"),
    ("train.overlong.buffer", Range::at_least(0.0), "overlong penalty's buffer, tokens"),
    ("train.overlong.penalty", Range::at_least(0.0), "overlong penalty at the limit"),
    ("eval.every", Range::at_least(1.0), "steps between evaluations"),
    ("eval.problems", Range::at_least(1.0), "problems evaluated"),
    ("eval.n", Range::at_least(1.0), "search traces per problem"),
    ("eval.aggregations", Range::at_least(1.0), "aggregation samples per problem"),
    ("lora.rank", Range::at_least(1.0), "adapter rank"),
    ("lora.alpha", Range::above(0.0), "adapter scaling numerator"),
    ("lora.dropout", Range::right_open(0.0, 1.0), "adapter dropout"),
];

/// Every numeric value of `table` (a resolved config), by dotted key.
pub fn numeric_keys(table: &toml::Table) -> Vec<(String, f64)> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, f64)>) {
        match value {
            toml::Value::Integer(i) => out.push((prefix.to_string(), *i as f64)),
            toml::Value::Float(x) => out.push((prefix.to_string(), *x)),
            toml::Value::Table(t) => {
                for (key, v) in t {
                    walk(&format!("{prefix}.{key}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, value) in table {
        walk(key, value, &mut out);
    }
    out
}

/// Refuses the first numeric value of `table` outside its key's range.
pub fn check(table: &toml::Table) -> anyhow::Result<()> {
    for (key, value) in numeric_keys(table) {
        if let Some((_, range, what)) = RANGES.iter().find(|(k, _, _)| *k == key) {
            anyhow::ensure!(
                range.contains(value),
                "{key} = {value} is out of range: expected {range} ({what})"
            );
        }
    }
    Ok(())
}

/// The table of `docs/config.md`: every key, its range and what it is.
pub fn markdown() -> String {
    let mut text = String::from("| key | valid range | what |\n|---|---|---|\n");
    for (key, range, what) in RANGES {
        text.push_str(&format!("| `{key}` | {range} | {what} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_written() {
        let cases = [
            (Range::at_least(1.0), ">= 1", [0.5, 1.0, 3.0], [false, true, true]),
            (Range::above(0.0), "> 0", [-1.0, 0.0, 0.1], [false, false, true]),
            (Range::closed(0.0, 1.0), "[0, 1]", [0.0, 1.0, 1.1], [true, true, false]),
            (Range::right_open(0.0, 1.0), "[0, 1)", [0.0, 0.5, 1.0], [true, true, false]),
            (Range::left_open(0.0, 1.0), "(0, 1]", [0.0, 0.5, 1.0], [false, true, true]),
        ];
        for (range, text, values, inside) in cases {
            assert_eq!(range.to_string(), text);
            for (x, want) in values.iter().zip(inside) {
                assert_eq!(range.contains(*x), want, "{x} in {text}");
            }
        }
        assert!(!Range::at_least(0.0).contains(f64::INFINITY));
        assert!(!Range::at_least(0.0).contains(f64::NAN));
    }
}
