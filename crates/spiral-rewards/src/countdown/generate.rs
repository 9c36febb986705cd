//! The seeded Countdown generator: draws numbers, then a target among those the numbers can reach
//! (each used once, positive-integer intermediates), so every problem is solvable by
//! construction and [`solve()`](super::solve()) finds a solution for it.
//!
//! Follows TinyZero's Countdown data (3-4 numbers, a target to reach), but picks the target
//! uniformly among the reachable values in range rather than from a random expression, which would
//! favour the targets that many expressions reach.

use std::collections::{BTreeSet, HashSet};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::CountdownProblem;
use super::solve::{MAX_SOLVER_NUMBERS, Op, combine};
use super::trials::MAX_TRIES;
use crate::distinct::draw_distinct;
use crate::error::RewardError;

/// Draws of numbers tried for one problem before the configuration is declared impossible.
const MAX_DRAWS: usize = 1000;

/// How Countdown problems are drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownConfig {
    /// Fewest numbers per problem (at least 2).
    pub min_numbers: usize,
    /// Most numbers per problem (at most 6).
    pub max_numbers: usize,
    /// Smallest number (at least 1).
    pub min_number: u64,
    /// Largest number.
    pub max_number: u64,
    /// Smallest target.
    pub min_target: u64,
    /// Largest target.
    pub max_target: u64,
    /// How the warm start's traces find a solution: 0 writes the solver's solution; `k >= 1`
    /// makes up to `k` random tries, each computed honestly and its result written beside the
    /// target, and boxes the first that reaches it or the last made
    /// ([`TrialTraces::trial_trace`](crate::TrialTraces::trial_trace)), so that how often a
    /// trace is right is set by `k` and a wrong trace shows its failed check. At most 64.
    /// Problems are drawn the same whatever its value.
    pub tries: usize,
}

impl Default for CountdownConfig {
    /// 3-4 numbers from 1-20 and a target from 10-100: short traces a small model can learn.
    fn default() -> Self {
        Self {
            min_numbers: 3,
            max_numbers: 4,
            min_number: 1,
            max_number: 20,
            min_target: 10,
            max_target: 100,
            tries: 0,
        }
    }
}

impl CountdownConfig {
    /// Checks the ranges; the error names the field and the accepted values.
    pub fn validate(&self) -> Result<(), RewardError> {
        let fail = |m: String| Err(RewardError::config("countdown config", m));
        if self.min_numbers < 2 || self.max_numbers > MAX_SOLVER_NUMBERS {
            return fail(format!(
                "numbers per problem must be within 2..={MAX_SOLVER_NUMBERS}, got {}..={}",
                self.min_numbers, self.max_numbers
            ));
        }
        if self.min_numbers > self.max_numbers {
            return fail(format!(
                "min_numbers ({}) is above max_numbers ({})",
                self.min_numbers, self.max_numbers
            ));
        }
        if self.min_number < 1 || self.min_number > self.max_number || self.max_number > 1_000_000 {
            return fail(format!(
                "numbers must satisfy 1 <= min_number <= max_number <= 1000000, got {}..={}",
                self.min_number, self.max_number
            ));
        }
        if self.min_target < 1
            || self.min_target > self.max_target
            || self.max_target > 1_000_000_000
        {
            return fail(format!(
                "targets must satisfy 1 <= min_target <= max_target <= 1000000000, got {}..={}",
                self.min_target, self.max_target
            ));
        }
        if self.tries > MAX_TRIES {
            return fail(format!("tries must be within 0..={MAX_TRIES}, got {}", self.tries));
        }
        Ok(())
    }

    /// Draws one solvable problem.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<CountdownProblem, RewardError> {
        self.validate()?;
        for _ in 0..MAX_DRAWS {
            let count = rng.random_range(self.min_numbers..=self.max_numbers);
            let numbers: Vec<u64> =
                (0..count).map(|_| rng.random_range(self.min_number..=self.max_number)).collect();
            let targets = self.reachable_targets(&numbers);
            if targets.is_empty() {
                continue;
            }
            let target = targets[rng.random_range(0..targets.len())];
            return Ok(CountdownProblem { numbers, target });
        }
        Err(RewardError::config(
            "countdown config",
            format!(
                "no target in {}..={} is reachable after {MAX_DRAWS} draws of numbers; widen the target range",
                self.min_target, self.max_target
            ),
        ))
    }

    /// `count` distinct problems (distinct as multisets of numbers with their target) from `seed`.
    ///
    /// ```
    /// use spiral_rewards::CountdownConfig;
    ///
    /// let problems = CountdownConfig::default().generate(100, 7).unwrap();
    /// assert_eq!(problems.len(), 100);
    /// assert_eq!(problems, CountdownConfig::default().generate(100, 7).unwrap());
    /// assert!(problems.iter().all(|p| p.solve().is_some()));
    /// ```
    pub fn generate(&self, count: usize, seed: u64) -> Result<Vec<CountdownProblem>, RewardError> {
        draw_distinct(
            count,
            seed,
            "countdown config",
            |rng| self.sample(rng),
            CountdownProblem::dedup_key,
        )
    }

    /// The targets in range that `numbers` reach, sorted (so draws are reproducible).
    fn reachable_targets(&self, numbers: &[u64]) -> Vec<u64> {
        // Values above this bound are dropped from the table: fewer targets may be found, but each
        // one found is reachable, which is all the generator needs.
        let cap = (self.max_target.max(self.max_number).saturating_mul(self.max_number))
            .min(1_000_000_000) as i64;
        let values: Vec<i64> = numbers.iter().map(|&n| n as i64).collect();
        reachable(&values, cap)
            .into_iter()
            .filter_map(|v| u64::try_from(v).ok())
            .filter(|v| (self.min_target..=self.max_target).contains(v))
            .collect()
    }
}

/// All values (up to `cap`) of expressions using every number once, by dynamic programming over
/// subsets: the values of a subset combine the values of its two-part splits.
fn reachable(numbers: &[i64], cap: i64) -> BTreeSet<i64> {
    let n = numbers.len();
    let full = (1usize << n) - 1;
    let mut table: Vec<HashSet<i64>> = vec![HashSet::new(); full + 1];
    for (i, &v) in numbers.iter().enumerate() {
        table[1 << i].insert(v);
    }
    for mask in 1..=full {
        if mask.count_ones() < 2 {
            continue;
        }
        let mut values = HashSet::new();
        // Each unordered split {sub, rest} once: sub holds the lowest set bit.
        let low = mask & mask.wrapping_neg();
        let mut sub = (mask - 1) & mask;
        while sub > 0 {
            if sub & low != 0 {
                let rest = mask ^ sub;
                for &a in &table[sub] {
                    for &b in &table[rest] {
                        for op in Op::ALL {
                            for (x, y) in [(a, b), (b, a)] {
                                if let Some(v) = combine(x, op, y).filter(|&v| v <= cap) {
                                    values.insert(v);
                                }
                            }
                        }
                    }
                }
            }
            sub = (sub - 1) & mask;
        }
        table[mask] = values;
    }
    table[full].iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_values_of_small_sets() {
        let r = reachable(&[2, 3], 1000);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), [1, 5, 6]);
        let r = reachable(&[4, 2], 1000);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), [2, 6, 8]);
        assert!(reachable(&[75, 25, 2], 1000).contains(&100));
    }

    #[test]
    fn every_generated_problem_is_solvable_and_in_range() {
        let cfg = CountdownConfig::default();
        let problems = cfg.generate(300, 1).unwrap();
        for p in &problems {
            assert!((3..=4).contains(&p.numbers.len()));
            assert!(p.numbers.iter().all(|n| (1..=20).contains(n)));
            assert!((10..=100).contains(&p.target));
            let s = p.solve().unwrap_or_else(|| panic!("unsolvable {p:?}"));
            assert_eq!(s.steps.len(), p.numbers.len() - 1);
        }
        let keys: HashSet<_> = problems.iter().map(CountdownProblem::dedup_key).collect();
        assert_eq!(keys.len(), problems.len());
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let cfg = CountdownConfig::default();
        assert_eq!(cfg.generate(20, 5).unwrap(), cfg.generate(20, 5).unwrap());
        assert_ne!(cfg.generate(20, 5).unwrap(), cfg.generate(20, 6).unwrap());
    }

    #[test]
    fn larger_configurations_work() {
        let cfg = CountdownConfig {
            min_numbers: 5,
            max_numbers: 6,
            max_number: 50,
            max_target: 500,
            ..CountdownConfig::default()
        };
        for p in cfg.generate(3, 2).unwrap() {
            assert!(p.solve().is_some());
        }
    }

    #[test]
    fn impossible_configurations_are_errors() {
        let bad = |cfg: CountdownConfig| cfg.generate(1, 0).unwrap_err().to_string();
        let d = CountdownConfig::default();
        assert!(bad(CountdownConfig { min_numbers: 1, ..d.clone() }).contains("2..=6"));
        assert!(bad(CountdownConfig { max_numbers: 7, ..d.clone() }).contains("2..=6"));
        assert!(
            bad(CountdownConfig { min_numbers: 4, max_numbers: 3, ..d.clone() })
                .contains("min_numbers")
        );
        assert!(bad(CountdownConfig { min_number: 0, ..d.clone() }).contains("min_number"));
        assert!(bad(CountdownConfig { tries: 65, ..d.clone() }).contains("tries"));
        assert!(
            bad(CountdownConfig { min_target: 50, max_target: 10, ..d.clone() })
                .contains("min_target")
        );
        // Two ones reach only 1 and 2.
        let tiny = CountdownConfig {
            min_numbers: 2,
            max_numbers: 2,
            min_number: 1,
            max_number: 1,
            min_target: 3,
            max_target: 3,
            tries: 0,
        };
        assert!(bad(tiny).contains("reachable"));
        let few = CountdownConfig {
            min_numbers: 2,
            max_numbers: 2,
            max_number: 2,
            min_target: 1,
            max_target: 4,
            ..d
        };
        assert!(few.generate(50, 0).unwrap_err().to_string().contains("distinct"));
    }

    /// `Vec::with_capacity(count)` aborted (or panicked with "capacity overflow") before the first
    /// draw; now the draws stop once no new problem comes.
    #[test]
    fn absurd_counts_are_errors_not_aborts() {
        let few = CountdownConfig {
            min_numbers: 2,
            max_numbers: 2,
            max_number: 2,
            min_target: 1,
            max_target: 4,
            ..CountdownConfig::default()
        };
        for count in [usize::MAX, 1 << 60] {
            let err = few.generate(count, 0).unwrap_err().to_string();
            assert!(err.contains("distinct") && err.contains(&count.to_string()), "{err}");
        }
    }
}
