//! The combination verifier: reads the answer lines of a response (module docs of
//! [`combination`](super)) in one pass and checks each answer by substitution.
//!
//! Substitution rather than comparison with a stored solution, so that the check is the one a
//! reader of the trace can do, and a problem loaded from data is graded the same way whether or
//! not its author made every `a` coprime to the modulus.
//!
//! Bounds: one pass over the response, each line read from its end; memory is proportional to the
//! number of parts, whatever the response holds. Numbers longer than [`MAX_DIGITS`] are never
//! parsed: such a value is wrong, such a label names no part.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::CombinationProblem;
use crate::reward::{Failure, Reward, Scored};

/// The most digits read as a number: every value below `u32::MAX` fits, and no parse overflows.
const MAX_DIGITS: usize = 18;

/// The most bytes of a label quoted in a failure message.
const MAX_QUOTED: usize = 24;

/// The combination reward: 1 when every part is answered correctly, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CombinationReward {
    /// Reward for a well-formed answer (one answer line per part, in order) with a wrong value;
    /// 0 by default.
    pub format_score: f64,
}

impl Reward for CombinationReward {
    type Problem = CombinationProblem;

    /// ```
    /// use spiral_rewards::{CombinationProblem, CombinationReward, Congruence, Failure, Reward};
    ///
    /// let p = CombinationProblem::new(10, vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }]);
    /// let reward = CombinationReward::default();
    /// assert_eq!(reward.score(&p, "3*7+4=25=5 x1=7\n7*3+1=22=2 x2=3").reward, 1.0);
    /// assert_eq!(reward.score(&p, "x1=7\nx2=4").failure, Some(Failure::WrongAnswer));
    /// assert!(matches!(reward.score(&p, "x1=7").failure, Some(Failure::Malformed { .. })));
    /// ```
    fn score(&self, problem: &CombinationProblem, response: &str) -> Scored {
        let r = read(problem, response);
        if r.lines == 0 {
            return Scored::incorrect(0.0, None, Failure::NoAnswer);
        }
        let n = problem.parts.len();
        let stray = |label| format!("`x{label}` names no part: the parts are x1 to x{n}");
        let reason = r
            .stray
            .map(stray)
            .or_else(|| r.missing.map(|i| format!("no answer line for x{i}")))
            .or_else(|| r.repeated.map(|(i, times)| format!("x{i} is answered {times} times")))
            .or_else(|| {
                r.out_of_order.map(|i| {
                    format!("x{i} is out of order: the answer lines must be x1 to x{n} in order")
                })
            });
        if let Some(reason) = reason {
            return Scored::incorrect(0.0, Some(r.extracted), Failure::Malformed { reason });
        }
        if r.right.iter().all(|&right| right) {
            Scored::correct(r.extracted)
        } else {
            Scored::incorrect(self.format_score, Some(r.extracted), Failure::WrongAnswer)
        }
    }
}

/// What a response answers.
pub(super) struct Reading<'a> {
    /// Whether each part, in order, is answered correctly (module docs of
    /// [`combination`](super)).
    pub(super) right: Vec<bool>,
    /// Answer lines found.
    lines: usize,
    /// The first label naming no part, as written (cut to [`MAX_QUOTED`] bytes).
    stray: Option<&'a str>,
    /// The first part (1-based) without an answer line.
    missing: Option<usize>,
    /// The first part (1-based) with several answer lines, and how many.
    repeated: Option<(usize, usize)>,
    /// The first part (1-based) whose only answer line is out of order.
    out_of_order: Option<usize>,
    /// The answers read, `x1=7 x2=? x3=9` (`?` for a part without exactly one readable answer).
    extracted: String,
}

/// What the answer lines say about one part.
#[derive(Clone, Copy, Default)]
struct PartState {
    /// Answer lines naming it.
    count: usize,
    /// The value of the first one; `None` when longer than [`MAX_DIGITS`].
    value: Option<u64>,
    /// Whether every answer line before the first one names a smaller part and every one after
    /// it a larger part.
    in_order: bool,
}

/// Reads the answer lines of `response` for `problem`.
pub(super) fn read<'a>(problem: &CombinationProblem, response: &'a str) -> Reading<'a> {
    let n = problem.parts.len();
    let mut parts = vec![PartState::default(); n];
    // The parts still in order, by position; their labels increase, so a new line with label `l`
    // puts out of order exactly those on top of the stack with a label `>= l`.
    let mut in_order: Vec<usize> = Vec::new();
    let mut max_label: Option<u64> = None;
    let mut lines = 0;
    let mut stray = None;
    for line in response.lines() {
        let Some((label_text, value)) = answer_line(line) else { continue };
        lines += 1;
        let label = number(label_text).unwrap_or(u64::MAX);
        while let Some(&top) = in_order.last() {
            if top as u64 + 1 < label {
                break;
            }
            parts[top].in_order = false;
            in_order.pop();
        }
        let after_smaller = max_label.is_none_or(|m| m < label);
        max_label = max_label.max(Some(label));
        let index = label.checked_sub(1).and_then(|i| usize::try_from(i).ok()).filter(|&i| i < n);
        let Some(i) = index else {
            stray.get_or_insert(&label_text[..label_text.len().min(MAX_QUOTED)]);
            continue;
        };
        let part = &mut parts[i];
        part.count += 1;
        if part.count == 1 {
            *part = PartState { count: 1, value: number(value), in_order: after_smaller };
            if after_smaller {
                in_order.push(i);
            }
        }
    }
    let mut reading = Reading {
        right: Vec::with_capacity(n),
        lines,
        stray,
        missing: None,
        repeated: None,
        out_of_order: None,
        extracted: String::new(),
    };
    for (i, (state, congruence)) in parts.iter().zip(&problem.parts).enumerate() {
        let label = i + 1;
        match state.count {
            0 => _ = reading.missing.get_or_insert(label),
            1 => {}
            times => _ = reading.repeated.get_or_insert((label, times)),
        }
        if state.count == 1 && !state.in_order {
            reading.out_of_order.get_or_insert(label);
        }
        let value = state.value.filter(|_| state.count == 1);
        let right = state.in_order && value.is_some_and(|x| congruence.holds(problem.modulus, x));
        reading.right.push(right);
        if i > 0 {
            reading.extracted.push(' ');
        }
        let _ = match value {
            Some(x) => write!(reading.extracted, "x{label}={x}"),
            None => write!(reading.extracted, "x{label}=?"),
        };
    }
    reading
}

/// The label and value digits of an answer line `... x<label>=<value>`; `None` for other lines.
pub(super) fn answer_line(line: &str) -> Option<(&str, &str)> {
    let (rest, value) = trailing_digits(line.trim_end())?;
    let rest = rest.trim_end().strip_suffix('=')?.trim_end();
    let (rest, label) = trailing_digits(rest)?;
    let rest = rest.trim_end().strip_suffix('x')?;
    // `3x1=7` or `max1=7` is not an answer line: the `x` must start a word.
    if rest.chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    Some((label, value))
}

/// `text` split before its trailing ASCII digits, when there are some.
fn trailing_digits(text: &str) -> Option<(&str, &str)> {
    let digits = text.bytes().rev().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| text.split_at(text.len() - digits))
}

/// A run of ASCII digits as a number; `None` when longer than [`MAX_DIGITS`].
fn number(digits: &str) -> Option<u64> {
    if digits.len() > MAX_DIGITS {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::combination::{CombinationConfig, Congruence};

    /// `3x+4=5`, `7x+1=2`, `9x+0=3` modulo 10: solutions 7, 3, 7.
    fn three() -> CombinationProblem {
        CombinationProblem::new(
            10,
            vec![
                Congruence { a: 3, b: 4, c: 5 },
                Congruence { a: 7, b: 1, c: 2 },
                Congruence { a: 9, b: 0, c: 3 },
            ],
        )
    }

    fn score(response: &str) -> Scored {
        CombinationReward::default().score(&three(), response)
    }

    fn malformed(response: &str, why: &str) {
        let s = score(response);
        assert_eq!(s.reward, 0.0, "{response:?}");
        match &s.failure {
            Some(Failure::Malformed { reason }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{response:?}: {other:?}"),
        }
    }

    #[test]
    fn answer_lines() {
        assert_eq!(answer_line("3*7+4=25=5 x1=7"), Some(("1", "7")));
        assert_eq!(answer_line("  x12 =  034\t "), Some(("12", "034")));
        assert_eq!(answer_line("so x 2= 3"), Some(("2", "3")));
        assert_eq!(answer_line("x1=7"), Some(("1", "7")));
        assert_eq!(answer_line("(x1=7"), Some(("1", "7")));
        for other in [
            "3*7+4=25=5",
            "3x1=7",
            "max1=7",
            "_x1=7",
            "x1=7.",
            "x1=-7",
            "x=7",
            "x1=",
            "1=7",
            "x1 7",
            "X1=7",
            "3x+4=5 (mod 10)",
            "",
            "é x1=7x",
        ] {
            assert_eq!(answer_line(other), None, "{other}");
        }
        assert_eq!(answer_line("éx1=7"), None);
        assert_eq!(answer_line("é x1=7"), Some(("1", "7")));
    }

    #[test]
    fn all_parts_right_in_order_score_one() {
        let p = three();
        let trace = p.solution_trace().unwrap();
        assert_eq!(trace, "3*7+4=25=5 x1=7\n7*3+1=22=2 x2=3\n9*7+0=63=3 x3=7");
        let s = score(&trace);
        assert!(s.is_correct());
        assert_eq!(s.extracted.as_deref(), Some("x1=7 x2=3 x3=7"));
        // Extra whitespace, CRLF, reasoning lines and leading zeros are fine.
        let spaced = "Let me try.\r\n  x1 = 7  \r\nthen 7*3+1=22\n\tx2= 3\nx 3 =07\n";
        assert!(score(spaced).is_correct(), "{:?}", score(spaced));
        // The work on a line is not graded: only its last `x<i>=` value is.
        assert!(score("junk=1 x1=7\n1+1=3 x2=3\nx9=9 x3=7").is_correct());
    }

    #[test]
    fn one_wrong_part_scores_zero_and_the_others_count() {
        let p = three();
        let response = "3*7+4=25=5 x1=7\n7*4+1=29=9 x2=4\n9*7+0=63=3 x3=7";
        let s = score(response);
        assert_eq!(s.reward, 0.0);
        assert_eq!(s.failure, Some(Failure::WrongAnswer));
        assert_eq!(s.extracted.as_deref(), Some("x1=7 x2=4 x3=7"));
        assert_eq!(p.correct_parts(response), 2);
        assert_eq!(p.correct_parts("x1=7\nx2=3\nx3=8"), 2);
        assert_eq!(p.correct_parts("x1=0\nx2=0\nx3=0"), 0);
        // A value outside 0..modulus is wrong even when it satisfies the congruence.
        assert_eq!(p.correct_parts("x1=17\nx2=3\nx3=7"), 2);
        let partial = CombinationReward { format_score: 0.1 }.score(&p, response);
        assert_eq!(partial.reward, 0.1);
    }

    #[test]
    fn order_missing_duplicates_and_strays_score_zero() {
        let p = three();
        malformed("x2=3\nx1=7\nx3=7", "out of order");
        assert_eq!(p.correct_parts("x2=3\nx1=7\nx3=7"), 1);
        malformed("x1=7\nx3=7\nx2=3", "out of order");
        assert_eq!(p.correct_parts("x1=7\nx3=7\nx2=3"), 1);
        malformed("x1=7\nx3=7", "no answer line for x2");
        assert_eq!(p.correct_parts("x1=7\nx3=7"), 2);
        malformed("x1=7\nx2=3", "no answer line for x3");
        malformed("x1=7\nx2=3\nx2=3\nx3=7", "x2 is answered 2 times");
        assert_eq!(p.correct_parts("x1=7\nx2=3\nx2=3\nx3=7"), 2);
        // A repeated part also puts nothing else out of order.
        assert_eq!(p.correct_parts("x1=7\nx1=7\nx2=3\nx3=7"), 2);
        malformed("x1=7\nx2=3\nx3=7\nx4=1", "`x4` names no part: the parts are x1 to x3");
        malformed("x0=1\nx1=7\nx2=3\nx3=7", "`x0` names no part");
        let huge = format!("x1=7\nx2=3\nx3=7\nx{}=1", "9".repeat(1000));
        malformed(&huge, "`x999999999999999999999999` names no part");
        // A stray line counts in the order: `x4` before `x3` puts `x3` out of order.
        assert_eq!(p.correct_parts("x1=7\nx2=3\nx4=1\nx3=7"), 2);
        assert_eq!(p.correct_parts("x1=7\nx2=3\nx3=7\nx4=1"), 3);
    }

    #[test]
    fn garbage_scores_zero() {
        let p = three();
        for response in
            ["", "7 3 7", "\\boxed{7,3,7}", "x1 x2 x3", "x1=\nx2=\nx3=", "x=7\nx=3\nx=7"]
        {
            let s = score(response);
            assert_eq!(s.failure, Some(Failure::NoAnswer), "{response:?}");
            assert_eq!(p.correct_parts(response), 0);
        }
        let long_value = format!("x1={}\nx2=3\nx3=7", "7".repeat(100));
        let s = score(&long_value);
        assert_eq!(s.failure, Some(Failure::WrongAnswer));
        assert_eq!(s.extracted.as_deref(), Some("x1=? x2=3 x3=7"));
        let overflow = format!("x1={}7\nx2=3\nx3=7", "0".repeat(17));
        assert_eq!(p.correct_parts(&overflow), 3, "18 digits still read");
    }

    #[test]
    fn degenerate_problems_never_panic() {
        let empty = CombinationProblem::new(10, vec![]);
        assert_eq!(empty.solution_trace(), None);
        let s = CombinationReward::default().score(&empty, "x1=1");
        assert!(matches!(s.failure, Some(Failure::Malformed { .. })));
        let zero = CombinationProblem::new(0, vec![Congruence { a: 1, b: 0, c: 0 }]);
        assert_eq!(zero.correct_parts("x1=0"), 0);
        let extreme =
            CombinationProblem::new(u32::MAX, vec![Congruence { a: u32::MAX - 1, b: 7, c: 1 }]);
        let trace = extreme.solution_trace().unwrap();
        assert!(CombinationReward::default().score(&extreme, &trace).is_correct(), "{trace}");
        assert_eq!(extreme.correct_parts(&format!("x1={}", u64::MAX)), 0);
    }

    #[test]
    fn adversarial_responses_are_bounded() {
        let p =
            CombinationConfig { parts: 8, modulus: 50, tries: 0 }.generate(1, 0).unwrap().remove(0);
        let kb200 = 200 * 1024;
        let cases = [
            "x1=1\n".repeat(kb200 / 5),
            "x".repeat(kb200),
            "9".repeat(kb200),
            format!("x1={}", "9".repeat(kb200)),
            format!("x{}=1", "1".repeat(kb200)),
            format!("x1{}=1", " ".repeat(kb200)),
            "=".repeat(kb200),
            " x1=1".repeat(kb200 / 5),
            (1..=50_000).rev().map(|i| format!("x{i}=1\n")).collect(),
            (1..=50_000).map(|i| format!("x{}=1\n", i % 9)).collect(),
            "é\n".repeat(kb200 / 3),
        ];
        for response in &cases {
            assert!(response.len() >= kb200 - 10);
            let start = Instant::now();
            let s = CombinationReward::default().score(&p, response);
            assert!(!s.is_correct());
            assert!(s.extracted.as_ref().is_none_or(|e| e.len() < 200));
            let _ = p.correct_parts(response);
            let head: String = response.chars().take(40).collect();
            assert!(start.elapsed() < Duration::from_millis(500), "slow on {head:?}");
        }
        // A long correct response is still correct.
        let padded = format!("{}\n{}", "thinking ".repeat(kb200 / 9), p.solution_trace().unwrap());
        assert!(CombinationReward::default().score(&p, &padded).is_correct());
    }
}
