//! The reward interface: (problem, response text) -> a score in [0, 1], the extracted answer and,
//! when the score is not full, why.
//!
//! Follows the shape of verl's `reward_score` functions and nanochat's `Task.reward`: a reward is
//! a pure function of text, and the evaluation grader *is* the reward, so what the policy is
//! trained on and what the report measures cannot drift apart.

use std::fmt;

use serde::Serialize;

/// A verifiable reward: scores one response to one problem.
///
/// Implementations are pure (the same inputs give the same output), never panic, and bound their
/// time and memory whatever the response holds.
///
/// ```
/// use spiral_rewards::{MathProblem, MathReward, Reward};
///
/// let problem = MathProblem::new("What is 1/2 + 1/4?", "\\frac{3}{4}");
/// let scored = MathReward::default().score(&problem, "1/2 + 1/4 = 3/4, so \\boxed{0.75}.");
/// assert_eq!(scored.reward, 1.0);
/// assert_eq!(scored.extracted.as_deref(), Some("0.75"));
/// ```
pub trait Reward {
    /// What the reward checks a response against (reference answer, Countdown numbers, ...).
    type Problem: ?Sized;

    /// Scores `response` as an answer to `problem`.
    fn score(&self, problem: &Self::Problem, response: &str) -> Scored;
}

impl<R: Reward + ?Sized> Reward for &R {
    type Problem = R::Problem;

    fn score(&self, problem: &Self::Problem, response: &str) -> Scored {
        (**self).score(problem, response)
    }
}

impl<R: Reward + ?Sized> Reward for Box<R> {
    type Problem = R::Problem;

    fn score(&self, problem: &Self::Problem, response: &str) -> Scored {
        (**self).score(problem, response)
    }
}

/// The result of scoring one response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// The reward, in [0, 1].
    pub reward: f64,
    /// The final answer found in the response, as written there (trimmed), if any.
    pub extracted: Option<String>,
    /// Why the response did not get full reward; `None` when it is correct.
    pub failure: Option<Failure>,
}

impl Scored {
    /// A correct response: reward 1.
    pub fn correct(extracted: impl Into<String>) -> Self {
        Self { reward: 1.0, extracted: Some(extracted.into()), failure: None }
    }

    /// An incorrect response with reward `reward` (0, or a format score for a well-formed but
    /// wrong answer); `reward` is clamped into [0, 1] and a NaN becomes 0.
    pub fn incorrect(reward: f64, extracted: Option<String>, failure: Failure) -> Self {
        let reward = if reward.is_nan() { 0.0 } else { reward.clamp(0.0, 1.0) };
        Self { reward, extracted, failure: Some(failure) }
    }

    /// Whether the response was judged correct.
    pub fn is_correct(&self) -> bool {
        self.failure.is_none()
    }
}

/// Why a response did not get full reward.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// No final answer was found (no `\boxed{...}` and no "the answer is ..." line).
    NoAnswer,
    /// The extracted answer is longer than the grader accepts.
    AnswerTooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The largest length graded.
        limit: usize,
    },
    /// The answer was read but is not equivalent to the reference.
    WrongAnswer,
    /// The answer is not in the form the task requires (e.g. a Countdown answer that is not an
    /// expression over integers with `+ - * /` and parentheses).
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// A Countdown expression does not use each given number exactly once.
    WrongNumbers {
        /// The numbers the expression uses, in order of appearance.
        used: Vec<u64>,
        /// The numbers of the problem.
        expected: Vec<u64>,
    },
    /// The expression divides by zero.
    DivisionByZero,
    /// The expression is well formed but its value is not the target.
    WrongValue {
        /// The value reached, exactly (e.g. `17/2`).
        value: String,
        /// The value required.
        target: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAnswer => f.write_str(
                "no final answer found (expected \\boxed{...} or \"the answer is ...\")",
            ),
            Self::AnswerTooLong { bytes, limit } => {
                write!(f, "answer is {bytes} bytes long, more than the {limit} graded")
            }
            Self::WrongAnswer => f.write_str("answer is not equivalent to the reference"),
            Self::Malformed { reason } => write!(f, "malformed answer: {reason}"),
            Self::WrongNumbers { used, expected } => write!(
                f,
                "expression uses {} but must use each of {} exactly once",
                join(used),
                join(expected)
            ),
            Self::DivisionByZero => f.write_str("expression divides by zero"),
            Self::WrongValue { value, target } => {
                write!(f, "expression equals {value}, not the target {target}")
            }
        }
    }
}

/// `[1, 2, 3]` as `1, 2, 3`, or `nothing` when empty.
fn join(numbers: &[u64]) -> String {
    if numbers.is_empty() {
        return "nothing".to_owned();
    }
    numbers.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incorrect_clamps_reward_into_unit_interval() {
        assert_eq!(Scored::incorrect(2.0, None, Failure::NoAnswer).reward, 1.0);
        assert_eq!(Scored::incorrect(-1.0, None, Failure::NoAnswer).reward, 0.0);
        assert_eq!(Scored::incorrect(f64::NAN, None, Failure::NoAnswer).reward, 0.0);
        let s = Scored::incorrect(0.1, Some("3".into()), Failure::WrongAnswer);
        assert_eq!(s.reward, 0.1);
        assert!(!s.is_correct());
        assert!(Scored::correct("4").is_correct());
    }

    #[test]
    fn failures_explain_themselves() {
        let f = Failure::WrongNumbers { used: vec![1, 2], expected: vec![1, 2, 3] };
        assert_eq!(f.to_string(), "expression uses 1, 2 but must use each of 1, 2, 3 exactly once");
        let f = Failure::WrongNumbers { used: vec![], expected: vec![4] };
        assert!(f.to_string().contains("uses nothing"));
        let f = Failure::WrongValue { value: "17/2".into(), target: "9".into() };
        assert_eq!(f.to_string(), "expression equals 17/2, not the target 9");
        assert!(Failure::NoAnswer.to_string().contains("\\boxed"));
    }

    #[test]
    fn references_and_boxes_are_rewards() {
        struct Constant;
        impl Reward for Constant {
            type Problem = str;
            fn score(&self, _: &str, response: &str) -> Scored {
                Scored::correct(response)
            }
        }
        let boxed: Box<dyn Reward<Problem = str>> = Box::new(Constant);
        assert!(boxed.score("p", "r").is_correct());
        fn score_with<R: Reward<Problem = str>>(reward: R) -> Scored {
            reward.score("p", "r")
        }
        assert!(score_with(&Constant).is_correct());
    }

    #[test]
    fn failures_serialize_with_a_kind_tag() {
        let json = serde_json::to_string(&Failure::DivisionByZero).unwrap();
        assert_eq!(json, r#"{"kind":"division_by_zero"}"#);
    }
}
