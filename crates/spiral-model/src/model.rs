//! The decoder-only causal language model shared by Qwen3, Qwen2 and Llama, with its two forward
//! paths: full-sequence log-probs of given tokens (training and scoring, batched over ragged
//! sequences, vocabulary projected in chunks) and incremental decoding with a [`KvCache`].

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{
    DType, FloatDType, IndexingUpdateOp, Int, Tensor, TensorData, backend::Backend,
};

use spiral_kernels::device::{is_cpu, length_multiple};
use spiral_kernels::logit_scores::logit_scores;
use spiral_kernels::precision::{Precision, cast, matmul, to_f32};

use crate::cache::KvCache;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{DecoderLayer, Linear, RmsNorm};
use crate::lora::LoraConfig;
use crate::mask::AttentionMask;
use crate::memory::{self, PassShape, scoring_bytes, training_bytes};
use crate::rope::{RopeTables, inverse_frequencies};
use crate::weights::{Init, RandomInit, WeightSource};

/// Default bound on the number of logits held at once by [`CausalLm::token_logprobs`] on the
/// CPU: rows are projected onto the vocabulary in chunks of `LOGIT_CHUNK_ELEMENTS /
/// vocab_size` (16 MiB of float32 logits, which stay in cache).
pub const LOGIT_CHUNK_ELEMENTS: usize = 1 << 22;

/// The same bound on a GPU: 1 GiB of float32 logits, about 1,700 rows of a 152k vocabulary
/// (Qwen's), so each chunk is one large matrix product rather than many thin ones.
pub const GPU_LOGIT_CHUNK_ELEMENTS: usize = 1 << 28;

/// A decoder-only transformer with a language-modelling head.
#[derive(Module, Debug)]
pub struct CausalLm<B: Backend> {
    /// Token embeddings, `[vocab, hidden]` (`model.embed_tokens.weight`).
    pub embed_tokens: Param<Tensor<B, 2>>,
    /// Decoder blocks (`model.layers.N`).
    pub layers: Vec<DecoderLayer<B>>,
    /// Final norm (`model.norm`).
    pub norm: RmsNorm<B>,
    /// Output head (`lm_head`), absent when tied to the embeddings.
    pub lm_head: Option<Linear<B>>,
    #[module(skip)]
    config: ModelConfig,
    /// The adapters' settings when LoRA adapters are attached (see [`crate::lora`]).
    #[module(skip)]
    pub(crate) lora: Option<LoraConfig>,
    #[module(skip)]
    inv_freq: Vec<f32>,
    #[module(skip)]
    logit_chunk_elements: usize,
    /// The dtype of activations (see [`spiral_kernels::precision`]).
    #[module(skip)]
    precision: Precision,
}

/// Per-token scores of given sequences, `[batch, time - 1]`: entry `(i, t)` is about token
/// `t + 1` of sequence `i` given its prefix; entries outside the scored range are 0.
#[derive(Debug, Clone)]
pub struct TokenScores<B: Backend> {
    /// `log p(x_{t+1} | x_{<=t})`.
    pub logprobs: Tensor<B, 2>,
    /// Entropy of the next-token distribution at position `t`, when requested.
    pub entropy: Option<Tensor<B, 2>>,
}

impl<B: Backend> CausalLm<B> {
    /// Builds the model from named tensors (a checkpoint or a random initialisation).
    pub fn from_weights(config: ModelConfig, w: &mut impl WeightSource<B>) -> Result<Self> {
        config.validate().map_err(ModelError::Input)?;
        let c = &config;
        let embed_tokens =
            w.tensor("model.embed_tokens.weight", [c.vocab_size, c.hidden_size], Init::Normal)?;
        let layers = (0..c.num_layers)
            .map(|i| DecoderLayer::load(w, &format!("model.layers.{i}"), c))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(w, "model.norm", c.hidden_size, c.rms_norm_eps)?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(Linear::load(w, "lm_head", c.hidden_size, c.vocab_size, false)?)
        };
        let inv_freq = inverse_frequencies(&c.rope, c.head_dim);
        Ok(Self {
            embed_tokens: Param::from_tensor(embed_tokens),
            layers,
            norm,
            lm_head,
            config,
            lora: None,
            inv_freq,
            logit_chunk_elements: if is_cpu::<B>() {
                LOGIT_CHUNK_ELEMENTS
            } else {
                GPU_LOGIT_CHUNK_ELEMENTS
            },
            precision: Precision::Float32,
        })
    }

    /// A from-scratch model: Normal(0, `std`) weights drawn from a generator seeded with `seed`.
    pub fn random(config: ModelConfig, seed: u64, std: f64, device: &B::Device) -> Result<Self> {
        Self::from_weights(config, &mut RandomInit::new(seed, std, device))
    }

    /// The validated config this model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Sets how many logits [`CausalLm::token_logprobs`] materialises at once (at least one
    /// row of the vocabulary). Smaller saves memory on large vocabularies; larger is faster.
    pub fn set_logit_chunk_elements(&mut self, elements: usize) {
        self.logit_chunk_elements = elements;
    }

    /// Computes in `precision` from now on (the weights keep their dtype; see
    /// [`spiral_kernels::precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The dtype activations are computed in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The model as rollouts and scoring use it: computing in `precision`, with its weights
    /// stored in that dtype ([`CausalLm::with_weights_in_compute_dtype`]).
    pub fn for_inference_in(self, precision: Precision) -> Self {
        self.with_precision(precision).with_weights_in_compute_dtype()
    }

    /// The same model with every weight stored in its compute dtype: for inference in bf16,
    /// which then reads half the bytes per weight and casts nothing per step. Training keeps
    /// float32 weights (a model converted here still trains, but with bf16 parameters).
    pub fn with_weights_in_compute_dtype(self) -> Self {
        struct ToDtype(FloatDType);
        impl<B: Backend> ModuleMapper<B> for ToDtype {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                let dtype = self.0;
                param.map(|t| cast(t, dtype.into()))
            }
        }
        match self.precision {
            Precision::Float32 => self,
            p => {
                let dtype = FloatDType::from(p.dtype());
                self.map(&mut ToDtype(dtype))
            }
        }
    }

    /// The device holding the weights.
    pub fn device(&self) -> B::Device {
        self.embed_tokens.val().device()
    }

    /// Runs the decoder stack and returns the final-norm hidden states `[batch, time, hidden]`.
    ///
    /// - `input_ids`: `[batch, time]`.
    /// - `positions`: absolute positions `[batch, time]` (left-padded rows start later).
    /// - `key_mask`: `[batch, past + time]`, true where a key is a real token; `None` if all are.
    /// - `cache`: appended to when given; keys already cached are attended to.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        key_mask: Option<&[Vec<bool>]>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let past = cache.as_ref().map_or(0, |c| c.len());
        let (rope, mask) = self.rope_and_mask(&input_ids, positions, past, key_mask);
        let mut x = self.embed(input_ids);
        match cache {
            Some(cache) => {
                for (layer, layer_cache) in self.layers.iter().zip(cache.layers_mut()) {
                    x = layer.forward(x, &rope, &mask, Some(layer_cache));
                }
            }
            None => {
                for layer in &self.layers {
                    x = layer.forward(x, &rope, &mask, None);
                }
            }
        }
        self.norm.forward(x)
    }

    /// The token embeddings of `input_ids: [batch, time]`, `[batch, time, hidden]` in the
    /// compute dtype: the first decoder layer's input.
    pub(crate) fn embed(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, t] = input_ids.dims();
        let rows = self.embed_tokens.val().select(0, input_ids.reshape([b * t]));
        cast(rows, self.precision.dtype()).reshape([b, t, self.config.hidden_size])
    }

    /// The rotary tables and attention mask every layer of one forward pass shares.
    pub(crate) fn rope_and_mask(
        &self,
        input_ids: &Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        past: usize,
        key_mask: Option<&[Vec<bool>]>,
    ) -> (RopeTables<B>, AttentionMask<B>) {
        let [b, t] = input_ids.dims();
        let dtype = self.precision.dtype();
        let rope = RopeTables::new(&self.inv_freq, positions, dtype);
        (rope, AttentionMask::new(b, t, past, key_mask, &input_ids.device()))
    }

    /// Projects hidden states `[rows, hidden]` onto the vocabulary: `[rows, vocab]`, float32
    /// (the product runs in the hidden states' dtype).
    pub fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let head = self.head_weight(hidden.dtype());
        to_f32(matmul(hidden, head))
    }

    /// The vocabulary projection `[hidden, vocab]` in `dtype`: the output head's weight, or
    /// the transposed embeddings when they are tied. Taken once per call of
    /// [`CausalLm::token_logprobs`], not once per chunk, so bf16 casts it once.
    fn head_weight(&self, dtype: DType) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(head) => cast(head.effective_weight(), dtype),
            None => cast(self.embed_tokens.val(), dtype).transpose(),
        }
    }

    /// One incremental step: feeds `input_ids: [batch, time]` after the cached positions and
    /// returns the logits of the last position of each row, `[batch, vocab]`.
    ///
    /// `positions` and `key_mask` are as in [`CausalLm::hidden_states`]; for unpadded rows the
    /// positions are simply `cache.len() .. cache.len() + time`.
    pub fn decode_step(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        key_mask: Option<&[Vec<bool>]>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 2> {
        let [b, t] = input_ids.dims();
        let hidden = self.hidden_states(input_ids, positions, key_mask, Some(cache));
        let last = hidden.slice([0..b, t - 1..t]).reshape([b, self.config.hidden_size]);
        self.logits(last)
    }

    /// Full-sequence log-probs of ragged sequences in one batch.
    ///
    /// Sequences are right-padded to the longest; with right padding a real token never attends
    /// to padding under the causal mask, so each sequence's scores do not depend on its batch.
    /// Only tokens at indices `start[i] .. len(seq_i)` are scored (pass 1 to score everything
    /// after the first token, or the prompt length to score a completion); the vocabulary
    /// projection runs over those rows only, [`LOGIT_CHUNK_ELEMENTS`] logits at a time, so the
    /// `[batch, time, vocab]` tensor never exists. Off the CPU the padded length is a multiple of
    /// 8 tokens ([`spiral_kernels::device::length_multiple`]); the scores are `[batch, longest - 1]` either
    /// way.
    pub fn token_logprobs(
        &self,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
    ) -> Result<TokenScores<B>> {
        self.token_logprobs_padded(sequences, start, with_entropy, 1.0, length_multiple::<B>())
    }

    /// [`CausalLm::token_logprobs`] under `softmax(logits / temperature)`, the distribution a
    /// sampler at that temperature draws from (before any top-k, top-p or min-p cut); the
    /// entropies are that distribution's too. RL trains this policy when it samples at
    /// `temperature`, as TRL and verl do.
    pub fn token_logprobs_tempered(
        &self,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
        temperature: f64,
    ) -> Result<TokenScores<B>> {
        let multiple = length_multiple::<B>();
        self.token_logprobs_padded(sequences, start, with_entropy, temperature, multiple)
    }

    /// [`CausalLm::token_logprobs_tempered`] with the batch right-padded to a multiple of
    /// `multiple` tokens.
    fn token_logprobs_padded(
        &self,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
        temperature: f64,
        multiple: usize,
    ) -> Result<TokenScores<B>> {
        check_temperature(temperature)?;
        if let Some(scores) = self.trivial_scores(sequences, start, with_entropy)? {
            return Ok(scores);
        }
        let (input, positions) = self.padded_input(sequences, multiple)?;
        self.ensure_memory_for(&input, start, false)?;
        let hidden = self.hidden_states(input, positions, None, None);
        Ok(self.scores_of_hidden(hidden, sequences, start, with_entropy, temperature))
    }

    /// Refuses a `start` per sequence that does not match; the all-zero scores when there is
    /// nothing to score (no sequence, or none of two tokens), `None` otherwise.
    pub(crate) fn trivial_scores(
        &self,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
    ) -> Result<Option<TokenScores<B>>> {
        if sequences.len() != start.len() {
            return Err(ModelError::Input(format!(
                "{} sequences but {} start indices",
                sequences.len(),
                start.len()
            )));
        }
        let b = sequences.len();
        let t = sequences.iter().map(Vec::len).max().unwrap_or(0);
        Ok((b == 0 || t < 2).then(|| {
            let zeros = Tensor::zeros([b, t.saturating_sub(1)], &self.device());
            TokenScores { logprobs: zeros.clone(), entropy: with_entropy.then_some(zeros) }
        }))
    }

    /// Refuses, before any work, a pass over `input: [batch, padded]` whose estimated peak memory
    /// ([`crate::memory`]) exceeds what the machine has available (on the CPU; device memory is
    /// not read): a training pass when the backend records gradients, scoring otherwise.
    pub(crate) fn ensure_memory_for(
        &self,
        input: &Tensor<B, 2, Int>,
        start: &[usize],
        checkpointing: bool,
    ) -> Result<()> {
        if !is_cpu::<B>() {
            return Ok(());
        }
        let [sequences, tokens] = input.dims();
        let scored = start.iter().map(|&s| tokens.saturating_sub(s.max(1))).sum();
        let shape = PassShape { sequences, tokens, scored };
        let what = format!("a pass over {sequences} sequence(s) of {tokens} tokens");
        if B::ad_enabled(&input.device()) {
            let lora = self.lora.is_some();
            let needed = training_bytes(&self.config, shape, checkpointing, lora);
            let advice = if checkpointing {
                "train on fewer or shorter sequences at a time (a smaller micro-batch)"
            } else {
                "train on fewer or shorter sequences at a time (a smaller micro-batch), or turn \
                 on activation checkpointing"
            };
            memory::ensure_fits(needed, &format!("training {what}"), advice)
        } else {
            let needed = scoring_bytes(&self.config, shape);
            memory::ensure_fits(needed, &what, "score fewer or shorter sequences at a time")
        }
    }

    /// The sequences right-padded to a multiple of `multiple` tokens, as `[batch, padded]` ids
    /// and positions, after [`CausalLm::check_tokens`].
    pub(crate) fn padded_input(
        &self,
        sequences: &[Vec<u32>],
        multiple: usize,
    ) -> Result<(Tensor<B, 2, Int>, Tensor<B, 2, Int>)> {
        self.check_tokens(sequences)?;
        let device = self.device();
        let b = sequences.len();
        let t = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let padded = t.next_multiple_of(multiple);
        let mut ids = Vec::with_capacity(b * padded);
        for seq in sequences {
            ids.extend(seq.iter().map(|&x| x as i64));
            ids.extend(std::iter::repeat_n(0, padded - seq.len()));
        }
        let input = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, padded]), &device);
        Ok((input, position_grid::<B>(b, padded, &device)))
    }

    /// [`CausalLm::token_logprobs`] from the final-norm hidden states of the padded sequences
    /// (at least two tokens in the longest).
    pub(crate) fn scores_of_hidden(
        &self,
        hidden: Tensor<B, 3>,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
        temperature: f64,
    ) -> TokenScores<B> {
        let device = self.device();
        let b = sequences.len();
        let t = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for (i, seq) in sequences.iter().enumerate() {
            for pos in start[i].max(1)..seq.len() {
                rows.push((i * (t - 1) + pos - 1) as i64);
                targets.push(seq[pos] as i64);
            }
        }
        let hidden = hidden.slice([0..b, 0..t - 1]).reshape([b * (t - 1), self.config.hidden_size]);
        // The head has no bias, so dividing its inputs divides the logits, at a hidden row's
        // cost instead of a vocabulary row's.
        let hidden = if temperature == 1.0 { hidden } else { hidden.div_scalar(temperature) };
        let zeros = Tensor::<B, 1>::zeros([b * (t - 1)], &device);
        if rows.is_empty() {
            let zeros = zeros.reshape([b, t - 1]);
            return TokenScores { logprobs: zeros.clone(), entropy: with_entropy.then_some(zeros) };
        }
        let chunk = (self.logit_chunk_elements / self.config.vocab_size).max(1);
        let head = self.head_weight(hidden.dtype());
        let mut logprob_parts = Vec::new();
        let mut entropy_parts = Vec::new();
        for (row_chunk, target_chunk) in rows.chunks(chunk).zip(targets.chunks(chunk)) {
            let n = row_chunk.len();
            let idx =
                Tensor::<B, 1, Int>::from_data(TensorData::new(row_chunk.to_vec(), [n]), &device);
            let logits = matmul(hidden.clone().select(0, idx), head.clone());
            let scores = logit_scores(logits, target_chunk, with_entropy);
            logprob_parts.push(scores.logprobs);
            entropy_parts.extend(scores.entropy);
        }
        let all_rows =
            Tensor::<B, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device);
        let scatter = |parts: Vec<Tensor<B, 1>>| {
            // Rows are distinct, so adding into zeros is an assignment (and differentiable).
            zeros
                .clone()
                .select_assign(0, all_rows.clone(), Tensor::cat(parts, 0), IndexingUpdateOp::Add)
                .reshape([b, t - 1])
        };
        TokenScores {
            logprobs: scatter(logprob_parts),
            entropy: with_entropy.then(|| scatter(entropy_parts)),
        }
    }

    /// Refuses token ids outside the embedding matrix and sequences longer than the context.
    pub fn check_tokens(&self, sequences: &[Vec<u32>]) -> Result<()> {
        let c = &self.config;
        for (i, seq) in sequences.iter().enumerate() {
            if seq.len() > c.max_position_embeddings {
                return Err(ModelError::Input(format!(
                    "sequence {i} has {} tokens, more than the model's context of {} \
                     (max_position_embeddings in its config.json): shorten it, or raise that \
                     limit if the model was trained for longer contexts",
                    seq.len(),
                    c.max_position_embeddings
                )));
            }
            if let Some(&bad) = seq.iter().find(|&&id| id as usize >= c.vocab_size) {
                return Err(ModelError::Input(format!(
                    "sequence {i} holds token id {bad}, outside the vocabulary of {}",
                    c.vocab_size
                )));
            }
        }
        Ok(())
    }
}

/// Positions `0..t` for every row: `[b, t]`.
pub fn position_grid<B: Backend>(b: usize, t: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::<B, 1, Int>::arange(0..t as i64, device).reshape([1, t]).repeat_dim(0, b)
}

/// Refuses a scoring temperature that is not a finite value > 0.
pub(crate) fn check_temperature(temperature: f64) -> Result<()> {
    if temperature > 0.0 && temperature.is_finite() {
        Ok(())
    } else {
        Err(ModelError::Input(format!("temperature = {temperature}, expected a finite value > 0")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    /// Tempered scores are `log_softmax(logits / T)` of the full logits, and their entropies
    /// that distribution's, with `T = 1` the plain scores.
    #[test]
    fn tempered_scores_are_the_log_softmax_of_scaled_logits() {
        let model =
            CausalLm::<B>::random(ModelConfig::small(40, 32, 2, 4), 3, 0.5, &Default::default())
                .unwrap();
        let seq: Vec<u32> = vec![4, 17, 9, 33, 2, 21];
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(seq.iter().map(|&x| x as i64).collect(), [1, seq.len()]),
            &Default::default(),
        );
        let positions = Tensor::<B, 1, Int>::arange(0..seq.len() as i64, &Default::default())
            .reshape([1, seq.len()]);
        let hidden = model.hidden_states(ids, positions, None, None);
        let logits = model.logits(hidden.reshape([seq.len(), 32]));
        let logits: Vec<f32> = logits.into_data().to_vec().unwrap();
        for temperature in [1.0, 0.6, 1.7] {
            let scores = model
                .token_logprobs_tempered(std::slice::from_ref(&seq), &[2], true, temperature)
                .unwrap();
            let lp: Vec<f32> = scores.logprobs.into_data().to_vec().unwrap();
            let ent: Vec<f32> = scores.entropy.unwrap().into_data().to_vec().unwrap();
            for pos in 2..seq.len() {
                let row: Vec<f64> = logits[(pos - 1) * 40..pos * 40]
                    .iter()
                    .map(|&l| l as f64 / temperature)
                    .collect();
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_z = max + row.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
                let want = row[seq[pos] as usize] - log_z;
                let entropy: f64 = row.iter().map(|l| -(l - log_z).exp() * (l - log_z)).sum();
                assert!((lp[pos - 1] as f64 - want).abs() < 1e-5, "T {temperature}, {pos}");
                assert!((ent[pos - 1] as f64 - entropy).abs() < 1e-4, "T {temperature}, {pos}");
            }
        }
        assert!(model.token_logprobs_tempered(&[seq], &[2], false, 0.0).is_err());
    }

    /// The GPU pads batches to a multiple of 8 tokens: run that path on the CPU and check that
    /// the extra right padding changes neither the scores nor the gradients.
    #[test]
    fn padding_to_a_multiple_changes_no_score_or_gradient() {
        let model =
            CausalLm::<B>::random(ModelConfig::small(40, 32, 2, 4), 7, 0.2, &Default::default())
                .unwrap();
        let seqs: Vec<Vec<u32>> = [11usize, 5, 9]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u32 % 40).collect())
            .collect();
        let start = [1, 3, 2];
        let run = |multiple: usize| {
            let scores = model.token_logprobs_padded(&seqs, &start, true, 1.0, multiple).unwrap();
            assert_eq!(scores.logprobs.dims(), [3, 10]);
            let entropy = scores.entropy.unwrap();
            let loss = scores.logprobs.clone().sum() + entropy.clone().sum();
            let grads = loss.backward();
            let embed = model.embed_tokens.grad(&grads).unwrap();
            let values = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().unwrap();
            (values(scores.logprobs), values(entropy), embed.into_data().to_vec::<f32>().unwrap())
        };
        let (logprobs, entropy, grad) = run(1);
        let (logprobs8, entropy8, grad8) = run(8);
        let max_diff =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(max_diff(&logprobs, &logprobs8) < 1e-6);
        assert!(max_diff(&entropy, &entropy8) < 1e-6);
        assert!(max_diff(&grad, &grad8) < 1e-6);
        assert!(grad.iter().any(|&g| g != 0.0), "the test needs a gradient");
    }
}
