//! The backward pass of [`super::flash_attention`] (FlashAttention-2's, arXiv:2307.08691): with
//! `D_r = dO_r · O_r` and the weights recomputed block by block from the saved log-sum-exps,
//! `p_rj = exp(s_rj - L_r)`, `ds_rj = p_rj (dO_r · V_j - D_r)`,
//! `dQ_r = scale Σ_j ds_rj K_j`, `dK_j = scale Σ_r ds_rj Q_r` and `dV_j = Σ_r p_rj dO_r`:
//! `dQ` a block of query rows at a time, `dK` and `dV` a block of keys at a time, so that no two
//! threads write the same row.

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::blocks::{KeyBlock, add_weighted_rows, hide_unseen, project, split_by_head};
use super::{Dims, KEY_BLOCK, KeyMask, QUERY_BLOCK, Saved, dot};
use crate::dispatch::values;
use crate::fast_exp::exp;

/// What the backward pass needs to recompute a row's weights against a key block.
struct RowGrads<'a> {
    qs: &'a [f32],
    dos: &'a [f32],
    lse: &'a [f32],
    /// `D_r = dO_r · O_r`.
    delta: &'a [f32],
    mask: &'a KeyMask,
    dims: Dims,
}

impl RowGrads<'_> {
    /// Row `row`'s weights `p = exp(s - L)` against `keys` and its score gradients
    /// `ds = p (dO · V - D)`, 0 for keys it does not see; false if it sees none of them.
    #[inline(always)]
    fn weights(&self, row: usize, keys: &KeyBlock, p: &mut [f32], ds: &mut [f32]) -> bool {
        let (d, n) = (self.dims.head_dim, keys.len);
        let (sequence, i) = self.dims.query(row);
        let last = self.mask.past + i;
        if keys.start > last {
            return false;
        }
        let (p, ds) = (&mut p[..n], &mut ds[..n]);
        project(&keys.keys_t, &self.qs[row * d..][..d], self.dims.scale, p);
        hide_unseen(p, keys.start, last, self.mask, sequence, i);
        let lse = self.lse[row];
        p.iter_mut().for_each(|p| *p = exp(*p - lse));
        project(&keys.values_t, &self.dos[row * d..][..d], 1.0, ds);
        let delta = self.delta[row];
        ds.iter_mut().zip(p.iter()).for_each(|(ds, &p)| *ds = p * (*ds - delta));
        true
    }
}

/// `(dQ, dK, dV)` from the output's gradient, the weights recomputed block by block: `dQ` one
/// query row at a time, `dK` and `dV` one key at a time over the rows that see it.
pub(super) fn backward(s: &Saved, grad: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dims = s.dims;
    let d = dims.head_dim;
    let (qv, kv, vv, ov, gv) =
        (values(&s.q), values(&s.k), values(&s.v), values(&s.out), values(grad));
    let (qs, ks, vs) = (qv.storage::<f32>(), kv.storage::<f32>(), vv.storage::<f32>());
    let (os, dos) = (ov.storage::<f32>(), gv.storage::<f32>());
    let total_rows = dims.batch * dims.kv_heads * dims.rows;
    // D_r = dO_r · O_r.
    let delta: Vec<f32> =
        (0..total_rows).map(|r| dot(&dos[r * d..][..d], &os[r * d..][..d])).collect();
    // Rows that see no key: they spread their output over every value with equal weights, and
    // their weights do not depend on the scores.
    let blind: Vec<bool> = (0..total_rows).map(|row| !dims.sees_any(row, &s.mask)).collect();
    let grads = RowGrads { qs, dos, lse: &s.lse, delta: &delta, mask: &s.mask, dims };

    // dQ, a block of query rows at a time against each transposed key block.
    let mut dq = vec![0.0f32; total_rows * d];
    dq.par_chunks_mut(QUERY_BLOCK * d)
        .enumerate()
        .for_each(|(block, dq)| dq_block(&grads, ks, vs, &blind, block * QUERY_BLOCK, dq));

    // dK and dV, a block of keys at a time against every query row that sees it.
    let key_rows = dims.batch * dims.kv_heads * dims.keys;
    let mut dk = vec![0.0f32; key_rows * d];
    let mut dv = vec![0.0f32; key_rows * d];
    dk.par_chunks_mut(KEY_BLOCK * d)
        .zip(dv.par_chunks_mut(KEY_BLOCK * d))
        .enumerate()
        .for_each(|(block, (dk, dv))| dkv_block(&grads, ks, vs, &blind, block * KEY_BLOCK, dk, dv));
    let like = |data: Vec<f32>, t: &FlexTensor| {
        FlexTensor::from_data(TensorData::new(data, t.layout().shape().clone()))
    };
    (like(dq, &s.q), like(dk, &s.k), like(dv, &s.v))
}

crate::wide_vectors! {
    /// `dQ` of the query rows from `first` on (`dq` holds them), against each transposed block
    /// of the keys they see.
    fn dq_block(
        grads: &RowGrads<'_>,
        ks: &[f32],
        vs: &[f32],
        blind: &[bool],
        first: usize,
        dq: &mut [f32],
    ) {
        let (dims, mask) = (grads.dims, grads.mask);
        let d = dims.head_dim;
        let mut keys = KeyBlock::new(d);
        let (mut p, mut ds) = ([0.0f32; KEY_BLOCK], [0.0f32; KEY_BLOCK]);
        for head_rows in split_by_head(first..first + dq.len() / d, dims.rows) {
            let seeing: Vec<usize> = head_rows.clone().filter(|&row| !blind[row]).collect();
            let Some(last) = seeing.iter().map(|&row| dims.last_key(row, mask)).max() else {
                continue;
            };
            let base = dims.key_base(head_rows.start);
            for start in (0..=last).step_by(KEY_BLOCK) {
                keys.load(ks, vs, base, start, (start + KEY_BLOCK).min(last + 1) - start);
                for &row in &seeing {
                    if grads.weights(row, &keys, &mut p, &mut ds) {
                        let n = keys.len;
                        ds[..n].iter_mut().for_each(|g| *g *= dims.scale);
                        let block_keys = &ks[(base + start) * d..][..n * d];
                        add_weighted_rows(&mut dq[(row - first) * d..][..d], &ds[..n], block_keys);
                    }
                }
            }
        }
    }
}

crate::wide_vectors! {
    /// `dK` and `dV` of the key rows from `first` on (`dk` and `dv` hold them), against every
    /// query row that sees them.
    fn dkv_block(
        grads: &RowGrads<'_>,
        ks: &[f32],
        vs: &[f32],
        blind: &[bool],
        first: usize,
        dk: &mut [f32],
        dv: &mut [f32],
    ) {
        let dims = grads.dims;
        let d = dims.head_dim;
        let mut keys = KeyBlock::new(d);
        let (mut p, mut ds) = ([0.0f32; KEY_BLOCK], [0.0f32; KEY_BLOCK]);
        for key_range in split_by_head(first..first + dk.len() / d, dims.keys) {
            let head = key_range.start / dims.keys;
            let start = key_range.start % dims.keys;
            keys.load(ks, vs, head * dims.keys, start, key_range.len());
            let offset = (key_range.start - first) * d;
            let (dk, dv) = (&mut dk[offset..], &mut dv[offset..]);
            let head_rows = head * dims.rows..(head + 1) * dims.rows;
            // Query i sees the block only from i = start - past on, in each group of t rows.
            for group_start in head_rows.clone().step_by(dims.t) {
                let from = group_start + start.saturating_sub(grads.mask.past);
                for row in from..group_start + dims.t {
                    if blind[row] || !grads.weights(row, &keys, &mut p, &mut ds) {
                        continue;
                    }
                    let (q, dout) = (&grads.qs[row * d..][..d], &grads.dos[row * d..][..d]);
                    for jj in 0..keys.len {
                        let (dk, dv) = (&mut dk[jj * d..][..d], &mut dv[jj * d..][..d]);
                        dv.iter_mut().zip(dout).for_each(|(g, o)| *g += p[jj] * o);
                        let g = ds[jj] * dims.scale;
                        dk.iter_mut().zip(q).for_each(|(dk, q)| *dk += g * q);
                    }
                }
            }
            let uniform = 1.0 / dims.keys as f32;
            for row in head_rows.filter(|&row| blind[row]) {
                let dout = &grads.dos[row * d..][..d];
                for dv in dv[..keys.len * d].chunks_mut(d) {
                    dv.iter_mut().zip(dout).for_each(|(g, o)| *g += uniform * o);
                }
            }
        }
    }
}
