//! Exact evaluation of constant expressions to big rationals (or ±∞).
//!
//! Integers and fractions are compared exactly, never through floats: `12345678901234567891` is
//! not `12345678901234567890`. Every intermediate result is kept under [`MAX_BITS`] bits and every
//! power, factorial and binomial is sized *before* it is computed, so `10^{10^{10}}` or `100000!`
//! cost nothing: they are "not exact", and the comparison falls back to numeric evaluation (where
//! they overflow and compare unequal) or to text. Irrational values (`\sqrt 2`, `\pi`) are not
//! exact either; perfect powers are (`\sqrt{16/9}` is 4/3, `8^{2/3}` is 4, `\log_2 8` is 3).

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::expr::{Expr, Func};

/// The most bits (numerator plus denominator) of any exact intermediate value.
pub(crate) const MAX_BITS: u64 = 1 << 14;

/// The largest `n` whose `n!` is computed exactly.
const MAX_FACTORIAL: u64 = 1000;

/// The largest root index taken exactly (`\sqrt[n]{x}`, `x^{p/n}`).
const MAX_ROOT: u32 = 64;

/// An exact value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exact {
    /// A rational number.
    Rational(BigRational),
    /// +∞ or -∞.
    Infinity { negative: bool },
}

/// The exact value of `e`, or `None` when it is irrational, has variables, is undefined (division
/// by zero) or too large.
pub(crate) fn exact_value(e: &Expr) -> Option<Exact> {
    match e {
        Expr::Infinity => Some(Exact::Infinity { negative: false }),
        Expr::Neg(inner) => match exact_value(inner)? {
            Exact::Rational(r) => Some(Exact::Rational(-r)),
            Exact::Infinity { negative } => Some(Exact::Infinity { negative: !negative }),
        },
        _ => rational(e).map(Exact::Rational),
    }
}

/// `r` if it fits in [`MAX_BITS`].
fn bounded(r: BigRational) -> Option<BigRational> {
    (r.numer().bits() + r.denom().bits() <= MAX_BITS).then_some(r)
}

/// The exact rational value of `e`.
pub(crate) fn rational(e: &Expr) -> Option<BigRational> {
    match e {
        Expr::Num { value, .. } => Some(value.clone()),
        Expr::Pi | Expr::E | Expr::I | Expr::Infinity | Expr::Var(_) => None,
        Expr::Sum(terms) => {
            let mut acc = BigRational::zero();
            for (negated, t) in terms {
                let v = rational(t)?;
                acc = bounded(if *negated { acc - v } else { acc + v })?;
            }
            Some(acc)
        }
        Expr::Product(factors) => {
            let mut acc = BigRational::one();
            for (divided, f) in factors {
                let v = rational(f)?;
                if *divided {
                    if v.is_zero() {
                        return None;
                    }
                    acc = bounded(acc / v)?;
                } else {
                    acc = bounded(acc * v)?;
                }
            }
            Some(acc)
        }
        Expr::Neg(a) => rational(a).map(|v| -v),
        Expr::Pow(b, x) => power(&rational(b)?, &rational(x)?),
        Expr::Call(f, a) => call(*f, rational(a)?),
        Expr::Log { base, arg } => {
            let base = match base {
                Some(b) => rational(b)?,
                None => return None,
            };
            log(&base, &rational(arg)?)
        }
        Expr::Factorial(a) => factorial(&rational(a)?),
        Expr::Binom(n, k) => binomial(&rational(n)?, &rational(k)?),
    }
}

/// Functions with rational results on rational arguments.
fn call(f: Func, x: BigRational) -> Option<BigRational> {
    match f {
        Func::Sqrt => root(&x, 2),
        Func::Abs => Some(x.abs()),
        Func::Floor => Some(x.floor()),
        Func::Ceil => Some(x.ceil()),
        // Only the trivial points are rational; the numeric path handles the rest.
        Func::Sin | Func::Tan | Func::Asin | Func::Atan | Func::Sinh | Func::Tanh
            if x.is_zero() =>
        {
            Some(BigRational::zero())
        }
        Func::Cos | Func::Cosh | Func::Exp | Func::Sec if x.is_zero() => Some(BigRational::one()),
        Func::Ln if x.is_one() => Some(BigRational::zero()),
        _ => None,
    }
}

/// `base ^ exponent`, when rational and small enough.
pub(crate) fn power(base: &BigRational, exponent: &BigRational) -> Option<BigRational> {
    if exponent.is_integer() {
        return integer_power(base, exponent.numer());
    }
    // x^(p/q) = (x^(1/q))^p, with the root exact. Negative bases have complex principal roots.
    let q = exponent.denom().to_u32().filter(|&q| q <= MAX_ROOT)?;
    integer_power(&root(base, q)?, exponent.numer())
}

/// `base ^ n` for an integer `n`, sized before computing.
fn integer_power(base: &BigRational, n: &BigInt) -> Option<BigRational> {
    if base.is_zero() {
        return match n.sign() {
            num_bigint::Sign::Plus => Some(BigRational::zero()),
            num_bigint::Sign::NoSign => Some(BigRational::one()),
            num_bigint::Sign::Minus => None,
        };
    }
    if base.abs().is_one() {
        let odd = n.bit(0);
        return Some(if base.is_negative() && odd {
            -BigRational::one()
        } else {
            BigRational::one()
        });
    }
    let magnitude = n.abs().to_u64()?;
    // A lower bound of the result's size (log2 of |base| rounded down, times n), within a factor
    // of two of the truth: refuse before computing, then check the result exactly.
    let log2 = (base.numer().bits() - 1) + (base.denom().bits() - 1);
    if log2.checked_mul(magnitude)? > MAX_BITS {
        return None;
    }
    let r = num_traits::pow(base.clone(), usize::try_from(magnitude).ok()?);
    bounded(if n.is_negative() { r.recip() } else { r })
}

/// The exact `q`-th root of `x` (non-negative, perfect power in numerator and denominator).
fn root(x: &BigRational, q: u32) -> Option<BigRational> {
    if x.is_negative() || q == 0 {
        return None;
    }
    let exact_root = |n: &BigInt| {
        let r = n.nth_root(q);
        (num_traits::pow(r.clone(), q as usize) == *n).then_some(r)
    };
    Some(BigRational::new(exact_root(x.numer())?, exact_root(x.denom())?))
}

/// `log_base(x)` when it is an integer `k` with `base^k = x`.
fn log(base: &BigRational, x: &BigRational) -> Option<BigRational> {
    if !base.is_positive() || base.is_one() || !x.is_positive() {
        return None;
    }
    if x.is_one() {
        return Some(BigRational::zero());
    }
    let estimate = x.to_f64()?.ln() / base.to_f64()?.ln();
    if !estimate.is_finite() || estimate.abs() > 4096.0 {
        return None;
    }
    let k = BigInt::from(estimate.round() as i64);
    (integer_power(base, &k)? == *x).then(|| BigRational::from_integer(k))
}

/// `n!` for an integer `0 <= n <= MAX_FACTORIAL`.
fn factorial(n: &BigRational) -> Option<BigRational> {
    if !n.is_integer() || n.is_negative() {
        return None;
    }
    let n = n.to_integer().to_u64().filter(|&n| n <= MAX_FACTORIAL)?;
    let mut acc = BigInt::one();
    for i in 2..=n {
        acc *= i;
    }
    Some(BigRational::from_integer(acc))
}

/// `C(n, k)` for integers, with `n` and `min(k, n - k)` bounded.
fn binomial(n: &BigRational, k: &BigRational) -> Option<BigRational> {
    if !n.is_integer() || !k.is_integer() {
        return None;
    }
    let n = n.to_integer().to_i64()?;
    let k = k.to_integer().to_i64()?;
    if n < 0 {
        return None;
    }
    if k < 0 || k > n {
        return Some(BigRational::zero());
    }
    let k = k.min(n - k);
    if n > 100_000 || k > 2_000 {
        return None;
    }
    let mut acc = BigInt::one();
    for i in 0..k {
        acc = acc * (n - i) / (i + 1);
    }
    bounded(BigRational::from_integer(acc))
}

#[cfg(test)]
mod tests {
    use super::super::{lexer::lex, parser::parse_expr};
    use super::*;

    fn value(s: &str) -> Option<Exact> {
        exact_value(&parse_expr(&lex(s).unwrap()).unwrap())
    }

    fn rat(n: i64, d: i64) -> Option<Exact> {
        Some(Exact::Rational(BigRational::new(n.into(), d.into())))
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(value("\\frac{1}{3} + \\frac{1}{6}"), rat(1, 2));
        assert_eq!(value("0.1 + 0.2"), rat(3, 10));
        assert_eq!(value("2^{-3}"), rat(1, 8));
        assert_eq!(value("(-2)^3"), rat(-8, 1));
        assert_eq!(value("\\sqrt{16/9}"), rat(4, 3));
        assert_eq!(value("8^{2/3}"), rat(4, 1));
        assert_eq!(value("\\sqrt[3]{27}"), rat(3, 1));
        assert_eq!(value("\\log_2 8"), rat(3, 1));
        assert_eq!(value("\\log_{10} 0.001"), rat(-3, 1));
        assert_eq!(value("5!"), rat(120, 1));
        assert_eq!(value("\\binom{10}{3}"), rat(120, 1));
        assert_eq!(value("\\binom{3}{5}"), rat(0, 1));
        assert_eq!(value("|-3|"), rat(3, 1));
        assert_eq!(value("\\lfloor 2.5 \\rfloor"), rat(2, 1));
        assert_eq!(value("\\lceil -2.5 \\rceil"), rat(-2, 1));
        assert_eq!(value("0^0"), rat(1, 1));
        assert_eq!(value("(-1)^{1001}"), rat(-1, 1));
        assert_eq!(value("-\\infty"), Some(Exact::Infinity { negative: true }));
        let big = "12345678901234567890123456789";
        assert_eq!(
            value(big),
            Some(Exact::Rational(BigRational::from_integer(big.parse().unwrap())))
        );
    }

    #[test]
    fn irrational_undefined_and_huge_are_not_exact() {
        for s in [
            "\\sqrt{2}",
            "\\pi",
            "x + 1",
            "1/0",
            "0^{-1}",
            "(-8)^{1/3}",
            "\\log_2 3",
            "\\ln 2",
            "2.5!",
            "(-1)!",
            "10^{10^{10}}",
            "2^{100000}",
            "100000!",
            "\\binom{1000000}{500000}",
            "(10^{4000})^{4000}",
            "2^{2^{2^{2^{2^{2}}}}}",
        ] {
            assert_eq!(value(s), None, "{s}");
        }
        // Large but within bounds.
        assert!(value("2^{10000}").is_some());
        assert!(value("1000!").is_some());
    }
}
