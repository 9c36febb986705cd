//! Attention in memory linear in the context: `O = softmax(Q K^T * scale + M) V` computed in
//! blocks of query rows against blocks of keys with an online softmax, as FlashAttention does
//! (Dao et al., 2022, "FlashAttention: Fast and Memory-Efficient Exact Attention with
//! IO-Awareness", arXiv:2205.14135; the backward pass as in FlashAttention-2, arXiv:2307.08691),
//! never holding a `t x tk` matrix of scores or weights.
//!
//! Forward, per query row `r`, over the keys it may see: a running maximum `m`, a running sum
//! `l = Σ exp(s_j - m)` and a running output `o = Σ exp(s_j - m) v_j`, rescaled by `exp(m - m')`
//! whenever the maximum grows to `m'`; then `O_r = o / l`, and the row's log-sum-exp
//! `L_r = m + ln l` is kept for the backward pass. Backward, with `D_r = dO_r · O_r` and the
//! weights recomputed as `p_rj = exp(s_rj - L_r)`:
//!
//! ```text
//! dV_j = Σ_r p_rj dO_r      ds_rj = p_rj (dO_r · V_j - D_r)
//! dQ_r = scale Σ_j ds_rj K_j      dK_j = scale Σ_r ds_rj Q_r
//! ```
//!
//! so the backward pass keeps `Q`, `K`, `V`, `O` and `L` only: memory linear in the context.
//!
//! Which keys a query sees is given by structure, not by a dense mask ([`KeyMask`]): causal over
//! positions, with keys of padding hidden per sequence. A query that sees no key at all (a
//! padding query) averages every value with equal weights, as the dense path's finite mask value
//! makes it do, and passes no gradient to the scores.
//!
//! Grouped-query heads come in the layout the model uses: the `groups` query heads that share a
//! KV head stacked along the query axis, `q: [b, kv, groups * t, d]` against `k, v: [b, kv, tk,
//! d]`. The kernel runs on burn-flex in float32, with and without autodiff (bf16 and f16 inputs
//! attend in float32 and come back in their dtype); other backends get their inputs back
//! ([`flash_attention`]) for [`chunked_attention`], the same formulation in burn's tensor
//! operations a chunk of query rows at a time.

mod backward;
mod blocks;
mod chunked;

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive, backend::Backend};
use rayon::prelude::*;

use crate::dispatch::{FlexAutodiff, downcast_three, from_flex, upcast, values};
use crate::fast_exp::exp;
use crate::precision::cast;
use backward::backward;
use blocks::{KeyBlock, add_weighted_rows, hide_unseen, max_of, project, split_by_head, sum_of};
pub use chunked::chunked_attention;

/// Keys per block of the online softmax: scores of one block are held at a time.
const KEY_BLOCK: usize = 64;
/// Query rows that share each transposed key block.
const QUERY_BLOCK: usize = 16;

/// The additive mask value of a hidden key on the dense paths. Finite (not `-inf`) so that a
/// row with every key hidden (a padding query) yields uniform weights instead of NaNs that would
/// poison the gradients through `0 * NaN`.
pub const MASKED: f32 = -1.0e9;

/// Which keys each query may see. The `t` new queries sit at key positions `past..past + t`
/// (`past` cached keys before them); query `i` sees key `j` when `j <= past + i` and, with
/// `keys`, when `keys[sequence][j]` is true (false marks padding).
#[derive(Debug, Clone, Default)]
pub struct KeyMask {
    /// Keys cached before the new queries.
    pub past: usize,
    /// Per sequence, whether each of the `past + t` keys is a real token (a key past the end of
    /// its row is); `None` if all are.
    pub keys: Option<Arc<Vec<Vec<bool>>>>,
}

impl KeyMask {
    /// Whether query `i` of `sequence` may see key `j`.
    #[inline(always)]
    fn sees(&self, sequence: usize, i: usize, j: usize) -> bool {
        j <= self.past + i && self.keys.as_ref().is_none_or(|k| k[sequence].get(j) != Some(&false))
    }

    /// The dense additive mask `[1 or b, 1, t, tk]` equal to this one (0 = attend, `masked` =
    /// skip), for the composed path and for tests.
    pub fn dense<B: Backend>(
        &self,
        batch: usize,
        t: usize,
        masked: f32,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let rows = if self.keys.is_some() { batch } else { 1 };
        let tk = self.past + t;
        let mut values = vec![0.0f32; rows * t * tk];
        for r in 0..rows {
            for i in 0..t {
                for j in 0..tk {
                    if !self.sees(r, i, j) {
                        values[(r * t + i) * tk + j] = masked;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(values, [rows, 1, t, tk]), device)
    }
}

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    kv_heads: usize,
    /// `groups * t` query rows per KV head.
    rows: usize,
    /// New queries per sequence.
    t: usize,
    keys: usize,
    head_dim: usize,
    scale: f32,
}

impl Dims {
    /// The sequence and query index of row `row` of the flattened `[b, kv, rows]`.
    #[inline(always)]
    fn query(&self, row: usize) -> (usize, usize) {
        (row / (self.kv_heads * self.rows), row % self.rows % self.t)
    }

    /// The last key row `row` may see (causal), within the keys there are.
    #[inline(always)]
    fn last_key(&self, row: usize, mask: &KeyMask) -> usize {
        (mask.past + self.query(row).1).min(self.keys - 1)
    }

    /// Whether row `row` sees any key (a padding query may see none).
    #[inline(always)]
    fn sees_any(&self, row: usize, mask: &KeyMask) -> bool {
        let (sequence, i) = self.query(row);
        (0..=self.last_key(row, mask)).any(|j| mask.sees(sequence, i, j))
    }

    /// The first key row (in the flattened `[b, kv, tk]`) of the KV head that row `row` reads.
    #[inline(always)]
    fn key_base(&self, row: usize) -> usize {
        row / self.rows * self.keys
    }
}

/// Queries, keys and values, given back where the kernel does not apply.
pub type Qkv<B> = (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>);

/// `softmax(q k^T * scale + mask) v` for `q: [b, kv, groups * t, d]` and `k, v: [b, kv, tk, d]`,
/// where `tk = mask.past + t`. On burn-flex in float32 (with or without autodiff) it runs the
/// blockwise kernel and returns `Ok([b, kv, groups * t, d])`; elsewhere it gives the inputs back
/// (`Err`), for the caller's dense composition.
pub fn flash_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &KeyMask,
    scale: f32,
) -> Result<Tensor<B, 4>, Qkv<B>> {
    let half = [DType::BF16, DType::F16];
    let dtype = q.dtype();
    if half.contains(&dtype) && k.dtype() == dtype && v.dtype() == dtype {
        // Half-precision compute attends in float32, as FlashAttention accumulates: the copies
        // are linear in the context.
        let f32s = |x: Tensor<B, 4>| cast(x, DType::F32);
        return match flash_attention(f32s(q), f32s(k), f32s(v), mask, scale) {
            Ok(out) => Ok(cast(out, dtype)),
            Err((q, k, v)) => Err((cast(q, dtype), cast(k, dtype), cast(v, dtype))),
        };
    }
    let [batch, kv_heads, rows, head_dim] = q.dims();
    let keys = k.dims()[2];
    let t = keys.checked_sub(mask.past).filter(|&t| t > 0 && rows % t == 0);
    let fits = k.dims() == [batch, kv_heads, keys, head_dim] && v.dims() == k.dims();
    let f32s = [q.dtype(), k.dtype(), v.dtype()].iter().all(|&d| d == DType::F32);
    let (Some(t), true, true) = (t, fits, f32s) else { return Err((q, k, v)) };
    let dims = Dims { batch, kv_heads, rows, t, keys, head_dim, scale };
    if mask.keys.as_ref().is_some_and(|m| m.len() != batch) {
        return Err((q, k, v));
    }
    let (q, k, v) = match downcast_three::<B, FlexAutodiff, 4>((q, k, v)) {
        Ok((q, k, v)) => return Ok(upcast(flash_autodiff(q, k, v, dims, mask))),
        Err(qkv) => qkv,
    };
    let (q, k, v) = downcast_three::<B, Flex, 4>((q, k, v))?;
    let flex = |t: Tensor<Flex, 4>| t.into_primitive().tensor();
    let (out, _) = forward(&flex(q), &flex(k), &flex(v), dims, mask);
    Ok(from_flex(out))
}

/// The flattened queries, keys and values of one call.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    qs: &'a [f32],
    ks: &'a [f32],
    vs: &'a [f32],
}

/// The forward pass: the output `[b, kv, rows, d]` and each row's log-sum-exp `L`.
fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    dims: Dims,
    mask: &KeyMask,
) -> (FlexTensor, Vec<f32>) {
    let (qv, kv, vv) = (values(q), values(k), values(v));
    let (qs, ks, vs) = (qv.storage::<f32>(), kv.storage::<f32>(), vv.storage::<f32>());
    let d = dims.head_dim;
    let total_rows = dims.batch * dims.kv_heads * dims.rows;
    let mut out = vec![0.0f32; total_rows * d];
    let mut lse = vec![0.0f32; total_rows];
    // Blocks of query rows share each transposed block of keys; a block never spans two heads.
    out.par_chunks_mut(QUERY_BLOCK * d).zip(lse.par_chunks_mut(QUERY_BLOCK)).enumerate().for_each(
        |(block, (out, lse))| {
            let first = block * QUERY_BLOCK;
            for rows in split_by_head(first..first + lse.len(), dims.rows) {
                let (o, l) = (
                    &mut out[(rows.start - first) * d..(rows.end - first) * d],
                    &mut lse[rows.start - first..rows.end - first],
                );
                forward_rows(Inputs { qs, ks, vs }, rows, dims, mask, o, l);
            }
        },
    );
    let shape = [dims.batch, dims.kv_heads, dims.rows, d];
    (FlexTensor::from_data(TensorData::new(out, shape)), lse)
}

crate::wide_vectors! {
    /// Query rows `rows` of one head: each key block is transposed once (`[d, KEY_BLOCK]`), so
    /// every row's scores for it are `d` vectorisable passes over the block, then one
    /// online-softmax update (rescale by `exp(m - m')`, add the block's weights and weighted
    /// values). Rows that see no key go to [`blind_row`].
    fn forward_rows(
        inputs: Inputs<'_>,
        rows: std::ops::Range<usize>,
        dims: Dims,
        mask: &KeyMask,
        out: &mut [f32],
        lse: &mut [f32],
    ) {
        let Inputs { qs, ks, vs } = inputs;
        let d = dims.head_dim;
        let base = dims.key_base(rows.start);
        // The last key each row sees (causal), and whether it sees any.
        let seen: Vec<(usize, usize, usize, bool)> = rows
            .clone()
            .map(|row| {
                let (sequence, i) = dims.query(row);
                (sequence, i, dims.last_key(row, mask), dims.sees_any(row, mask))
            })
            .collect();
        for (k, row) in rows.clone().enumerate() {
            if !seen[k].3 {
                lse[k] = blind_row(vs, row, dims, &mut out[k * d..][..d]);
            }
        }
        let Some(block_last) = seen.iter().filter(|s| s.3).map(|s| s.2).max() else { return };
        let mut max = vec![f32::NEG_INFINITY; seen.len()];
        let mut sum = vec![0.0f32; seen.len()];
        let mut keys = KeyBlock::new(d);
        let mut scores = [0.0f32; KEY_BLOCK];
        for start in (0..=block_last).step_by(KEY_BLOCK) {
            let n = (start + KEY_BLOCK).min(block_last + 1) - start;
            keys.load_keys(ks, base, start, n);
            for (k, row) in rows.clone().enumerate() {
                let (sequence, i, last, any) = seen[k];
                if !any || start > last {
                    continue;
                }
                let block = &mut scores[..n];
                project(&keys.keys_t, &qs[row * d..][..d], dims.scale, block);
                hide_unseen(block, start, last, mask, sequence, i);
                let block_max = max_of(block);
                if block_max == f32::NEG_INFINITY {
                    continue;
                }
                let new_max = max[k].max(block_max);
                let rescale = exp(max[k] - new_max);
                let o = &mut out[k * d..][..d];
                sum[k] *= rescale;
                o.iter_mut().for_each(|o| *o *= rescale);
                block.iter_mut().for_each(|s| *s = exp(*s - new_max));
                sum[k] += sum_of(block);
                add_weighted_rows(o, block, &vs[(base + start) * d..][..n * d]);
                max[k] = new_max;
            }
        }
        for (k, &(_, _, _, any)) in seen.iter().enumerate() {
            if any {
                let inv = 1.0 / sum[k];
                out[k * d..][..d].iter_mut().for_each(|o| *o *= inv);
                lse[k] = max[k] + sum[k].ln();
            }
        }
    }
}

/// A row that sees no key: equal weights over every key, as the dense path's finite mask value
/// makes it; writes `O_r` into `out` and returns `L_r` (so that `exp(s - L_r)` would be those
/// weights for scores of 0).
#[inline(always)]
fn blind_row(vs: &[f32], row: usize, dims: Dims, out: &mut [f32]) -> f32 {
    let d = dims.head_dim;
    let base = dims.key_base(row);
    out.fill(0.0);
    for j in 0..dims.keys {
        let v = &vs[(base + j) * d..][..d];
        out.iter_mut().zip(v).for_each(|(o, v)| *o += v);
    }
    let n = dims.keys as f32;
    out.iter_mut().for_each(|o| *o /= n);
    n.ln()
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// What the backward pass keeps: the inputs, the output and the log-sum-exps.
#[derive(Debug, Clone)]
struct Saved {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    out: FlexTensor,
    lse: Arc<Vec<f32>>,
    dims: Dims,
    mask: KeyMask,
}

#[derive(Debug)]
struct FlashBackward;

impl Backward<Flex, 3> for FlashBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [q_parent, k_parent, v_parent] = ops.parents;
        let (dq, dk, dv) = backward(&ops.state, &grad);
        for (parent, g) in [(q_parent, dq), (k_parent, dk), (v_parent, dv)] {
            if let Some(parent) = parent {
                grads.register::<Flex>(parent.id, g);
            }
        }
    }
}

fn flash_autodiff(
    q: Tensor<FlexAutodiff, 4>,
    k: Tensor<FlexAutodiff, 4>,
    v: Tensor<FlexAutodiff, 4>,
    dims: Dims,
    mask: &KeyMask,
) -> Tensor<FlexAutodiff, 4> {
    let (q, k, v) =
        (q.into_primitive().tensor(), k.into_primitive().tensor(), v.into_primitive().tensor());
    let prep = FlashBackward
        .prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()])
        .compute_bound()
        .stateful();
    let (out, lse) = forward(&q.primitive, &k.primitive, &v.primitive, dims, mask);
    let out = match prep {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                q: q.primitive,
                k: k.primitive,
                v: v.primitive,
                out: out.clone(),
                lse: Arc::new(lse),
                dims,
                mask: mask.clone(),
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::activation::softmax;

    use super::*;
    use crate::test_data::{max_abs_diff, uniform, values as data};

    type A = Autodiff<Flex>;

    /// The dense composition: `softmax(q k^T * scale + mask) v` with the equal dense mask.
    pub(super) fn dense<Be: Backend>(
        q: Tensor<Be, 4>,
        k: Tensor<Be, 4>,
        v: Tensor<Be, 4>,
        mask: &KeyMask,
        scale: f32,
    ) -> Tensor<Be, 4> {
        let [b, kv, rows, _] = q.dims();
        let t = k.dims()[2] - mask.past;
        let groups = rows / t;
        let m = mask.dense::<Be>(b, t, -1.0e9, &q.device());
        let scores = q.matmul(k.swap_dims(2, 3)) * scale;
        let [mb, _, _, tk] = m.dims();
        let scores = scores.reshape([b, kv, groups, t, tk]) + m.reshape([mb, 1, 1, t, tk]);
        softmax(scores.reshape([b, kv, rows, tk]), 3).matmul(v)
    }

    pub(super) struct Case {
        pub(super) b: usize,
        pub(super) kv: usize,
        pub(super) groups: usize,
        pub(super) t: usize,
        pub(super) d: usize,
        pub(super) mask: KeyMask,
    }

    /// Output and the gradients of `sum(out * w)` for q, k, v, by `f`, where `w` is zero on the
    /// rows of padding queries (whose outputs the model never reads).
    pub(super) fn run(
        c: &Case,
        f: impl Fn(Tensor<A, 4>, Tensor<A, 4>, Tensor<A, 4>) -> Tensor<A, 4>,
    ) -> [Vec<f32>; 4] {
        let tk = c.mask.past + c.t;
        let rows = c.groups * c.t;
        let leaf = |shape: [usize; 4], seed| {
            Tensor::<A, 4>::from_data(uniform(shape, 1.5, 0.0, seed), &Default::default())
                .require_grad()
        };
        let (q, k, v) = (
            leaf([c.b, c.kv, rows, c.d], 1),
            leaf([c.b, c.kv, tk, c.d], 2),
            leaf([c.b, c.kv, tk, c.d], 3),
        );
        let mut w = data(Tensor::<Flex, 4>::from_data(
            uniform([c.b, c.kv, rows, c.d], 1.0, 0.0, 4),
            &Default::default(),
        ));
        for (row, w) in w.chunks_mut(c.d).enumerate() {
            let (sequence, i) = (row / (c.kv * rows), row % rows % c.t);
            if !(0..tk).any(|j| c.mask.sees(sequence, i, j)) {
                w.iter_mut().for_each(|x| *x = 0.0);
            }
        }
        let w = Tensor::<A, 4>::from_data(
            TensorData::new(w, [c.b, c.kv, rows, c.d]),
            &Default::default(),
        );
        let out = f(q.clone(), k.clone(), v.clone());
        let grads = (out.clone() * w).sum().backward();
        let g = |x: &Tensor<A, 4>| data(x.grad(&grads).unwrap());
        [data(out.inner()), g(&q), g(&k), g(&v)]
    }

    fn check(c: Case) {
        let scale = 1.0 / (c.d as f32).sqrt();
        let fused =
            run(&c, |q, k, v| flash_attention(q, k, v, &c.mask, scale).expect("fused on Flex"));
        let reference = run(&c, |q, k, v| dense(q, k, v, &c.mask, scale));
        for (what, (a, b)) in ["output", "dq", "dk", "dv"].iter().zip(fused.iter().zip(&reference))
        {
            let worst = max_abs_diff(a, b);
            assert!(worst < 1e-5, "{what}: worst difference {worst}");
        }
        // Without autodiff the forward pass is the same.
        let q = Tensor::<Flex, 4>::from_data(
            uniform([c.b, c.kv, c.groups * c.t, c.d], 1.5, 0.0, 1),
            &Default::default(),
        );
        let k = Tensor::<Flex, 4>::from_data(
            uniform([c.b, c.kv, c.mask.past + c.t, c.d], 1.5, 0.0, 2),
            &Default::default(),
        );
        let v = Tensor::<Flex, 4>::from_data(
            uniform([c.b, c.kv, c.mask.past + c.t, c.d], 1.5, 0.0, 3),
            &Default::default(),
        );
        let out = flash_attention(q, k, v, &c.mask, scale).expect("fused on Flex");
        assert!(max_abs_diff(&data(out), &fused[0]) < 1e-6);
    }

    #[test]
    fn causal_attention_over_several_key_blocks_matches_the_dense_path() {
        check(Case { b: 2, kv: 2, groups: 1, t: 150, d: 8, mask: KeyMask::default() });
    }

    #[test]
    fn a_head_size_summed_in_registers_matches_the_dense_path() {
        check(Case { b: 1, kv: 1, groups: 2, t: 130, d: 64, mask: KeyMask::default() });
    }

    #[test]
    fn grouped_queries_and_cached_keys_match_the_dense_path() {
        check(Case { b: 1, kv: 2, groups: 3, t: 5, d: 16, mask: KeyMask { past: 70, keys: None } });
    }

    #[test]
    fn padding_and_a_query_that_sees_nothing_match_the_dense_path() {
        // Sequence 0 is left-padded by 3; in sequence 1 the first query is padding too and sees
        // no key at all, and a key in the middle is hidden.
        let t = 9;
        let mut keys = vec![vec![true; t]; 2];
        keys[0][..3].iter_mut().for_each(|x| *x = false);
        keys[1][0] = false;
        keys[1][4] = false;
        let mask = KeyMask { past: 0, keys: Some(Arc::new(keys)) };
        check(Case { b: 2, kv: 1, groups: 2, t, d: 4, mask });
    }

    #[test]
    fn bf16_inputs_attend_in_float32_and_come_back_in_bf16() {
        let c = Case { b: 1, kv: 1, groups: 2, t: 70, d: 16, mask: KeyMask::default() };
        let scale = 0.25;
        let tensor = |shape: [usize; 4], seed| {
            Tensor::<Flex, 4>::from_data(uniform(shape, 1.5, 0.0, seed), &Default::default())
        };
        let (q, k, v) =
            (tensor([1, 1, 140, 16], 1), tensor([1, 1, 70, 16], 2), tensor([1, 1, 70, 16], 3));
        let bf16 = |x: &Tensor<Flex, 4>| crate::precision::cast(x.clone(), DType::BF16);
        let half = flash_attention(bf16(&q), bf16(&k), bf16(&v), &c.mask, scale).expect("fused");
        assert_eq!(half.dtype(), DType::BF16);
        // The same bf16-rounded inputs in float32: only the output's rounding differs.
        let f32s = |x: &Tensor<Flex, 4>| crate::precision::cast(bf16(x), DType::F32);
        let full = flash_attention(f32s(&q), f32s(&k), f32s(&v), &c.mask, scale).expect("fused");
        let half = data(crate::precision::cast(half, DType::F32));
        assert!(max_abs_diff(&half, &data(full)) < 1e-2);
    }
}
