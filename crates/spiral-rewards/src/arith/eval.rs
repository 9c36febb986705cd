//! Step-by-step evaluation of integer arithmetic: the chain of thought of the arithmetic task.
//!
//! One operation per step, in the order a person works by hand: the innermost parentheses
//! first, inside them (and then outside) multiplication and division left to right before
//! addition and subtraction left to right. Every step is checked for overflow, and division must
//! be exact, so each step is an integer fact a small model can learn.

use serde::{Deserialize, Serialize};

/// The longest expression evaluated, in bytes.
const MAX_EXPRESSION_BYTES: usize = 4096;

/// One step: `left op right = result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArithStep {
    /// The left operand.
    pub left: i64,
    /// The operator: one of `+ - * /`.
    pub op: char,
    /// The right operand.
    pub right: i64,
    /// The result.
    pub result: i64,
}

impl ArithStep {
    /// The step as a trace line: `3-12=-9`, `20-(-9)=29` (a negative right operand in
    /// parentheses).
    pub fn line(&self) -> String {
        if self.right < 0 {
            format!("{}{}({})={}", self.left, self.op, self.right, self.result)
        } else {
            format!("{}{}{}={}", self.left, self.op, self.right, self.result)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Num(i64),
    Op(char),
    Open,
    Close,
}

/// The steps evaluating `expression` and its value, or `None` when it is not integer arithmetic
/// (`+ - * /`, parentheses, integers, a leading minus), overflows `i64`, or divides inexactly.
pub fn evaluate_steps(expression: &str) -> Option<(Vec<ArithStep>, i64)> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return None;
    }
    let mut toks = tokenize(expression)?;
    let mut steps = Vec::new();
    loop {
        if let [Tok::Num(v)] = toks.as_slice() {
            return Some((steps, *v));
        }
        // The innermost group: up to the first `)`, from the last `(` before it.
        let (start, end) = match toks.iter().position(|t| *t == Tok::Close) {
            Some(close) => {
                let open = toks[..close].iter().rposition(|t| *t == Tok::Open)?;
                (open + 1, close)
            }
            None => (0, toks.len()),
        };
        if end == start + 1 && start > 0 {
            // `(5)`: drop the parentheses.
            if let Tok::Num(_) = toks[start] {
                toks.remove(end);
                toks.remove(start - 1);
                continue;
            }
            return None;
        }
        let group = &toks[start..end];
        let pick =
            |ops: &[char]| group.iter().position(|t| matches!(t, Tok::Op(c) if ops.contains(c)));
        let at = start + pick(&['*', '/']).or_else(|| pick(&['+', '-']))?;
        let (Some(Tok::Num(left)), Tok::Op(op), Some(Tok::Num(right))) =
            (at.checked_sub(1).map(|i| toks[i]), toks[at], toks.get(at + 1).copied())
        else {
            return None;
        };
        let result = apply(left, op, right)?;
        steps.push(ArithStep { left, op, right, result });
        toks.splice(at - 1..at + 2, [Tok::Num(result)]);
    }
}

fn apply(a: i64, op: char, b: i64) -> Option<i64> {
    match op {
        '+' => a.checked_add(b),
        '-' => a.checked_sub(b),
        '*' => a.checked_mul(b),
        // `checked_rem` also refuses `i64::MIN / -1`, whose remainder overflows.
        '/' => match a.checked_rem(b)? {
            0 => a.checked_div(b),
            _ => None,
        },
        _ => None,
    }
}

/// Tokens of an expression; a `-` at the start or after `(` or an operator is a sign.
fn tokenize(expression: &str) -> Option<Vec<Tok>> {
    let bytes = expression.as_bytes();
    let mut toks: Vec<Tok> = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        let expects_operand = matches!(toks.last(), None | Some(Tok::Op(_) | Tok::Open));
        match b {
            b' ' | b'\t' => i += 1,
            b'0'..=b'9' if expects_operand => {
                let len = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                toks.push(Tok::Num(expression[i..i + len].parse().ok()?));
                i += len;
            }
            b'-' if expects_operand => {
                let len = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                if len == 0 {
                    return None;
                }
                toks.push(Tok::Num(expression[i..i + 1 + len].parse().ok()?));
                i += 1 + len;
            }
            b'+' | b'-' | b'*' | b'/' if !expects_operand => {
                toks.push(Tok::Op(b as char));
                i += 1;
            }
            b'(' if expects_operand => {
                depth += 1;
                toks.push(Tok::Open);
                i += 1;
            }
            b')' if !expects_operand && depth > 0 => {
                depth -= 1;
                toks.push(Tok::Close);
                i += 1;
            }
            _ => return None,
        }
    }
    let ends_well = matches!(toks.last(), Some(Tok::Num(_) | Tok::Close));
    (depth == 0 && ends_well).then_some(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(e: &str) -> Vec<String> {
        evaluate_steps(e).unwrap().0.iter().map(ArithStep::line).collect()
    }

    #[test]
    fn precedence_then_left_to_right() {
        assert_eq!(lines("12+7*3-5"), ["7*3=21", "12+21=33", "33-5=28"]);
        assert_eq!(lines("(12+7)*3-5"), ["12+7=19", "19*3=57", "57-5=52"]);
        assert_eq!(lines("20-(3-12)*2"), ["3-12=-9", "-9*2=-18", "20-(-18)=38"]);
        assert_eq!(lines("8/4/2"), ["8/4=2", "2/2=1"]);
        assert_eq!(lines("2*((3+4)*5)"), ["3+4=7", "7*5=35", "2*35=70"]);
        assert_eq!(evaluate_steps("-3+4").unwrap().1, 1);
        assert_eq!(lines("1--1"), ["1-(-1)=2"]);
        assert_eq!(evaluate_steps("(7)").unwrap(), (vec![], 7));
        assert_eq!(evaluate_steps("42").unwrap(), (vec![], 42));
    }

    #[test]
    fn rejects_what_is_not_integer_arithmetic() {
        for bad in [
            "",
            "1+",
            "+1",
            "(1",
            "1)",
            "()",
            "1 2",
            "7/2",
            "1/0",
            "x+1",
            "2^3",
            "9223372036854775807+1",
            "-9223372036854775808/-1",
            "(-9223372036854775808)/(-1)",
            "-9223372036854775808*-1",
            "0-9223372036854775807-2",
            "-9223372036854775808-1",
            "99999999999999999999",
            "(-)",
            "1---1",
        ] {
            assert!(evaluate_steps(bad).is_none(), "{bad}");
        }
        assert!(evaluate_steps(&"(".repeat(10_000)).is_none());
        // The extremes themselves are fine; only results beyond them are refused.
        assert_eq!(evaluate_steps("-9223372036854775808--1-1").unwrap().1, i64::MIN);
        assert_eq!(evaluate_steps("-9223372036854775808/1").unwrap().1, i64::MIN);
        assert_eq!(evaluate_steps("-9223372036854775807/-1").unwrap().1, i64::MAX);
        let deep = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
        assert_eq!(evaluate_steps(&deep).map(|r| r.1), Some(1));
    }
}
