//! Combination: solve several independent linear congruences, one answer line per congruence.
//!
//! A task whose candidate solutions can be combined: each problem is `parts` independent
//! sub-problems "find x in 0..m with (a*x + b) mod m = c", `a` coprime to `m` so that each has
//! exactly one solution. A candidate may get some parts right and others wrong, and an aggregator
//! that reads several candidates can assemble a fully correct answer from their right parts.
//! Checking a part is easy (substitute and reduce); finding it takes search, since nothing in the
//! format shows how to invert `a`.
//!
//! The compact prompt has one line per part, `a x + b = c (mod m)` without spaces. The trace has
//! one line per part, in order: the substitution `a*x+b`, its value, the value reduced mod `m`
//! (which must be `c`), then the answer `x<i>=<x>` for part `i` (1-based) last on the line:
//!
//! ```text
//! 3x+4=5 (mod 10)                   <- compact prompt, part 1
//! 7x+1=2 (mod 10)                   <- part 2
//! 3*7+4=25=5 x1=7                   <- trace: 3*7+4 = 25, and 25 mod 10 = 5, so x1 = 7
//! 7*3+1=22=2 x2=3
//! ```
//!
//! The verifier reads *answer lines*: lines that end with `x<i>=<digits>` (whitespace allowed
//! around the `=`, after the `x` and at the line's ends; the `x` not preceded by a letter, digit
//! or `_`). Whatever else a line holds is not graded, and other lines are ignored. Part `i` is
//! correct when exactly one answer line names `x<i>`, every answer line before it names a smaller
//! part and every one after it a larger one, and its value `x` satisfies `x < m` and
//! `(a*x + b) mod m = c`. The reward is 1 when every part is correct and no answer line names a
//! part that does not exist; [`CombinationProblem::correct_parts`] counts the correct parts.
//! Reading is one pass over the response with memory bounded by the number of parts.

mod generate;
mod trials;
mod verify;

use serde::{Deserialize, Serialize};

use crate::prompt::PromptStyle;

pub use generate::CombinationConfig;
pub use verify::CombinationReward;

/// One part: find `x` in `0..modulus` with `(a*x + b) mod modulus = c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Congruence {
    /// The coefficient of `x`; coprime to the modulus in a well-formed problem.
    pub a: u32,
    /// The constant added.
    pub b: u32,
    /// The residue to reach, in `0..modulus`.
    pub c: u32,
}

impl Congruence {
    /// Whether `x` satisfies the congruence modulo `modulus`: `x < modulus` and
    /// `(a*x + b) mod modulus = c`. False for every `x` when `modulus` is 0.
    pub fn holds(&self, modulus: u32, x: u64) -> bool {
        if x >= u64::from(modulus) {
            return false;
        }
        // `x < modulus <= u32::MAX`, so the product and sum fit in `u64`.
        let value = u64::from(self.a) * x + u64::from(self.b);
        value % u64::from(modulus) == u64::from(self.c)
    }

    /// The unique solution in `0..modulus`, or `None` when the congruence does not have exactly
    /// one (`modulus < 2`, `a` not coprime to it, or `c >= modulus`).
    pub fn solution(&self, modulus: u32) -> Option<u32> {
        if modulus < 2 || self.c >= modulus {
            return None;
        }
        let m = i64::from(modulus);
        let inverse = inverse_mod(i64::from(self.a) % m, m)?;
        let rhs = (i64::from(self.c) - i64::from(self.b) % m).rem_euclid(m);
        // Both factors are below `m <= u32::MAX`: the product fits in `i128`, not in `i64`.
        let x = i128::from(rhs) * i128::from(inverse) % i128::from(m);
        u32::try_from(x).ok()
    }

    /// The congruence as a prompt line: `3x+4=5 (mod 10)`.
    pub fn line(&self, modulus: u32) -> String {
        format!("{}x+{}={} (mod {modulus})", self.a, self.b, self.c)
    }
}

/// The inverse of `a` modulo `m` (`0 <= a < m`, `m >= 2`) by the extended Euclidean algorithm;
/// `None` when `gcd(a, m) != 1`.
fn inverse_mod(a: i64, m: i64) -> Option<i64> {
    let (mut r0, mut r1) = (m, a);
    let (mut t0, mut t1) = (0i64, 1i64);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    (r0 == 1).then(|| t0.rem_euclid(m))
}

/// A combination problem: independent congruences sharing one modulus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CombinationProblem {
    /// The modulus of every part.
    pub modulus: u32,
    /// The parts, in order; part `i` (1-based) is answered by `x<i>`.
    pub parts: Vec<Congruence>,
}

impl CombinationProblem {
    /// A problem from its modulus and parts.
    pub fn new(modulus: u32, parts: Vec<Congruence>) -> Self {
        Self { modulus, parts }
    }

    /// The prompt shown to the policy.
    ///
    /// ```
    /// use spiral_rewards::{CombinationProblem, Congruence, PromptStyle};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// assert_eq!(p.prompt(PromptStyle::Compact), "3x+4=5 (mod 10)\n7x+1=2 (mod 10)");
    /// assert!(p.prompt(PromptStyle::Instruct).contains("x1=..., x2=..."));
    /// ```
    pub fn prompt(&self, style: PromptStyle) -> String {
        let lines = self.lines();
        match style {
            PromptStyle::Compact => lines,
            PromptStyle::Instruct => {
                let n = self.parts.len();
                let labels: Vec<String> = (1..=n).map(|i| format!("x{i}=...")).collect();
                format!(
                    "Solve each of these {n} congruence{s} for the integer x with 0 <= x <= {top}; \
                     each has exactly one solution.\n{lines}\nCheck each value by substituting \
                     it. Then answer with one line per congruence, in order, the line for the \
                     i-th congruence ending with xi=<its solution> ({labels}).",
                    s = if n == 1 { "" } else { "s" },
                    top = self.modulus.saturating_sub(1),
                    labels = labels.join(", "),
                )
            }
        }
    }

    /// The solution of every part, in order (see [`Congruence::solution`]).
    pub fn solutions(&self) -> Vec<Option<u32>> {
        self.parts.iter().map(|p| p.solution(self.modulus)).collect()
    }

    /// The solution trace used as warm-start data (format in the module docs); `None` when there
    /// are no parts or some part has no unique solution.
    ///
    /// ```
    /// use spiral_rewards::{CombinationProblem, Congruence};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// assert_eq!(p.solution_trace().unwrap(), "3*7+4=25=5 x1=7\n7*3+1=22=2 x2=3");
    /// ```
    pub fn solution_trace(&self) -> Option<String> {
        if self.parts.is_empty() {
            return None;
        }
        let mut lines = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter().enumerate() {
            lines.push(trials::direct_line(
                part,
                part.solution(self.modulus)?,
                self.modulus,
                i + 1,
            ));
        }
        Some(lines.join("\n"))
    }

    /// How many parts `response` answers correctly (module docs), from 0 to the number of parts.
    ///
    /// ```
    /// use spiral_rewards::{CombinationProblem, Congruence};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// assert_eq!(p.correct_parts("x1=7\nx2=3"), 2);
    /// assert_eq!(p.correct_parts("x1=7\nx2=4"), 1);
    /// assert_eq!(p.correct_parts("x2=3\nx1=7"), 0);
    /// ```
    pub fn correct_parts(&self, response: &str) -> usize {
        verify::read(self, response).right.iter().filter(|&&right| right).count()
    }

    /// Whether `response` answers each part correctly, in part order: what an aggregator can
    /// take from a candidate that solves some parts and not others.
    ///
    /// ```
    /// use spiral_rewards::{CombinationProblem, Congruence};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// assert_eq!(p.parts_answered("x1=7\nx2=4"), [true, false]);
    /// assert_eq!(p.parts_answered("x2=3"), [false, true]);
    /// ```
    pub fn parts_answered(&self, response: &str) -> Vec<bool> {
        verify::read(self, response).right
    }

    /// The answers as text, `x1=7 x2=3`, with `?` for a part without a unique solution.
    pub(crate) fn reference(&self) -> String {
        let answers: Vec<String> = self
            .solutions()
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Some(x) => format!("x{}={x}", i + 1),
                None => format!("x{}=?", i + 1),
            })
            .collect();
        answers.join(" ")
    }

    /// The key under which two problems are duplicates: the compact prompt.
    pub(crate) fn dedup_key(&self) -> String {
        self.lines()
    }

    /// Parses the compact prompt's text back into a problem: one congruence per line (or
    /// separated by `;`), `a x + b = c (mod m)` with optional spaces, every line with the same
    /// modulus. Every part must have a unique solution.
    pub(crate) fn from_text(text: &str) -> Result<Self, String> {
        let mut modulus = None;
        let mut parts = Vec::new();
        for line in text.split(['\n', ';']).map(str::trim).filter(|l| !l.is_empty()) {
            let (part, m) = parse_line(line)
                .ok_or_else(|| format!("`{line}` is not a congruence such as `3x+4=5 (mod 10)`"))?;
            if *modulus.get_or_insert(m) != m {
                return Err(format!("`{line}` has another modulus than the lines before it"));
            }
            if part.solution(m).is_none() {
                return Err(format!(
                    "`{line}` does not have exactly one solution (a must be coprime to the \
                     modulus, c below it)"
                ));
            }
            parts.push(part);
        }
        let modulus = modulus.ok_or("no congruence given")?;
        Ok(Self { modulus, parts })
    }

    /// The prompt lines, one per part.
    fn lines(&self) -> String {
        let lines: Vec<String> = self.parts.iter().map(|p| p.line(self.modulus)).collect();
        lines.join("\n")
    }
}

/// `3x+4=5 (mod 10)`, spaces anywhere between the tokens.
fn parse_line(line: &str) -> Option<(Congruence, u32)> {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    let (a, rest) = compact.split_once("x+")?;
    let (b, rest) = rest.split_once('=')?;
    let (c, rest) = rest.split_once("(mod")?;
    let m = rest.strip_suffix(')')?;
    let number = |s: &str| -> Option<u32> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    Some((Congruence { a: number(a)?, b: number(b)?, c: number(c)? }, number(m)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::Reward;

    fn two() -> CombinationProblem {
        CombinationProblem::new(
            10,
            vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }],
        )
    }

    #[test]
    fn solutions_are_the_unique_roots() {
        for m in 2..=50u32 {
            for a in 0..m {
                for b in [0, 1, m - 1] {
                    for c in 0..m {
                        let part = Congruence { a, b, c };
                        let roots: Vec<u64> =
                            (0..u64::from(m)).filter(|&x| part.holds(m, x)).collect();
                        match part.solution(m) {
                            Some(x) => assert_eq!(roots, [u64::from(x)], "{part:?} mod {m}"),
                            None => assert_ne!(roots.len(), 1, "{part:?} mod {m}"),
                        }
                    }
                }
            }
        }
        let part = Congruence { a: 3, b: 4, c: 5 };
        assert_eq!(part.solution(0), None);
        assert_eq!(part.solution(1), None);
        assert!(!part.holds(0, 0));
        assert!(!part.holds(10, 17));
        // Extreme stored values neither overflow nor panic.
        let big = Congruence { a: u32::MAX - 1, b: u32::MAX, c: 0 };
        assert!(big.solution(u32::MAX).is_some());
        assert!(!big.holds(u32::MAX, u64::MAX));
    }

    #[test]
    fn traces_verify_with_the_reward() {
        let reward = CombinationReward::default();
        for cfg in [
            CombinationConfig::default(),
            CombinationConfig { parts: 8, modulus: 50, tries: 0 },
            CombinationConfig { parts: 1, modulus: 2, tries: 0 },
        ] {
            let count = if cfg.modulus == 2 { 4 } else { 200 };
            for p in cfg.generate(count, 3).unwrap() {
                let trace = p.solution_trace().unwrap();
                assert!(reward.score(&p, &trace).is_correct(), "{p:?}\n{trace}");
                assert_eq!(p.correct_parts(&trace), cfg.parts);
                assert_eq!(trace.lines().count(), cfg.parts);
                // Every line recomputes: a*x+b, its value, the value mod m = c.
                for (line, part) in trace.lines().zip(&p.parts) {
                    let (work, _) = line.split_once(' ').unwrap();
                    let nums: Vec<u64> =
                        work.split(['*', '+', '=']).map(|n| n.parse().unwrap()).collect();
                    assert_eq!(nums[0] * nums[1] + nums[2], nums[3], "{line}");
                    assert_eq!(nums[3] % u64::from(p.modulus), u64::from(part.c), "{line}");
                }
            }
        }
    }

    #[test]
    fn text_round_trips_through_the_compact_prompt() {
        let p = two();
        let text = p.prompt(PromptStyle::Compact);
        assert_eq!(CombinationProblem::from_text(&text).unwrap(), p);
        let spaced = " 3 x + 4 = 5 ( mod 10 ) ; 7x+1=2 (mod 10)\n\n";
        assert_eq!(CombinationProblem::from_text(spaced).unwrap(), p);
        for (bad, why) in [
            ("", "no congruence"),
            ("3x+4=5", "not a congruence"),
            ("3x-4=5 (mod 10)", "not a congruence"),
            ("3x+4=5 (mod 10)\n7x+1=2 (mod 11)", "another modulus"),
            ("2x+4=5 (mod 10)", "exactly one solution"),
            ("3x+4=15 (mod 10)", "exactly one solution"),
            ("3x+4=5 (mod 99999999999)", "not a congruence"),
        ] {
            let err = CombinationProblem::from_text(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn reference_and_instruct_prompt() {
        let p = two();
        assert_eq!(p.reference(), "x1=7 x2=3");
        let broken = CombinationProblem::new(10, vec![Congruence { a: 2, b: 0, c: 4 }]);
        assert_eq!(broken.reference(), "x1=?");
        assert_eq!(broken.solution_trace(), None);
        let instruct = p.prompt(PromptStyle::Instruct);
        assert!(instruct.contains("these 2 congruences"), "{instruct}");
        assert!(instruct.contains("0 <= x <= 9"), "{instruct}");
        assert!(instruct.contains("3x+4=5 (mod 10)\n7x+1=2 (mod 10)\n"), "{instruct}");
    }
}
