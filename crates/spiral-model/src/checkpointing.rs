//! Activation checkpointing per decoder layer (Chen et al., 2016, "Training Deep Nets with
//! Sublinear Memory Cost", arXiv:1604.06174): the forward pass runs the decoder stack without
//! an autodiff graph and keeps only each layer's input; the backward pass walks the layers from
//! the top, re-running one layer at a time with a graph from its saved input and
//! differentiating it against the gradient that arrived from above. A training step then holds
//! the inputs of every layer (`layers x batch x time x hidden`) and one layer's activations,
//! instead of every layer's; the price is a second forward pass of the stack.
//!
//! The loss is built as usual on top of [`CausalLm::token_logprobs_checkpointed`]'s scores;
//! [`LayerCheckpoints::backward`] then stands in for `loss.backward()` and hands back the
//! gradients in parts (head, each layer, embeddings), each keyed by parameter as
//! `loss.backward()`'s are, to be summed.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};
use spiral_kernels::device::length_multiple;

use crate::error::{ModelError, Result};
use crate::model::{CausalLm, TokenScores};

/// What the backward pass of a checkpointed forward pass re-runs from.
#[derive(Debug)]
pub struct LayerCheckpoints<B: AutodiffBackend> {
    input_ids: Tensor<B, 2, Int>,
    positions: Tensor<B, 2, Int>,
    /// The input of each decoder layer, bottom first, without a graph.
    inputs: Vec<Tensor<B::InnerBackend, 3>>,
    /// The last layer's output as a leaf of the loss's graph: its gradient enters the layers.
    top: Tensor<B, 3>,
}

impl<B: AutodiffBackend> CausalLm<B> {
    /// [`CausalLm::token_logprobs_tempered`], with the decoder stack run as
    /// [`self`](crate::checkpointing) describes: differentiate a loss of these scores with
    /// [`LayerCheckpoints::backward`], not `loss.backward()` (which would reach the final norm
    /// and the head only). `None` in place of checkpoints when there was nothing to score.
    pub fn token_logprobs_checkpointed(
        &self,
        sequences: &[Vec<u32>],
        start: &[usize],
        with_entropy: bool,
        temperature: f64,
    ) -> Result<(TokenScores<B>, Option<LayerCheckpoints<B>>)> {
        crate::model::check_temperature(temperature)?;
        if let Some(lora) = self.lora.as_ref().filter(|l| l.dropout > 0.0) {
            // The recomputed layer would draw other dropout masks than the forward pass did.
            return Err(ModelError::Input(format!(
                "activation checkpointing re-runs each layer, so it cannot be used with LoRA \
                 dropout ({}); set the LoRA dropout to 0 or turn activation checkpointing off",
                lora.dropout
            )));
        }
        if let Some(scores) = self.trivial_scores(sequences, start, with_entropy)? {
            return Ok((scores, None));
        }
        let (input_ids, positions) = self.padded_input(sequences, length_multiple::<B>())?;
        self.ensure_memory_for(&input_ids, start, true)?;
        let stack = self.valid();
        let (rope, mask) =
            stack.rope_and_mask(&input_ids.clone().inner(), positions.clone().inner(), 0, None);
        let mut x = stack.embed(input_ids.clone().inner());
        let mut inputs = Vec::with_capacity(self.layers.len());
        for layer in &stack.layers {
            inputs.push(x.clone());
            x = layer.forward(x, &rope, &mask, None);
        }
        let top = Tensor::<B, 3>::from_inner(x).require_grad();
        let hidden = self.norm.forward(top.clone());
        let scores = self.scores_of_hidden(hidden, sequences, start, with_entropy, temperature);
        Ok((scores, Some(LayerCheckpoints { input_ids, positions, inputs, top })))
    }
}

impl<B: AutodiffBackend> LayerCheckpoints<B> {
    /// The gradients of `loss` (built from the scores these checkpoints came with) with respect
    /// to every parameter of `model`, handed to `part` a piece at a time: first the final norm's
    /// and the head's, then each decoder layer's from the top, then the embeddings'. A parameter
    /// may appear in two pieces (tied embeddings); the pieces add up to `loss.backward()`.
    pub fn backward(
        self,
        loss: Tensor<B, 1>,
        model: &CausalLm<B>,
        mut part: impl FnMut(B::Gradients),
    ) {
        let mut grads = loss.backward();
        let Some(mut upstream) = self.top.grad_remove(&mut grads) else {
            // The loss does not depend on the decoder stack.
            return part(grads);
        };
        part(grads);
        let (rope, mask) = model.rope_and_mask(&self.input_ids, self.positions, 0, None);
        for (layer, input) in model.layers.iter().zip(self.inputs).rev() {
            let x = Tensor::<B, 3>::from_inner(input).require_grad();
            let y = layer.forward(x.clone(), &rope, &mask, None);
            let mut grads = (y * Tensor::from_inner(upstream)).sum().backward();
            upstream = x.grad_remove(&mut grads).expect("a layer's output depends on its input");
            part(grads);
        }
        let embedded = model.embed(self.input_ids);
        part((embedded * Tensor::from_inner(upstream)).sum().backward());
    }
}
