//! Reductions along rows as long as a vocabulary (log-softmax, sums, maxima, argmax), down long
//! columns, and over whole tensors, in two passes, so that a GPU spreads each reduction over
//! many threads.
//!
//! burn-cubecl, built without its autotuner (see the workspace `Cargo.toml`), reduces every row
//! in a single GPU thread (cubek-reduce's `Unit` routine). Along Qwen's 151,936 logits that one
//! thread walks 600 KB alone: on an H100 each such reduction took 6.3 ms whether there were 64
//! rows or 2,300 (CubeCL's kernel profiler, `docs/results/gpu-h100-2026-11-23.md`), three of them
//! per decode step (argmax, max, sum) and twelve per training micro-batch.
//!
//! Here a row of `v = len * width` elements is viewed as `[len, width]` and reduced over `len`
//! first: `width` threads per row, neighbours reading neighbouring addresses, each walking `len`
//! elements; then one thread per row walks the `width` partial results. Under autodiff the
//! broadcasts' backward passes reduce in the same two steps, because the gradient of
//! `[n, len, width] - [n, 1, 1]` is summed one axis at a time.
//!
//! On the CPU the plain one-pass operations are kept: burn-flex reduces rows well, and CPU runs
//! stay bit-identical to what they were.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

use crate::device::is_cpu;

/// Rows shorter than this are reduced in one pass: one thread per row is fast enough.
const MIN_STAGED_LEN: usize = 4096;

/// `log_softmax(x, 1)` for `x: [rows, v]`.
pub fn log_softmax_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    match staging::<B>(x.dims()[1]) {
        Some(split) => staged_log_softmax(x, split),
        None => log_softmax(x, 1),
    }
}

/// `x.sum_dim(1)` for `x: [rows, v]`: `[rows, 1]`.
pub fn sum_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    match staging::<B>(x.dims()[1]) {
        Some(split) => staged_sum(x, split),
        None => x.sum_dim(1),
    }
}

/// `x.max_dim(1)` for `x: [rows, v]`: `[rows, 1]`.
pub fn max_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    match staging::<B>(x.dims()[1]) {
        Some(split) => staged_max(x, split),
        None => x.max_dim(1),
    }
}

/// `x.sum()`, the sum of every element, staged like a row of `x.num_elements()` elements: the
/// global gradient norm sums each parameter's squares, and the embedding alone has 155M of them
/// (one thread per parameter took 6.3 ms for it on an H100; 28.5 ms a step for all 310).
pub fn sum_all<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, 1> {
    let n = x.shape().num_elements();
    match staging::<B>(n) {
        Some(split) => staged_sum(x.reshape([1, n]), split).reshape([1]),
        None => x.sum(),
    }
}

/// `x.sum_dim(0)` for `x: [rows, d]`, as `[d]`: a weight's gradient summed over the tokens. One
/// pass would give each of the `d` columns a single thread walking every row, 98,304 of them for
/// the query norm of an 8 x 768-token batch with 16 heads; here `rows = len * width` is summed over
/// `width` first, by `len * d` threads, then over `len`.
pub fn sum_columns<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let [rows, d] = x.dims();
    let split = if is_cpu::<B>() || rows < MIN_STAGED_LEN { None } else { balanced_split(rows) };
    match split {
        Some(split) => staged_sum_columns(x, split),
        None => x.sum_dim(0),
    }
    .reshape([d])
}

/// `x.argmax(1)` for `x: [rows, v]`: `[rows, 1]`, the first index of the maximum as burn's
/// argmax and `torch.argmax` give (greedy decoding's parity with transformers relies on it).
pub fn argmax_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2, Int> {
    match staging::<B>(x.dims()[1]) {
        Some(split) => staged_argmax(x, split),
        None => x.argmax(1),
    }
}

/// The `(len, width)` view rows of `v` elements are reduced through on backend `B`, if any.
fn staging<B: Backend>(v: usize) -> Option<(usize, usize)> {
    if is_cpu::<B>() || v < MIN_STAGED_LEN { None } else { split(v) }
}

/// The factorisation `v = len * width` with the fewest sequential steps per thread: `len`
/// elements in the first pass, then `width` in the second, read four at a time when `width`
/// allows it. Of equal counts the wider is taken, for more threads in the first pass, which
/// reads all the data. `None` when `v` is prime.
fn split(v: usize) -> Option<(usize, usize)> {
    let steps = |(len, width): (usize, usize)| {
        let lanes = [4, 2, 1].into_iter().find(|&l| width.is_multiple_of(l)).unwrap_or(1);
        len + width / lanes
    };
    (2..)
        .take_while(|k| k * k <= v)
        .filter(|k| v.is_multiple_of(*k))
        .flat_map(|k| [(k, v / k), (v / k, k)])
        .min_by_key(|&s| (steps(s), std::cmp::Reverse(s.1)))
}

/// The factorisation `v = len * width` with the fewest steps when both axes are strided (a
/// column: no vector loads along either), `len + width`; of equal counts the shorter `len`, which
/// the second pass walks with fewer threads. `None` when `v` is prime.
fn balanced_split(v: usize) -> Option<(usize, usize)> {
    (2..)
        .take_while(|k| k * k <= v)
        .filter(|k| v.is_multiple_of(*k))
        .flat_map(|k| [(k, v / k), (v / k, k)])
        .min_by_key(|&(len, width)| (len + width, len))
}

fn staged_log_softmax<B: Backend>(x: Tensor<B, 2>, (len, width): (usize, usize)) -> Tensor<B, 2> {
    let [rows, v] = x.dims();
    let x = x.reshape([rows, len, width]);
    // Any per-row constant gives the same result; the maximum keeps `exp` in range, and
    // detaching it keeps it out of the gradient, as burn's own log_softmax does.
    let max = x.clone().detach().max_dim(1).max_dim(2);
    let shifted = x - max;
    let log_sum_exp = shifted.clone().exp().sum_dim(1).sum_dim(2).log();
    (shifted - log_sum_exp).reshape([rows, v])
}

fn staged_max<B: Backend>(x: Tensor<B, 2>, (len, width): (usize, usize)) -> Tensor<B, 2> {
    let rows = x.dims()[0];
    x.reshape([rows, len, width]).max_dim(1).max_dim(2).reshape([rows, 1])
}

fn staged_sum<B: Backend>(x: Tensor<B, 2>, (len, width): (usize, usize)) -> Tensor<B, 2> {
    let rows = x.dims()[0];
    x.reshape([rows, len, width]).sum_dim(1).sum_dim(2).reshape([rows, 1])
}

fn staged_sum_columns<B: Backend>(x: Tensor<B, 2>, (len, width): (usize, usize)) -> Tensor<B, 2> {
    let d = x.dims()[1];
    x.reshape([len, width, d]).sum_dim(1).sum_dim(0).reshape([1, d])
}

/// The maximum in two passes, then the smallest index holding it in two more: a per-column
/// argmax followed by an argmax over columns would break ties by column, not by index.
fn staged_argmax<B: Backend>(x: Tensor<B, 2>, (len, width): (usize, usize)) -> Tensor<B, 2, Int> {
    let [rows, v] = x.dims();
    let device = x.device();
    let max = x.clone().reshape([rows, len, width]).max_dim(1).max_dim(2).reshape([rows, 1]);
    let elsewhere = x.equal(max.expand([rows, v])).bool_not();
    // Indices as float32 are exact below 2^24, far above any vocabulary.
    let index =
        Tensor::<B, 1, Int>::arange(0..v as i64, &device).float().reshape([1, v]).expand([rows, v]);
    let first = index
        .mask_fill(elsewhere, v as f32)
        .reshape([rows, len, width])
        .min_dim(1)
        .min_dim(2)
        .reshape([rows, 1]);
    // A row of NaNs matches nowhere; its index is clamped into range rather than left at `v`.
    first.clamp_max((v - 1) as f32).int()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, TensorData};

    type B = Flex;

    fn random(rows: usize, v: usize, seed: u64) -> Tensor<B, 2> {
        B::seed(&Default::default(), seed);
        Tensor::random([rows, v], Distribution::Normal(0.0, 4.0), &Default::default())
    }

    fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn split_minimises_sequential_steps_and_refuses_primes() {
        // Qwen's vocabulary: 151936 = 2^7 * 1187, with 1187 prime. 32 + 4748 / 4 steps ties
        // with 1187 + 128 / 4; the wider first pass wins.
        assert_eq!(split(151_936), Some((32, 4748)));
        // Llama 3's: 128256 = 2^8 * 3 * 167.
        let (len, width) = split(128_256).unwrap();
        assert_eq!(len * width, 128_256);
        assert!(len + width / 4 < 1000, "{len} x {width}");
        assert_eq!(split(4099), None);
        // Columns: 98,304 = 8 x 768 tokens x 16 heads, the query norm's rows.
        assert_eq!(balanced_split(98_304), Some((256, 384)));
        assert_eq!(balanced_split(6144), Some((64, 96)));
        assert_eq!(balanced_split(4099), None);
        // Below the threshold, or on the CPU, nothing is staged.
        assert_eq!(staging::<B>(151_936), None);
        assert_eq!(staging::<B>(1024), None);
    }

    #[test]
    fn staged_log_softmax_and_sum_match_the_one_pass_operations() {
        for (v, split) in [(6 * 128, (6, 128)), (6 * 128, (128, 6)), (35, (7, 5))] {
            let x = random(5, v, 3);
            let want = log_softmax(x.clone(), 1);
            let got = staged_log_softmax(x.clone(), split);
            assert!(max_abs_diff(got, want) < 1e-5, "{split:?}");
            let got = staged_sum(x.clone(), split);
            assert!(max_abs_diff(got, x.clone().sum_dim(1)) < 1e-3, "{split:?}");
            let got = staged_max(x.clone(), split);
            assert_eq!(got.into_data(), x.clone().max_dim(1).into_data(), "{split:?}");
            // Columns: x is [5, v], so the 5 rows cannot be split; x^T is [v, 5].
            let got = staged_sum_columns(x.clone().transpose(), split);
            assert!(max_abs_diff(got, x.clone().sum_dim(1).reshape([1, 5])) < 1e-3, "{split:?}");
            // A whole tensor summed as one row, as `sum_all` stages it.
            let all = x.clone().reshape([1, 5 * v]);
            let got = staged_sum(all, (5 * split.0, split.1)).reshape([1]);
            assert!(max_abs_diff(got, x.sum()) < 1e-2, "{split:?}");
        }
    }

    #[test]
    fn staged_log_softmax_has_the_same_gradient() {
        type A = Autodiff<Flex>;
        let x = random(4, 12 * 32, 5);
        let weights = random(4, 12 * 32, 6);
        let grad = |staged: bool| {
            let x = Tensor::<A, 2>::from_data(x.to_data(), &Default::default()).require_grad();
            let w = Tensor::<A, 2>::from_data(weights.to_data(), &Default::default());
            let out = if staged {
                staged_log_softmax(x.clone(), (12, 32))
            } else {
                log_softmax(x.clone(), 1)
            };
            let grads = out.mul(w).sum().backward();
            x.grad(&grads).unwrap()
        };
        assert!(max_abs_diff(grad(true), grad(false)) < 1e-4);
    }

    #[test]
    fn staged_argmax_returns_the_first_maximum_like_argmax() {
        let device = Default::default();
        let x = random(6, 8 * 16, 9);
        let got = staged_argmax(x.clone(), (8, 16));
        assert_eq!(got.into_data(), x.argmax(1).into_data());
        // Ties across the [len, width] = [8, 16] view: flat 34 is (2, 2), 21 is (1, 5) and 70 is
        // (4, 6). One-pass argmax gives 21, the first; the smallest column would give 34.
        let mut row = vec![0.0f32; 8 * 16];
        for i in [34, 21, 70] {
            row[i] = 3.0;
        }
        let x = Tensor::<B, 2>::from_data(TensorData::new(row, [1, 8 * 16]), &device);
        let got =
            staged_argmax(x.clone(), (8, 16)).into_data().convert::<i64>().to_vec::<i64>().unwrap();
        assert_eq!(got, vec![21]);
        assert_eq!(x.argmax(1).into_data().convert::<i64>().to_vec::<i64>().unwrap(), vec![21]);
    }
}
