//! The layers shared by every family: RMSNorm, linear projections, the SwiGLU MLP, grouped-query
//! attention with RoPE, and the pre-norm decoder block. Field names follow Hugging Face's
//! checkpoint keys (`q_proj`, `input_layernorm`, ...) so the weight map stays trivial.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, backend::Backend};

use spiral_kernels::attention_probs::attention_probs;
use spiral_kernels::contiguous::{materialized, row_major};
use spiral_kernels::flash_attention::{chunked_attention, flash_attention};
use spiral_kernels::precision::{cast, matmul};
use spiral_kernels::rms_norm::rms_norm;
use spiral_kernels::swiglu::swiglu;

use crate::cache::LayerCache;
use crate::config::ModelConfig;
use crate::error::Result;
use crate::lora::LoraAdapter;
use crate::mask::AttentionMask;
use crate::rope::RopeTables;
use crate::weights::{Init, WeightSource};

/// Root-mean-square layer norm (Zhang & Sennrich, 2019): `w * x / sqrt(mean(x^2) + eps)`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// Per-channel gain, `[dim]`.
    pub weight: Param<Tensor<B, 1>>,
    #[module(skip)]
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Loads `{prefix}.weight`.
    pub fn load(w: &mut impl WeightSource<B>, prefix: &str, dim: usize, eps: f64) -> Result<Self> {
        let weight = w.tensor(&format!("{prefix}.weight"), [dim], Init::Ones)?;
        Ok(Self { weight: Param::from_tensor(weight), eps })
    }

    /// Normalises over the last dimension in float32 whatever the input's dtype, then scales
    /// in the input's dtype and returns it, as transformers' `Qwen3RMSNorm` (see
    /// [`spiral_kernels::rms_norm`]).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        rms_norm(x, self.weight.val(), self.eps)
    }
}

/// A linear projection `y = x W^T + b`, with `W` kept as `[in, out]` so the forward pass is a
/// plain matrix product (checkpoints store `[out, in]`; the loader transposes once).
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    /// `[in, out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `[out]`, when the projection has a bias.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// A LoRA adapter added to the output (see [`crate::lora`]).
    pub lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> Linear<B> {
    /// Loads `{prefix}.weight` (`[out, in]` on disk) and, if `bias`, `{prefix}.bias`.
    pub fn load(
        w: &mut impl WeightSource<B>,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = w.tensor(&format!("{prefix}.weight"), [d_out, d_in], Init::Normal)?;
        let bias = if bias {
            Some(Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [d_out], Init::Zeros)?))
        } else {
            None
        };
        let weight = materialized(weight.transpose());
        Ok(Self { weight: Param::from_tensor(weight), bias, lora: None })
    }

    /// Applies the projection to `[batch, time, in]`, in the input's dtype (the weights are
    /// cast to it: see [`spiral_kernels::precision`]).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d_in] = x.dims();
        let d_out = self.weight.dims()[1];
        let dtype = x.dtype();
        let x = x.reshape([b * t, d_in]);
        let weight = cast(self.weight.val(), dtype);
        let y = match &self.lora {
            Some(lora) => matmul(x.clone(), weight) + lora.forward(x),
            None => matmul(x, weight),
        };
        let y = match &self.bias {
            Some(bias) => y + cast(bias.val(), dtype).reshape([1, d_out]),
            None => y,
        };
        y.reshape([b, t, d_out])
    }
}

/// SwiGLU feed-forward (Shazeer, 2020): `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// Gate projection.
    pub gate_proj: Linear<B>,
    /// Up projection.
    pub up_proj: Linear<B>,
    /// Down projection.
    pub down_proj: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    /// Loads `{prefix}.{gate,up,down}_proj`.
    pub fn load(w: &mut impl WeightSource<B>, prefix: &str, c: &ModelConfig) -> Result<Self> {
        let (h, i, bias) = (c.hidden_size, c.intermediate_size, c.mlp_bias);
        Ok(Self {
            gate_proj: Linear::load(w, &format!("{prefix}.gate_proj"), h, i, bias)?,
            up_proj: Linear::load(w, &format!("{prefix}.up_proj"), h, i, bias)?,
            down_proj: Linear::load(w, &format!("{prefix}.down_proj"), i, h, bias)?,
        })
    }

    /// `[batch, time, hidden] -> [batch, time, hidden]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = self.gate_proj.forward(x.clone());
        self.down_proj.forward(swiglu(gate, self.up_proj.forward(x)))
    }
}

/// Grouped-query self-attention (Ainslie et al., 2023) with rotary embeddings, optional q/k
/// RMSNorm per head (Qwen3) and an optional KV cache.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Query projection, `hidden -> heads * head_dim`.
    pub q_proj: Linear<B>,
    /// Key projection, `hidden -> kv_heads * head_dim`.
    pub k_proj: Linear<B>,
    /// Value projection, `hidden -> kv_heads * head_dim`.
    pub v_proj: Linear<B>,
    /// Output projection, `heads * head_dim -> hidden`.
    pub o_proj: Linear<B>,
    /// Per-head query norm (Qwen3).
    pub q_norm: Option<RmsNorm<B>>,
    /// Per-head key norm (Qwen3).
    pub k_norm: Option<RmsNorm<B>>,
    #[module(skip)]
    num_heads: usize,
    #[module(skip)]
    num_kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

impl<B: Backend> Attention<B> {
    /// Loads `{prefix}.{q,k,v,o}_proj` and, for Qwen3, `{prefix}.{q,k}_norm`.
    pub fn load(w: &mut impl WeightSource<B>, prefix: &str, c: &ModelConfig) -> Result<Self> {
        let (h, d) = (c.hidden_size, c.head_dim);
        let (q, kv) = (c.num_heads * d, c.num_kv_heads * d);
        let norm = |w: &mut _, name: &str| -> Result<Option<RmsNorm<B>>> {
            if c.qk_norm {
                Ok(Some(RmsNorm::load(w, &format!("{prefix}.{name}"), d, c.rms_norm_eps)?))
            } else {
                Ok(None)
            }
        };
        Ok(Self {
            q_proj: Linear::load(w, &format!("{prefix}.q_proj"), h, q, c.qkv_bias)?,
            k_proj: Linear::load(w, &format!("{prefix}.k_proj"), h, kv, c.qkv_bias)?,
            v_proj: Linear::load(w, &format!("{prefix}.v_proj"), h, kv, c.qkv_bias)?,
            o_proj: Linear::load(w, &format!("{prefix}.o_proj"), q, h, c.o_bias)?,
            q_norm: norm(w, "q_norm")?,
            k_norm: norm(w, "k_norm")?,
            num_heads: c.num_heads,
            num_kv_heads: c.num_kv_heads,
            head_dim: d,
        })
    }

    /// Attends `x: [batch, time, hidden]` to itself and to the cached keys/values, each query to
    /// the keys `mask` lets it see: block by block when `mask.blockwise`, else through the dense
    /// scores and `mask.dense`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: &AttentionMask<B>,
        cache: Option<&mut LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, t, _] = x.dims();
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        // Norm and RoPE run in the projection's own layout, [b, t, heads, d], which is
        // contiguous: on strided views the CPU backend falls back to element-wise loops.
        let mut q = self.q_proj.forward(x.clone()).reshape([b, t, nh, d]);
        let mut k = self.k_proj.forward(x.clone()).reshape([b, t, nkv, d]);
        let v = self.v_proj.forward(x).reshape([b, t, nkv, d]);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(q);
            k = kn.forward(k);
        }
        let q = to_heads(rope.apply(q));
        let k = to_heads(rope.apply(k));
        let v = to_heads(v);
        let (k, v) = match cache {
            Some(cache) => cache.append(k, v),
            None => (k, v),
        };
        // Grouped-query attention without copying K/V per query head: the `groups` query heads
        // that share a KV head are stacked along the time axis, [b, kv, groups * t, d].
        let groups = nh / nkv;
        // With one query head per KV head the shape is already right; reshaping the transposed
        // view would copy it.
        let q = if groups == 1 { q } else { row_major(q).reshape([b, nkv, groups * t, d]) };
        let out = if mask.blockwise {
            let scale = 1.0 / (d as f32).sqrt();
            match flash_attention(q, k, v, &mask.keys, scale) {
                Ok(out) => out,
                Err((q, k, v)) => chunked_attention(q, k, v, &mask.keys, scale),
            }
        } else {
            dense_attention(q, k, v, mask.dense.clone(), d)
        };
        let out = out.reshape([b, nh, t, d]);
        let out = if t == 1 {
            out.reshape([b, t, nh * d])
        } else {
            row_major(out.swap_dims(1, 2)).reshape([b, t, nh * d])
        };
        self.o_proj.forward(out)
    }
}

/// `softmax(q k^T / sqrt(d) + mask) v` through the dense scores `[b, kv, groups * t, tk]`, with
/// the scores, mask and softmax in float32 (see `spiral_kernels::precision`).
fn dense_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
    head_dim: usize,
) -> Tensor<B, 4> {
    let probs = attention_probs(matmul(q, k.swap_dims(2, 3)), mask, head_dim);
    matmul(probs, v)
}

/// `[b, t, heads, d] -> [b, heads, t, d]`; a free reshape when `t == 1` (decode steps).
fn to_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, t, h, d] = x.dims();
    if t == 1 { x.reshape([b, h, t, d]) } else { x.swap_dims(1, 2) }
}

/// One pre-norm decoder block: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: Attention<B>,
    /// Feed-forward.
    pub mlp: Mlp<B>,
    /// Norm before attention.
    pub input_layernorm: RmsNorm<B>,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// Loads `{prefix}.*` (for example `model.layers.3`).
    pub fn load(w: &mut impl WeightSource<B>, prefix: &str, c: &ModelConfig) -> Result<Self> {
        let (h, eps) = (c.hidden_size, c.rms_norm_eps);
        Ok(Self {
            self_attn: Attention::load(w, &format!("{prefix}.self_attn"), c)?,
            mlp: Mlp::load(w, &format!("{prefix}.mlp"), c)?,
            input_layernorm: RmsNorm::load(w, &format!("{prefix}.input_layernorm"), h, eps)?,
            post_attention_layernorm: RmsNorm::load(
                w,
                &format!("{prefix}.post_attention_layernorm"),
                h,
                eps,
            )?,
        })
    }

    /// `[batch, time, hidden] -> [batch, time, hidden]`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: &AttentionMask<B>,
        cache: Option<&mut LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let attn =
            self.self_attn.forward(self.input_layernorm.forward(x.clone()), rope, mask, cache);
        let x = x + attn;
        let mlp = self.mlp.forward(self.post_attention_layernorm.forward(x.clone()));
        x + mlp
    }
}
