//! The tasks as one type: a [`Task`] name, a [`Problem`] of any task, and the [`TaskReward`] that
//! scores any problem, for callers that pick the task at run time (configs, `spiral-eval score`).
//!
//! A serde-tagged enum rather than a string registry (STYLE.md, item 7): adding a task is a
//! compile error everywhere it must be handled.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::arith::{ArithProblem, ArithReward};
use crate::combination::{CombinationProblem, CombinationReward};
use crate::countdown::{CountdownProblem, CountdownReward};
use crate::error::RewardError;
use crate::math::{MathProblem, MathReward};
use crate::prompt::{MATH_INSTRUCTION, PromptStyle};
use crate::reward::{Reward, Scored};

/// A task name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Math problems with reference answers (MATH, GSM8K, AIME, ...), loaded from JSONL.
    Math,
    /// Countdown (synthetic).
    Countdown,
    /// Multi-step integer arithmetic (synthetic).
    Arith,
    /// Several independent linear congruences, answered part by part (synthetic).
    Combination,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 4] = [Task::Math, Task::Countdown, Task::Arith, Task::Combination];

    /// The task's name: `math`, `countdown`, `arith` or `combination`.
    pub fn name(self) -> &'static str {
        match self {
            Task::Math => "math",
            Task::Countdown => "countdown",
            Task::Arith => "arith",
            Task::Combination => "combination",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = RewardError;

    /// ```
    /// use spiral_rewards::Task;
    ///
    /// assert_eq!("countdown".parse::<Task>().unwrap(), Task::Countdown);
    /// assert!("gsm8k".parse::<Task>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| RewardError::UnknownTask(s.into()))
    }
}

/// A problem of any task.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Problem {
    /// A math problem.
    Math(MathProblem),
    /// A Countdown problem.
    Countdown(CountdownProblem),
    /// An arithmetic problem.
    Arith(ArithProblem),
    /// A combination problem.
    Combination(CombinationProblem),
}

impl Problem {
    /// The problem's task.
    pub fn task(&self) -> Task {
        match self {
            Problem::Math(_) => Task::Math,
            Problem::Countdown(_) => Task::Countdown,
            Problem::Arith(_) => Task::Arith,
            Problem::Combination(_) => Task::Combination,
        }
    }

    /// The prompt shown to the policy.
    ///
    /// ```
    /// use spiral_rewards::{MathProblem, Problem, PromptStyle};
    ///
    /// let p = Problem::Math(MathProblem::new("What is 2+2?", "4"));
    /// assert_eq!(p.prompt(PromptStyle::Compact), "What is 2+2?");
    /// assert!(p.prompt(PromptStyle::Instruct).ends_with("within \\boxed{}."));
    /// ```
    pub fn prompt(&self, style: PromptStyle) -> String {
        match self {
            Problem::Math(p) => match style {
                PromptStyle::Compact => p.question.clone(),
                PromptStyle::Instruct => format!("{}\n{MATH_INSTRUCTION}", p.question),
            },
            Problem::Countdown(p) => p.prompt(style),
            Problem::Arith(p) => p.prompt(style),
            Problem::Combination(p) => p.prompt(style),
        }
    }

    /// A solution trace for warm-start data; `None` for math problems (no trace is known) and for
    /// unsolvable synthetic ones.
    pub fn solution_trace(&self) -> Option<String> {
        match self {
            Problem::Math(_) => None,
            Problem::Countdown(p) => p.solution_trace(),
            Problem::Arith(p) => p.solution_trace(),
            Problem::Combination(p) => p.solution_trace(),
        }
    }

    /// For a problem of independently checked parts (combination), whether `response` answers
    /// each part correctly; `None` for tasks with one answer.
    pub fn parts_answered(&self, response: &str) -> Option<Vec<bool>> {
        match self {
            Problem::Combination(p) => Some(p.parts_answered(response)),
            Problem::Math(_) | Problem::Countdown(_) | Problem::Arith(_) => None,
        }
    }

    /// The reference answer as text: the math answer, the Countdown target, the arithmetic value,
    /// the combination answers (`x1=7 x2=3`, `?` for a part without a unique solution).
    pub fn reference(&self) -> String {
        match self {
            Problem::Math(p) => p.answer.clone(),
            Problem::Countdown(p) => p.target.to_string(),
            Problem::Arith(p) => p.answer.to_string(),
            Problem::Combination(p) => p.reference(),
        }
    }

    /// The key under which two problems are duplicates: the whitespace-collapsed question, the
    /// sorted Countdown numbers with the target, the expression without spaces, the congruences.
    pub(crate) fn dedup_key(&self) -> String {
        match self {
            Problem::Math(p) => {
                format!("math:{}", p.question.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            Problem::Countdown(p) => format!("countdown:{}", p.dedup_key()),
            Problem::Arith(p) => format!("arith:{}", p.expression.replace(' ', "")),
            Problem::Combination(p) => format!("combination:{}", p.dedup_key()),
        }
    }
}

impl From<MathProblem> for Problem {
    fn from(p: MathProblem) -> Self {
        Problem::Math(p)
    }
}

impl From<CountdownProblem> for Problem {
    fn from(p: CountdownProblem) -> Self {
        Problem::Countdown(p)
    }
}

impl From<ArithProblem> for Problem {
    fn from(p: ArithProblem) -> Self {
        Problem::Arith(p)
    }
}

impl From<CombinationProblem> for Problem {
    fn from(p: CombinationProblem) -> Self {
        Problem::Combination(p)
    }
}

/// Scores a problem of any task with that task's reward.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskReward {
    /// The math reward.
    pub math: MathReward,
    /// The Countdown reward.
    pub countdown: CountdownReward,
    /// The arithmetic reward.
    pub arith: ArithReward,
    /// The combination reward.
    pub combination: CombinationReward,
}

impl Reward for TaskReward {
    type Problem = Problem;

    /// ```
    /// use spiral_rewards::{CountdownProblem, Problem, Reward, TaskReward};
    ///
    /// let p = Problem::from(CountdownProblem::new(vec![3, 4], 12));
    /// assert_eq!(TaskReward::default().score(&p, "\\boxed{3*4}").reward, 1.0);
    /// ```
    fn score(&self, problem: &Problem, response: &str) -> Scored {
        match problem {
            Problem::Math(p) => self.math.score(p, response),
            Problem::Countdown(p) => self.countdown.score(p, response),
            Problem::Arith(p) => self.arith.score(p, response),
            Problem::Combination(p) => self.combination.score(p, response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Task::ALL {
            assert_eq!(t.name().parse::<Task>().unwrap(), t);
            assert_eq!(t.to_string(), t.name());
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert!("Math".parse::<Task>().unwrap_err().to_string().contains("`Math`"));
    }

    #[test]
    fn problems_serialize_with_a_task_tag() {
        let p = Problem::from(CountdownProblem::new(vec![1, 2], 3));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"task":"countdown","numbers":[1,2],"target":3}"#);
        assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), p);
        assert_eq!(p.task(), Task::Countdown);
        assert_eq!(p.reference(), "3");
    }

    #[test]
    fn combination_problems_round_trip_as_json_lines() {
        use crate::combination::{CombinationConfig, Congruence};

        let p = Problem::from(CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }]));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"task":"combination","modulus":10,"parts":[{"a":3,"b":4,"c":5}]}"#);
        assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), p);
        assert_eq!(p.task(), Task::Combination);
        let problems: Vec<Problem> = CombinationConfig { parts: 4, modulus: 13, tries: 0 }
            .generate(100, 1)
            .unwrap()
            .into_iter()
            .map(Problem::from)
            .collect();
        let jsonl: String =
            problems.iter().map(|p| serde_json::to_string(p).unwrap() + "\n").collect();
        let back: Vec<Problem> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, problems);
    }

    #[test]
    fn dispatch_prompts_traces_and_rewards() {
        let reward = TaskReward::default();
        let arith = Problem::from(ArithProblem::from_expression("2+3*4").unwrap());
        let trace = arith.solution_trace().unwrap();
        assert!(reward.score(&arith, &trace).is_correct());
        assert_eq!(arith.prompt(PromptStyle::Compact), "Compute 2+3*4.");
        let math = Problem::from(MathProblem::new("q", "1/2"));
        assert_eq!(math.solution_trace(), None);
        assert!(reward.score(&math, "\\boxed{0.5}").is_correct());
        assert_eq!(math.reference(), "1/2");
        let combination = Problem::from(CombinationProblem::new(
            10,
            vec![crate::Congruence { a: 3, b: 4, c: 5 }, crate::Congruence { a: 7, b: 1, c: 2 }],
        ));
        let trace = combination.solution_trace().unwrap();
        assert!(reward.score(&combination, &trace).is_correct());
        assert!(!reward.score(&combination, "x1=7\nx2=4").is_correct());
        assert_eq!(combination.prompt(PromptStyle::Compact), "3x+4=5 (mod 10)\n7x+1=2 (mod 10)");
        assert_eq!(combination.reference(), "x1=7 x2=3");
        let reward: TaskReward =
            serde_json::from_str(r#"{"combination": {"format_score": 0.1}}"#).unwrap();
        assert_eq!(reward.score(&combination, "x1=7\nx2=4").reward, 0.1);
    }

    #[test]
    fn dedup_keys() {
        let a = Problem::from(MathProblem::new("What  is\n2+2?", "4"));
        let b = Problem::from(MathProblem::new("What is 2+2?", "5"));
        assert_eq!(a.dedup_key(), b.dedup_key());
        let c = Problem::from(ArithProblem { expression: "1 + 2".into(), answer: 3 });
        let d = Problem::from(ArithProblem { expression: "1+2".into(), answer: 3 });
        assert_eq!(c.dedup_key(), d.dedup_key());
    }
}
