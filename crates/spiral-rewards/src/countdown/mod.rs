//! Countdown: reach a target from a handful of numbers, each used exactly once, with `+ - * /`.
//!
//! The task of TinyZero and of the SPIRAL paper's synthetic experiments, with its prompt format
//! and a solution-trace generator for warm-start data. The trace is built for a small model to
//! learn: one line per operation, `left op right = result` with no spaces, the running result
//! first, then the whole expression boxed, every intermediate result in parentheses:
//!
//! ```text
//! Use 75 25 2 to make 100.          <- compact prompt
//! 75-25=50                          <- trace
//! 50*2=100
//! \boxed{(75-25)*2}
//! ```
//!
//! Each line depends only on the previous one and one new number, and the boxed expression is
//! the lines read back with each result replaced by its parenthesised line. Trial-and-error
//! traces (`trials`), where each line is one try checked against the target, are the other kind
//! a warm start can teach.

mod generate;
mod solve;
mod trials;
mod verify;

use serde::{Deserialize, Serialize};

use crate::prompt::PromptStyle;

pub use generate::CountdownConfig;
pub use solve::{MAX_SOLVER_NUMBERS, Op, Solution, Step, solve};
pub use verify::CountdownReward;

/// A Countdown problem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountdownProblem {
    /// The numbers to use, each exactly once, in the order shown.
    pub numbers: Vec<u64>,
    /// The value to reach.
    pub target: u64,
}

impl CountdownProblem {
    /// A problem from its numbers and target.
    pub fn new(numbers: Vec<u64>, target: u64) -> Self {
        Self { numbers, target }
    }

    /// The prompt shown to the policy.
    ///
    /// ```
    /// use spiral_rewards::{CountdownProblem, PromptStyle};
    ///
    /// let p = CountdownProblem::new(vec![75, 25, 2], 100);
    /// assert_eq!(p.prompt(PromptStyle::Compact), "Use 75 25 2 to make 100.");
    /// assert!(p.prompt(PromptStyle::Instruct).contains("\\boxed{}"));
    /// ```
    pub fn prompt(&self, style: PromptStyle) -> String {
        let numbers =
            |sep: &str| self.numbers.iter().map(u64::to_string).collect::<Vec<_>>().join(sep);
        match style {
            PromptStyle::Compact => format!("Use {} to make {}.", numbers(" "), self.target),
            PromptStyle::Instruct => format!(
                "Using the numbers [{}], create an expression that equals {}. Use each number \
                 exactly once, with +, -, *, / and parentheses. Write one operation per line, \
                 then give the final expression in \\boxed{{}}.",
                numbers(", "),
                self.target
            ),
        }
    }

    /// A solution, if there is one (see [`solve()`]).
    pub fn solve(&self) -> Option<Solution> {
        solve(&self.numbers, self.target)
    }

    /// The solution trace used as warm-start data (format in the module docs), if solvable.
    ///
    /// ```
    /// use spiral_rewards::CountdownProblem;
    ///
    /// let p = CountdownProblem::new(vec![75, 25, 2], 100);
    /// assert_eq!(p.solution_trace().unwrap(), "75-25=50\n50*2=100\n\\boxed{(75-25)*2}");
    /// ```
    pub fn solution_trace(&self) -> Option<String> {
        let solution = self.solve()?;
        let mut trace = String::new();
        for s in &solution.steps {
            trace.push_str(&format!("{}{}{}={}\n", s.left, s.op.symbol(), s.right, s.result));
        }
        trace.push_str(&format!("\\boxed{{{}}}", solution.expression));
        Some(trace)
    }

    /// The key under which two problems are duplicates: sorted numbers and target.
    pub(crate) fn dedup_key(&self) -> String {
        let mut numbers = self.numbers.clone();
        numbers.sort_unstable();
        format!("{numbers:?}->{}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::Reward;

    #[test]
    fn traces_verify_with_the_reward() {
        let reward = CountdownReward::default();
        for p in CountdownConfig::default().generate(200, 11).unwrap() {
            let trace = p.solution_trace().unwrap();
            let scored = reward.score(&p, &trace);
            assert!(scored.is_correct(), "{p:?}\n{trace}\n{:?}", scored.failure);
            assert_eq!(trace.lines().count(), p.numbers.len());
        }
    }

    #[test]
    fn tree_solutions_have_regular_traces() {
        // No chain reaches 11 from these; the tree solution has the same line format.
        let p = CountdownProblem::new(vec![2, 2, 2, 6], 11);
        let trace = p.solution_trace().unwrap();
        assert_eq!(trace.lines().count(), 4);
        assert!(trace.lines().take(3).all(|l| l.contains('=') && !l.contains(' ')));
        assert!(trace.ends_with("\\boxed{(2*6)-(2/2)}"));
        assert!(CountdownReward::default().score(&p, &trace).is_correct());
    }

    #[test]
    fn unsolvable_problems_have_no_trace() {
        assert_eq!(CountdownProblem::new(vec![1, 1], 5).solution_trace(), None);
    }

    #[test]
    fn dedup_key_ignores_order() {
        let a = CountdownProblem::new(vec![1, 2, 3], 6);
        let b = CountdownProblem::new(vec![3, 1, 2], 6);
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_ne!(a.dedup_key(), CountdownProblem::new(vec![1, 2, 3], 7).dedup_key());
    }
}
