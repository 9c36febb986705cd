//! Drawing the sets of traces that aggregation prompts are built from.
//!
//! - **SPIRAL training** (Ibn Hamid et al., 2026, Figure 2): from N1 search traces, K distinct sets
//!   G_1..G_K of n distinct traces each, uniformly (a trace may sit in several sets; no two sets
//!   are equal). [`draw_distinct_sets`] draws by rejection (a uniform n-subset, redrawn while it
//!   repeats an earlier one), which costs O(K n) when K is at most half of C(N1, n); closer to
//!   C(N1, n) it enumerates all n-subsets (then fewer than 2K) and picks K of them. Both give a
//!   uniform K-subset of the n-subsets, in random order.
//! - **Recursive self-aggregation** (Venkatraman et al., 2025): each round, N sets of K distinct
//!   members of the population, one per aggregation. [`SetSampling::Independent`] draws each set
//!   on its own, as the RSA paper does; [`SetSampling::Balanced`] uses every member equally often.

use std::collections::HashSet;

use rand::Rng;
use rand::seq::SliceRandom;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::error::AggregationError;

/// `C(n, k)`, or `None` when it overflows `u128`.
///
/// ```
/// assert_eq!(spiral_aggregation::binomial(8, 4), Some(70));
/// assert_eq!(spiral_aggregation::binomial(3, 5), Some(0));
/// assert_eq!(spiral_aggregation::binomial(400, 200), None);
/// ```
pub fn binomial(n: usize, k: usize) -> Option<u128> {
    if k > n {
        return Some(0);
    }
    let k = k.min(n - k) as u128;
    let mut c: u128 = 1;
    for i in 0..k {
        // c * (n - i) is divisible by i + 1 since c * (n - i) / (i + 1) = C(n, i + 1); divide
        // by the gcd first so the intermediate product overflows as late as possible.
        let (num, den) = (n as u128 - i, i + 1);
        let g = gcd(c, den);
        c = (c / g).checked_mul(num / (den / g))?;
    }
    Some(c)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// K = `count` distinct sets of `size` distinct indices in `0..pool`, uniformly (module docs);
/// each set sorted ascending, the sets in random order. Errors unless `1 <= size <= pool` and
/// `count <= C(pool, size)`.
///
/// ```
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // The paper's setting: K = 4 sets of n = 4 out of N1 = 8 search traces.
/// let sets = spiral_aggregation::draw_distinct_sets(8, 4, 4, &mut rng).unwrap();
/// assert_eq!(sets.len(), 4);
/// assert!(sets.iter().all(|s| s.len() == 4 && s.windows(2).all(|w| w[0] < w[1])));
/// ```
pub fn draw_distinct_sets<R: Rng + ?Sized>(
    pool: usize,
    size: usize,
    count: usize,
    rng: &mut R,
) -> Result<Vec<Vec<usize>>, AggregationError> {
    check_size("set size", size, pool)?;
    let available = binomial(pool, size);
    if let Some(available) = available.filter(|&a| count as u128 > a) {
        return Err(AggregationError::TooManySets { requested: count, size, pool, available });
    }
    // Rejection is cheap while at least half of all sets are still unseen.
    let by_rejection = available.is_none_or(|a| 2 * count as u128 <= a);
    if by_rejection {
        let mut seen = HashSet::with_capacity(count);
        let mut sets = Vec::with_capacity(count);
        while sets.len() < count {
            let mut set = sample(rng, pool, size).into_vec();
            set.sort_unstable();
            if seen.insert(set.clone()) {
                sets.push(set);
            }
        }
        return Ok(sets);
    }
    let all = all_subsets(pool, size);
    Ok(sample(rng, all.len(), count).into_iter().map(|i| all[i].clone()).collect())
}

/// Every `size`-subset of `0..pool`, in lexicographic order.
fn all_subsets(pool: usize, size: usize) -> Vec<Vec<usize>> {
    Subsets::new(pool, size).collect()
}

/// The `size`-subsets of `0..pool` in lexicographic order, each sorted ascending (C(pool, size)
/// of them; none when `size > pool`).
///
/// ```
/// use spiral_aggregation::Subsets;
///
/// let all: Vec<Vec<usize>> = Subsets::new(4, 2).collect();
/// assert_eq!(all, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
/// ```
#[derive(Clone, Debug)]
pub struct Subsets {
    pool: usize,
    next: Option<Vec<usize>>,
}

impl Subsets {
    /// The subsets of `size` out of `pool`.
    pub fn new(pool: usize, size: usize) -> Self {
        Self { pool, next: (size <= pool).then(|| (0..size).collect()) }
    }
}

impl Iterator for Subsets {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let current = self.next.take()?;
        let size = current.len();
        // The rightmost position that can still move right.
        if let Some(i) = (0..size).rev().find(|&i| current[i] < self.pool - size + i) {
            let mut next = current.clone();
            next[i] += 1;
            for j in i + 1..size {
                next[j] = next[j - 1] + 1;
            }
            self.next = Some(next);
        }
        Some(current)
    }
}

/// How RSA draws each round's sets from the population.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetSampling {
    /// Every set is K distinct members drawn uniformly, independently of the other sets (the RSA
    /// paper).
    #[default]
    Independent,
    /// Members are laid out in a random cyclic order and set i takes the members at K distinct
    /// random offsets from position i: every set still has K distinct members and each member
    /// is used exactly K times when as many sets as members are drawn.
    Balanced,
}

/// `count` sets of `size` distinct members of a population of `population` (indices), for one RSA
/// round; members within a set in random order. Errors unless `1 <= size <= population`.
///
/// ```
/// use rand::SeedableRng;
/// use spiral_aggregation::{SetSampling, draw_rsa_sets};
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let sets = draw_rsa_sets(16, 4, 16, SetSampling::Balanced, &mut rng).unwrap();
/// let mut uses = [0; 16];
/// sets.iter().flatten().for_each(|&m| uses[m] += 1);
/// assert_eq!(uses, [4; 16]);
/// ```
pub fn draw_rsa_sets<R: Rng + ?Sized>(
    population: usize,
    size: usize,
    count: usize,
    sampling: SetSampling,
    rng: &mut R,
) -> Result<Vec<Vec<usize>>, AggregationError> {
    check_size("RSA set size k", size, population)?;
    match sampling {
        SetSampling::Independent => {
            Ok((0..count).map(|_| sample(rng, population, size).into_vec()).collect())
        }
        SetSampling::Balanced => {
            let mut members: Vec<usize> = (0..population).collect();
            members.shuffle(rng);
            let offsets = sample(rng, population, size).into_vec();
            Ok((0..count)
                .map(|i| offsets.iter().map(|&o| members[(i + o) % population]).collect())
                .collect())
        }
    }
}

fn check_size(what: &'static str, size: usize, pool: usize) -> Result<(), AggregationError> {
    if size == 0 || size > pool {
        return Err(AggregationError::config(
            what,
            format!("must be between 1 and the {pool} traces to draw from, got {size}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn binomial_against_pascal() {
        let mut row = vec![1u128];
        for n in 0..=120usize {
            for k in 0..=n + 1 {
                assert_eq!(binomial(n, k), Some(if k <= n { row[k] } else { 0 }), "C({n}, {k})");
            }
            let next: Vec<u128> = (0..=n + 1)
                .map(|k| if k == 0 || k == n + 1 { 1 } else { row[k - 1] + row[k] })
                .collect();
            row = next;
        }
        assert_eq!(binomial(10_000, 1), Some(10_000));
        assert_eq!(binomial(10_000, 9_999), Some(10_000));
        assert_eq!(binomial(1000, 500), None);
    }

    #[test]
    fn all_subsets_are_lexicographic_and_complete() {
        assert_eq!(all_subsets(4, 2), [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
        assert_eq!(all_subsets(3, 3), [[0, 1, 2]]);
        assert_eq!(all_subsets(9, 4).len(), 126);
        assert_eq!(all_subsets(3, 0), [Vec::<usize>::new()]);
        assert!(all_subsets(2, 3).is_empty());
    }

    /// Draws `count` sets `trials` times and checks each n-subset's frequency against `count / C`
    /// with a chi-square statistic (one degree of freedom per subset; the bound is far above its
    /// mean, `C - 1`, and far below what a biased sampler produces).
    fn check_uniform(pool: usize, size: usize, count: usize) {
        let trials = 20_000;
        let mut rng = StdRng::seed_from_u64(pool as u64 * 31 + count as u64);
        let mut freq: HashMap<Vec<usize>, usize> = HashMap::new();
        for _ in 0..trials {
            let sets = draw_distinct_sets(pool, size, count, &mut rng).unwrap();
            let distinct: HashSet<&Vec<usize>> = sets.iter().collect();
            assert_eq!(distinct.len(), count, "sets repeat");
            for s in &sets {
                assert!(s.len() == size && s.windows(2).all(|w| w[0] < w[1]) && s[size - 1] < pool);
                *freq.entry(s.clone()).or_default() += 1;
            }
        }
        let c = binomial(pool, size).unwrap() as usize;
        assert_eq!(freq.len(), c, "some subset never drawn");
        // Each subset is in a draw with probability count / C: a binomial count per subset.
        let p = count as f64 / c as f64;
        let expected = trials as f64 * p;
        let var = trials as f64 * p * (1.0 - p);
        let chi2: f64 = freq.values().map(|&f| (f as f64 - expected).powi(2) / var).sum();
        assert!(chi2 < 2.0 * c as f64 + 30.0, "chi2 {chi2} over {c} subsets");
    }

    #[test]
    fn distinct_sets_are_uniform_by_rejection() {
        check_uniform(6, 2, 3); // 3 of 15
        check_uniform(8, 4, 4); // the paper's setting, 4 of 70
    }

    #[test]
    fn distinct_sets_are_uniform_by_enumeration() {
        check_uniform(5, 2, 8); // 8 of 10
        check_uniform(6, 3, 15); // 15 of 20
    }

    #[test]
    fn distinct_sets_from_a_large_pool() {
        let mut rng = StdRng::seed_from_u64(1);
        let sets = draw_distinct_sets(100_000, 8, 1000, &mut rng).unwrap();
        assert_eq!(sets.iter().collect::<HashSet<_>>().len(), 1000);
        // All C(1000, 1) = 1000 sets: by enumeration, every singleton once.
        let sets = draw_distinct_sets(1000, 1, 1000, &mut rng).unwrap();
        assert_eq!(sets.iter().collect::<HashSet<_>>().len(), 1000);
        // C(400, 200) overflows u128: rejection, never an error.
        assert_eq!(draw_distinct_sets(400, 200, 3, &mut rng).unwrap().len(), 3);
    }

    #[test]
    fn impossible_draws_are_errors() {
        let mut rng = StdRng::seed_from_u64(0);
        let err = draw_distinct_sets(4, 2, 7, &mut rng).unwrap_err();
        assert!(matches!(err, AggregationError::TooManySets { available: 6, .. }));
        assert!(draw_distinct_sets(4, 5, 1, &mut rng).is_err());
        assert!(draw_distinct_sets(4, 0, 1, &mut rng).is_err());
        assert_eq!(draw_distinct_sets(4, 2, 0, &mut rng).unwrap().len(), 0);
        let err = draw_rsa_sets(3, 4, 3, SetSampling::Independent, &mut rng).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid RSA set size k: must be between 1 and the 3 traces to draw from, got 4"
        );
    }

    #[test]
    fn rsa_sets_hold_distinct_members_used_evenly() {
        let mut rng = StdRng::seed_from_u64(5);
        for sampling in [SetSampling::Independent, SetSampling::Balanced] {
            let mut uses = [0usize; 8];
            for _ in 0..2000 {
                let sets = draw_rsa_sets(8, 3, 8, sampling, &mut rng).unwrap();
                assert_eq!(sets.len(), 8);
                for s in &sets {
                    assert_eq!(s.iter().collect::<HashSet<_>>().len(), 3, "{sampling:?} {s:?}");
                    s.iter().for_each(|&m| uses[m] += 1);
                }
                if sampling == SetSampling::Balanced {
                    let mut per_draw = [0usize; 8];
                    sets.iter().flatten().for_each(|&m| per_draw[m] += 1);
                    assert_eq!(per_draw, [3; 8]);
                }
            }
            // Expected 2000 * 8 * 3 / 8 = 6000 uses per member.
            assert!(uses.iter().all(|&u| (5700..6300).contains(&u)), "{sampling:?} {uses:?}");
        }
        // K = N: every set is the whole population.
        let sets = draw_rsa_sets(4, 4, 2, SetSampling::Independent, &mut rng).unwrap();
        assert!(sets.iter().all(|s| s.iter().collect::<HashSet<_>>().len() == 4));
    }
}
