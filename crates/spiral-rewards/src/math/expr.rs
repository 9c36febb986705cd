//! The expression tree of a parsed answer, and the few questions the comparison asks of it.
//!
//! Sums and products are flat lists, so `1+1+...+1` is one node with many children, not a
//! left-leaning chain: the tree's depth is bounded by the parser's nesting limit, and every
//! recursive walk over it is bounded too.

use std::collections::BTreeSet;

use num_rational::BigRational;

/// A function of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Sqrt,
    Sin,
    Cos,
    Tan,
    Sec,
    Csc,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Ln,
    Exp,
    Abs,
    Floor,
    Ceil,
}

impl Func {
    /// The function a name denotes (`sin`, `arcsin`, `ln`, ...).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sqrt" => Self::Sqrt,
            "sin" => Self::Sin,
            "cos" => Self::Cos,
            "tan" => Self::Tan,
            "sec" => Self::Sec,
            "csc" => Self::Csc,
            "cot" => Self::Cot,
            "arcsin" => Self::Asin,
            "arccos" => Self::Acos,
            "arctan" => Self::Atan,
            "sinh" => Self::Sinh,
            "cosh" => Self::Cosh,
            "tanh" => Self::Tanh,
            "ln" => Self::Ln,
            "exp" => Self::Exp,
            "abs" => Self::Abs,
            "floor" => Self::Floor,
            "ceil" => Self::Ceil,
            _ => return None,
        })
    }

    /// The inverse written `f^{-1}` (only the circular functions have one here).
    pub(crate) fn inverse(self) -> Option<Self> {
        Some(match self {
            Self::Sin => Self::Asin,
            Self::Cos => Self::Acos,
            Self::Tan => Self::Atan,
            _ => return None,
        })
    }
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    /// A literal; `decimal` when written with a decimal point or exponent (`0.5`, `1e3`).
    Num { value: BigRational, decimal: bool },
    /// π.
    Pi,
    /// Euler's number (`e`).
    E,
    /// The imaginary unit (`i`).
    I,
    /// ∞.
    Infinity,
    /// A free variable (`x`, `theta`, `a_1`).
    Var(String),
    /// `t1 ± t2 ± ...`: each term with `true` when subtracted.
    Sum(Vec<(bool, Expr)>),
    /// `f1 */ f2 */ ...`: each factor with `true` when divided by.
    Product(Vec<(bool, Expr)>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `base ^ exponent`.
    Pow(Box<Expr>, Box<Expr>),
    /// `f(x)`.
    Call(Func, Box<Expr>),
    /// `\log_b x`; natural logarithm when `base` is `None`.
    Log { base: Option<Box<Expr>>, arg: Box<Expr> },
    /// `n!`.
    Factorial(Box<Expr>),
    /// `\binom{n}{k}`.
    Binom(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// An integer literal.
    pub(crate) fn int(n: i64) -> Self {
        Self::Num { value: BigRational::from_integer(n.into()), decimal: false }
    }

    /// `a - b`.
    pub(crate) fn difference(a: &Expr, b: &Expr) -> Self {
        Self::Sum(vec![(false, a.clone()), (true, b.clone())])
    }

    /// The children of this node.
    fn children(&self) -> Vec<&Expr> {
        match self {
            Self::Num { .. } | Self::Pi | Self::E | Self::I | Self::Infinity | Self::Var(_) => {
                Vec::new()
            }
            Self::Sum(items) | Self::Product(items) => items.iter().map(|(_, e)| e).collect(),
            Self::Neg(a) | Self::Call(_, a) | Self::Factorial(a) => vec![a],
            Self::Pow(a, b) | Self::Binom(a, b) => vec![a, b],
            Self::Log { base, arg } => base.iter().map(|b| &**b).chain([&**arg]).collect(),
        }
    }

    /// Whether a literal written with a decimal point appears anywhere.
    pub(crate) fn has_decimal(&self) -> bool {
        matches!(self, Self::Num { decimal: true, .. })
            || self.children().into_iter().any(Self::has_decimal)
    }

    /// Adds the names of the free variables to `out`.
    pub(crate) fn collect_vars<'a>(&'a self, out: &mut BTreeSet<&'a str>) {
        if let Self::Var(name) = self {
            out.insert(name);
        }
        for child in self.children() {
            child.collect_vars(out);
        }
    }

    /// Whether ∞ appears anywhere.
    pub(crate) fn has_infinity(&self) -> bool {
        matches!(self, Self::Infinity) || self.children().into_iter().any(Self::has_infinity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_report_decimals_variables_and_infinity() {
        let half = Expr::Num { value: BigRational::new(1.into(), 2.into()), decimal: true };
        let e = Expr::Sum(vec![
            (false, Expr::Var("x".into())),
            (true, Expr::Product(vec![(false, half), (true, Expr::Var("y".into()))])),
        ]);
        assert!(e.has_decimal());
        let mut vars = BTreeSet::new();
        e.collect_vars(&mut vars);
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), ["x", "y"]);
        assert!(!e.has_infinity());
        assert!(Expr::Neg(Box::new(Expr::Infinity)).has_infinity());
        assert!(!Expr::difference(&Expr::int(1), &Expr::Pi).has_decimal());
        assert_eq!(Func::from_name("arcsin"), Some(Func::Asin));
        assert_eq!(Func::Sin.inverse(), Some(Func::Asin));
        assert_eq!(Func::Ln.inverse(), None);
    }
}
