//! Trial-and-error traces for Countdown, and the aggregation answer that copies a candidate's
//! checking try.
//!
//! A solution trace (`CountdownProblem::solution_trace`) always ends on the target; a model
//! trained on it learns to end on the target whatever it computed before, so its wrong traces
//! state false arithmetic (`3+11=15` to reach 15), and nobody reading one can tell it from a right
//! one without redoing every step. A trial trace makes the check part of the trace: each line is
//! one try, a chain of operations using every number once (the running result with one new
//! number per step), computed honestly, its result written beside the target,
//! `<result>:<target>`, and ` ok` after a try whose result is the target. The trace stops at the
//! first try that reaches the target and boxes its expression; when `tries` tries have failed, it
//! boxes the last one:
//!
//! ```text
//! Use 8 5 12 to make 36.
//! 8+5=13 13*12=156:36          <- fails
//! 8-5=3 3*12=36:36 ok          <- checks
//! \boxed{(8-5)*12}
//! ```
//!
//! The verdict word puts the comparison of two numbers in one place, right after them, where the
//! search decides whether to stop; and it makes a checking try a line an aggregator can find by
//! one word among its candidates' lines rather than by comparing every line's numbers (a model
//! taught without it stopped after 69% of its tries that checked and copied one of its
//! candidates' checking tries 19% of the time).
//!
//! Each try is drawn at random: an order of the numbers and, at each step, one of the operations
//! that keeps the running result a positive integer (`-` and `/` with the new number on either
//! side). So the traces carry no knowledge of which tries reach the target: how often a warm
//! start solves a problem is set by `tries` (four tries solve about one problem in five of three
//! numbers from 1-12 and targets from 10-60), and RL has a proposal distribution to improve. With
//! three numbers every expression is such a chain; with more, only chains are tried.
//!
//! The aggregation answer over candidates ([`TrialTraces::assemble`]) copies a try of some
//! candidate that checks (every step honest, every number used once, the result the target) and
//! boxes it; when no candidate has one, it searches again among the tries no candidate wrote.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::CountdownProblem;
use super::solve::{Item, Op, Step, to_value};
use crate::trials::TrialTraces;

/// What follows a try whose result is the target.
const CHECKS: &str = " ok";

/// The most tries a trace may make (`task.countdown.tries`).
pub const MAX_TRIES: usize = 64;

/// Draws made for each try a trace keeps: problems with repeated numbers have few distinct
/// tries (`2 2 2` has a handful), so the search ends when no new one comes.
const DRAWS_PER_TRY: usize = 50;

/// One try: its steps, and the expression and value they compute.
#[derive(Clone, Debug)]
struct Try {
    steps: Vec<Step>,
    result: Item,
}

impl Try {
    /// `8-5=3 3*12=36:36 ok`: the steps, then the target beside the result, so that whether to
    /// stop is a comparison of neighbouring numbers, and its verdict when it checks.
    fn line(&self, target: i64) -> String {
        let steps: Vec<String> = self.steps.iter().map(step_text).collect();
        let verdict = if self.result.value == target { CHECKS } else { "" };
        format!("{}:{target}{verdict}", steps.join(" "))
    }
}

fn step_text(s: &Step) -> String {
    format!("{}{}{}={}", s.left, s.op.symbol(), s.right, s.result)
}

impl TrialTraces for CountdownProblem {
    /// The answer an aggregator should give over `candidates` (module docs): a candidate's try
    /// that checks, boxed; else a fresh trial trace of at most `tries` tries that no candidate
    /// wrote. With `tries = 0`, the solution trace. `None` for fewer than two numbers, or a
    /// number or target the solver does not accept.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use spiral_rewards::{CountdownProblem, CountdownReward, Reward, TrialTraces};
    ///
    /// let p = CountdownProblem::new(vec![8, 5, 12], 36);
    /// let wrong = "8+5=13 13*12=156:36\n\\boxed{(8+5)*12}";
    /// let right = "12+8=20 20-5=15:36\n8-5=3 3*12=36:36 ok\n\\boxed{(8-5)*12}";
    /// let bent = "8+12=20 20+5=36:36 ok\n\\boxed{(8+12)+5}"; // 20+5 is not 36
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let answer = p.assemble(&[wrong, bent, right], 4, &mut rng).unwrap();
    /// assert_eq!(answer, "8-5=3 3*12=36:36 ok\n\\boxed{(8-5)*12}");
    /// // A trial trace is the answer over no candidates; with every try allowed, it solves.
    /// let sure = p.trial_trace(64, &mut rng).unwrap();
    /// assert!(CountdownReward::default().score(&p, &sure).is_correct());
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
        let target = to_value(self.target)?;
        let numbers: Vec<i64> = self.numbers.iter().map(|&n| to_value(n)).collect::<Option<_>>()?;
        if numbers.len() < 2 {
            return None;
        }
        let lines = candidates.iter().flat_map(|c| c.lines());
        let written: Vec<Try> = lines.filter_map(|l| read_try(l, &numbers)).collect();
        if let Some(checking) = written.iter().find(|t| t.result.value == target) {
            return Some(boxed(std::slice::from_ref(checking), target));
        }
        let mut made: Vec<Try> = Vec::new();
        for _ in 0..tries * DRAWS_PER_TRY {
            if made.len() == tries {
                break;
            }
            let new = random_try(&numbers, rng)?;
            if written.iter().chain(&made).any(|t| t.steps == new.steps) {
                continue;
            }
            let checks = new.result.value == target;
            made.push(new);
            if checks {
                break;
            }
        }
        if made.is_empty() {
            // The candidates wrote every try there is: try one of them again.
            made.push(random_try(&numbers, rng)?);
        }
        Some(boxed(&made, target))
    }
}

/// The tries one per line, then the last one's expression boxed.
fn boxed(tries: &[Try], target: i64) -> String {
    let mut out: Vec<String> = tries.iter().map(|t| t.line(target)).collect();
    let last = tries.last().expect("at least one try");
    out.push(format!("\\boxed{{{}}}", last.result.expr));
    out.join("\n")
}

/// A random try over `numbers` (at least two): a random order, and at each step a random
/// operation among those that keep the running result a positive integer.
fn random_try<R: Rng + ?Sized>(numbers: &[i64], rng: &mut R) -> Option<Try> {
    let mut items: Vec<Item> = numbers.iter().map(|&v| Item::number(v)).collect();
    items.shuffle(rng);
    let mut acc = items[0].clone();
    let mut steps = Vec::with_capacity(items.len() - 1);
    for (i, next) in items[1..].iter().enumerate() {
        let mut options = Vec::with_capacity(6);
        for op in Op::ALL {
            // `5+8` and `8+5` are one try: a first commutative step puts the larger number first.
            let swap = i == 0 && matches!(op, Op::Add | Op::Mul) && acc.value < next.value;
            options.push(if swap { next.apply(op, &acc) } else { acc.apply(op, next) });
            if matches!(op, Op::Sub | Op::Div) {
                options.push(next.apply(op, &acc));
            }
        }
        let options: Vec<(Item, Step)> = options.into_iter().flatten().collect();
        let (item, step) = options.choose(rng)?.clone();
        steps.push(step);
        acc = item;
    }
    Some(Try { steps, result: acc })
}

/// `line` read as a try over `numbers` when it is one: a chain of honest steps that uses every
/// number exactly once, its first step two numbers, each next one the previous result and a
/// new number, ending `:<target>` and maybe its verdict (neither is checked here: a try that
/// fails is one too, and whether it checks is recomputed).
fn read_try(line: &str, numbers: &[i64]) -> Option<Try> {
    let (work, _target) = line.trim().rsplit_once(':')?;
    let mut unused = numbers.to_vec();
    let mut take = |v: i64| -> Option<Item> {
        let at = unused.iter().position(|&n| n == v)?;
        unused.swap_remove(at);
        Some(Item::number(v))
    };
    let mut acc: Option<Item> = None;
    let mut steps = Vec::new();
    for word in work.split(' ') {
        let (left, op, right, result) = read_step(word)?;
        let (item, step) = match acc {
            None => take(left)?.apply(op, &take(right)?)?,
            Some(ref a) if a.value == left => a.apply(op, &take(right)?)?,
            Some(ref a) if a.value == right => take(left)?.apply(op, a)?,
            Some(_) => return None,
        };
        if step.result != result {
            return None;
        }
        steps.push(step);
        acc = Some(item);
    }
    let result = acc?;
    unused.is_empty().then_some(Try { steps, result })
}

/// `12-5=7` as its numbers and operation.
fn read_step(word: &str) -> Option<(i64, Op, i64, i64)> {
    let (expression, result) = word.split_once('=')?;
    // Numbers are positive, so the operator is the first non-digit after the first character.
    let at = expression.find(|c: char| !c.is_ascii_digit())?;
    let op = Op::ALL.into_iter().find(|op| expression[at..].starts_with(op.symbol()))?;
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())?
    };
    Some((number(&expression[..at])?, op, number(&expression[at + 1..])?, number(result)?))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::CountdownReward;
    use crate::countdown::CountdownConfig;
    use crate::reward::Reward;

    fn problems() -> Vec<CountdownProblem> {
        let three = CountdownConfig {
            min_numbers: 3,
            max_numbers: 3,
            max_number: 12,
            max_target: 60,
            ..CountdownConfig::default()
        };
        three.generate(200, 4).unwrap()
    }

    fn numbers(p: &CountdownProblem) -> Vec<i64> {
        p.numbers.iter().map(|&n| n as i64).collect()
    }

    /// Every try is an honest chain over all the numbers, the trace stops at the first try that
    /// checks, never repeats a try, and boxes the last one; it is right exactly when that try
    /// checks.
    #[test]
    fn trial_traces_are_honest_and_stop_at_the_first_check() {
        let reward = CountdownReward::default();
        let mut rng = StdRng::seed_from_u64(1);
        for p in problems() {
            for tries in [1, 3, 8] {
                let trace = p.trial_trace(tries, &mut rng).unwrap();
                let lines: Vec<&str> = trace.lines().collect();
                let (last, work) = lines.split_last().unwrap();
                assert!(!work.is_empty() && work.len() <= tries, "{trace}");
                let read: Vec<Try> =
                    work.iter().map(|l| read_try(l, &numbers(&p)).expect(l)).collect();
                for (k, (t, line)) in read.iter().zip(work).enumerate() {
                    let checks = t.result.value == p.target as i64;
                    let verdict = if checks { CHECKS } else { "" };
                    assert!(line.ends_with(&format!(":{}{verdict}", p.target)), "{trace}");
                    assert_eq!(checks, checks && k + 1 == read.len(), "{trace}");
                    assert!(read[..k].iter().all(|u| u.steps != t.steps), "{trace}");
                }
                let final_try = read.last().unwrap();
                // `2/2=1` after `9-7=2` reads as `(9-7)/2` whichever side the trace put it.
                let mirrored = final_try.steps.iter().any(|s| s.left == s.right);
                let expected = format!("\\boxed{{{}}}", final_try.result.expr);
                assert!(*last == expected || mirrored, "{trace}");
                let checks = final_try.result.value == p.target as i64;
                assert_eq!(reward.score(&p, &trace).is_correct(), checks, "{trace}");
            }
        }
    }

    /// More tries solve more problems, and enough of them solve every three-number problem
    /// (each has a chain that reaches its target). Four tries solve about one problem in five
    /// (the module docs' figure; 1,000 traces, standard error 0.013).
    #[test]
    fn more_tries_solve_more_problems() {
        let reward = CountdownReward::default();
        let mut rng = StdRng::seed_from_u64(2);
        let p = problems();
        let mut rate = |tries: usize| {
            let solved = (0..5)
                .flat_map(|_| &p)
                .filter(|q| reward.score(q, &q.trial_trace(tries, &mut rng).unwrap()).is_correct())
                .count();
            solved as f64 / (5 * p.len()) as f64
        };
        let (one, four, all) = (rate(1), rate(4), rate(MAX_TRIES));
        assert!(0.0 < one && one < four && four < all, "{one} {four} {all}");
        assert!(all > 0.99, "{all}");
        assert!((0.17..0.27).contains(&four), "{four}");
    }

    /// The answer copies a candidate's checking try when there is one, so it is right whenever
    /// some candidate is; otherwise it searches only tries no candidate wrote.
    #[test]
    fn assembly_copies_a_checking_try_and_searches_the_unwritten_ones() {
        let reward = CountdownReward::default();
        let mut rng = StdRng::seed_from_u64(3);
        let mut better = 0;
        for p in problems() {
            let candidates: Vec<String> =
                (0..4).map(|_| p.trial_trace(3, &mut rng).unwrap()).collect();
            let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
            let answer = p.assemble(&refs, 3, &mut rng).unwrap();
            let any_right = refs.iter().any(|c| reward.score(&p, c).is_correct());
            let written: Vec<Vec<Step>> = refs
                .iter()
                .flat_map(|c| c.lines())
                .filter_map(|l| read_try(l, &numbers(&p)))
                .map(|t| t.steps)
                .collect();
            let tries: Vec<Try> =
                answer.lines().filter_map(|l| read_try(l, &numbers(&p))).collect();
            if any_right {
                assert!(reward.score(&p, &answer).is_correct(), "{answer}\n{candidates:?}");
                assert_eq!(tries.len(), 1, "{answer}");
                assert!(written.contains(&tries[0].steps), "{answer}");
            } else {
                assert!(tries.iter().all(|t| !written.contains(&t.steps)), "{answer}");
                better += usize::from(reward.score(&p, &answer).is_correct());
            }
        }
        // Searching where the candidates did not solves problems that none of them solved.
        assert!(better > 10, "{better}");
    }

    /// A line is a try only if every step is honest, chains from the previous result and the
    /// numbers are the problem's, each once.
    #[test]
    fn dishonest_or_foreign_lines_are_not_tries() {
        let n = [8, 5, 12];
        assert!(read_try("8-5=3 3*12=36:36 ok", &n).is_some());
        assert!(read_try("8-5=3 3*12=36:36", &n).is_some(), "without its verdict");
        assert!(read_try("12-5=7 8*7=56:36", &n).is_some(), "the result on the right");
        assert!(read_try("8+5=13 13*12=150:36", &n).is_none(), "false arithmetic");
        assert!(read_try("8-5=3 3*11=33:36", &n).is_none(), "a number not given");
        assert!(read_try("8-5=3:36", &n).is_none(), "a number unused");
        assert!(read_try("8-5=3 8*12=96:36", &n).is_none(), "not a chain");
        assert!(read_try("5-8=0 0*12=0:36", &n).is_none(), "a negative intermediate");
        assert!(read_try("8-5=3 3*12=36", &n).is_none(), "no target");
        assert!(read_try("8-5=3 3*99999999999999999999=1:36", &n).is_none());
        assert!(read_try("", &n).is_none() && read_try(":36", &n).is_none());
    }

    #[test]
    fn unusable_problems_give_none() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(CountdownProblem::new(vec![7], 7).trial_trace(3, &mut rng), None);
        assert_eq!(CountdownProblem::new(vec![0, 7], 7).trial_trace(3, &mut rng), None);
    }

    /// `2 2 2` has few distinct tries: the search ends when no new one comes instead of looping.
    #[test]
    fn few_distinct_tries_end_the_search() {
        let mut rng = StdRng::seed_from_u64(0);
        let p = CountdownProblem::new(vec![2, 2, 2], 7);
        let trace = p.trial_trace(MAX_TRIES, &mut rng).unwrap();
        assert!(trace.lines().count() < 20, "{trace}");
    }
}
