//! Numeric evaluation of expressions in complex floating point, at chosen values of the variables.
//!
//! This is the "randomised numeric evaluation" half of symbolic equivalence: two expressions that
//! agree at several generic complex points are taken as equal (the Schwartz-Zippel idea; Qwen's
//! grader and Math-Verify get the same answers from sympy's `simplify` and `N`). Complex points
//! keep `\sqrt{x}` and `\ln x` defined everywhere, so domains never need reasoning about. Any
//! non-finite intermediate (overflow, a pole) makes the value undefined, and so does an underflow:
//! a non-zero product, quotient, power, exponential or literal that rounds to zero or to a
//! subnormal number (`10^{-16000}`, `e^{-1000}`) is undefined rather than `0`, so that it cannot
//! match `0` (or another tiny value) by accident.

use std::ops::{Add, Div, Mul, Neg, Sub};

use num_traits::{ToPrimitive, Zero};

use super::expr::{Expr, Func};

/// A complex number in `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct C64 {
    pub(crate) re: f64,
    pub(crate) im: f64,
}

impl C64 {
    pub(crate) const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    const fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    pub(crate) fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }

    fn is_zero(self) -> bool {
        self.re == 0.0 && self.im == 0.0
    }

    /// Whether both parts are below the smallest normal `f64` (zero included): the value of a
    /// non-zero quantity that has lost its precision or vanished.
    fn is_tiny(self) -> bool {
        self.re.abs() < f64::MIN_POSITIVE && self.im.abs() < f64::MIN_POSITIVE
    }

    /// The real value, when the imaginary part is negligible.
    fn as_real(self) -> Option<f64> {
        (self.im.abs() <= 1e-12 * self.re.abs().max(1.0)).then_some(self.re)
    }

    fn exp(self) -> Self {
        let m = self.re.exp();
        Self::new(m * self.im.cos(), m * self.im.sin())
    }

    /// Principal logarithm.
    fn ln(self) -> Self {
        Self::new(self.abs().ln(), self.im.atan2(self.re))
    }

    /// Principal square root.
    fn sqrt(self) -> Self {
        if self.is_zero() {
            return self;
        }
        let r = self.abs();
        let re = ((r + self.re) / 2.0).sqrt();
        let im = ((r - self.re) / 2.0).sqrt().copysign(self.im);
        // Keep the principal branch on the negative real axis (`im` is +0 there).
        if self.im == 0.0 && self.re < 0.0 {
            Self::new(0.0, (-self.re).sqrt())
        } else {
            Self::new(re, im)
        }
    }

    /// `self ^ n` by repeated squaring, for an exact integer `n` (keeps `(x+1)^2` and
    /// `x^2+2x+1` equal to the last bits).
    fn powi(self, n: i64) -> Self {
        let mut base = self;
        let mut e = n.unsigned_abs();
        let mut acc = Self::real(1.0);
        while e > 0 {
            if e & 1 == 1 {
                acc = acc * base;
            }
            base = base * base;
            e >>= 1;
        }
        if n < 0 { Self::real(1.0) / acc } else { acc }
    }

    /// Principal power.
    fn pow(self, e: Self) -> Option<Self> {
        if let Some(n) = e.as_real().filter(|n| n.fract() == 0.0 && n.abs() <= 1024.0) {
            if self.is_zero() && n < 0.0 {
                return None;
            }
            return Some(self.powi(n as i64));
        }
        if self.is_zero() {
            return (e.re > 0.0).then_some(self);
        }
        Some((e * self.ln()).exp())
    }

    fn sin(self) -> Self {
        Self::new(self.re.sin() * self.im.cosh(), self.re.cos() * self.im.sinh())
    }

    fn cos(self) -> Self {
        Self::new(self.re.cos() * self.im.cosh(), -self.re.sin() * self.im.sinh())
    }

    fn sinh(self) -> Self {
        Self::new(self.re.sinh() * self.im.cos(), self.re.cosh() * self.im.sin())
    }

    fn cosh(self) -> Self {
        Self::new(self.re.cosh() * self.im.cos(), self.re.sinh() * self.im.sin())
    }

    /// `asin z = -i ln(iz + sqrt(1 - z^2))`.
    fn asin(self) -> Self {
        let i = Self::new(0.0, 1.0);
        -(i * (i * self + (Self::real(1.0) - self * self).sqrt()).ln())
    }

    /// `atan z = (i/2) (ln(1 - iz) - ln(1 + iz))`.
    fn atan(self) -> Self {
        let i = Self::new(0.0, 1.0);
        let one = Self::real(1.0);
        Self::new(0.0, 0.5) * ((one - i * self).ln() - (one + i * self).ln())
    }
}

impl Add for C64 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C64 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C64 {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
}

impl Div for C64 {
    type Output = Self;
    /// Smith's algorithm: `|o|^2` is never formed, so `1 / 2^{1000}` does not become `1 / ∞ = 0`;
    /// a real divisor gives exactly the real quotient.
    fn div(self, o: Self) -> Self {
        if o.re.abs() >= o.im.abs() {
            let r = o.im / o.re;
            let d = o.re + o.im * r;
            Self::new((self.re + self.im * r) / d, (self.im - self.re * r) / d)
        } else {
            let r = o.re / o.im;
            let d = o.re * r + o.im;
            Self::new((self.re * r + self.im) / d, (self.im * r - self.re) / d)
        }
    }
}

impl Neg for C64 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.re, -self.im)
    }
}

/// The value of `e` with variables bound by `env` (name, value); `None` when undefined, not
/// finite, or a variable is unbound.
pub(crate) fn evaluate(e: &Expr, env: &[(&str, C64)]) -> Option<C64> {
    let v = eval(e, env)?;
    v.is_finite().then_some(v)
}

fn eval(e: &Expr, env: &[(&str, C64)]) -> Option<C64> {
    let v = match e {
        Expr::Num { value, .. } => {
            let v = C64::real(value.to_f64()?);
            if v.is_tiny() && !value.is_zero() {
                return None;
            }
            v
        }
        Expr::Pi => C64::real(std::f64::consts::PI),
        Expr::E => C64::real(std::f64::consts::E),
        Expr::I => C64::new(0.0, 1.0),
        Expr::Infinity => return None,
        Expr::Var(name) => env.iter().find(|(n, _)| n == name)?.1,
        Expr::Sum(terms) => {
            let mut acc = C64::real(0.0);
            for (negated, t) in terms {
                let v = eval(t, env)?;
                acc = if *negated { acc - v } else { acc + v };
            }
            acc
        }
        Expr::Product(factors) => {
            let mut acc = C64::real(1.0);
            for (divided, f) in factors {
                let v = eval(f, env)?;
                if *divided && v.is_zero() {
                    return None;
                }
                let next = if *divided { acc / v } else { acc * v };
                if next.is_tiny() && !acc.is_zero() && !v.is_zero() {
                    return None; // underflow
                }
                acc = next;
            }
            acc
        }
        Expr::Neg(a) => -eval(a, env)?,
        Expr::Pow(b, x) => {
            let base = eval(b, env)?;
            let v = base.pow(eval(x, env)?)?;
            if v.is_tiny() && !base.is_zero() {
                return None; // underflow: a non-zero base has a non-zero power
            }
            v
        }
        Expr::Call(f, a) => call(*f, eval(a, env)?)?,
        Expr::Log { base, arg } => {
            let x = eval(arg, env)?;
            if x.is_zero() {
                return None;
            }
            match base {
                None => x.ln(),
                Some(b) => {
                    let b = eval(b, env)?;
                    let lb = b.ln();
                    if b.is_zero() || lb.is_zero() {
                        return None;
                    }
                    x.ln() / lb
                }
            }
        }
        Expr::Factorial(a) => {
            let n = small_natural(eval(a, env)?, 170)?;
            C64::real((2..=n).map(|k| k as f64).product())
        }
        Expr::Binom(n, k) => {
            let n = eval(n, env)?.as_real()?;
            let k = small_natural(eval(k, env)?, 10_000)?;
            C64::real((0..k).map(|i| (n - i as f64) / (i as f64 + 1.0)).product())
        }
    };
    v.is_finite().then_some(v)
}

/// A non-negative integer value up to `max`.
fn small_natural(v: C64, max: u64) -> Option<u64> {
    let r = v.as_real()?;
    let n = r.round();
    ((r - n).abs() <= 1e-9 && (0.0..=max as f64).contains(&n)).then_some(n as u64)
}

fn call(f: Func, x: C64) -> Option<C64> {
    let one = C64::real(1.0);
    // A pole (division by an exact zero) is undefined.
    let nonzero = |v: C64| (!v.is_zero()).then_some(v);
    Some(match f {
        Func::Sqrt => x.sqrt(),
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.sin() / nonzero(x.cos())?,
        Func::Sec => one / nonzero(x.cos())?,
        Func::Csc => one / nonzero(x.sin())?,
        Func::Cot => x.cos() / nonzero(x.sin())?,
        Func::Asin => x.asin(),
        Func::Acos => C64::real(std::f64::consts::FRAC_PI_2) - x.asin(),
        Func::Atan => x.atan(),
        Func::Sinh => x.sinh(),
        Func::Cosh => x.cosh(),
        Func::Tanh => x.sinh() / nonzero(x.cosh())?,
        Func::Ln => {
            if x.is_zero() {
                return None;
            }
            x.ln()
        }
        Func::Exp => Some(x.exp()).filter(|v| !v.is_tiny())?,
        Func::Abs => C64::real(x.abs()),
        Func::Floor => C64::real(x.as_real()?.floor()),
        Func::Ceil => C64::real(x.as_real()?.ceil()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{lexer::lex, parser::parse_expr};
    use super::*;

    fn value(s: &str, env: &[(&str, C64)]) -> Option<C64> {
        evaluate(&parse_expr(&lex(s).unwrap()).unwrap(), env)
    }

    fn close(a: C64, b: C64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(1.0)
    }

    #[test]
    fn constants_and_functions() {
        let re = |s: &str| value(s, &[]).unwrap().re;
        assert!((re("\\pi") - std::f64::consts::PI).abs() < 1e-15);
        assert!((re("\\sin(\\pi/6)") - 0.5).abs() < 1e-12);
        assert!((re("\\arctan 1") - std::f64::consts::FRAC_PI_4).abs() < 1e-12);
        assert!((re("\\arccos 0") - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!((re("\\log_2 10") - 10f64.log2()).abs() < 1e-12);
        assert!((re("e^{\\ln 5}") - 5.0).abs() < 1e-12);
        assert!((re("\\tan(\\pi/4)") - 1.0).abs() < 1e-12);
        assert!((re("\\cot(\\pi/4)") - 1.0).abs() < 1e-12);
        assert!((re("\\sec 0") - 1.0).abs() < 1e-12);
        assert!((re("\\tanh 0")).abs() < 1e-12);
        assert_eq!(re("4!"), 24.0);
        assert_eq!(re("\\binom{5}{2}"), 10.0);
        let minus_one = value("e^{i\\pi}", &[]).unwrap();
        assert!(close(minus_one, C64::new(-1.0, 0.0)));
        assert!(close(value("\\sqrt{-4}", &[]).unwrap(), C64::new(0.0, 2.0)));
        assert!(close(value("i^2", &[]).unwrap(), C64::new(-1.0, 0.0)));
    }

    #[test]
    fn variables_are_bound_by_the_environment() {
        let x = C64::new(0.7, 0.3);
        let a = value("(x+1)^2", &[("x", x)]).unwrap();
        let b = value("x^2+2x+1", &[("x", x)]).unwrap();
        assert!(close(a, b));
        assert_eq!(value("y", &[("x", x)]), None);
    }

    #[test]
    fn undefined_and_overflowing_values_are_none() {
        for s in [
            "1/0",
            "\\ln 0",
            "0^{-1}",
            "10^{10^{10}}",
            "\\infty",
            "(-1)!",
            "171!",
            "\\csc 0",
            "\\log_1 5",
            "e^{1000}",
            // Underflows are undefined too, not 0.
            "2^{-10000}",
            "10^{-16000}",
            "e^{-1000}",
            "\\exp(-1000)",
            "10^{-200} \\cdot 10^{-200}",
            "1e-400",
        ] {
            assert_eq!(value(s, &[]), None, "{s}");
        }
        let tiny = value("2^{-1000}", &[]).unwrap();
        assert_eq!(tiny, C64::new(2f64.powi(-1000), 0.0));
        assert!(close(value("1/(10^{200} i)", &[]).unwrap(), C64::new(0.0, -1e-200)));
        assert!(value("0 \\cdot 10^{-200}", &[]).is_some());
        assert!(value("0^{2}", &[]).is_some());
    }
}
