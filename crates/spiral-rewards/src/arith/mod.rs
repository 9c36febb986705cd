//! Arithmetic: evaluate a short integer expression, showing one operation per line.
//!
//! The trace format matches Countdown's (`left op right = result`, no spaces, then the boxed
//! answer), so one small model can learn both:
//!
//! ```text
//! Compute 12+7*3-5.                 <- compact prompt
//! 7*3=21                            <- trace
//! 12+21=33
//! 33-5=28
//! \boxed{28}
//! ```
//!
//! The reward is strict: the final answer must be a single number equal to the value (`28`,
//! `28.0`, `$28$`); an expression such as `7*4` is malformed, not correct.

mod eval;
mod generate;

use num_bigint::BigInt;
use num_rational::BigRational;
use serde::{Deserialize, Serialize};

use crate::extract::extract_answer;
use crate::math::{MAX_ANSWER_BYTES, parse_number};
use crate::prompt::PromptStyle;
use crate::reward::{Failure, Reward, Scored};

pub use eval::{ArithStep, evaluate_steps};
pub use generate::ArithConfig;

/// An arithmetic problem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArithProblem {
    /// The expression, e.g. `12+7*3-5`.
    pub expression: String,
    /// Its value.
    pub answer: i64,
}

impl ArithProblem {
    /// A problem from an expression, with its value computed; `None` when the expression is not
    /// integer arithmetic (see [`evaluate_steps`]).
    ///
    /// ```
    /// use spiral_rewards::ArithProblem;
    ///
    /// assert_eq!(ArithProblem::from_expression("2+3*4").unwrap().answer, 14);
    /// assert!(ArithProblem::from_expression("7/2").is_none());
    /// ```
    pub fn from_expression(expression: impl Into<String>) -> Option<Self> {
        let expression = expression.into();
        let (_, answer) = evaluate_steps(&expression)?;
        Some(Self { expression, answer })
    }

    /// The prompt shown to the policy.
    ///
    /// ```
    /// use spiral_rewards::{ArithProblem, PromptStyle};
    ///
    /// let p = ArithProblem::from_expression("12+7*3-5").unwrap();
    /// assert_eq!(p.prompt(PromptStyle::Compact), "Compute 12+7*3-5.");
    /// ```
    pub fn prompt(&self, style: PromptStyle) -> String {
        match style {
            PromptStyle::Compact => format!("Compute {}.", self.expression),
            PromptStyle::Instruct => format!(
                "Compute {}. Work one operation per line, multiplication before addition and \
                 subtraction, then give the final answer in \\boxed{{}}.",
                self.expression
            ),
        }
    }

    /// The solution trace used as warm-start data (format in the module docs); `None` when the
    /// expression cannot be evaluated step by step or its value is not `answer`.
    ///
    /// ```
    /// use spiral_rewards::ArithProblem;
    ///
    /// let p = ArithProblem::from_expression("12+7*3-5").unwrap();
    /// assert_eq!(p.solution_trace().unwrap(), "7*3=21\n12+21=33\n33-5=28\n\\boxed{28}");
    /// ```
    pub fn solution_trace(&self) -> Option<String> {
        let (steps, value) = evaluate_steps(&self.expression)?;
        if value != self.answer {
            return None;
        }
        let mut trace = String::new();
        for step in &steps {
            trace.push_str(&step.line());
            trace.push('\n');
        }
        trace.push_str(&format!("\\boxed{{{value}}}"));
        Some(trace)
    }
}

/// The arithmetic reward: 1 when the final answer is a number equal to the value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithReward {
    /// Reward for a final answer that is a number but wrong; 0 by default.
    pub format_score: f64,
}

impl ArithReward {
    /// Scores `response` against the value `answer` alone.
    ///
    /// ```
    /// use spiral_rewards::{ArithReward, Failure};
    ///
    /// let r = ArithReward::default();
    /// assert!(r.score_value(28, "7*3=21\n12+21=33\n33-5=28\n\\boxed{28}").is_correct());
    /// assert_eq!(r.score_value(28, "\\boxed{27}").failure, Some(Failure::WrongAnswer));
    /// assert!(matches!(r.score_value(28, "\\boxed{7*4}").failure, Some(Failure::Malformed { .. })));
    /// ```
    pub fn score_value(&self, answer: i64, response: &str) -> Scored {
        let Some(extracted) = extract_answer(response) else {
            return Scored::incorrect(0.0, None, Failure::NoAnswer);
        };
        if extracted.len() > MAX_ANSWER_BYTES {
            let failure =
                Failure::AnswerTooLong { bytes: extracted.len(), limit: MAX_ANSWER_BYTES };
            return Scored::incorrect(0.0, None, failure);
        }
        let owned = Some(extracted.to_owned());
        match parse_number(extracted) {
            None => {
                let reason = format!("`{extracted}` is not a number");
                Scored::incorrect(0.0, owned, Failure::Malformed { reason })
            }
            Some(v) if v == BigRational::from_integer(BigInt::from(answer)) => {
                Scored::correct(extracted)
            }
            Some(_) => Scored::incorrect(self.format_score, owned, Failure::WrongAnswer),
        }
    }
}

impl Reward for ArithReward {
    type Problem = ArithProblem;

    fn score(&self, problem: &ArithProblem, response: &str) -> Scored {
        self.score_value(problem.answer, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_verify_with_the_reward() {
        let reward = ArithReward::default();
        for p in ArithConfig::default().generate(300, 4).unwrap() {
            let trace = p.solution_trace().unwrap();
            assert!(reward.score(&p, &trace).is_correct(), "{trace}");
        }
    }

    #[test]
    fn answers_in_other_spellings() {
        let r = ArithReward { format_score: 0.1 };
        assert!(r.score_value(-18, "\\boxed{-18}").is_correct());
        assert!(r.score_value(1000, "The answer is $1,000$.").is_correct());
        assert!(r.score_value(28, "\\boxed{28.0}").is_correct());
        assert_eq!(r.score_value(28, "\\boxed{29}").reward, 0.1);
        assert_eq!(r.score_value(28, "\\boxed{x}").reward, 0.0);
        assert_eq!(r.score_value(28, "no answer").failure, Some(Failure::NoAnswer));
        let long = format!("\\boxed{{{}}}", "9".repeat(2000));
        assert!(matches!(r.score_value(1, &long).failure, Some(Failure::AnswerTooLong { .. })));
    }

    /// `i64::MIN / -1` panicked in the remainder check (`i64::MIN % -1` overflows).
    #[test]
    fn overflowing_division_is_refused_not_a_panic() {
        assert_eq!(ArithProblem::from_expression("-9223372036854775808/-1"), None);
        let stored = ArithProblem { expression: "-9223372036854775808/-1".into(), answer: 0 };
        assert_eq!(stored.solution_trace(), None);
    }

    #[test]
    fn wrong_stored_answers_have_no_trace() {
        let p = ArithProblem { expression: "1+1".into(), answer: 3 };
        assert_eq!(p.solution_trace(), None);
        assert!(ArithProblem::from_expression("1+").is_none());
    }
}
