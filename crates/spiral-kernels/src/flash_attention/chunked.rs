//! The blockwise attention of [`super`] for backends without its fused CPU kernel (CUDA): the
//! same online formulation with burn's tensor operations, a chunk of query rows against every
//! key at a time, so that one chunk's `rows x tk` scores exist at once instead of `t x tk`. On
//! an autodiff backend the operation is one node whose backward pass recomputes each chunk's
//! weights from the saved log-sum-exps (FlashAttention-2's backward, arXiv:2307.08691, a chunk
//! of rows at a time):
//!
//! ```text
//! P = exp(S - L)      dV += P^T dO      dS = P * (dO V^T - D)      dQ = scale dS K      dK += scale dS^T Q
//! ```
//!
//! with `D = rowsum(dO * O)`. Scores, weights and their statistics are float32 whatever the
//! compute dtype; products run in the inputs' dtype. The mask is the dense path's additive one,
//! built a chunk at a time, so the results equal the dense composition's.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive, backend::Backend};

use super::{KeyMask, MASKED};
use crate::dispatch::{downcast_three, upcast};
use crate::precision::cast;

/// Scores held at once per chunk, over all sequences and heads: 256 MiB of float32.
const CHUNK_SCORES: usize = 1 << 26;

/// The sizes of one call: `q: [b, kv, rows, d]` with `rows = groups * t`, `k, v: [b, kv, tk, d]`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    batch: usize,
    kv_heads: usize,
    rows: usize,
    t: usize,
    keys: usize,
    scale: f32,
    /// Scores per chunk ([`CHUNK_SCORES`] but in tests).
    chunk_scores: usize,
}

impl Shape {
    fn of<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>, mask: &KeyMask, scale: f32) -> Self {
        let [batch, kv_heads, rows, _] = q.dims();
        let keys = k.dims()[2];
        Self { batch, kv_heads, rows, t: keys - mask.past, keys, scale, chunk_scores: CHUNK_SCORES }
    }

    /// Row ranges of at most `chunk_scores` scores each (one row at least).
    fn chunks(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let per_row = self.batch * self.kv_heads * self.keys;
        let size = (self.chunk_scores / per_row.max(1)).max(1);
        let rows = self.rows;
        (0..rows).step_by(size).map(move |start| start..(start + size).min(rows))
    }

    /// The additive mask of rows `rows`, `[b or 1, 1, rows.len(), tk]`: row `r` is query
    /// `r % t` of its group.
    fn mask<B: Backend>(
        &self,
        mask: &KeyMask,
        rows: std::ops::Range<usize>,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let sequences = if mask.keys.is_some() { self.batch } else { 1 };
        let mut values = vec![0.0f32; sequences * rows.len() * self.keys];
        for s in 0..sequences {
            for (r, row) in rows.clone().enumerate() {
                let line = &mut values[(s * rows.len() + r) * self.keys..][..self.keys];
                for (j, x) in line.iter_mut().enumerate() {
                    if !mask.sees(s, row % self.t, j) {
                        *x = MASKED;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [sequences, 1, rows.len(), self.keys]), device)
    }
}

/// Rows `rows` of `x: [b, kv, rows, d]`.
fn rows_of<B: Backend>(x: &Tensor<B, 4>, rows: std::ops::Range<usize>) -> Tensor<B, 4> {
    let [b, kv, _, d] = x.dims();
    x.clone().slice([0..b, 0..kv, rows, 0..d])
}

/// Float32 scores `q_c K^T * scale + mask` of one chunk.
fn scores<B: Backend>(
    q: &Tensor<B, 4>,
    kt: &Tensor<B, 4>,
    shape: Shape,
    mask: &KeyMask,
    rows: std::ops::Range<usize>,
) -> Tensor<B, 4> {
    let device = q.device();
    let s = cast(rows_of(q, rows.clone()).matmul(kt.clone()), DType::F32);
    s * shape.scale + shape.mask::<B>(mask, rows, &device)
}

/// The output `[b, kv, rows, d]` (in `q`'s dtype) and the float32 log-sum-exps `[b, kv, rows, 1]`.
fn forward<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    mask: &KeyMask,
    shape: Shape,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let kt = k.clone().swap_dims(2, 3);
    let (mut outs, mut lses) = (Vec::new(), Vec::new());
    for rows in shape.chunks() {
        let s = scores(q, &kt, shape, mask, rows);
        let max = s.clone().max_dim(3);
        let p = (s - max.clone()).exp();
        let sum = p.clone().sum_dim(3);
        let out = cast(cast(p, v.dtype()).matmul(v.clone()), DType::F32) / sum.clone();
        outs.push(cast(out, q.dtype()));
        lses.push(max + sum.log());
    }
    (Tensor::cat(outs, 2), Tensor::cat(lses, 2))
}

/// `softmax(q k^T * scale + mask) v` a chunk of query rows at a time, for `q: [b, kv, groups *
/// t, d]` and `k, v: [b, kv, tk, d]`; on `Autodiff<Cuda>` and `Autodiff<Flex>` as one node that
/// recomputes the weights in its backward pass. Other autodiff backends differentiate the
/// chunks' operations (bounded memory in the forward pass only).
pub fn chunked_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &KeyMask,
    scale: f32,
) -> Tensor<B, 4> {
    let shape = Shape::of(&q, &k, mask, scale);
    let (q, k, v) = match as_node::<B, Flex>(q, k, v, mask, shape) {
        Ok(out) => return out,
        Err(qkv) => qkv,
    };
    #[cfg(feature = "cuda")]
    let (q, k, v) = match as_node::<B, crate::device::Cuda>(q, k, v, mask, shape) {
        Ok(out) => return out,
        Err(qkv) => qkv,
    };
    forward(&q, &k, &v, mask, shape).0
}

/// The one-node [`autodiff`] version when `B` is `Autodiff<Inner>`; the inputs back otherwise.
fn as_node<B: Backend, Inner: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &KeyMask,
    shape: Shape,
) -> Result<Tensor<B, 4>, super::Qkv<B>> {
    let (q, k, v) = downcast_three::<B, Autodiff<Inner>, 4>((q, k, v))?;
    Ok(upcast(autodiff(q, k, v, mask, shape)))
}

/// What the backward pass keeps: inputs, output and log-sum-exps, all linear in the context.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    out: Tensor<B, 4>,
    lse: Tensor<B, 4>,
    mask: KeyMask,
    shape: Shape,
}

#[derive(Debug)]
struct ChunkedBackward;

impl<B: Backend> Backward<B, 3> for ChunkedBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Saved<B>, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad =
            Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
        let [q_parent, k_parent, v_parent] = ops.parents;
        let (dq, dk, dv) = backward(&ops.state, grad);
        for (parent, g) in [(q_parent, dq), (k_parent, dk), (v_parent, dv)] {
            if let Some(parent) = parent {
                grads.register::<B>(parent.id, g.into_primitive().tensor());
            }
        }
    }
}

/// `(dQ, dK, dV)` in the inputs' dtypes, a chunk of query rows at a time.
fn backward<B: Backend>(
    s: &Saved<B>,
    grad: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let f32s = |x: &Tensor<B, 4>| cast(x.clone(), DType::F32);
    let (k, v, grad) = (f32s(&s.k), f32s(&s.v), f32s(&grad));
    let kt = s.k.clone().swap_dims(2, 3);
    // D = rowsum(dO * O).
    let delta = (grad.clone() * f32s(&s.out)).sum_dim(3);
    let mut dk = k.zeros_like();
    let mut dv = v.zeros_like();
    let mut dqs = Vec::new();
    for rows in s.shape.chunks() {
        let p = (scores(&s.q, &kt, s.shape, &s.mask, rows.clone()) - rows_of(&s.lse, rows.clone()))
            .exp();
        let dout = rows_of(&grad, rows.clone());
        dv = dv + p.clone().swap_dims(2, 3).matmul(dout.clone());
        let ds = p * (dout.matmul(v.clone().swap_dims(2, 3)) - rows_of(&delta, rows.clone()));
        dqs.push(ds.clone().matmul(k.clone()) * s.shape.scale);
        dk = dk + ds.swap_dims(2, 3).matmul(rows_of(&f32s(&s.q), rows)) * s.shape.scale;
    }
    let like = |x: Tensor<B, 4>, t: &Tensor<B, 4>| cast(x, t.dtype());
    (like(Tensor::cat(dqs, 2), &s.q), like(dk, &s.k), like(dv, &s.v))
}

/// [`chunked_attention`] as one autodiff node over the inner backend `B`.
fn autodiff<B: Backend>(
    q: Tensor<Autodiff<B>, 4>,
    k: Tensor<Autodiff<B>, 4>,
    v: Tensor<Autodiff<B>, 4>,
    mask: &KeyMask,
    shape: Shape,
) -> Tensor<Autodiff<B>, 4> {
    let (q, k, v) =
        (q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor());
    let prep = ChunkedBackward
        .prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()])
        .compute_bound()
        .stateful();
    let inner = |x: burn::tensor::ops::FloatTensor<B>| {
        Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(x))
    };
    let (q, k, v) = (inner(q.primitive), inner(k.primitive), inner(v.primitive));
    let (out, lse) = forward(&q, &k, &v, mask, shape);
    let primitive = out.clone().into_primitive().tensor();
    let out = match prep {
        OpsKind::Tracked(prep) => {
            let saved = Saved { q, k, v, out, lse, mask: mask.clone(), shape };
            prep.finish(saved, primitive)
        }
        OpsKind::UnTracked(prep) => prep.finish(primitive),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{Case, dense, run};
    use super::*;
    use crate::test_data::max_abs_diff;

    fn assert_close(what: &str, got: &[Vec<f32>; 4], reference: &[Vec<f32>; 4]) {
        for (part, (a, b)) in ["output", "dq", "dk", "dv"].iter().zip(got.iter().zip(reference)) {
            let worst = max_abs_diff(a, b);
            assert!(worst < 1e-5, "{what} {part}: worst difference {worst}");
        }
    }

    #[test]
    fn the_chunked_node_matches_the_dense_path_with_its_gradients() {
        let mut keys = vec![vec![true; 20]; 2];
        keys[0][..3].iter_mut().for_each(|x| *x = false);
        keys[1][0] = false;
        let cases = [
            Case { b: 2, kv: 2, groups: 1, t: 40, d: 8, mask: KeyMask::default() },
            Case { b: 1, kv: 2, groups: 3, t: 7, d: 16, mask: KeyMask { past: 12, keys: None } },
            Case {
                b: 2,
                kv: 1,
                groups: 2,
                t: 20,
                d: 4,
                mask: KeyMask { past: 0, keys: Some(Arc::new(keys)) },
            },
        ];
        let scale = 0.3;
        for c in cases {
            let reference = run(&c, |q, k, v| dense(q, k, v, &c.mask, scale));
            // Chunks of 3 rows, so that every case spans several.
            let shape = |q: &Tensor<Autodiff<Flex>, 4>, k: &Tensor<Autodiff<Flex>, 4>| {
                let mut shape = Shape::of(q, k, &c.mask, scale);
                shape.chunk_scores = 3 * shape.batch * shape.kv_heads * shape.keys;
                assert!(shape.chunks().count() > 2);
                shape
            };
            let node = run(&c, |q, k, v| {
                let shape = shape(&q, &k);
                autodiff(q, k, v, &c.mask, shape)
            });
            assert_close("node", &node, &reference);
            // Other autodiff backends differentiate the chunks' own operations.
            let composed = run(&c, |q, k, v| {
                let shape = shape(&q, &k);
                forward(&q, &k, &v, &c.mask, shape).0
            });
            assert_close("composed", &composed, &reference);
            let dispatched = run(&c, |q, k, v| chunked_attention(q, k, v, &c.mask, scale));
            assert_close("dispatched", &dispatched, &reference);
        }
    }

    #[test]
    fn rows_are_cut_into_chunks_of_bounded_scores() {
        let shape = Shape {
            batch: 2,
            kv_heads: 4,
            rows: 40_000,
            t: 40_000,
            keys: 40_000,
            scale: 1.0,
            chunk_scores: CHUNK_SCORES,
        };
        let chunks: Vec<_> = shape.chunks().collect();
        assert!(chunks.len() > 1 && chunks.last().unwrap().end == 40_000);
        assert!(chunks.iter().all(|c| c.len() * 2 * 4 * 40_000 <= CHUNK_SCORES));
    }
}
