//! The math answer verifier: extraction, normalisation, and equivalence of final answers, without
//! Python or sympy.
//!
//! The conventions, and where they differ from the Qwen2.5-Math grader and Math-Verify, are
//! tabled in the crate docs.
//!
//! Beyond the crate-level conventions: `\approx` after an exact value is dropped
//! (`x = 1/3 \approx 0.33` is `x = 1/3`) and alone states the value; a decimal comma (`1000,99`)
//! is read as a point only against a decimal number; a computation between constants
//! (`\frac12 = \frac{10}{20}`) ends in its value; a reference escaped twice (`\\frac`) is read
//! once, a response only when its box command is escaped twice too.
//!
//! # Unequal on purpose
//!
//! Where Math-Verify accepts and this verifier does not, deliberately:
//! - `1 + \frac{1}{e}` vs `1 - \frac{1}{e}`, and any sign or value difference: never equal.
//! - A response's `-2 \\le x \\le 7` (a line break before `le`) is not read as `\le`.
//! - Arithmetic on matrices (`A + B` vs their sum) is not evaluated; matrices compare entry by
//!   entry at the scalar tolerances.
//! - `\sum`, unknown commands (`\zzz`) and chains through them are compared as text.
//! - `x \in [a,b] \cup [c,d]` vs `1 \le |x| \le 2`: inequalities through `|x|` are not solved.
//! - Boxed answers separated by prose (`\boxed{1} for part (a) and \boxed{2}`) are not one
//!   answer; only connectors (`and`, `or`, commas, spacing, `y_2 =`) join them.
//! - An unmarked number is never rescaled as a percentage (`10` ≠ `0.1`), unlike the Qwen grader.
//!
//! Bounded cost: answers longer than [`MAX_ANSWER_BYTES`] are not graded; parsing refuses
//! nesting beyond a fixed depth; exact values larger than 2^16384 (`10^{10^{10}}`, `100000!`) are
//! not computed, only compared as text. Such values can therefore be equal only when written the
//! same way.

mod answer;
mod equiv;
mod exact;
mod expr;
mod lexer;
mod normalize;
mod numeric;
mod parser;
mod percent;

use num_rational::BigRational;
use serde::{Deserialize, Serialize};

use crate::extract::{extract_answers, last_boxed};
use crate::reward::{Failure, Reward, Scored};

pub use normalize::normalize_answer;

/// The longest extracted answer that is graded, in bytes; longer ones score 0.
pub const MAX_ANSWER_BYTES: usize = 1024;

/// A math problem: the question shown to the policy and its reference answer (LaTeX or plain).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MathProblem {
    /// The question.
    pub question: String,
    /// The reference final answer, e.g. `\frac{3}{4}`.
    pub answer: String,
}

impl MathProblem {
    /// A problem from its question and reference answer.
    pub fn new(question: impl Into<String>, answer: impl Into<String>) -> Self {
        Self { question: question.into(), answer: answer.into() }
    }
}

/// The math reward: 1 when the response's final answer is equivalent to the reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MathReward {
    /// Reward for a response that has a final answer which is wrong (a format reward); 0 by
    /// default, as in the SPIRAL and ParaGator papers.
    pub format_score: f64,
    /// How a percentage compares with a plain number (`10\%` against `0.1`).
    pub percent: PercentMode,
}

/// How an answer marked as a percentage (`10\%`, `10%`, `10 percent`, `10 pct`) compares with a
/// plain number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PercentMode {
    /// The mark is dropped and the number compared as written: `10\%` = `10` ≠ `0.1`.
    Strict,
    /// As the Qwen2.5-Math grader (`include_percentage=True`): a marked value equals the number
    /// as written or divided by 100, so `10\%` = `10` = `0.1` (an unmarked `10` ≠ `0.1`).
    #[default]
    Either,
}

impl MathReward {
    /// Scores `response` against a reference answer alone.
    ///
    /// ```
    /// use spiral_rewards::MathReward;
    ///
    /// let reward = MathReward::default();
    /// assert_eq!(reward.score_answer("(x+1)^2", "so the answer is $x^2+2x+1$.").reward, 1.0);
    /// let wrong = reward.score_answer("7", "\\boxed{8}");
    /// assert_eq!((wrong.reward, wrong.extracted.as_deref()), (0.0, Some("8")));
    /// ```
    pub fn score_answer(&self, reference: &str, response: &str) -> Scored {
        let answers = extract_answers(response);
        let Some(&extracted) = answers.last() else {
            return Scored::incorrect(0.0, None, Failure::NoAnswer);
        };
        if extracted.len() > MAX_ANSWER_BYTES {
            let failure =
                Failure::AnswerTooLong { bytes: extracted.len(), limit: MAX_ANSWER_BYTES };
            return Scored::incorrect(0.0, Some(truncate(extracted)), failure);
        }
        // A reference given with its box (`\boxed{5}`) is reduced like a response, and one
        // escaped twice (`\\frac`) is read once.
        let reference = normalize::undouble_backslashes(last_boxed(reference).unwrap_or(reference));
        let reference = reference.as_str();
        // A response escaped twice shows it in its box command (`\\boxed`).
        let undoubled;
        let extracted = if response.contains("\\\\boxed") {
            undoubled = normalize::undouble_backslashes(extracted);
            undoubled.as_str()
        } else {
            extracted
        };
        if math_equal_with(extracted, reference, self.percent) {
            return Scored::correct(extracted);
        }
        // Several boxed answers in a row are one answer when the reference is a collection.
        if answers.len() > 1 {
            let joined = answers.join(", ");
            if joined.len() <= MAX_ANSWER_BYTES
                && is_collection(reference)
                && math_equal_with(&joined, reference, self.percent)
            {
                return Scored::correct(joined);
            }
        }
        Scored::incorrect(self.format_score, Some(extracted.to_owned()), Failure::WrongAnswer)
    }
}

impl Reward for MathReward {
    type Problem = MathProblem;

    /// ```
    /// use spiral_rewards::{Failure, MathProblem, MathReward, Reward};
    ///
    /// let p = MathProblem::new("Solve x^2 = 4.", "\\pm 2");
    /// assert!(MathReward::default().score(&p, "x = \\boxed{-2, 2}").is_correct());
    /// let none = MathReward::default().score(&p, "I give up.");
    /// assert_eq!(none.failure, Some(Failure::NoAnswer));
    /// ```
    fn score(&self, problem: &MathProblem, response: &str) -> Scored {
        self.score_answer(&problem.answer, response)
    }
}

/// The first [`MAX_ANSWER_BYTES`] bytes of `s` (on a character boundary), for reporting.
fn truncate(s: &str) -> String {
    let mut end = MAX_ANSWER_BYTES.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Whether a predicted final answer is equivalent to a reference answer (both already extracted
/// from any surrounding text). See the module docs for the rules.
///
/// ```
/// use spiral_rewards::math_equal;
///
/// assert!(math_equal("\\dfrac{1}{2}", "0.5"));
/// assert!(math_equal("\\frac12", "\\frac{1}{2}"));
/// assert!(math_equal("(x+1)^2", "x^2+2x+1"));
/// assert!(math_equal("x = 5", "5"));
/// assert!(math_equal("\\text{(B)}", "B"));
/// assert!(math_equal("[1, 2)", "[1,2)"));
/// assert!(!math_equal("(1, 2)", "[1, 2]"));
/// assert!(!math_equal("12345678901234567891", "12345678901234567890"));
/// ```
pub fn math_equal(prediction: &str, reference: &str) -> bool {
    math_equal_with(prediction, reference, PercentMode::default())
}

/// [`math_equal`] with an explicit [`PercentMode`].
///
/// ```
/// use spiral_rewards::{PercentMode, math_equal_with};
///
/// assert!(math_equal_with("10\\%", "0.1", PercentMode::Either));
/// assert!(!math_equal_with("10\\%", "0.1", PercentMode::Strict));
/// assert!(math_equal_with("10\\%", "10", PercentMode::Strict));
/// ```
pub fn math_equal_with(prediction: &str, reference: &str, percent: PercentMode) -> bool {
    if prediction.len() > MAX_ANSWER_BYTES || reference.len() > MAX_ANSWER_BYTES {
        return prediction.trim() == reference.trim();
    }
    let pred = normalize_answer(prediction);
    let gold = normalize_answer(reference);
    if pred.is_empty() || gold.is_empty() {
        return false;
    }
    if normalize::compact(&pred) == normalize::compact(&gold) {
        return true;
    }
    if same_choice(&pred, &gold) || same_choice(&gold, &pred) {
        return true;
    }
    let (pred_answer, gold_answer) = (answer::parse_answer(&pred), answer::parse_answer(&gold));
    if equiv::answers_equal(&pred_answer, &gold_answer) {
        return true;
    }
    // `1000,99` against `1000.99`: a comma that is no thousands separator is a decimal comma
    // when the other side is a decimal number.
    for (side, other) in [(&pred, &gold), (&gold, &pred)] {
        if let Some(point) = normalize::decimal_comma(side)
            && normalize::is_decimal_number(other)
            && equiv::answers_equal(&answer::parse_answer(&point), &answer::parse_answer(other))
        {
            return true;
        }
    }
    // `10%` against `0.1`: the marked side also stands for its value divided by 100.
    if percent == PercentMode::Either {
        let (pred_pct, gold_pct) = (percent::is_marked(prediction), percent::is_marked(reference));
        if pred_pct != gold_pct {
            let (marked, other) =
                if pred_pct { (&pred_answer, &gold_answer) } else { (&gold_answer, &pred_answer) };
            if let Some(hundredth) = percent::hundredth(marked) {
                return equiv::answers_equal(&hundredth, other);
            }
        }
    }
    false
}

/// Whether `reference` is a list, set or union of several values, against which several boxed
/// answers are graded together.
fn is_collection(reference: &str) -> bool {
    use answer::Answer;
    let parsed = answer::parse_answer(&normalize_answer(reference));
    matches!(parsed, Answer::List(_) | Answer::Set(_) | Answer::Union(_))
}

/// Whether `text` (an answer sentence) is math as a whole rather than prose around a value.
pub(crate) fn is_math(text: &str) -> bool {
    text.len() <= MAX_ANSWER_BYTES
        && !matches!(answer::parse_answer(&normalize_answer(text)), answer::Answer::Text(_))
}

/// Whether `letter` is a bare upper-case choice letter (`B`, `(B)`) and `answer` picks the same
/// choice (`B`, `(b)`, `(B) 12`). Tried both ways round, so that the grading is symmetric.
fn same_choice(answer: &str, letter: &str) -> bool {
    match normalize::choice_letter(letter, false) {
        Some(l) if letter.contains(|c: char| c.is_ascii_uppercase()) => {
            normalize::choice_letter(answer, true) == Some(l)
        }
        _ => false,
    }
}

/// Groups equivalent answers (for majority voting): for each answer, the index of the first
/// answer equivalent to it under [`math_equal`]. Answers that are empty after normalisation form
/// no group with others (each is its own class).
///
/// ```
/// use spiral_rewards::answer_classes;
///
/// assert_eq!(answer_classes(&["1/2", "0.5", "3", "\\frac{1}{2}", "x"]), [0, 0, 2, 0, 4]);
/// ```
pub fn answer_classes<S: AsRef<str>>(answers: &[S]) -> Vec<usize> {
    let mut representatives: Vec<usize> = Vec::new();
    let mut classes = Vec::with_capacity(answers.len());
    for (i, answer) in answers.iter().enumerate() {
        let answer = answer.as_ref();
        let class = representatives
            .iter()
            .copied()
            .find(|&r| math_equal(answer, answers[r].as_ref()))
            .unwrap_or_else(|| {
                representatives.push(i);
                i
            });
        classes.push(class);
    }
    classes
}

/// The exact value of an answer that is a single number literal, optionally signed, after
/// normalisation (`$1,000`, `-3.5`, `28 \text{ dollars}`); `None` for anything else (`7*4`, `x`).
pub(crate) fn parse_number(answer: &str) -> Option<BigRational> {
    if answer.len() > MAX_ANSWER_BYTES {
        return None;
    }
    match lexer::lex(&normalize_answer(answer)).ok()?.as_slice() {
        [lexer::Tok::Num { value, .. }] => Some(value.clone()),
        [lexer::Tok::Sym('-'), lexer::Tok::Num { value, .. }] => Some(-value.clone()),
        [lexer::Tok::Sym('+'), lexer::Tok::Num { value, .. }] => Some(value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
