//! Model FLOPs utilisation (MFU, Chowdhery et al., 2022, "PaLM", appendix B): the FLOPs the
//! model's arithmetic needs per token, times the tokens processed per second, over the device's
//! peak. Recomputation (activation checkpointing) does not count, so MFU compares runs by what
//! they achieve, not by how much work they redo.
//!
//! Per token, with `N` the parameters of the matrix products (every projection and the head,
//! embeddings looked up, not multiplied), `L` layers, `H * d` the attention width and `c` the
//! keys a token attends to on average:
//!
//! ```text
//! forward   2 N + 4 L (H d) c        (the products, then QK^T and the weighted sum of V)
//! training  3 x forward              (backward: twice the forward's products)
//! ```
//!
//! Peak FLOP/s come from `run.peak_flops` when set; otherwise the bf16 dense peak of an
//! H100 / H200 SXM (989 TFLOP/s) on CUDA, and on the CPU what a one-second float32 matmul probe
//! reaches (so CPU MFU is relative to the best this machine does on large products).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use spiral_model::{DeviceSpec, ModelConfig};

/// The bf16 dense peak of an H100 or H200 SXM, FLOP/s (NVIDIA's data sheets).
pub const H100_BF16_PEAK: f64 = 989e12;

/// FLOPs of one token's forward pass attending to `attended` keys on average.
pub fn forward_flops_per_token(c: &ModelConfig, attended: f64) -> f64 {
    let (h, i, d) = (c.hidden_size as f64, c.intermediate_size as f64, c.head_dim as f64);
    let (q, kv) = (c.num_heads as f64 * d, c.num_kv_heads as f64 * d);
    let per_layer = h * q + 2.0 * h * kv + q * h + 3.0 * h * i;
    let products = c.num_layers as f64 * per_layer + c.vocab_size as f64 * h;
    2.0 * products + 4.0 * c.num_layers as f64 * q * attended
}

/// FLOPs of one trained token (forward and backward) attending to `attended` keys on average.
pub fn training_flops_per_token(c: &ModelConfig, attended: f64) -> f64 {
    3.0 * forward_flops_per_token(c, attended)
}

/// The peak FLOP/s MFU divides by: `configured`, else the device's default.
pub fn peak_flops(device: &DeviceSpec, configured: Option<f64>) -> f64 {
    match (configured, device) {
        (Some(peak), _) => peak,
        (None, DeviceSpec::Cuda(_)) => H100_BF16_PEAK,
        (None, _) => cpu_matmul_probe(),
    }
}

/// FLOP/s of float32 512 x 512 products on the CPU over about a second, measured once per
/// process.
fn cpu_matmul_probe() -> f64 {
    static MEASURED: OnceLock<f64> = OnceLock::new();
    *MEASURED.get_or_init(|| {
        let n = 512;
        let a = Tensor::<Flex, 2>::random([n, n], Distribution::Default, &Default::default());
        let b = Tensor::<Flex, 2>::random([n, n], Distribution::Default, &Default::default());
        // One product to warm the caches and the thread pool, then products for about a second.
        let _ = a.clone().matmul(b.clone()).into_data();
        let started = Instant::now();
        let mut products = 0usize;
        while started.elapsed() < Duration::from_secs(1) {
            let _ = a.clone().matmul(b.clone()).into_data();
            products += 1;
        }
        2.0 * (n * n * n) as f64 * products as f64 / started.elapsed().as_secs_f64()
    })
}

/// MFU of `tokens_per_s` tokens of `flops_per_token` each against `peak` FLOP/s; `None` when
/// nothing was measured.
pub fn mfu(flops_per_token: f64, tokens_per_s: f64, peak: f64) -> Option<f64> {
    (tokens_per_s.is_finite() && tokens_per_s > 0.0 && peak > 0.0)
        .then(|| flops_per_token * tokens_per_s / peak)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula against the parameter count: without attention, a forward pass is two FLOPs
    /// per multiplied parameter (every parameter but the norms and the looked-up embedding,
    /// whose tied copy is the head).
    #[test]
    fn products_cost_two_flops_per_multiplied_parameter() {
        let mut c = ModelConfig::small(50, 32, 2, 4);
        (c.tie_word_embeddings, c.qk_norm) = (true, false);
        let norms = (2 * c.num_layers + 1) * c.hidden_size;
        let multiplied = c.num_parameters() - norms;
        assert_eq!(forward_flops_per_token(&c, 0.0), 2.0 * multiplied as f64);
        assert_eq!(training_flops_per_token(&c, 0.0), 6.0 * multiplied as f64);
        // Attention adds 4 L (H d) per attended key.
        let attention = forward_flops_per_token(&c, 10.0) - forward_flops_per_token(&c, 0.0);
        assert_eq!(attention, 4.0 * 2.0 * 32.0 * 10.0);
    }

    #[test]
    fn utilisation_is_achieved_over_peak() {
        assert_eq!(mfu(1e9, 500.0, 1e12), Some(0.5));
        assert_eq!(mfu(1e9, 0.0, 1e12), None);
        assert_eq!(peak_flops(&DeviceSpec::Cuda(0), None), H100_BF16_PEAK);
        assert_eq!(peak_flops(&DeviceSpec::Cpu, Some(3e11)), 3e11);
    }
}
