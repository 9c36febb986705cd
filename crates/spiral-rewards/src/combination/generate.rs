//! The seeded combination generator: `parts` congruences `a x + b = c (mod modulus)` with `a`
//! drawn uniformly among the units of the modulus (so each part has exactly one solution) and
//! `b`, `c` uniformly in `0..modulus`.
//!
//! Drawing `c` uniformly rather than the solution makes the solution uniform too (for a fixed
//! unit `a` and offset `b`, `x -> a*x + b` is a bijection of `0..modulus`), so no answer is more
//! likely than another and a guess is right with probability `1/modulus` per part.

use num_integer::Integer;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{CombinationProblem, Congruence};
use crate::distinct::draw_distinct;
use crate::error::RewardError;

/// The accepted numbers of parts.
const PARTS: std::ops::RangeInclusive<usize> = 1..=8;

/// The accepted moduli.
const MODULI: std::ops::RangeInclusive<u32> = 2..=50;

/// How combination problems are drawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CombinationConfig {
    /// Congruences per problem (1 to 8).
    pub parts: usize,
    /// The modulus shared by every part (2 to 50); each answer is one of `modulus` values.
    pub modulus: u32,
    /// How the warm start's traces find each part: 0 states the solution (one substitution per
    /// part); `k >= 1` tries up to `k` values in a random order, each substituted and checked, and
    /// answers the first that checks or the last tried
    /// ([`TrialTraces::trial_trace`](crate::TrialTraces::trial_trace)), so that a part is
    /// solved `k / modulus` of the time and a wrong line shows its failed check. At most
    /// `modulus`. Problems are drawn the same whatever its value.
    pub tries: usize,
}

impl Default for CombinationConfig {
    /// Three parts modulo 10: a single guess solves a part one time in ten, a whole problem one
    /// time in a thousand, so complementary candidates are worth combining.
    fn default() -> Self {
        Self { parts: 3, modulus: 10, tries: 0 }
    }
}

impl CombinationConfig {
    /// Checks the ranges; the error names the field, the value and the accepted range.
    pub fn validate(&self) -> Result<(), RewardError> {
        let fail = |m: String| Err(RewardError::config("combination config", m));
        if !PARTS.contains(&self.parts) {
            return fail(format!(
                "parts must be within {}..={}, got {}",
                PARTS.start(),
                PARTS.end(),
                self.parts
            ));
        }
        if !MODULI.contains(&self.modulus) {
            return fail(format!(
                "modulus must be within {}..={}, got {}",
                MODULI.start(),
                MODULI.end(),
                self.modulus
            ));
        }
        if self.tries > self.modulus as usize {
            return fail(format!(
                "tries must be within 0..=modulus ({}), got {}",
                self.modulus, self.tries
            ));
        }
        Ok(())
    }

    /// Draws one problem.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<CombinationProblem, RewardError> {
        self.validate()?;
        let m = self.modulus;
        let units: Vec<u32> = (1..m).filter(|a| a.gcd(&m) == 1).collect();
        let parts = (0..self.parts)
            .map(|_| Congruence {
                a: units[rng.random_range(0..units.len())],
                b: rng.random_range(0..m),
                c: rng.random_range(0..m),
            })
            .collect();
        Ok(CombinationProblem { modulus: m, parts })
    }

    /// `count` distinct problems from `seed`.
    ///
    /// ```
    /// use spiral_rewards::CombinationConfig;
    ///
    /// let problems = CombinationConfig::default().generate(50, 3).unwrap();
    /// assert_eq!(problems.len(), 50);
    /// assert_eq!(problems, CombinationConfig::default().generate(50, 3).unwrap());
    /// assert!(problems.iter().all(|p| p.solutions().iter().all(Option::is_some)));
    /// ```
    pub fn generate(
        &self,
        count: usize,
        seed: u64,
    ) -> Result<Vec<CombinationProblem>, RewardError> {
        draw_distinct(
            count,
            seed,
            "combination config",
            |rng| self.sample(rng),
            CombinationProblem::dedup_key,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_problems_follow_the_config_and_have_unique_solutions() {
        for cfg in [
            CombinationConfig::default(),
            CombinationConfig { parts: 1, modulus: 2, tries: 0 },
            CombinationConfig { parts: 8, modulus: 50, tries: 0 },
            CombinationConfig { parts: 5, modulus: 7, tries: 0 },
        ] {
            let count = if cfg.modulus == 2 { 4 } else { 300 };
            let problems = cfg.generate(count, 1).unwrap();
            assert_eq!(problems.len(), count);
            let keys: HashSet<_> = problems.iter().map(CombinationProblem::dedup_key).collect();
            assert_eq!(keys.len(), problems.len(), "{cfg:?}");
            for p in &problems {
                assert_eq!(p.modulus, cfg.modulus);
                assert_eq!(p.parts.len(), cfg.parts);
                for part in &p.parts {
                    let m = p.modulus;
                    assert!((1..m).contains(&part.a) && part.a.gcd(&m) == 1, "{part:?}");
                    assert!(part.b < m && part.c < m, "{part:?}");
                    let roots = (0..u64::from(m)).filter(|&x| part.holds(m, x)).count();
                    assert_eq!(roots, 1, "{part:?} mod {m}");
                }
            }
        }
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let cfg = CombinationConfig::default();
        assert_eq!(cfg.generate(30, 5).unwrap(), cfg.generate(30, 5).unwrap());
        assert_ne!(cfg.generate(30, 5).unwrap(), cfg.generate(30, 6).unwrap());
    }

    #[test]
    fn solutions_are_spread_over_the_residues() {
        let problems =
            CombinationConfig { parts: 8, modulus: 10, tries: 0 }.generate(500, 2).unwrap();
        let mut counts = [0usize; 10];
        for p in &problems {
            for x in p.solutions() {
                counts[x.unwrap() as usize] += 1;
            }
        }
        // 4000 draws, 400 expected per residue.
        assert!(counts.iter().all(|&n| (300..500).contains(&n)), "{counts:?}");
    }

    #[test]
    fn out_of_range_configurations_name_key_value_and_range() {
        let err = |c: CombinationConfig| c.generate(1, 0).unwrap_err().to_string();
        let d = CombinationConfig::default();
        assert_eq!(
            err(CombinationConfig { parts: 0, ..d.clone() }),
            "invalid combination config: parts must be within 1..=8, got 0"
        );
        assert_eq!(
            err(CombinationConfig { parts: 9, ..d.clone() }),
            "invalid combination config: parts must be within 1..=8, got 9"
        );
        assert_eq!(
            err(CombinationConfig { modulus: 1, ..d.clone() }),
            "invalid combination config: modulus must be within 2..=50, got 1"
        );
        assert_eq!(
            err(CombinationConfig { modulus: 51, ..d.clone() }),
            "invalid combination config: modulus must be within 2..=50, got 51"
        );
        assert_eq!(
            err(CombinationConfig { modulus: 7, tries: 8, ..d.clone() }),
            "invalid combination config: tries must be within 0..=modulus (7), got 8"
        );
        assert!(CombinationConfig { modulus: 7, tries: 7, ..d.clone() }.validate().is_ok());
        assert!(d.validate().is_ok());
        // Modulus 2, one part: only four problems exist.
        let tiny = CombinationConfig { parts: 1, modulus: 2, tries: 0 };
        let msg = tiny.generate(5, 0).unwrap_err().to_string();
        assert!(msg.contains("only 4 distinct problems"), "{msg}");
        let msg = tiny.generate(usize::MAX, 0).unwrap_err().to_string();
        assert!(msg.contains("distinct"), "{msg}");
    }

    #[test]
    fn config_keys_and_defaults() {
        let cfg: CombinationConfig = serde_json::from_str(r#"{"parts": 5}"#).unwrap();
        assert_eq!(cfg, CombinationConfig { parts: 5, modulus: 10, tries: 0 });
        let cfg: CombinationConfig = serde_json::from_str(r#"{"modulus": 7}"#).unwrap();
        assert_eq!(cfg, CombinationConfig { parts: 3, modulus: 7, tries: 0 });
        let err = serde_json::from_str::<CombinationConfig>(r#"{"part": 5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `part`"), "{err}");
    }
}
