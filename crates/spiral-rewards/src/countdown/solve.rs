//! A Countdown solver: combine all the numbers, each exactly once, with `+ - * /` into the target,
//! keeping every intermediate a positive integer (the rules of the TV game and of TinyZero's
//! Countdown task). Used to write solution traces and, through [`combine`], to decide which
//! targets the generator may ask for.
//!
//! The search tries *chains* first (each step combines the running result with one new number:
//! `75-25=50`, `50*2=100`), because their traces are the most regular for a small model to learn;
//! only when no chain exists does it search general trees (`(a*b)-(c*d)`). Both searches are
//! deterministic: the same problem always gets the same solution.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// The most numbers [`solve`] accepts (the general search grows factorially).
pub const MAX_SOLVER_NUMBERS: usize = 6;

/// Intermediate values above this are not explored (no overflow, bounded search).
const MAX_VALUE: i64 = 1_000_000_000;

/// A binary operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl Op {
    /// All operations, in the order the solver tries them.
    pub const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Div];

    /// The operator's symbol.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }
}

/// One step of a solution: `left op right = result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The left operand.
    pub left: i64,
    /// The operation.
    pub op: Op,
    /// The right operand.
    pub right: i64,
    /// The result.
    pub result: i64,
}

/// A solution: its steps in order, and the whole expression (intermediate results in
/// parentheses, e.g. `((75-25)*2)+10`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solution {
    /// The steps; the last one's result is the target.
    pub steps: Vec<Step>,
    /// The expression using every number once.
    pub expression: String,
}

/// `a op b` when it is a positive integer no larger than the search bound.
pub(crate) fn combine(a: i64, op: Op, b: i64) -> Option<i64> {
    let r = match op {
        Op::Add => a.checked_add(b)?,
        Op::Sub => a.checked_sub(b)?,
        Op::Mul => a.checked_mul(b)?,
        Op::Div => match a.checked_rem(b)? {
            0 => a.checked_div(b)?,
            _ => return None,
        },
    };
    (r > 0 && r <= MAX_VALUE).then_some(r)
}

/// A given number as the search uses it: positive and within the search bound.
pub(super) fn to_value(n: u64) -> Option<i64> {
    i64::try_from(n).ok().filter(|&v| v > 0 && v <= MAX_VALUE)
}

/// A value being built: its number and the expression that produced it.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) value: i64,
    pub(super) expr: String,
    atom: bool,
}

impl Item {
    /// A given number.
    pub(super) fn number(value: i64) -> Self {
        Item { value, expr: value.to_string(), atom: true }
    }

    fn operand(&self) -> String {
        if self.atom { self.expr.clone() } else { format!("({})", self.expr) }
    }

    /// `self op other` and its step, when the result is a positive integer in bounds.
    pub(super) fn apply(&self, op: Op, other: &Item) -> Option<(Item, Step)> {
        let result = combine(self.value, op, other.value)?;
        let step = Step { left: self.value, op, right: other.value, result };
        let expr = format!("{}{}{}", self.operand(), op.symbol(), other.operand());
        Some((Item { value: result, expr, atom: false }, step))
    }
}

/// A solution for `numbers` and `target` under the rules above, or `None` when there is none
/// (or more than [`MAX_SOLVER_NUMBERS`] numbers, or a number or target that is zero or too large).
///
/// ```
/// use spiral_rewards::solve_countdown;
///
/// let s = solve_countdown(&[75, 25, 2], 100).unwrap();
/// assert_eq!(s.expression, "(75-25)*2");
/// assert_eq!(s.steps.len(), 2);
/// assert!(solve_countdown(&[1, 1], 7).is_none());
/// ```
pub fn solve(numbers: &[u64], target: u64) -> Option<Solution> {
    if numbers.is_empty() || numbers.len() > MAX_SOLVER_NUMBERS {
        return None;
    }
    let target = to_value(target)?;
    let items: Vec<Item> =
        numbers.iter().map(|&n| to_value(n).map(Item::number)).collect::<Option<_>>()?;
    if items.len() == 1 {
        return (items[0].value == target)
            .then(|| Solution { steps: Vec::new(), expression: items[0].expr.clone() });
    }
    let mut steps = Vec::new();
    for start in 0..items.len() {
        if items[..start].iter().any(|i| i.value == items[start].value) {
            continue;
        }
        let mut rest = items.clone();
        let acc = rest.remove(start);
        if let Some(expr) = chain(&acc, &rest, target, &mut steps) {
            return Some(Solution { steps, expression: expr });
        }
    }
    let mut visited = HashSet::new();
    let expr = tree(items, target, &mut steps, &mut visited)?;
    Some(Solution { steps, expression: expr })
}

/// Chains: combine `acc` with each remaining number in turn (either side of `-` and `/`).
fn chain(acc: &Item, rest: &[Item], target: i64, steps: &mut Vec<Step>) -> Option<String> {
    if rest.is_empty() {
        return (acc.value == target).then(|| acc.expr.clone());
    }
    for (i, next) in rest.iter().enumerate() {
        if rest[..i].iter().any(|r| r.value == next.value) {
            continue;
        }
        let remaining: Vec<Item> =
            rest.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, r)| r.clone()).collect();
        for op in Op::ALL {
            let mut candidates = vec![acc.apply(op, next)];
            if matches!(op, Op::Sub | Op::Div) {
                candidates.push(next.apply(op, acc));
            }
            for (item, step) in candidates.into_iter().flatten() {
                steps.push(step);
                if let Some(expr) = chain(&item, &remaining, target, steps) {
                    return Some(expr);
                }
                steps.pop();
            }
        }
    }
    None
}

/// General trees: combine any two items, recursively; `visited` holds failed multisets.
fn tree(
    items: Vec<Item>,
    target: i64,
    steps: &mut Vec<Step>,
    visited: &mut HashSet<Vec<i64>>,
) -> Option<String> {
    if items.len() == 1 {
        return (items[0].value == target).then(|| items[0].expr.clone());
    }
    let mut key: Vec<i64> = items.iter().map(|i| i.value).collect();
    key.sort_unstable();
    if !visited.insert(key) {
        return None;
    }
    for i in 0..items.len() {
        for j in 0..items.len() {
            if i == j {
                continue;
            }
            for op in Op::ALL {
                // Commutative operations once per pair.
                if matches!(op, Op::Add | Op::Mul) && j < i {
                    continue;
                }
                let Some((item, step)) = items[i].apply(op, &items[j]) else { continue };
                let mut next: Vec<Item> = items
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .map(|(_, it)| it.clone())
                    .collect();
                next.push(item);
                steps.push(step);
                if let Some(expr) = tree(next, target, steps, visited) {
                    return Some(expr);
                }
                steps.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(numbers: &[u64], target: u64) -> Solution {
        let s = solve(numbers, target).unwrap_or_else(|| panic!("{numbers:?} -> {target}"));
        assert_eq!(s.steps.len(), numbers.len() - 1);
        assert_eq!(s.steps.last().map(|s| s.result as u64), Some(target));
        for step in &s.steps {
            assert_eq!(combine(step.left, step.op, step.right), Some(step.result));
        }
        s
    }

    #[test]
    fn combine_never_overflows() {
        assert_eq!(combine(i64::MIN, Op::Div, -1), None);
        assert_eq!(combine(i64::MIN, Op::Mul, -1), None);
        assert_eq!(combine(i64::MAX, Op::Add, 1), None);
        assert_eq!(combine(i64::MIN, Op::Sub, 1), None);
        assert_eq!(combine(7, Op::Div, 0), None);
        assert_eq!(combine(-8, Op::Div, -2), Some(4));
    }

    #[test]
    fn chains_come_first() {
        let s = check(&[75, 25, 2], 100);
        assert_eq!(s.expression, "(75-25)*2");
        assert_eq!(s.steps[0], Step { left: 75, op: Op::Sub, right: 25, result: 50 });
        // 6 - 4 = 2 needs the number on the left.
        let s = check(&[4, 6], 2);
        assert_eq!(s.expression, "6-4");
    }

    #[test]
    fn trees_when_no_chain_exists() {
        // 11 = (2*6) - (2/2): no chain of one new number per step reaches it.
        let s = check(&[2, 2, 2, 6], 11);
        assert_eq!(s.expression, "(2*6)-(2/2)");
    }

    #[test]
    fn unsolvable_and_out_of_range() {
        assert!(solve(&[1, 1], 7).is_none());
        assert!(solve(&[], 1).is_none());
        assert!(solve(&[1; 7], 7).is_none());
        assert!(solve(&[0, 5], 5).is_none());
        assert!(solve(&[u64::MAX, 1], 1).is_none());
        assert_eq!(solve(&[7], 7).map(|s| s.expression), Some("7".into()));
    }

    #[test]
    fn six_numbers_terminate() {
        let start = std::time::Instant::now();
        let _ = solve(&[1, 2, 3, 4, 5, 6], 997);
        let _ = solve(&[97, 89, 83, 79, 73, 71], 1);
        assert!(start.elapsed().as_secs_f64() < 10.0);
    }
}
