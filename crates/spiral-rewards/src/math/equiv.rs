//! Equivalence of two parsed answers.
//!
//! Scalars: exact rationals compare exactly; when either side was written with a decimal point
//! the Qwen2.5-Math tolerance applies (relative 1e-4, so `0.3333` matches `1/3`), evaluated in
//! exact rational arithmetic so that no value is rounded to ∞ or 0 first; irrational constants
//! compare numerically to 1e-9; expressions with variables compare at several fixed pseudo-random
//! complex points (relative 1e-6 at each). A floating-point comparison is false unless both values
//! are finite. Structures compare item by item with the rules of [`answer`](super::answer):
//! bracket kind matters for two-item sequences (intervals), sets are unordered, a bare list is a
//! set against sets and lists and an ordered tuple against tuples, an equation `x = 5` matches the
//! bare value `5`, and two equations match when one side minus the other agree up to a non-zero
//! constant factor.

use std::collections::BTreeSet;

use num_rational::BigRational;
use num_traits::Signed;

use super::answer::Answer;
use super::exact::{Exact, exact_value};
use super::expr::Expr;
use super::numeric::{C64, evaluate};

/// Relative tolerance when a decimal literal is involved (Qwen2.5-Math's `isclose(rel_tol=1e-4)`).
const DECIMAL_TOLERANCE: f64 = 1e-4;

/// `1 / DECIMAL_TOLERANCE`, for the same test in exact rationals.
const DECIMAL_TOLERANCE_INVERSE: u32 = 10_000;

/// Relative tolerance for constant expressions without decimals (`\sqrt 8` against `2\sqrt 2`).
const CONSTANT_TOLERANCE: f64 = 1e-9;

/// Relative tolerance at each sample point for expressions with variables.
const SYMBOLIC_TOLERANCE: f64 = 1e-6;

/// Points at which expressions with variables are compared.
const SAMPLE_POINTS: usize = 6;

/// Points that must evaluate on both sides for a symbolic match.
const MIN_VALID_POINTS: usize = 4;

/// The most distinct variables compared symbolically.
const MAX_VARIABLES: usize = 8;

/// Whether two answers are equivalent.
pub(crate) fn answers_equal(a: &Answer, b: &Answer) -> bool {
    use Answer as A;
    match (a, b) {
        (A::Expr(x), A::Expr(y)) => scalars_equal(x, y),
        (A::Equation(l1, r1), A::Equation(l2, r2)) => equations_equal(l1, r1, l2, r2),
        // `x = 5` against `5`: the value on the right, when the left is a variable.
        // A computation between constants (`\frac12 = \frac{10}{20}`) ends in its value.
        (A::Equation(l, r), A::Expr(y)) | (A::Expr(y), A::Equation(l, r)) => {
            (matches!(l, Expr::Var(_)) || (is_constant(l) && is_constant(r))) && scalars_equal(r, y)
        }
        (A::Seq { open: o1, close: c1, items: i1 }, A::Seq { open: o2, close: c2, items: i2 }) => {
            // Two items may be an interval, where `(` and `[` differ; longer tuples are ordered
            // lists whatever their brackets.
            let kinds_match = i1.len() != 2 || (o1 == o2 && c1 == c2);
            kinds_match && i1.len() == i2.len() && pairwise(i1, i2)
        }
        (A::Set(x) | A::List(x), A::Set(y) | A::List(y)) | (A::Union(x), A::Union(y)) => {
            same_elements(x, y)
        }
        // A bare list names no bracket: it matches a tuple or interval item by item, in order
        // (`3, 4` is `(3, 4)`, `x = 5, y = 6` is `(5, 6)`), as the Qwen2.5-Math grader does.
        (A::List(x), A::Seq { items, .. }) | (A::Seq { items, .. }, A::List(x)) => {
            x.len() == items.len() && pairwise(x, items)
        }
        (A::Matrix(x), A::Matrix(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(r1, r2)| r1.len() == r2.len() && pairwise(r1, r2))
        }
        (A::Text(x), A::Text(y)) => x == y,
        _ => false,
    }
}

/// Whether `e` has no variables.
fn is_constant(e: &Expr) -> bool {
    let mut vars = BTreeSet::new();
    e.collect_vars(&mut vars);
    vars.is_empty()
}

fn pairwise(a: &[Answer], b: &[Answer]) -> bool {
    a.iter().zip(b).all(|(x, y)| answers_equal(x, y))
}

/// Set equality: every element of each side has an equal on the other.
fn same_elements(a: &[Answer], b: &[Answer]) -> bool {
    let covered =
        |x: &[Answer], y: &[Answer]| x.iter().all(|e| y.iter().any(|f| answers_equal(e, f)));
    covered(a, b) && covered(b, a)
}

/// `l1 = r1` against `l2 = r2`: side by side, or `l1 - r1` a non-zero constant multiple of
/// `l2 - r2` (`2x+4y-3=0` is `y=-x/2+3/4`), as Math-Verify decides.
fn equations_equal(l1: &Expr, r1: &Expr, l2: &Expr, r2: &Expr) -> bool {
    if scalars_equal(l1, l2) && scalars_equal(r1, r2) {
        return true;
    }
    proportional(&Expr::difference(l1, r1), &Expr::difference(l2, r2))
}

/// Whether `a = c * b` for a constant `c != 0`, tested at the sample points (expressions with
/// variables only: constant equations are compared side by side).
fn proportional(a: &Expr, b: &Expr) -> bool {
    let mut vars = BTreeSet::new();
    a.collect_vars(&mut vars);
    b.collect_vars(&mut vars);
    if vars.is_empty() || vars.len() > MAX_VARIABLES || a.has_infinity() || b.has_infinity() {
        return false;
    }
    let tolerance =
        if a.has_decimal() || b.has_decimal() { DECIMAL_TOLERANCE } else { SYMBOLIC_TOLERANCE };
    let names: Vec<&str> = vars.into_iter().collect();
    let mut ratio: Option<C64> = None;
    for point in 0..SAMPLE_POINTS {
        let env: Vec<(&str, C64)> =
            names.iter().enumerate().map(|(v, name)| (*name, sample(point, v))).collect();
        let (Some(x), Some(y)) = (evaluate(a, &env), evaluate(b, &env)) else { return false };
        // Both sides vanishing everywhere would make any equation match; require a non-zero value.
        let c =
            *ratio.get_or_insert_with(|| if y.abs() > 0.0 { x / y } else { C64::new(0.0, 0.0) });
        if c.abs() == 0.0 || !close(x, c * y, tolerance) {
            return false;
        }
    }
    true
}

/// Whether two expressions have the same value (see the module docs).
pub(crate) fn scalars_equal(a: &Expr, b: &Expr) -> bool {
    let decimal = a.has_decimal() || b.has_decimal();
    let mut vars = BTreeSet::new();
    a.collect_vars(&mut vars);
    b.collect_vars(&mut vars);
    if vars.is_empty() {
        return constants_equal(a, b, decimal);
    }
    if vars.len() > MAX_VARIABLES || a.has_infinity() || b.has_infinity() {
        return false;
    }
    let tolerance = if decimal { DECIMAL_TOLERANCE } else { SYMBOLIC_TOLERANCE };
    let names: Vec<&str> = vars.into_iter().collect();
    let mut valid = 0;
    for point in 0..SAMPLE_POINTS {
        let env: Vec<(&str, C64)> =
            names.iter().enumerate().map(|(v, name)| (*name, sample(point, v))).collect();
        match (evaluate(a, &env), evaluate(b, &env)) {
            (Some(x), Some(y)) if close(x, y, tolerance) => valid += 1,
            (None, None) => {}
            _ => return false,
        }
    }
    valid >= MIN_VALID_POINTS
}

/// Constant expressions: exactly when both are rational (or infinite), else numerically.
fn constants_equal(a: &Expr, b: &Expr, decimal: bool) -> bool {
    match (exact_value(a), exact_value(b)) {
        // Never through `f64`: `10^{400}` would become ∞ and match anything.
        (Some(Exact::Rational(x)), Some(Exact::Rational(y))) => {
            x == y || (decimal && rationals_close(&x, &y))
        }
        (Some(x @ Exact::Infinity { .. }), Some(y))
        | (Some(y), Some(x @ Exact::Infinity { .. })) => x == y,
        _ => {
            let tolerance = if decimal { DECIMAL_TOLERANCE } else { CONSTANT_TOLERANCE };
            match (evaluate(a, &[]), evaluate(b, &[])) {
                (Some(x), Some(y)) => close(x, y, tolerance),
                _ => false,
            }
        }
    }
}

/// `|x - y| <= 1e-4 * max(|x|, |y|)` in exact arithmetic (Qwen2.5-Math's `isclose(rel_tol=1e-4)`,
/// whose absolute tolerance is 0): `0.3333` matches `1/3`, and `10^{-20}` does not match `0`.
fn rationals_close(x: &BigRational, y: &BigRational) -> bool {
    let scale = BigRational::from_integer(DECIMAL_TOLERANCE_INVERSE.into());
    (x - y).abs() * scale <= x.abs().max(y.abs())
}

/// `|x - y| <= tol * max(|x|, |y|)`, with a tiny absolute floor for values that should be zero
/// (`\sin\pi` is `1.2e-16` in floating point). False unless every quantity is finite: an
/// overflow (`|x| = ∞`) would otherwise make the bound infinite and anything match.
fn close(x: C64, y: C64, tolerance: f64) -> bool {
    let (difference, magnitude) = ((x - y).abs(), x.abs().max(y.abs()));
    difference.is_finite() && magnitude.is_finite() && difference <= tolerance * magnitude + 1e-12
}

/// The value of variable `var` at sample point `point`: a fixed pseudo-random complex number with
/// modulus in [0.5, 1.5] and argument in [0.1, 0.6] rad, the same on every run.
fn sample(point: usize, var: usize) -> C64 {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ ((point as u64) << 32 | var as u64);
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let modulus = 0.5 + next();
    let argument = 0.1 + 0.5 * next();
    C64::new(modulus * argument.cos(), modulus * argument.sin())
}

#[cfg(test)]
mod tests {
    use super::super::answer::parse_answer;
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        answers_equal(&parse_answer(a), &parse_answer(b))
    }

    #[test]
    fn sample_points_are_distinct_and_in_range() {
        let mut seen = Vec::new();
        for p in 0..SAMPLE_POINTS {
            for v in 0..3 {
                let z = sample(p, v);
                assert!((0.5..=1.5).contains(&z.abs()));
                assert!(z.re > 0.0 && z.im > 0.0);
                assert!(!seen.contains(&z));
                seen.push(z);
            }
        }
    }

    #[test]
    fn scalars() {
        assert!(eq("\\frac{1}{2}", "0.5"));
        assert!(eq("\\frac{1}{3}", "0.3333"));
        assert!(!eq("\\frac{1}{3}", "0.33"));
        assert!(eq("\\sqrt{8}", "2\\sqrt{2}"));
        assert!(eq("\\sqrt{2}", "1.41421"));
        assert!(!eq("\\sqrt{2}", "1.41"));
        assert!(!eq("100000", "100001"));
        assert!(eq("\\pi/2", "\\frac{\\pi}{2}"));
        assert!(eq("-\\infty", "-\\infty"));
        assert!(!eq("\\infty", "-\\infty"));
        assert!(!eq("\\infty", "5"));
        assert!(eq("3+4i", "4i+3"));
    }

    #[test]
    fn symbolic() {
        assert!(eq("x^2+2x+1", "(x+1)^2"));
        assert!(!eq("x^2+2x+1", "(x-1)^2"));
        assert!(eq("\\frac{x^2-1}{x-1}", "x+1"));
        assert!(eq("\\sin^2 x + \\cos^2 x", "1"));
        assert!(eq("2ab", "2ba"));
        assert!(!eq("2x", "2y"));
        assert!(eq("e^{\\ln x}", "x"));
        assert!(!eq("x", "x + 10^{-3}"));
    }

    #[test]
    fn structures() {
        assert!(eq("(1, 2)", "(1,2)"));
        assert!(!eq("(1, 2)", "[1, 2]"));
        assert!(!eq("(1, 2]", "(1, 2)"));
        assert!(eq("[1, 2, 3]", "(1, 2, 3)"));
        assert!(!eq("(1, 2, 3)", "(3, 2, 1)"));
        assert!(eq("\\{1, 2\\}", "\\{2, 1\\}"));
        assert!(eq("1, 2", "2, 1"));
        assert!(!eq("1, 2", "1, 3"));
        assert!(eq("x = 1, x = 2", "2, 1"));
        assert!(eq("(-\\infty, 1) \\cup (2, \\infty)", "(2, \\infty) \\cup (-\\infty, 1)"));
        assert!(eq("x > 3", "(3, \\infty)"));
        assert!(!eq("x \\ge 3", "(3, \\infty)"));
        assert!(eq("x = 5", "5"));
        assert!(eq("5", "y = 5"));
        assert!(eq("x = 5 + 5 + 1 = 11", "x = 11"));
        assert!(!eq("2x + z = 1", "1"));
        assert!(!eq("7 = 11a + c", "11a + c"));
        assert!(eq("y = 2x + 1", "y = 1 + 2x"));
        assert!(eq("x + y = 1", "1 - y = x"));
        assert!(eq("2x + 4y - 3 = 0", "y = -\\frac{1}{2}x + \\frac{3}{4}"));
        assert!(eq("x^2/4 + y^2/3 = 1", "x^2/16 + y^2/12 = 1/4"));
        assert!(eq("34x+45y-20z+100=0", "-34x-45y+20z-100=0"));
        assert!(!eq("y = 2x + 1", "y = 2x + 2"));
        assert!(!eq("x = x", "y = y"));
        assert!(eq("1 \\pm \\sqrt{2}", "1 + \\sqrt 2, 1 - \\sqrt 2"));
        assert!(eq("\\matbegin 1 & 2 \\\\ 3 & 4 \\matend", "\\matbegin 1 & 2 \\\\ 3 & 4 \\matend"));
        assert!(!eq(
            "\\matbegin 1 & 2 \\\\ 3 & 4 \\matend",
            "\\matbegin 1 & 2 \\\\ 4 & 3 \\matend"
        ));
        assert!(!eq("\\{1\\}", "1"));
        assert!(eq("monday", "MONDAY"));
    }
}
