//! Percentages against plain numbers, as the Qwen2.5-Math grader compares them with
//! `include_percentage=True`: a value written with a percent mark (`10\%`, `10%`, `10 percent`,
//! `10 pct`, `10 percentage`) also stands for that value divided by 100, so `10\%` = `0.1`.
//!
//! Normalisation drops the mark (`10\%` is `10`); this module only says whether a mark was there
//! and builds the divided value. An unmarked number is never rescaled (`10` ≠ `0.1`), which is
//! stricter than the Qwen grader, whose rule also applies to unmarked answers.

use super::answer::Answer;
use super::expr::Expr;

/// Whether `answer` (as written) carries a percent mark after a value.
pub(crate) fn is_marked(answer: &str) -> bool {
    if answer.contains('%') {
        return true;
    }
    let lower = answer.to_ascii_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| matches!(w, "percent" | "percentage" | "pct"))
}

/// The answer divided by 100, for a single value; `None` for structures.
pub(crate) fn hundredth(answer: &Answer) -> Option<Answer> {
    match answer {
        Answer::Expr(e) => {
            Some(Answer::Expr(Expr::Product(vec![(false, e.clone()), (true, Expr::int(100))])))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_recognised() {
        for s in ["10\\%", "10%", "10 percent", "10 Percent", "10 pct", "10 percentage"] {
            assert!(is_marked(s), "{s}");
        }
        for s in ["10", "0.1", "spectacular", "10 pcts"] {
            assert!(!is_marked(s), "{s}");
        }
        assert!(hundredth(&Answer::Expr(Expr::int(10))).is_some());
        assert!(hundredth(&Answer::Set(vec![])).is_none());
    }
}
