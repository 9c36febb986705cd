//! The blocks both passes of [`super`] work in: rows cut at head boundaries, and a block of
//! keys and values transposed so that a row's products with it vectorise.

use super::{KEY_BLOCK, KeyMask};

/// `range` (of flattened rows) cut where one head's rows (`per_head` of them) end.
pub(super) fn split_by_head(
    range: std::ops::Range<usize>,
    per_head: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut next = range.start;
    std::iter::from_fn(move || {
        (next < range.end).then(|| {
            let end = ((next / per_head + 1) * per_head).min(range.end);
            let part = next..end;
            next = end;
            part
        })
    })
}

/// A block of one head's keys and values, transposed to `[d, KEY_BLOCK]`, so that a row's
/// scores and `dO · V` against it are `d` passes the compiler vectorises.
pub(super) struct KeyBlock {
    /// Keys `start..start + len` of the head.
    pub(super) start: usize,
    pub(super) len: usize,
    /// `[d, KEY_BLOCK]`.
    pub(super) keys_t: Vec<f32>,
    /// `[d, KEY_BLOCK]`.
    pub(super) values_t: Vec<f32>,
}

impl KeyBlock {
    pub(super) fn new(d: usize) -> Self {
        Self {
            start: 0,
            len: 0,
            keys_t: vec![0.0; d * KEY_BLOCK],
            values_t: vec![0.0; d * KEY_BLOCK],
        }
    }

    /// Loads keys and values `start..start + len` of the head whose first key row is `base`.
    #[inline(always)]
    pub(super) fn load(&mut self, ks: &[f32], vs: &[f32], base: usize, start: usize, len: usize) {
        self.load_keys(ks, base, start, len);
        transpose(vs, base + start, len, &mut self.values_t);
    }

    /// Loads keys `start..start + len` only (the forward pass reads values row by row).
    #[inline(always)]
    pub(super) fn load_keys(&mut self, ks: &[f32], base: usize, start: usize, len: usize) {
        (self.start, self.len) = (start, len);
        transpose(ks, base + start, len, &mut self.keys_t);
    }
}

/// Rows `first..first + len` of the row-major `[_, d]` `rows` into `[d, KEY_BLOCK]`.
#[inline(always)]
fn transpose(rows: &[f32], first: usize, len: usize, out: &mut [f32]) {
    let d = out.len() / KEY_BLOCK;
    for jj in 0..len {
        for (c, &x) in rows[(first + jj) * d..][..d].iter().enumerate() {
            out[c * KEY_BLOCK + jj] = x;
        }
    }
}

/// `out[jj] = scale * (x · column jj)` of a transposed block: `d` passes over the block, each
/// vectorised over its keys (`x` is scaled once, not every score). A whole block's scores are
/// held in registers across the passes.
#[inline(always)]
pub(super) fn project(transposed: &[f32], x: &[f32], scale: f32, out: &mut [f32]) {
    let columns = transposed.as_chunks::<KEY_BLOCK>().0;
    if let Ok(out) = <&mut [f32; KEY_BLOCK]>::try_from(&mut *out) {
        let mut sum = [0.0f32; KEY_BLOCK];
        for (&xc, column) in x.iter().zip(columns) {
            let xc = xc * scale;
            for jj in 0..KEY_BLOCK {
                sum[jj] += xc * column[jj];
            }
        }
        *out = sum;
        return;
    }
    out.fill(0.0);
    for (&xc, column) in x.iter().zip(columns) {
        let xc = xc * scale;
        out.iter_mut().zip(column).for_each(|(o, &t)| *o += xc * t);
    }
}

/// Sets to `-inf` the scores of the keys `start + jj` query `i` of `sequence` does not see: past
/// `last` (causal), and padding. A block wholly within the causal limit and without padding is
/// left as it is, the common case.
#[inline(always)]
pub(super) fn hide_unseen(
    scores: &mut [f32],
    start: usize,
    last: usize,
    mask: &KeyMask,
    sequence: usize,
    i: usize,
) {
    if mask.keys.is_none() && start + scores.len() <= last + 1 {
        return;
    }
    for (jj, s) in scores.iter_mut().enumerate() {
        if !mask.sees(sequence, i, start + jj) {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// `out += Σ_jj weights[jj] * rows[jj]` for the `[weights.len(), d]` row-major `rows`, `d =
/// out.len()`: the weighted values of the forward pass and the weighted keys of `dQ`. At the
/// usual head sizes the sum is held in registers across the block (a loop over a slice of
/// unknown length would load and store it for every key).
#[inline(always)]
pub(super) fn add_weighted_rows(out: &mut [f32], weights: &[f32], rows: &[f32]) {
    match out.len() {
        16 => add_weighted_rows_of::<16>(out, weights, rows),
        32 => add_weighted_rows_of::<32>(out, weights, rows),
        64 => add_weighted_rows_of::<64>(out, weights, rows),
        128 => add_weighted_rows_of::<128>(out, weights, rows),
        d => {
            for (&w, row) in weights.iter().zip(rows.chunks_exact(d)) {
                out.iter_mut().zip(row).for_each(|(o, &x)| *o += w * x);
            }
        }
    }
}

#[inline(always)]
fn add_weighted_rows_of<const D: usize>(out: &mut [f32], weights: &[f32], rows: &[f32]) {
    let mut sum: [f32; D] = out.try_into().expect("out holds one row");
    for (&w, row) in weights.iter().zip(rows.as_chunks::<D>().0) {
        for c in 0..D {
            sum[c] += w * row[c];
        }
    }
    out.copy_from_slice(&sum);
}

/// Lanes of the reductions below: independent partial results, so that each step does not wait
/// for the previous one (a float reduction is not reordered by the compiler on its own).
const LANES: usize = 8;

/// The largest value.
#[inline(always)]
pub(super) fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(m, &x)| *m = m.max(x));
    }
    rest.iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

/// The sum, over [`LANES`] partial sums.
#[inline(always)]
pub(super) fn sum_of(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(s, &x)| *s += x);
    }
    rest.iter().chain(&lanes).sum()
}
