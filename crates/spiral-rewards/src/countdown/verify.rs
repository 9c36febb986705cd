//! The Countdown verifier: the answer must be an expression over integer literals with binary
//! `+ - * /` and parentheses that uses each given number exactly once and equals the target in
//! exact rational arithmetic. Anything else scores 0.
//!
//! Follows TinyZero's `countdown.py` reward (numbers used exactly once, value equal to the target)
//! with exact arithmetic instead of Python's `eval` and floats, and a stricter grammar: no unary
//! minus (it would let `-` "use" a number without the game's rules), no other operators or
//! functions. Accepted spellings: `\times`, `\cdot`, `×`, `·` for `*`; `\div`, `÷` for `/`; `−`
//! for `-`; `\left(`/`\right)`; surrounding `$`; and a trailing `= value`, which is ignored (the
//! left side is what is checked).

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;
use serde::{Deserialize, Serialize};

use super::CountdownProblem;
use crate::extract::extract_answer;
use crate::math::MAX_ANSWER_BYTES;
use crate::reward::{Failure, Reward, Scored};

/// The deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 32;

/// The Countdown reward: 1 for a valid expression equal to the target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownReward {
    /// Reward for an answer that parses but is wrong (wrong numbers or value); 0 by default.
    /// TinyZero uses 0.1.
    pub format_score: f64,
}

impl Reward for CountdownReward {
    type Problem = CountdownProblem;

    /// ```
    /// use spiral_rewards::{CountdownProblem, CountdownReward, Failure, Reward};
    ///
    /// let p = CountdownProblem::new(vec![75, 25, 2], 100);
    /// let reward = CountdownReward::default();
    /// assert_eq!(reward.score(&p, "75-25=50\n50*2=100\n\\boxed{(75-25)*2}").reward, 1.0);
    /// let s = reward.score(&p, "\\boxed{75+25}");
    /// assert!(matches!(s.failure, Some(Failure::WrongNumbers { .. })));
    /// let s = reward.score(&p, "\\boxed{(75+25)/(2-2)}");
    /// assert!(matches!(s.failure, Some(Failure::WrongNumbers { .. })));
    /// ```
    fn score(&self, problem: &CountdownProblem, response: &str) -> Scored {
        let Some(extracted) = extract_answer(response) else {
            return Scored::incorrect(0.0, None, Failure::NoAnswer);
        };
        if extracted.len() > MAX_ANSWER_BYTES {
            let failure =
                Failure::AnswerTooLong { bytes: extracted.len(), limit: MAX_ANSWER_BYTES };
            return Scored::incorrect(0.0, None, failure);
        }
        let owned = Some(extracted.to_owned());
        match check(&problem.numbers, problem.target, extracted) {
            Ok(()) => Scored::correct(extracted),
            Err(failure @ Failure::Malformed { .. }) => Scored::incorrect(0.0, owned, failure),
            Err(failure) => Scored::incorrect(self.format_score, owned, failure),
        }
    }
}

/// Checks one extracted answer.
fn check(numbers: &[u64], target: u64, answer: &str) -> Result<(), Failure> {
    let expr = parse(answer)?;
    let mut used = Vec::new();
    expr.leaves(&mut used);
    let mut sorted_used = used.clone();
    sorted_used.sort_unstable();
    let mut expected = numbers.to_vec();
    expected.sort_unstable();
    if sorted_used != expected {
        return Err(Failure::WrongNumbers { used, expected: numbers.to_vec() });
    }
    let value = expr.value().ok_or(Failure::DivisionByZero)?;
    if value == BigRational::from_integer(BigInt::from(target)) {
        Ok(())
    } else {
        Err(Failure::WrongValue { value: value.to_string(), target: target.to_string() })
    }
}

/// A parsed Countdown expression.
#[derive(Debug, PartialEq)]
enum Node {
    Num(u64),
    Bin(Box<Node>, char, Box<Node>),
}

impl Node {
    fn leaves(&self, out: &mut Vec<u64>) {
        match self {
            Node::Num(n) => out.push(*n),
            Node::Bin(a, _, b) => {
                a.leaves(out);
                b.leaves(out);
            }
        }
    }

    /// The exact value, `None` on division by zero.
    fn value(&self) -> Option<BigRational> {
        Some(match self {
            Node::Num(n) => BigRational::from_integer(BigInt::from(*n)),
            Node::Bin(a, op, b) => {
                let (a, b) = (a.value()?, b.value()?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    _ => {
                        if b.is_zero() {
                            return None;
                        }
                        a / b
                    }
                }
            }
        })
    }
}

fn malformed(reason: impl Into<String>) -> Failure {
    Failure::Malformed { reason: reason.into() }
}

/// Tokens: numbers, the four operators, parentheses.
fn tokens(answer: &str) -> Result<Vec<Tok>, Failure> {
    let mut s = answer.trim().trim_matches('$').trim();
    // `(75-25)*2 = 100`: the value on the right is not part of the answer.
    if let Some(eq) = s.find('=') {
        s = s[..eq].trim();
    }
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c.is_ascii_digit() {
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let n = rest[..len].parse::<u64>().map_err(|_| malformed("number too large"))?;
            out.push(Tok::Num(n));
            rest = &rest[len..];
            continue;
        }
        let Some((spelling, tok)) = SPELLINGS.iter().find(|(sp, _)| rest.starts_with(sp)) else {
            return Err(malformed(format!("unexpected `{c}` in `{s}`")));
        };
        out.push(*tok);
        rest = &rest[spelling.len()..];
    }
    if out.is_empty() {
        return Err(malformed("empty expression"));
    }
    Ok(out)
}

/// Accepted spellings of the operators and parentheses.
const SPELLINGS: &[(&str, Tok)] = &[
    ("+", Tok::Op('+')),
    ("-", Tok::Op('-')),
    ("*", Tok::Op('*')),
    ("/", Tok::Op('/')),
    ("(", Tok::Open),
    (")", Tok::Close),
    ("\\times", Tok::Op('*')),
    ("\\cdot", Tok::Op('*')),
    ("\\div", Tok::Op('/')),
    ("\\left(", Tok::Open),
    ("\\right)", Tok::Close),
    ("×", Tok::Op('*')),
    ("·", Tok::Op('*')),
    ("÷", Tok::Op('/')),
    ("−", Tok::Op('-')),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Num(u64),
    Op(char),
    Open,
    Close,
}

/// Parses `answer` with the grammar `expr := term (('+'|'-') term)*`,
/// `term := atom (('*'|'/') atom)*`, `atom := number | '(' expr ')'`.
fn parse(answer: &str) -> Result<Node, Failure> {
    let toks = tokens(answer)?;
    let mut pos = 0;
    let node = expr(&toks, &mut pos, 0)?;
    if pos != toks.len() {
        return Err(malformed("unexpected text after the expression"));
    }
    Ok(node)
}

fn expr(toks: &[Tok], pos: &mut usize, depth: usize) -> Result<Node, Failure> {
    let mut node = term(toks, pos, depth)?;
    while let Some(&Tok::Op(op @ ('+' | '-'))) = toks.get(*pos) {
        *pos += 1;
        node = Node::Bin(Box::new(node), op, Box::new(term(toks, pos, depth)?));
    }
    Ok(node)
}

fn term(toks: &[Tok], pos: &mut usize, depth: usize) -> Result<Node, Failure> {
    let mut node = atom(toks, pos, depth)?;
    while let Some(&Tok::Op(op @ ('*' | '/'))) = toks.get(*pos) {
        *pos += 1;
        node = Node::Bin(Box::new(node), op, Box::new(atom(toks, pos, depth)?));
    }
    Ok(node)
}

fn atom(toks: &[Tok], pos: &mut usize, depth: usize) -> Result<Node, Failure> {
    let tok = toks.get(*pos).copied();
    *pos += 1;
    match tok {
        Some(Tok::Num(n)) => Ok(Node::Num(n)),
        Some(Tok::Open) => {
            if depth >= MAX_DEPTH {
                return Err(malformed("parentheses nested too deeply"));
            }
            let node = expr(toks, pos, depth + 1)?;
            if toks.get(*pos) != Some(&Tok::Close) {
                return Err(malformed("unbalanced parentheses"));
            }
            *pos += 1;
            Ok(node)
        }
        Some(Tok::Op(op)) => Err(malformed(format!("`{op}` where a number was expected"))),
        Some(Tok::Close) => Err(malformed("`)` where a number was expected")),
        None => Err(malformed("expression ends early")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(numbers: &[u64], target: u64, response: &str) -> Scored {
        CountdownReward::default().score(&CountdownProblem::new(numbers.to_vec(), target), response)
    }

    #[test]
    fn correct_answers_in_many_spellings() {
        for answer in [
            "\\boxed{(75-25)*2}",
            "\\boxed{2*(75-25)}",
            "\\boxed{(75 - 25) \\times 2}",
            "\\boxed{\\left(75-25\\right)\\cdot 2}",
            "\\boxed{(75−25)×2}",
            "\\boxed{(75-25)*2=100}",
            "The answer is $(75-25)*2$.",
            "\\boxed{((75)-(25))*2}",
        ] {
            assert_eq!(score(&[75, 25, 2], 100, answer).reward, 1.0, "{answer}");
        }
        // Fractions in between are fine in exact arithmetic: 6 / (1 - 3/4) = 24.
        assert!(score(&[6, 1, 3, 4], 24, "\\boxed{6/(1-3/4)}").is_correct());
    }

    #[test]
    fn every_number_exactly_once() {
        let s = score(&[75, 25, 2], 100, "\\boxed{75+25}");
        assert_eq!(
            s.failure,
            Some(Failure::WrongNumbers { used: vec![75, 25], expected: vec![75, 25, 2] })
        );
        let s = score(&[75, 25, 2], 100, "\\boxed{(75-25)*2*1}");
        assert!(matches!(s.failure, Some(Failure::WrongNumbers { .. })));
        let s = score(&[3, 3], 9, "\\boxed{3*3}");
        assert!(s.is_correct());
        let s = score(&[3, 3], 9, "\\boxed{3*3*3/3}");
        assert!(matches!(s.failure, Some(Failure::WrongNumbers { .. })));
    }

    #[test]
    fn wrong_values_and_division_by_zero() {
        let s = score(&[5, 2], 3, "\\boxed{5/2}");
        assert_eq!(
            s.failure,
            Some(Failure::WrongValue { value: "5/2".into(), target: "3".into() })
        );
        let s = score(&[4, 4, 1], 1, "\\boxed{1/(4-4)}");
        assert_eq!(s.failure, Some(Failure::DivisionByZero));
        let s = CountdownReward { format_score: 0.1 }
            .score(&CountdownProblem::new(vec![5, 2], 3), "\\boxed{5+2}");
        assert_eq!(s.reward, 0.1);
    }

    #[test]
    fn malformed_answers_score_zero() {
        for answer in [
            "\\boxed{-75+25*2}",
            "\\boxed{75^2}",
            "\\boxed{(75-25)*2)}",
            "\\boxed{((75-25)*2}",
            "\\boxed{75 25 2}",
            "\\boxed{2(75-25)}",
            "\\boxed{1.5*2}",
            "\\boxed{99999999999999999999999}",
            "\\boxed{x}",
            "\\boxed{=100}",
            "\\boxed{75+}",
        ] {
            let s = CountdownReward { format_score: 0.1 }
                .score(&CountdownProblem::new(vec![75, 25, 2], 100), answer);
            assert_eq!(s.reward, 0.0, "{answer}");
            assert!(
                matches!(s.failure, Some(Failure::Malformed { .. })),
                "{answer}: {:?}",
                s.failure
            );
        }
        assert_eq!(score(&[1], 1, "nothing").failure, Some(Failure::NoAnswer));
    }

    #[test]
    fn deep_and_long_inputs_are_bounded() {
        let deep = format!("\\boxed{{{}1{}}}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(!score(&[1], 1, &deep).is_correct());
        let deep = format!("\\boxed{{{}1{}}}", "(".repeat(300), ")".repeat(300));
        assert!(matches!(score(&[1], 1, &deep).failure, Some(Failure::Malformed { .. })));
        let long = format!("\\boxed{{{}}}", vec!["1"; 400].join("+"));
        assert!(matches!(score(&[1], 1, &long).failure, Some(Failure::WrongNumbers { .. })));
    }
}
