//! Trial-and-error traces for combination problems, and the aggregation answer assembled part by
//! part from candidates.
//!
//! A direct trace (`CombinationProblem::solution_trace`) states each part's solution; a model
//! trained on it learns to write a value whose residue is `c` whatever `x` it chose, so its wrong
//! lines state false arithmetic (`3*7+4=26=6 x1=7` would read `...=5`), and nobody reading the
//! trace can tell a wrong line from a right one without redoing the multiplication. A trial trace
//! makes the check part of the trace: each part tries values in a random order, substituting each
//! one honestly and writing the residue wanted beside the one found,
//! `a*x+b=<value>=<value mod m>:<c>`, and stops at the first whose residue is `c`; when `tries`
//! values have failed it answers the last one tried. So a model trained on trial traces
//! solves a part with probability `tries / m` before any RL, and a wrong answer line shows its own
//! failed check (its last residue is not `c`):
//!
//! ```text
//! 3x+4=5 (mod 10)
//! 7x+1=2 (mod 10)
//! 3*2+4=10=0:5 3*7+4=25=5:5 x1=7             <- 2 fails, 7 checks: x1=7
//! 7*0+1=1=1:2 7*5+1=36=6:2 7*8+1=57=7:2 x2=8  <- three fails: x2=8, visibly wrong
//! ```
//!
//! The order is uniform, so the traces carry no knowledge of modular inverses: how often the warm
//! start solves a part is set by `tries`, not by how long it trains, and RL has a proposal
//! distribution to improve.
//!
//! The aggregation answer over candidates ([`TrialTraces::assemble`]) gives, for each part
//! some candidate answers correctly, the try that checks (`3*7+4=25=5:5 x1=7`, the candidate's
//! failed tries left out: a short copy of the one try whose residues agree); a part no candidate
//! solves is searched again among the values no candidate tried. This is what "complementary
//! candidates can be combined" means for this task: the answer can be right when no single
//! candidate is.

use rand::Rng;
use rand::seq::SliceRandom;

use super::verify::answer_line;
use super::{CombinationProblem, Congruence};
use crate::trials::TrialTraces;

impl TrialTraces for CombinationProblem {
    /// The answer an aggregator should give over `candidates` (module docs): for each part that
    /// some candidate answers correctly, the try that checks and the answer, else a fresh trial
    /// line of at most `tries` values none of the candidates tried for it; with `tries = 0`, the
    /// direct solution trace. `None` when there are no parts or some part has no unique
    /// solution.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use spiral_rewards::{CombinationProblem, CombinationReward, Congruence, Reward, TrialTraces};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// let first = "3*1+4=7=7:5 3*7+4=25=5:5 x1=7\n7*5+1=36=6:2 x2=5"; // part 1 right
    /// let second = "3*1+4=7=7:5 x1=1\n7*3+1=22=2:2 x2=3"; // part 2 right
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let answer = p.assemble(&[first, second], 2, &mut rng).unwrap();
    /// assert_eq!(answer, "3*7+4=25=5:5 x1=7\n7*3+1=22=2:2 x2=3");
    /// // A trial trace is the answer over no candidates; trying every value always solves.
    /// let sure = p.trial_trace(10, &mut rng).unwrap();
    /// assert!(CombinationReward::default().score(&p, &sure).is_correct());
    /// assert_eq!(p.trial_trace(0, &mut rng), p.solution_trace());
    /// ```
    fn assemble<R: Rng + ?Sized>(
        &self,
        candidates: &[&str],
        tries: usize,
        rng: &mut R,
    ) -> Option<String> {
        if tries == 0 {
            return self.solution_trace();
        }
        if self.parts.is_empty() {
            return None;
        }
        let mut lines = Vec::with_capacity(self.parts.len());
        for (i, part) in self.parts.iter().enumerate() {
            let solution = part.solution(self.modulus)?;
            let label = i + 1;
            // A part has exactly one solution, so a candidate that answers it correctly found
            // `solution`.
            let solved = candidates.iter().flat_map(|c| c.lines()).any(|line| {
                answer_line(line)
                    .is_some_and(|(l, x)| l.parse() == Ok(label) && x.parse() == Ok(solution))
            });
            let line = if solved {
                // The try that checks, and the answer: what the candidate found, without the
                // failed tries before it.
                trial(part, solution, self.modulus) + &answer(label, solution)
            } else {
                let tried = tried_values(candidates, label);
                let untried: Vec<u32> =
                    (0..self.modulus).filter(|x| *x == solution || !tried.contains(x)).collect();
                trial_line(part, self.modulus, label, tries, untried, rng)
            };
            lines.push(line);
        }
        Some(lines.join("\n"))
    }
}

/// `a*x+b=<value>=<value mod m>` for `x`: the substitution, honestly computed.
fn substitution(part: &Congruence, x: u32, modulus: u32) -> String {
    let value = u64::from(part.a) * u64::from(x) + u64::from(part.b);
    format!("{}*{x}+{}={value}={}", part.a, part.b, value % u64::from(modulus))
}

/// A direct trace's line for part `label` (`CombinationProblem::solution_trace`): the
/// substitution of `x` and the answer, `3*7+4=25=5 x1=7`.
pub(super) fn direct_line(part: &Congruence, x: u32, modulus: u32, label: usize) -> String {
    substitution(part, x, modulus) + &answer(label, x)
}

/// One try of a trial line, `a*x+b=<value>=<residue>:<c>`: the residue wanted beside the residue
/// found, so that whether to stop is a comparison of neighbouring numbers, not of a number with
/// one far back in the prompt.
fn trial(part: &Congruence, x: u32, modulus: u32) -> String {
    format!("{}:{}", substitution(part, x, modulus), part.c)
}

/// ` x<label>=<x>`: the end of an answer line.
fn answer(label: usize, x: u32) -> String {
    format!(" x{label}={x}")
}

/// A part's trial line: `candidates` (the values it may try, the solution among them) in a random
/// order, substituted one by one until one checks or `tries` have failed; answers the last.
fn trial_line<R: Rng + ?Sized>(
    part: &Congruence,
    modulus: u32,
    label: usize,
    tries: usize,
    mut candidates: Vec<u32>,
    rng: &mut R,
) -> String {
    candidates.shuffle(rng);
    let mut line = String::new();
    let mut last = candidates[0];
    for &x in candidates.iter().take(tries) {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&trial(part, x, modulus));
        last = x;
        if part.holds(modulus, u64::from(x)) {
            break;
        }
    }
    line + &answer(label, last)
}

/// The values the candidates' answer lines for part `label` substituted (`a*<x>+...` words).
fn tried_values(candidates: &[&str], label: usize) -> Vec<u32> {
    let lines = candidates.iter().flat_map(|c| c.lines());
    let answering = lines.filter(|l| answer_line(l).is_some_and(|(l, _)| l.parse() == Ok(label)));
    answering
        .flat_map(str::split_whitespace)
        .filter_map(|word| {
            let (_, rest) = word.split_once('*')?;
            let (x, _) = rest.split_once('+')?;
            // At most 9 digits: values beyond the largest modulus are simply not excluded.
            (x.len() <= 9 && x.bytes().all(|b| b.is_ascii_digit())).then(|| x.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::CombinationReward;
    use crate::combination::CombinationConfig;
    use crate::reward::Reward;

    fn problems() -> Vec<CombinationProblem> {
        CombinationConfig { parts: 3, modulus: 10, tries: 0 }.generate(200, 4).unwrap()
    }

    /// Every try is honest arithmetic, the line stops at the first value that checks, never
    /// repeats a value, and answers the last value tried.
    #[test]
    fn trial_lines_substitute_honestly_and_stop_at_the_first_check() {
        let mut rng = StdRng::seed_from_u64(1);
        for p in problems() {
            for tries in 1..=10 {
                let trace = p.trial_trace(tries, &mut rng).unwrap();
                assert_eq!(trace.lines().count(), 3, "{trace}");
                for ((line, part), label) in trace.lines().zip(&p.parts).zip(1..) {
                    let words: Vec<&str> = line.split(' ').collect();
                    let (answer, work) = words.split_last().unwrap();
                    assert!(!work.is_empty() && work.len() <= tries, "{line}");
                    let mut seen = Vec::new();
                    for (k, w) in work.iter().enumerate() {
                        let n: Vec<u64> =
                            w.split(['*', '+', '=', ':']).map(|n| n.parse().unwrap()).collect();
                        assert_eq!(n[5], u64::from(part.c), "{line}");
                        assert_eq!((n[0], n[2]), (u64::from(part.a), u64::from(part.b)), "{line}");
                        assert_eq!(n[0] * n[1] + n[2], n[3], "{line}");
                        assert_eq!(n[3] % 10, n[4], "{line}");
                        let checks = n[4] == u64::from(part.c);
                        assert_eq!(checks, k + 1 == work.len() && checks, "{line}");
                        assert!(!seen.contains(&n[1]), "{line}");
                        seen.push(n[1]);
                    }
                    assert_eq!(*answer, format!("x{label}={}", seen.last().unwrap()), "{line}");
                }
            }
        }
    }

    /// A part is solved as often as `tries / m` says: the order carries no knowledge.
    #[test]
    fn a_part_is_solved_with_probability_tries_over_the_modulus() {
        let mut rng = StdRng::seed_from_u64(2);
        let p = problems();
        for tries in [1, 3, 5] {
            let mut solved = 0;
            let mut total = 0;
            for _ in 0..10 {
                for q in &p {
                    let trace = q.trial_trace(tries, &mut rng).unwrap();
                    solved += q.correct_parts(&trace);
                    total += q.parts.len();
                }
            }
            let rate = solved as f64 / total as f64;
            let expected = tries as f64 / 10.0;
            // 6,000 parts: the standard error is below 0.007.
            assert!((rate - expected).abs() < 0.03, "tries {tries}: {rate} vs {expected}");
        }
    }

    /// Assembled answers take each part from a candidate that solved it, and otherwise search
    /// only among values no candidate tried: so they are right whenever every part is solved by
    /// some candidate, and never repeat a failed try.
    #[test]
    fn assembly_copies_solved_parts_and_searches_the_untried_values() {
        let reward = CombinationReward::default();
        let mut rng = StdRng::seed_from_u64(3);
        let mut better = 0;
        for p in problems() {
            let candidates: Vec<String> =
                (0..4).map(|_| p.trial_trace(3, &mut rng).unwrap()).collect();
            let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let answer = p.assemble(&refs, 3, &mut rng).unwrap();
            for (label, line) in (1..).zip(answer.lines()) {
                // Its first try is a candidate's checking try.
                let first = line.split(' ').next().unwrap();
                let from_candidate =
                    refs.iter().flat_map(|c| c.split_whitespace()).any(|w| w == first);
                let x = p.parts[label - 1].solution(10).unwrap();
                let solved_before = refs.iter().flat_map(|c| c.lines()).any(|l| {
                    answer_line(l)
                        .is_some_and(|(l, v)| l == label.to_string() && v == x.to_string())
                });
                if solved_before {
                    assert!(from_candidate, "{answer}\n{candidates:?}");
                } else {
                    let tried = tried_values(&refs, label);
                    for w in line.split(' ').filter(|w| w.contains('*')) {
                        let v: u32 = w.split(['*', '+']).nth(1).unwrap().parse().unwrap();
                        assert!(v == x || !tried.contains(&v), "{line} retries {v}: {tried:?}");
                    }
                }
            }
            let any_right = refs.iter().any(|c| reward.score(&p, c).is_correct());
            if any_right {
                assert!(reward.score(&p, &answer).is_correct(), "{answer}\n{candidates:?}");
            }
            better += usize::from(!any_right && reward.score(&p, &answer).is_correct());
        }
        // Combining parts, and searching where the candidates did not, solves problems that no
        // candidate solved.
        assert!(better > 20, "{better}");
    }

    #[test]
    fn no_parts_or_no_unique_solution_gives_none() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(CombinationProblem::new(10, vec![]).trial_trace(3, &mut rng), None);
        let broken = CombinationProblem::new(10, vec![Congruence { a: 2, b: 0, c: 4 }]);
        assert_eq!(broken.trial_trace(3, &mut rng), None);
        assert_eq!(broken.assemble(&["x1=2"], 3, &mut rng), None);
    }

    #[test]
    fn tried_values_read_the_answer_line_of_the_part_only() {
        let c = "3*2+4=10=0 3*9+4=31=1 x1=9\n7*4+1=29=9 x2=4\nnoise 1*5+0=5";
        assert_eq!(tried_values(&[c], 1), [2, 9]);
        assert_eq!(tried_values(&[c], 2), [4]);
        assert_eq!(tried_values(&[c, "7*12345678901+1=1=1 x2=1"], 2), [4]);
        assert!(tried_values(&[c], 3).is_empty());
    }
}
