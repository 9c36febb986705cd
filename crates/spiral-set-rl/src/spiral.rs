//! SPIRAL advantages: set RL for the search traces, group-relative RL for the aggregation traces.
//!
//! "SPIRAL: Learning to Search and Aggregate" (Ibn Hamid et al., 2026, arXiv:2606.23595). Per
//! problem the model samples N1 search traces, K distinct sets G_1..G_K of n traces each are
//! drawn from them, and N2 aggregation traces are sampled for each set; only aggregation traces
//! are scored. With `r_ij` the reward of aggregation trace j of set i:
//!
//! - set score `f(G_i) = mean_j r_ij`, baseline `b = mean_i f(G_i)`, set advantage
//!   `A(G_i) = f(G_i) - b`;
//! - search-trace advantage: the mean of `A(G)` over the sets G that hold the trace (0 for a
//!   trace in no set: it gets no gradient);
//! - aggregation-trace advantage: `r_ij - mean_k r_ik`, centred inside its own set.
//!
//! No std division unless [`SpiralConfig::normalize_std`] is set (Dr.GRPO style, as the paper).
//! With [`SetBaseline::LeaveOneOut`] each set is compared with the mean of the other sets
//! instead, `A(G_i) = f(G_i) - mean_{k != i} f(G_k) = K / (K - 1) (f(G_i) - b)` (RLOO's baseline,
//! Kool et al., 2019): the same direction, scaled by `K / (K - 1)`, with a baseline that leaves
//! out the set it scores.
//!
//! Why this is a sound gradient: for a symmetric set function, each slot of a set carries
//! `1/n` of the set-RL gradient `grad E[f(G)] = E[f(G) sum_{y in G} grad log pi(y)]`, and the sets
//! are drawn without looking at the traces. Then `sum_j A_j grad log pi(y_j)` has expectation
//! `(M / n - 1) * grad E[f(G)]`, M the number of traces in at least one set: the direction is
//! unbiased, the scale a positive constant once K >= 2 distinct sets cover more than n traces
//! (the baseline shares traces with the sets it scores, which is what the `- 1` pays for). The
//! tests check this by Monte Carlo. With all C(N, k) sets and an oracle aggregator
//! `f(G) = max r`, the search-trace advantage is exactly the pass@k advantage.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{SetRlError, check_finite, check_overflow};
use crate::grpo::GRPO_EPS;
use crate::stats::{mean, sample_std};

/// The most search traces (N1) of one problem: [`spiral_advantages`] allocates `[N1]` arrays, so a
/// request naming `num_search = 10^12` is refused before any allocation.
pub const MAX_SEARCH_TRACES: usize = 1_000_000;

/// Options of the SPIRAL estimator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpiralConfig {
    /// Divide set advantages by the sample std of the K set scores, and aggregation advantages by
    /// the sample std of their set's rewards (`+ 1e-6`, as GRPO). Off in the paper.
    pub normalize_std: bool,
    /// What a set's score is compared with.
    pub baseline: SetBaseline,
}

/// The baseline of the set advantages (`"mean"`, `"leave_one_out"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetBaseline {
    /// The mean score of the K sets, the scored set included (the paper's).
    #[default]
    Mean,
    /// The mean score of the other K - 1 sets.
    LeaveOneOut,
}

/// The SPIRAL advantages of one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpiralAdvantages {
    /// `[K]` set scores `f(G_i)`: the mean reward of the set's aggregation traces.
    pub set_scores: Vec<f64>,
    /// `[K]` set advantages `f(G_i) - mean f` (divided by the std when configured).
    pub set_advantages: Vec<f64>,
    /// `[N1]` search-trace advantages: the mean set advantage over the sets holding the trace.
    pub search_advantages: Vec<f64>,
    /// `[N1]` how many sets hold each search trace (0: the trace gets no gradient).
    pub search_counts: Vec<usize>,
    /// `[K][N2]` aggregation-trace advantages, centred inside their own set.
    pub aggregation_advantages: Vec<Vec<f64>>,
}

/// SPIRAL advantages of one problem.
///
/// Shapes: `num_search` = N1; `sets` `[K][n]`, each a list of n distinct search-trace indices in
/// `0..N1`, no two sets holding the same traces (order ignored); `aggregation_rewards` `[K][N2]`,
/// row i the rewards of set i's aggregation traces. Returns `[K]` set scores and advantages, `[N1]`
/// search-trace advantages and counts, and `[K][N2]` aggregation advantages (formulas in the
/// module doc; Ibn Hamid et al., 2026). One set (K = 1) gives all set and search advantages 0;
/// one aggregation trace per set (N2 = 1) gives aggregation advantages 0.
///
/// Errors on `num_search` above [`MAX_SEARCH_TRACES`], no sets, an empty set, sets of different
/// sizes, an index out of range, a trace twice in one set, two equal sets, a reward row count
/// other than K, reward rows of different lengths or empty, a non-finite reward, and rewards so
/// far apart that an advantage overflows `f64`.
pub fn spiral_advantages<S, R>(
    num_search: usize,
    sets: &[S],
    aggregation_rewards: &[R],
    config: &SpiralConfig,
) -> Result<SpiralAdvantages, SetRlError>
where
    S: AsRef<[usize]>,
    R: AsRef<[f64]>,
{
    validate(num_search, sets, aggregation_rewards)?;
    let rows: Vec<&[f64]> = aggregation_rewards.iter().map(AsRef::as_ref).collect();

    let set_scores: Vec<f64> = rows.iter().map(|r| mean(r)).collect();
    let mut set_advantages = centred(&set_scores, config.normalize_std);
    let k = set_scores.len();
    if config.baseline == SetBaseline::LeaveOneOut && k > 1 {
        let scale = k as f64 / (k - 1) as f64;
        set_advantages.iter_mut().for_each(|a| *a *= scale);
    }

    let mut search_counts = vec![0usize; num_search];
    for set in sets {
        for &j in set.as_ref() {
            search_counts[j] += 1;
        }
    }
    // The mean as a sum of `A / count` terms, which cannot overflow when the advantages do not.
    let mut search_advantages = vec![0.0; num_search];
    for (set, &adv) in sets.iter().zip(&set_advantages) {
        for &j in set.as_ref() {
            search_advantages[j] += adv / search_counts[j] as f64;
        }
    }

    let aggregation_advantages: Vec<Vec<f64>> =
        rows.iter().map(|r| centred(r, config.normalize_std)).collect();
    check_overflow("set_advantages", &set_advantages)?;
    check_overflow("search_advantages", &search_advantages)?;
    for (i, row) in aggregation_advantages.iter().enumerate() {
        check_overflow(&format!("aggregation_advantages[{i}]"), row)?;
    }
    Ok(SpiralAdvantages {
        set_scores,
        set_advantages,
        search_advantages,
        search_counts,
        aggregation_advantages,
    })
}

/// `x - mean(x)`, divided by `std(x) + 1e-6` when `normalize` (std 0 for one value).
fn centred(values: &[f64], normalize: bool) -> Vec<f64> {
    let m = mean(values);
    let scale = if normalize { 1.0 / (sample_std(values) + GRPO_EPS) } else { 1.0 };
    values.iter().map(|v| (v - m) * scale).collect()
}

/// Checks the shapes and indices described on [`spiral_advantages`].
fn validate<S, R>(num_search: usize, sets: &[S], rewards: &[R]) -> Result<(), SetRlError>
where
    S: AsRef<[usize]>,
    R: AsRef<[f64]>,
{
    if num_search > MAX_SEARCH_TRACES {
        return Err(SetRlError::TooManySearchTraces { num_search, max: MAX_SEARCH_TRACES });
    }
    if sets.is_empty() {
        return Err(SetRlError::NoSets);
    }
    let size = sets[0].as_ref().len();
    let mut seen: HashMap<Vec<usize>, usize> = HashMap::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        let set = set.as_ref();
        if set.is_empty() {
            return Err(SetRlError::EmptySet { set: i });
        }
        if set.len() != size {
            let what = "sets".to_string();
            return Err(SetRlError::Ragged { what, row: i, len: set.len(), expected: size });
        }
        if let Some(&index) = set.iter().find(|&&j| j >= num_search) {
            return Err(SetRlError::IndexOutOfRange { set: i, index, num_search });
        }
        let mut sorted = set.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(SetRlError::DuplicateInSet { set: i, index: w[0] });
        }
        if let Some(&first) = seen.get(&sorted) {
            return Err(SetRlError::DuplicateSet { first, second: i });
        }
        seen.insert(sorted, i);
    }

    if rewards.len() != sets.len() {
        return Err(SetRlError::LengthMismatch {
            what: "aggregation_rewards (one row per set)".to_string(),
            expected: sets.len(),
            actual: rewards.len(),
        });
    }
    let n2 = rewards[0].as_ref().len();
    if n2 == 0 {
        return Err(SetRlError::LengthMismatch {
            what: "aggregation_rewards[0] (N2 >= 1 aggregation traces per set)".to_string(),
            expected: 1,
            actual: 0,
        });
    }
    for (i, row) in rewards.iter().enumerate() {
        let row = row.as_ref();
        if row.len() != n2 {
            let what = "aggregation_rewards".to_string();
            return Err(SetRlError::Ragged { what, row: i, len: row.len(), expected: n2 });
        }
        check_finite(&format!("aggregation_rewards[{i}]"), row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const PLAIN: SpiralConfig = SpiralConfig { normalize_std: false, baseline: SetBaseline::Mean };

    /// Leave-one-out: each set against the mean of the others, written out.
    #[test]
    fn leave_one_out_compares_each_set_with_the_others() {
        let sets = [vec![0, 1], vec![1, 2], vec![2, 3]];
        let rewards = [vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 0.0]];
        let cfg = SpiralConfig { baseline: SetBaseline::LeaveOneOut, ..PLAIN };
        let got = spiral_advantages(4, &sets, &rewards, &cfg).unwrap();
        let scores = [0.5, 1.0, 0.0];
        let want: Vec<f64> = (0..3)
            .map(|i| {
                let others: f64 = (0..3).filter(|&k| k != i).map(|k| scores[k]).sum::<f64>() / 2.0;
                scores[i] - others
            })
            .collect();
        close(&got.set_advantages, &want, 1e-12);
        // Search traces average the advantages of their sets, as with the mean baseline.
        close(
            &got.search_advantages,
            &[want[0], (want[0] + want[1]) / 2.0, (want[1] + want[2]) / 2.0, want[2]],
            1e-12,
        );
    }

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    /// The definitions, literally, with explicit loops and no shared code.
    fn spiral_loops(n1: usize, sets: &[Vec<usize>], rewards: &[Vec<f64>]) -> SpiralAdvantages {
        let k = sets.len();
        let mut scores = vec![0.0; k];
        for i in 0..k {
            for j in 0..rewards[i].len() {
                scores[i] += rewards[i][j] / rewards[i].len() as f64;
            }
        }
        let mut b = 0.0;
        for i in 0..k {
            b += scores[i] / k as f64;
        }
        let set_adv: Vec<f64> = (0..k).map(|i| scores[i] - b).collect();
        let mut search = vec![0.0; n1];
        let mut counts = vec![0; n1];
        for t in 0..n1 {
            let mut total = 0.0;
            for i in 0..k {
                if sets[i].contains(&t) {
                    total += set_adv[i];
                    counts[t] += 1;
                }
            }
            search[t] = if counts[t] > 0 { total / counts[t] as f64 } else { 0.0 };
        }
        let mut agg = Vec::new();
        for i in 0..k {
            let mut row = Vec::new();
            for j in 0..rewards[i].len() {
                let mut others = 0.0;
                for l in 0..rewards[i].len() {
                    others += rewards[i][l];
                }
                row.push(rewards[i][j] - others / rewards[i].len() as f64);
            }
            agg.push(row);
        }
        SpiralAdvantages {
            set_scores: scores,
            set_advantages: set_adv,
            search_advantages: search,
            search_counts: counts,
            aggregation_advantages: agg,
        }
    }

    #[test]
    fn by_hand() {
        // N1 = 4, two sets of 2, N2 = 2.
        // f = [1, 0], b = 1/2, A(G) = [1/2, -1/2].
        // Trace 0 in set 0 only: 1/2. Trace 1 in both: 0. Trace 2 in set 1: -1/2. Trace 3: none.
        let sets = vec![vec![0, 1], vec![1, 2]];
        let rewards = vec![vec![1.0, 1.0], vec![0.0, 0.0]];
        let a = spiral_advantages(4, &sets, &rewards, &PLAIN).unwrap();
        assert_eq!(a.set_scores, vec![1.0, 0.0]);
        assert_eq!(a.set_advantages, vec![0.5, -0.5]);
        assert_eq!(a.search_advantages, vec![0.5, 0.0, -0.5, 0.0]);
        assert_eq!(a.search_counts, vec![1, 2, 1, 0]);
        assert_eq!(a.aggregation_advantages, vec![vec![0.0, 0.0], vec![0.0, 0.0]]);

        // Mixed aggregation rewards: f = [3/4, 1/4], A(G) = [1/4, -1/4];
        // set 0 rows centred on 3/4, set 1 on 1/4.
        let rewards = vec![vec![1.0, 1.0, 1.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]];
        let a = spiral_advantages(3, &[[0usize, 1], [1, 2]], &rewards, &PLAIN).unwrap();
        close(&a.set_advantages, &[0.25, -0.25], 1e-15);
        close(&a.search_advantages, &[0.25, 0.0, -0.25], 1e-15);
        close(&a.aggregation_advantages[0], &[0.25, 0.25, 0.25, -0.75], 1e-15);
        close(&a.aggregation_advantages[1], &[-0.25, 0.75, -0.25, -0.25], 1e-15);
    }

    #[test]
    fn normalized_by_hand() {
        // f = [1, 0]: std (n - 1) = sqrt(1/2); set 0's rewards [1, 0]: std sqrt(1/2).
        let cfg = SpiralConfig { normalize_std: true, ..PLAIN };
        let a = spiral_advantages(2, &[[0usize], [1]], &[[1.0, 1.0], [1.0, -1.0]], &cfg).unwrap();
        let s = 0.5f64.sqrt() + GRPO_EPS;
        close(&a.set_advantages, &[0.5 / s, -0.5 / s], 1e-12);
        close(&a.search_advantages, &a.set_advantages, 0.0);
        let s1 = 2.0f64.sqrt() + GRPO_EPS;
        close(&a.aggregation_advantages[1], &[1.0 / s1, -1.0 / s1], 1e-12);
        close(&a.aggregation_advantages[0], &[0.0, 0.0], 0.0);
    }

    #[test]
    fn implementation_matches_loops_on_random_problems() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let n1 = rng.random_range(1..10);
            let n = rng.random_range(1..=n1);
            let n2 = rng.random_range(1..5);
            // Draw up to 6 distinct sets by rejection.
            let mut sets: Vec<Vec<usize>> = Vec::new();
            for _ in 0..30 {
                let mut pool: Vec<usize> = (0..n1).collect();
                let mut set = Vec::new();
                for _ in 0..n {
                    set.push(pool.swap_remove(rng.random_range(0..pool.len())));
                }
                let mut key = set.clone();
                key.sort_unstable();
                if sets.len() < 6
                    && !sets.iter().any(|s| {
                        let mut t = s.clone();
                        t.sort_unstable();
                        t == key
                    })
                {
                    sets.push(set);
                }
            }
            let rewards: Vec<Vec<f64>> = (0..sets.len())
                .map(|_| (0..n2).map(|_| f64::from(rng.random_range(0..3u8)) / 2.0).collect())
                .collect();
            let fast = spiral_advantages(n1, &sets, &rewards, &PLAIN).unwrap();
            let slow = spiral_loops(n1, &sets, &rewards);
            close(&fast.set_scores, &slow.set_scores, 1e-12);
            close(&fast.set_advantages, &slow.set_advantages, 1e-12);
            close(&fast.search_advantages, &slow.search_advantages, 1e-12);
            assert_eq!(fast.search_counts, slow.search_counts);
            for (x, y) in fast.aggregation_advantages.iter().zip(&slow.aggregation_advantages) {
                close(x, y, 1e-12);
            }
        }
    }

    #[test]
    fn all_subsets_with_an_oracle_aggregator_is_pass_at_k() {
        // f(G) = max r over the set, every k-subset drawn once: SPIRAL's search advantage is the
        // pass@k advantage of Chen et al. (2025).
        let r = [0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let k = 3;
        let mut sets = Vec::new();
        for a in 0..6 {
            for b in a + 1..6 {
                for c in b + 1..6 {
                    sets.push(vec![a, b, c]);
                }
            }
        }
        let rewards: Vec<Vec<f64>> =
            sets.iter().map(|s| vec![s.iter().map(|&i| r[i]).fold(0.0, f64::max)]).collect();
        let a = spiral_advantages(6, &sets, &rewards, &PLAIN).unwrap();
        let want = crate::pass_at_k_advantages(&r, k, false).unwrap();
        close(&a.search_advantages, &want, 1e-12);
    }

    #[test]
    fn edge_cases() {
        // One set: nothing to compare with, all set and search advantages are 0.
        let a = spiral_advantages(3, &[[0usize, 2]], &[[1.0, 0.0]], &PLAIN).unwrap();
        assert_eq!(a.set_advantages, vec![0.0]);
        assert_eq!(a.search_advantages, vec![0.0; 3]);
        assert_eq!(a.aggregation_advantages, vec![vec![0.5, -0.5]]);
        // All aggregations right (or all wrong): no signal anywhere.
        let a =
            spiral_advantages(4, &[[0usize, 1], [2, 3]], &[[1.0; 3], [1.0; 3]], &PLAIN).unwrap();
        assert_eq!(a.search_advantages, vec![0.0; 4]);
        assert!(a.aggregation_advantages.iter().flatten().all(|&x| x == 0.0));
        // N1 = 1, n = 1, N2 = 1.
        let a = spiral_advantages(1, &[[0usize]], &[[0.0]], &PLAIN).unwrap();
        assert_eq!((a.search_advantages, a.search_counts), (vec![0.0], vec![1]));
    }

    #[test]
    fn bad_inputs_are_named() {
        let r2 = [[1.0, 0.0], [0.0, 0.0]];
        let err = |sets: &[Vec<usize>], rewards: &[Vec<f64>]| {
            spiral_advantages(4, sets, rewards, &PLAIN).unwrap_err()
        };
        let rv: Vec<Vec<f64>> = r2.iter().map(|r| r.to_vec()).collect();
        assert_eq!(err(&[], &[]), SetRlError::NoSets);
        assert_eq!(
            err(&[vec![0, 4], vec![1, 2]], &rv),
            SetRlError::IndexOutOfRange { set: 0, index: 4, num_search: 4 }
        );
        assert_eq!(
            err(&[vec![0, 1], vec![2, 2]], &rv),
            SetRlError::DuplicateInSet { set: 1, index: 2 }
        );
        assert_eq!(
            err(&[vec![0, 1], vec![1, 0]], &rv),
            SetRlError::DuplicateSet { first: 0, second: 1 }
        );
        assert!(matches!(err(&[vec![0, 1], vec![2]], &rv), SetRlError::Ragged { row: 1, .. }));
        assert_eq!(err(&[vec![0, 1], vec![]], &rv), SetRlError::EmptySet { set: 1 });
        assert!(matches!(
            err(&[vec![0, 1], vec![2, 3]], &[vec![1.0, 0.0], vec![1.0]]),
            SetRlError::Ragged { row: 1, len: 1, expected: 2, .. }
        ));
        assert!(matches!(
            err(&[vec![0, 1], vec![2, 3]], &[vec![1.0]]),
            SetRlError::LengthMismatch { expected: 2, actual: 1, .. }
        ));
        assert!(matches!(
            err(&[vec![0, 1], vec![2, 3]], &[vec![], vec![]]),
            SetRlError::LengthMismatch { .. }
        ));
        let e = err(&[vec![0, 1], vec![2, 3]], &[vec![1.0], vec![f64::NAN]]);
        assert!(e.to_string().contains("aggregation_rewards[1][0]"), "{e}");
    }

    /// `vec![0.0; num_search]` aborted on `10^12` and panicked ("capacity overflow") on
    /// `usize::MAX` before any check.
    #[test]
    fn absurd_num_search_is_refused_before_allocating() {
        for n1 in [MAX_SEARCH_TRACES + 1, 1_000_000_000_000, usize::MAX] {
            let err = spiral_advantages(n1, &[[0usize]], &[[1.0]], &PLAIN).unwrap_err();
            assert_eq!(
                err,
                SetRlError::TooManySearchTraces { num_search: n1, max: MAX_SEARCH_TRACES }
            );
        }
        let a = spiral_advantages(MAX_SEARCH_TRACES, &[[0usize], [1]], &[[1.0], [0.0]], &PLAIN);
        assert_eq!(a.unwrap().search_advantages.len(), MAX_SEARCH_TRACES);
    }

    /// `[1e308, 1e308, 0]` summed to ∞ and gave NaN advantages.
    #[test]
    fn huge_finite_rewards_give_finite_advantages_or_an_error() {
        let sets = [[0usize], [1], [2]];
        let a = spiral_advantages(3, &sets, &[[1e308], [1e308], [0.0]], &PLAIN).unwrap();
        let scaled: Vec<f64> = a.search_advantages.iter().map(|x| x / 1e308).collect();
        close(&scaled, &[1.0 / 3.0, 1.0 / 3.0, -2.0 / 3.0], 1e-12);
        let a = spiral_advantages(1, &[[0usize]], &[[1e308, 1e308, 0.0]], &PLAIN).unwrap();
        assert!(a.aggregation_advantages[0].iter().all(|x| x.is_finite()), "{a:?}");
        // A trace in many sets with huge advantages: the mean of the advantages, not ∞ / count.
        let sets = [[0usize, 1], [0, 2], [3, 4], [3, 5]];
        let rewards = [[f64::MAX], [f64::MAX], [-f64::MAX], [-f64::MAX]];
        let a = spiral_advantages(6, &sets, &rewards, &PLAIN).unwrap();
        assert_eq!(a.search_advantages[0], f64::MAX);
        assert_eq!(a.search_advantages[3], -f64::MAX);
        let rewards = [[f64::MAX], [-f64::MAX], [-f64::MAX]];
        let err = spiral_advantages(3, &[[0usize], [1], [2]], &rewards, &PLAIN);
        assert!(matches!(err, Err(SetRlError::Overflow { .. })), "{err:?}");
    }

    // ---- Monte Carlo: the search-trace estimator points along the true set-RL gradient. ----

    /// Toy policy: a softmax over three trace "types". The aggregator succeeds with probability
    /// 0.9 when its set holds both type 0 and type 1 (complementary traces), 0.4 with one of them,
    /// 0.1 otherwise. The search policy should learn to produce a *mix*, which no per-trace reward
    /// would teach.
    fn success_probability(types: &[usize]) -> f64 {
        match (types.contains(&0), types.contains(&1)) {
            (true, true) => 0.9,
            (true, false) | (false, true) => 0.4,
            _ => 0.1,
        }
    }

    fn softmax(logits: &[f64]) -> Vec<f64> {
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
        let z: f64 = e.iter().sum();
        e.iter().map(|x| x / z).collect()
    }

    /// `grad_theta log softmax(theta)[t] = onehot(t) - pi`.
    fn score_function(pi: &[f64], t: usize) -> Vec<f64> {
        (0..pi.len()).map(|s| f64::from(u8::from(s == t)) - pi[s]).collect()
    }

    /// Exact `grad E_{G ~ pi^n}[p(G)]` by enumerating all 3^n type tuples.
    fn true_gradient(pi: &[f64], n: usize) -> Vec<f64> {
        let mut grad = vec![0.0; pi.len()];
        for code in 0..pi.len().pow(n as u32) {
            let types: Vec<usize> =
                (0..n).map(|s| code / pi.len().pow(s as u32) % pi.len()).collect();
            let prob: f64 = types.iter().map(|&t| pi[t]).product();
            let p = success_probability(&types);
            for &t in &types {
                for (g, s) in grad.iter_mut().zip(score_function(pi, t)) {
                    *g += prob * p * s;
                }
            }
        }
        grad
    }

    #[test]
    fn search_advantage_is_unbiased_up_to_scale_by_monte_carlo() {
        let pi = softmax(&[0.3, -0.4, 0.6]);
        let (n1, n, n2) = (6, 3, 4);
        // K = 4 fixed distinct sets covering M = 5 of the 6 traces: expected scale M/n - 1 = 2/3.
        let sets = [[0usize, 1, 2], [0, 1, 3], [1, 2, 4], [0, 3, 4]];
        let scale = 5.0 / 3.0 - 1.0;
        let want: Vec<f64> = true_gradient(&pi, n).iter().map(|g| g * scale).collect();

        let mut rng = StdRng::seed_from_u64(2026);
        let samples = 200_000;
        let (mut sum, mut sum_sq) = (vec![0.0; 3], vec![0.0; 3]);
        for _ in 0..samples {
            let types: Vec<usize> = (0..n1)
                .map(|_| {
                    let u: f64 = rng.random();
                    if u < pi[0] {
                        0
                    } else if u < pi[0] + pi[1] {
                        1
                    } else {
                        2
                    }
                })
                .collect();
            let rewards: Vec<Vec<f64>> = sets
                .iter()
                .map(|s| {
                    let p = success_probability(&s.iter().map(|&i| types[i]).collect::<Vec<_>>());
                    (0..n2).map(|_| f64::from(u8::from(rng.random::<f64>() < p))).collect()
                })
                .collect();
            let adv = spiral_advantages(n1, &sets, &rewards, &PLAIN).unwrap().search_advantages;
            let mut g = [0.0; 3];
            for (t, a) in types.iter().zip(&adv) {
                for (gs, s) in g.iter_mut().zip(score_function(&pi, *t)) {
                    *gs += a * s;
                }
            }
            for d in 0..3 {
                sum[d] += g[d];
                sum_sq[d] += g[d] * g[d];
            }
        }
        for d in 0..3 {
            let m = sum[d] / samples as f64;
            let se = ((sum_sq[d] / samples as f64 - m * m) / samples as f64).sqrt();
            // Within 4 standard errors of the truth, and the truth is far from 0 (the test can
            // tell a right gradient from no gradient).
            assert!(
                (m - want[d]).abs() < 4.0 * se,
                "dim {d}: MC {m} vs true {} (se {se})",
                want[d]
            );
            assert!(want[d].abs() > 10.0 * se, "dim {d}: true gradient {} too small", want[d]);
        }
    }
}
