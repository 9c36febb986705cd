//! The key/value cache for incremental decoding. The model is stateless; callers own the cache
//! and pass it to every forward call (after llama-burn's `Transformer::forward`), so the rollout
//! engine can fork, reorder and drop rows as sequences finish.
//!
//! Each append concatenates, copying the history. A cache preallocated to its final length and
//! written with `slice_assign` would copy only the new step on most backends, but burn-flex
//! 0.21's `slice_assign` always copies its whole destination (its `to_contiguous` fast path
//! clones the buffer's `Arc`, so the copy-on-write that follows never finds it unshared):
//! measured 65 ms per one-position append into a 4,096-position cache, against about 0.1 ms
//! per step for concatenation at the `rollout-cpu` shapes.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// Cached keys and values of one layer, both `[batch, kv_heads, time, head_dim]`. Keys are kept
/// in the same layout as values, not transposed: appending along `time` then copies whole
/// `[time, head_dim]` blocks instead of one short row per channel, and the matrix product reads
/// the transposed view without copying it (`rollout-cpu` about 7% faster, measured).
#[derive(Debug, Clone, Default)]
pub struct LayerCache<B: Backend> {
    kv: Option<(Tensor<B, 4>, Tensor<B, 4>)>,
}

impl<B: Backend> LayerCache<B> {
    /// Appends this step's keys (already rotated) and values, both `[b, kv, t, d]`, and returns
    /// the full history in the same layout.
    pub fn append(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (k, v) = match self.kv.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
        };
        self.kv = Some((k.clone(), v.clone()));
        (k, v)
    }
}

/// The KV cache of a whole model: one [`LayerCache`] per decoder block, all with the same
/// number of rows (sequences) and cached positions.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model with `num_layers` blocks.
    pub fn new(num_layers: usize) -> Self {
        Self { layers: (0..num_layers).map(|_| LayerCache { kv: None }).collect() }
    }

    /// Number of cached positions (0 when empty).
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.kv.as_ref()).map_or(0, |(_, v)| v.dims()[2])
    }

    /// Whether nothing has been cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows (sequences) in the cache, if anything is cached.
    pub fn batch_size(&self) -> Option<usize> {
        self.layers.first().and_then(|l| l.kv.as_ref()).map(|(k, _)| k.dims()[0])
    }

    /// Mutable access to each layer's cache, in block order.
    pub fn layers_mut(&mut self) -> impl Iterator<Item = &mut LayerCache<B>> {
        self.layers.iter_mut()
    }

    /// A cache whose row `i` is this cache's row `rows[i]`. Repeating a row forks one prefilled
    /// prompt into several samples; omitting rows drops finished sequences.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let layers = self
            .layers
            .iter()
            .map(|layer| LayerCache {
                kv: layer.kv.as_ref().map(|(k, v)| {
                    let device = k.device();
                    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                    let idx =
                        Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
                    (k.clone().select(0, idx.clone()), v.clone().select(0, idx))
                }),
            })
            .collect();
        Self { layers }
    }
}
