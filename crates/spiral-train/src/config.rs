//! The run configuration: a TOML file (`configs/default.toml` is compiled in) that may start from
//! another with `extends = "file.toml"`, `--set section.key=value` overrides, unknown keys
//! rejected by name, and values validated before any work starts (set sizes, divisibility);
//! lengths are checked against the model's context by `run` once the problems and the model are
//! known.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spiral_model::{LoraConfig, Precision, Projection};
use spiral_rewards::{ArithConfig, CombinationConfig, CountdownConfig, FieldNames, Task};
use spiral_set_rl::{PolicyLossConfig, SetBaseline};

use crate::algorithm::Algorithm;
use crate::collect::OverlongConfig;
use crate::config_source::{apply_override, read_extended, read_text};
use crate::schedule::OptimConfig;

/// The configuration of the embedded default run.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/default.toml");

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Naming and seeding.
    pub run: RunSection,
    /// The synthetic task.
    pub task: TaskSection,
    /// The model trained from scratch.
    pub model: ModelSection,
    /// Supervised warm start.
    pub warm_start: WarmStartSection,
    /// The RL algorithm and its group sizes.
    pub algorithm: AlgorithmSection,
    /// Sampling.
    pub rollout: RolloutSection,
    /// The RL phase.
    pub train: TrainSection,
    /// Evaluation.
    pub eval: EvalSection,
    /// LoRA adapters for the RL phase (off by default).
    #[serde(default)]
    pub lora: LoraSection,
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Prefix of the run folder name.
    pub name: String,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// The device's peak FLOP/s, which MFU divides by (`mfu_rollout`, `mfu_learn`); by default
    /// the bf16 dense peak of an H100 / H200 on CUDA and a one-second matmul probe on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_flops: Option<f64>,
}

/// `[task]`: generated Countdown or arithmetic problems, or math problems from JSONL files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// `countdown` (the default), `arith` or `math`.
    #[serde(default = "countdown")]
    pub kind: Task,
    /// Problems to train on (generated, or the first ones of `train_file`).
    pub train_problems: usize,
    /// Held-out problems for evaluation (generated, or the first ones of `test_file`).
    pub test_problems: usize,
    /// The Countdown generator.
    #[serde(default)]
    pub countdown: CountdownConfig,
    /// The arithmetic generator.
    #[serde(default)]
    pub arith: ArithConfig,
    /// The combination generator: problems of independent parts, complete only when every part
    /// is right, so that complementary candidates can be combined.
    #[serde(default)]
    pub combination: CombinationConfig,
    /// JSONL training problems (`kind = "math"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_file: Option<PathBuf>,
    /// JSONL held-out problems (`kind = "math"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<PathBuf>,
    /// Field names of the JSONL records (default `problem` / `answer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<FieldNames>,
}

fn countdown() -> Task {
    Task::Countdown
}

/// `[model]`: a Qwen3-style model trained from scratch with a character-level tokenizer, or a
/// pretrained Hugging Face checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// A Hugging Face model (Qwen3, Qwen2 or Llama; `config.json`, safetensors, tokenizer) to
    /// train instead of a model from scratch: a local folder, or a hub id (`org/name`, optionally
    /// `@revision`) in the local Hugging Face cache. The sizes below are then ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// A PEFT LoRA adapter (a folder or a cached hub id) loaded onto `checkpoint`, as
    /// `PeftModel.from_pretrained(base, adapter)` does; RL goes on training it. Needs
    /// `lora.enabled = true` with the adapter's rank, alpha, rslora and targets (its dropout is
    /// `lora.dropout`), and no warm start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<PathBuf>,
    /// Residual width.
    pub hidden_size: usize,
    /// Decoder blocks.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention; default: `num_heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_kv_heads: Option<usize>,
    /// Width of each head (default: `hidden_size / num_heads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Width of the SwiGLU feed-forward layer (default: `hidden_size * 11 / 4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    /// Longest sequence (prompt plus trace, aggregation prompts included) the model takes
    /// (default: 1024 tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_position_embeddings: Option<usize>,
    /// Standard deviation of the initial weights.
    pub init_std: f64,
    /// `float32`, or `bfloat16`: bf16 compute with float32 master weights, gradients and
    /// AdamW state, and float32 norms, softmax and log-probs (`spiral_model::Precision`).
    pub precision: Precision,
}

/// `[warm_start]` (none by default: `steps = 0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmStartSection {
    /// Supervised steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of examples that are aggregation prompts with a correct answer.
    pub aggregation_fraction: f64,
    /// Steps of the second stage, after `steps`: aggregation prompts over `algorithm.n` traces
    /// the stage-one model samples, answered with a correct candidate when one exists, else a
    /// correct solution (0: no second stage).
    #[serde(default)]
    pub aggregator_steps: usize,
    /// Share of search examples in the second stage's batches.
    #[serde(default = "half")]
    pub aggregator_search_fraction: f64,
    /// What the second stage trains when none of an aggregation example's candidates is
    /// correct.
    #[serde(default)]
    pub aggregator_unsolved: UnsolvedSets,
}

/// The second warm-start stage's target for an aggregation prompt whose candidates are all
/// wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsolvedSets {
    /// A correct solution written after the prompt: the aggregator also learns to answer on its
    /// own, which it cannot tell apart from copying when it cannot check candidates.
    #[default]
    Solution,
    /// The example becomes a search example of the same problem: the aggregator only ever
    /// learns to copy a correct candidate.
    Search,
}

fn half() -> f64 {
    0.5
}

impl Default for ModelSection {
    /// The default run's model: 4 layers of width 128 (0.8M parameters).
    fn default() -> Self {
        Self {
            checkpoint: None,
            adapter: None,
            hidden_size: 128,
            num_layers: 4,
            num_heads: 4,
            num_kv_heads: None,
            head_dim: None,
            intermediate_size: None,
            max_position_embeddings: None,
            init_std: 0.02,
            precision: Precision::Float32,
        }
    }
}

impl WarmStartSection {
    /// Supervised steps of both stages: 0 means the run has no warm start.
    pub fn total_steps(&self) -> usize {
        self.steps + self.aggregator_steps
    }
}

impl Default for WarmStartSection {
    fn default() -> Self {
        Self {
            steps: 0,
            batch_size: 32,
            lr: 1e-4,
            aggregation_fraction: 0.3,
            aggregator_steps: 0,
            aggregator_search_fraction: 0.5,
            aggregator_unsolved: UnsolvedSets::Solution,
        }
    }
}

/// `[algorithm]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgorithmSection {
    /// `spiral`, `paragator`, `grpo`, `dr_grpo` or `multitask` (a control: see
    /// [`Algorithm::Multitask`]).
    pub name: Algorithm,
    /// Search traces per problem (GRPO's group size, ParaGator's pool size).
    pub n1: usize,
    /// Traces per aggregation set (ParaGator's pass@k `k`).
    pub n: usize,
    /// Sets per problem.
    pub k: usize,
    /// Aggregation traces per set.
    pub n2: usize,
    /// Matched compute: generated tokens allowed per problem per step. When set, the length
    /// limit of every training trace is this divided by the traces per problem (`n1 + k * n2`
    /// for SPIRAL and ParaGator, `n1` otherwise), so algorithms with the same value generate at
    /// most the same tokens: the paper's 24 SPIRAL traces against 12 GRPO traces of twice the
    /// length. Evaluation keeps `rollout.max_new_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_problem: Option<usize>,
    /// Divide SPIRAL's advantages by their standard deviation.
    pub normalize_std: bool,
    /// What set RL compares a set's score with: `mean` (of all K sets, the paper's) or
    /// `leave_one_out` (of the other sets).
    #[serde(default)]
    pub set_baseline: SetBaseline,
    /// What happens to sequences whose advantage is exactly 0, for every algorithm alike:
    /// `drop` (the default: they leave the batch, so they neither count in a token-mean's
    /// denominator nor cost a forward pass) or `keep`.
    #[serde(default)]
    pub zero_advantage: ZeroAdvantage,
    /// Loss weight of search traces.
    pub search_weight: f64,
    /// Loss weight of aggregation traces.
    pub aggregation_weight: f64,
}

/// `algorithm.zero_advantage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroAdvantage {
    /// Sequences with a zero advantage leave the batch.
    #[default]
    Drop,
    /// They stay, contributing no gradient but counting in the loss's denominator.
    Keep,
}

impl AlgorithmSection {
    /// Whether a sequence with `advantage` is trained.
    pub fn trains(&self, advantage: f64) -> bool {
        advantage != 0.0 || self.zero_advantage == ZeroAdvantage::Keep
    }
}

/// `[rollout]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSection {
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Longest trace, search or aggregation.
    pub max_new_tokens: usize,
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// RL steps (0: stop after the warm start and its evaluation).
    pub steps: usize,
    /// Seed of the RL phase's random draws (problem order, rollouts, set draws, adapter
    /// initialisation and dropout); `run.seed` when absent. The task data, the warm start and
    /// the evaluation keep `run.seed`, so runs that differ only here train from the same warm
    /// start and are evaluated on the same problems (`cargo xtask repro` uses this for seeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Problems per RL step.
    pub problems_per_step: usize,
    /// Sequences per micro-batch.
    pub micro_batch: usize,
    /// Keep only each decoder layer's input through the forward pass and re-run one layer at a
    /// time in the backward pass: activation memory of one layer instead of all of them, for
    /// long sequences, at about a third more compute per step (warm start and RL alike).
    #[serde(default)]
    pub activation_checkpointing: bool,
    /// Optimisation passes over each rollout batch; every pass takes its ratio against the
    /// rollout's log-probs (PPO epochs).
    #[serde(default = "one")]
    pub epochs: usize,
    /// Consecutive skipped (NaN or infinite) updates after which the run stops.
    #[serde(default = "three")]
    pub max_skipped_updates: usize,
    /// Newest `step-N` checkpoints kept (the warm start is always kept).
    #[serde(default = "three")]
    pub keep_checkpoints: usize,
    /// Checkpoint every this many RL steps (and at the end, and when stopped by Ctrl-C).
    #[serde(default = "ten")]
    pub checkpoint_every: usize,
    /// Optimiser and schedule (`total_steps` is set to `steps * epochs`, see
    /// [`RunConfig::rl_optim`]).
    pub optim: OptimConfig,
    /// Policy loss.
    pub loss: PolicyLossConfig,
    /// Overlong shaping of traces that reach the length limit (DAPO).
    #[serde(default)]
    pub overlong: OverlongConfig,
    /// Dynamic sampling (DAPO): drop problems whose traces all have the same raw correctness
    /// and sample more, until `problems_per_step` informative ones are gathered.
    #[serde(default)]
    pub dynamic_sampling: bool,
    /// The most rounds of collection dynamic sampling takes in one step (the first included).
    #[serde(default = "three")]
    pub dynamic_sampling_max_rounds: usize,
}

/// `[lora]`: train low-rank adapters instead of every weight during RL (Hu et al., 2021). The
/// warm start, when there is one, still trains every weight; its result is the frozen base,
/// saved once as `checkpoints/base` (or, with no warm start, read from `model.checkpoint`), and
/// each checkpoint holds only the adapters, in PEFT's format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSection {
    /// Train adapters instead of all weights.
    pub enabled: bool,
    /// Adapter rank `r`.
    pub rank: usize,
    /// Scale numerator: updates are scaled by `alpha / rank` (`alpha / sqrt(rank)` with rslora).
    pub alpha: f64,
    /// Dropout on the adapters' inputs while training. It draws from burn's process-wide
    /// generator, seeded per step: two runs with adapter dropout must not share a process.
    pub dropout: f64,
    /// rsLoRA scaling, `alpha / sqrt(rank)`.
    pub rslora: bool,
    /// Adapted projections: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
    pub targets: Vec<Projection>,
}

impl Default for LoraSection {
    /// Disabled; when enabled, PEFT-style rank 16, alpha 32, every projection.
    fn default() -> Self {
        let c = LoraConfig::default();
        Self {
            enabled: false,
            rank: c.rank,
            alpha: c.alpha,
            dropout: c.dropout,
            rslora: c.use_rslora,
            targets: c.targets,
        }
    }
}

impl LoraSection {
    /// The adapters to attach, when enabled.
    pub fn config(&self) -> Option<LoraConfig> {
        self.enabled.then(|| LoraConfig {
            rank: self.rank,
            alpha: self.alpha,
            dropout: self.dropout,
            use_rslora: self.rslora,
            targets: self.targets.clone(),
        })
    }
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Evaluate every this many RL steps (and before and after training).
    pub every: usize,
    /// Held-out problems evaluated.
    pub problems: usize,
    /// Search traces per problem; one aggregation reads all of them (`agg@1`).
    pub n: usize,
    /// Aggregation samples per problem, all over the same n traces; `agg@1` is their mean
    /// accuracy (more samples, less noise, same expectation).
    #[serde(default = "one")]
    pub aggregations: usize,
}

fn one() -> usize {
    1
}

fn three() -> usize {
    3
}

fn ten() -> usize {
    10
}

impl RunConfig {
    /// Parses `text` (named `origin` in errors; `extends` needs [`RunConfig::from_file`]),
    /// applies `overrides` (`a.b.c=value`, the value read as TOML and else as a string), and
    /// validates the result.
    pub fn from_toml(text: &str, origin: &str, overrides: &[String]) -> anyhow::Result<Self> {
        Self::from_table(read_text(text, origin)?, origin, overrides)
    }

    /// Reads the config file at `path`: its `extends` chain first (each file relative to the one
    /// that names it; its keys override those it extends, section by section), then `overrides`.
    pub fn from_file(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let value = read_extended(path, &mut Vec::new())?;
        Self::from_table(value, &path.display().to_string(), overrides)
    }

    fn from_table(
        mut value: toml::Table,
        origin: &str,
        overrides: &[String],
    ) -> anyhow::Result<Self> {
        for item in overrides {
            apply_override(&mut value, item)?;
        }
        let mut config: RunConfig =
            RunConfig::deserialize(value).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        // Resolved here too, so that the printed and saved config show the schedule the run
        // uses and read back to the same config.
        config.train.optim = config.rl_optim();
        config.validate()?;
        Ok(config)
    }

    /// The embedded default run with `overrides`.
    pub fn default_with(overrides: &[String]) -> anyhow::Result<Self> {
        Self::from_toml(DEFAULT_CONFIG, "configs/default.toml (embedded)", overrides)
    }

    /// Traces sampled per training problem and step.
    pub fn traces_per_problem(&self) -> usize {
        let a = &self.algorithm;
        if a.name.aggregates() { a.n1 + a.k * a.n2 } else { a.n1 }
    }

    /// The length limit of training traces: `algorithm.tokens_per_problem` shared among the
    /// traces of a problem when set, else `rollout.max_new_tokens`.
    pub fn train_max_new_tokens(&self) -> usize {
        match self.algorithm.tokens_per_problem {
            Some(budget) => budget / self.traces_per_problem(),
            None => self.rollout.max_new_tokens,
        }
    }

    /// The temperature RL's policy is scored at: that of `softmax(logits / T)`, the
    /// distribution the rollouts draw from (`rollout.temperature`; 1 when greedy), so that the
    /// learner trains the policy that sampled, as TRL and verl do.
    pub fn scoring_temperature(&self) -> f64 {
        if self.rollout.temperature > 0.0 { self.rollout.temperature } else { 1.0 }
    }

    /// The RL phase's optimiser: `train.optim` with a schedule spanning every optimiser step of
    /// the phase (`train.steps * train.epochs`), whatever `total_steps` says.
    pub fn rl_optim(&self) -> OptimConfig {
        OptimConfig { total_steps: self.train.steps * self.train.epochs, ..self.train.optim }
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }

    /// Checks relations between values; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::ranges::check(&toml::Table::try_from(self)?)?;
        let a = &self.algorithm;
        anyhow::ensure!(a.n1 >= 1, "algorithm.n1 must be at least 1");
        if a.name.aggregates() {
            anyhow::ensure!(
                a.n >= 1 && a.n <= a.n1,
                "algorithm.n = {} must lie in 1..=n1 ({})",
                a.n,
                a.n1
            );
            let available = spiral_aggregation::binomial(a.n1, a.n).unwrap_or(u128::MAX);
            anyhow::ensure!(
                a.k >= 1 && a.k as u128 <= available,
                "algorithm.k = {} must lie in 1..=C(n1, n) = {available} (distinct sets)",
                a.k
            );
            anyhow::ensure!(a.n2 >= 1, "algorithm.n2 must be at least 1");
        } else {
            anyhow::ensure!(
                a.n1 >= 2,
                "algorithm.n1 (the group size) must be at least 2 for {:?}",
                a.name
            );
        }
        anyhow::ensure!(self.eval.n >= 1, "eval.n must be at least 1");
        anyhow::ensure!(self.eval.aggregations >= 1, "eval.aggregations must be at least 1");
        anyhow::ensure!(
            self.eval.problems <= self.task.test_problems,
            "eval.problems ({}) exceeds task.test_problems ({})",
            self.eval.problems,
            self.task.test_problems
        );
        anyhow::ensure!(
            self.train.problems_per_step >= 1,
            "train.problems_per_step must be at least 1"
        );
        anyhow::ensure!(self.train.micro_batch >= 1, "train.micro_batch must be at least 1");
        anyhow::ensure!(self.eval.every >= 1, "eval.every must be at least 1");
        anyhow::ensure!(self.train.epochs >= 1, "train.epochs must be at least 1");
        anyhow::ensure!(
            self.train.checkpoint_every >= 1,
            "train.checkpoint_every must be at least 1"
        );
        let length = self.train_max_new_tokens();
        anyhow::ensure!(
            length >= 1,
            "algorithm.tokens_per_problem = {:?} leaves no tokens per trace ({} traces per problem)",
            a.tokens_per_problem,
            self.traces_per_problem()
        );
        if self.task.kind == Task::Math {
            anyhow::ensure!(
                self.model.checkpoint.is_some(),
                "task.kind = \"math\" needs model.checkpoint (a pretrained model and its tokenizer)"
            );
            anyhow::ensure!(
                self.warm_start.steps == 0,
                "task.kind = \"math\" has no solution traces to warm-start on: set \
                 warm_start.steps = 0"
            );
        }
        if let Some(adapter) = &self.model.adapter {
            let adapter = adapter.display();
            anyhow::ensure!(
                self.model.checkpoint.is_some(),
                "model.adapter = {adapter} needs model.checkpoint, the base it is loaded onto"
            );
            anyhow::ensure!(
                self.lora.enabled,
                "model.adapter = {adapter} is trained as LoRA adapters: set lora.enabled = true \
                 (with the adapter's rank, alpha and targets)"
            );
            anyhow::ensure!(
                self.warm_start.total_steps() == 0,
                "model.adapter = {adapter}: a warm start trains every weight, not an adapter; \
                 set warm_start.steps = 0 and warm_start.aggregator_steps = 0"
            );
        }
        anyhow::ensure!(
            self.model.head_dim.is_some()
                || self.model.hidden_size.is_multiple_of(self.model.num_heads),
            "model.hidden_size must be divisible by model.num_heads (or set model.head_dim)"
        );
        if let Some(kv) = self.model.num_kv_heads {
            anyhow::ensure!(
                kv > 0 && self.model.num_heads.is_multiple_of(kv),
                "model.num_kv_heads = {kv} must divide model.num_heads = {}",
                self.model.num_heads
            );
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.warm_start.aggregation_fraction),
            "warm_start.aggregation_fraction must lie in [0, 1]"
        );
        if let Some(lora) = self.lora.config() {
            lora.validate().map_err(|e| anyhow::anyhow!("[lora]: {e}"))?;
        }
        self.task.countdown.validate()?;
        self.task.arith.validate()?;
        self.task.combination.validate()?;
        self.train.loss.validate()?;
        self.train.overlong.validate(length)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
