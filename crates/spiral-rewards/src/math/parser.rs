//! A recursive-descent parser from tokens to an [`Expr`]: `+ - * /`, implicit multiplication
//! (`2x`, `2\pi`, `x(x+1)`), powers (`x^2`, `x^{n+1}`, `2^10`), `\frac`, `\sqrt[n]{}`, `\binom`,
//! functions (`\sin^2 x`, `\log_2 8`, `\ln|x|`), `|x|`, floors and ceilings, factorials, and
//! mixed numbers (`2\frac{1}{2}` is 5/2).
//!
//! Follows latex2sympy's grammar (the parser under both the Qwen2.5-Math grader and Math-Verify)
//! where it is unambiguous: an unbraced `\sin` argument stops at the next function (`\sin x \cos
//! x` is a product), `^` takes one atom (`x^2y` is `x^2 * y`, `2^10` is 1024), `\log` is the
//! natural logarithm. Nesting deeper than [`MAX_DEPTH`] is refused, which bounds the stack on
//! inputs such as a thousand nested braces.

use num_rational::BigRational;
use num_traits::Signed;

use super::expr::{Expr, Func};
use super::lexer::Tok;

/// The deepest nesting of groups, functions, unary signs and exponents accepted.
pub(crate) const MAX_DEPTH: usize = 48;

/// Why tokens are not an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

type Result<T> = std::result::Result<T, ParseError>;

/// Parses all of `toks` as one expression.
pub(crate) fn parse_expr(toks: &[Tok]) -> Result<Expr> {
    let mut p = Parser { toks, pos: 0, depth: 0, bars: 0 };
    let e = p.expr()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(ParseError(format!("unexpected {t:?}"))),
    }
}

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
    depth: usize,
    /// Open `|...|` pairs: inside one, a `|` closes instead of starting a factor.
    bars: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<&Tok> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn peek_sym(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Sym(c))
    }

    fn eat_sym(&mut self, c: char) -> bool {
        let found = self.peek_sym(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_sym(&mut self, c: char) -> Result<()> {
        if self.eat_sym(c) { Ok(()) } else { Err(ParseError(format!("expected `{c}`"))) }
    }

    fn peek_cmd(&self) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Cmd { name, .. }) => Some(name),
            _ => None,
        }
    }

    /// Runs `f` one level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError("nested too deeply".into()));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn expr(&mut self) -> Result<Expr> {
        self.nested(Self::sum)
    }

    fn sum(&mut self) -> Result<Expr> {
        let mut terms = vec![(false, self.term()?)];
        loop {
            let negated = if self.eat_sym('+') {
                false
            } else if self.eat_sym('-') {
                true
            } else {
                break;
            };
            terms.push((negated, self.term()?));
        }
        Ok(if terms.len() == 1 { terms.remove(0).1 } else { Expr::Sum(terms) })
    }

    fn term(&mut self) -> Result<Expr> {
        let mut factors = vec![(false, self.unary()?)];
        loop {
            if self.eat_sym('*') {
                factors.push((false, self.unary()?));
            } else if self.eat_sym('/') {
                factors.push((true, self.unary()?));
            } else if self.starts_implicit_factor(true) {
                factors.push((false, self.power()?));
            } else {
                break;
            }
        }
        Ok(if factors.len() == 1 { factors.remove(0).1 } else { Expr::Product(factors) })
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.eat_sym('-') {
            return self.nested(Self::unary).map(|e| Expr::Neg(Box::new(e)));
        }
        if self.eat_sym('+') {
            return self.nested(Self::unary);
        }
        self.power()
    }

    /// Whether the next token starts a factor multiplied without an operator. Numbers never do
    /// (`2 3` is not 6); functions do only when `functions` (an unbraced function argument stops
    /// at the next function).
    fn starts_implicit_factor(&self, functions: bool) -> bool {
        match self.peek() {
            Some(Tok::Var(_)) => true,
            Some(Tok::Sym('(' | '[' | '{')) => true,
            Some(Tok::Sym('|')) => self.bars == 0,
            Some(Tok::Cmd { name, .. }) => match *name {
                "pi" | "frac" | "sqrt" | "binom" | "lfloor" | "lceil" => true,
                other => functions && (Func::from_name(other).is_some() || other == "log"),
            },
            _ => false,
        }
    }

    fn power(&mut self) -> Result<Expr> {
        let base = self.postfix()?;
        if self.eat_sym('^') {
            let exponent = self.nested(Self::exponent)?;
            return Ok(Expr::Pow(Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    /// The exponent after `^`: a braced group, or a signed atom (`2^-1`), right-associative.
    fn exponent(&mut self) -> Result<Expr> {
        if self.eat_sym('-') {
            return self.nested(Self::exponent).map(|e| Expr::Neg(Box::new(e)));
        }
        if self.eat_sym('+') {
            return self.nested(Self::exponent);
        }
        let atom = self.postfix()?;
        if self.eat_sym('^') {
            let inner = self.nested(Self::exponent)?;
            return Ok(Expr::Pow(Box::new(atom), Box::new(inner)));
        }
        Ok(atom)
    }

    fn postfix(&mut self) -> Result<Expr> {
        let e = self.primary()?;
        if self.eat_sym('!') {
            if self.peek_sym('!') {
                return Err(ParseError("double factorials are not supported".into()));
            }
            return Ok(Expr::Factorial(Box::new(e)));
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr> {
        self.nested(Self::primary_inner)
    }

    fn primary_inner(&mut self) -> Result<Expr> {
        let tok = self.next().cloned().ok_or_else(|| ParseError("unexpected end".into()))?;
        match tok {
            Tok::Num { value, decimal, .. } => Ok(self.mixed_number(value, decimal)),
            Tok::Var(name) => self.variable(name),
            Tok::Sym(open @ ('(' | '[' | '{')) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                let e = self.expr()?;
                self.expect_sym(close)?;
                Ok(e)
            }
            Tok::Sym('|') => {
                self.bars += 1;
                let e = self.expr();
                self.bars -= 1;
                let e = e?;
                self.expect_sym('|')?;
                Ok(Expr::Call(Func::Abs, Box::new(e)))
            }
            Tok::Cmd { name, .. } => self.command(name),
            other => Err(ParseError(format!("unexpected {other:?}"))),
        }
    }

    /// `2\frac{1}{2}` and `2 1/2`: an integer directly followed by a proper fraction of integer
    /// literals is a mixed number. Anything else leaves the fraction to be parsed as a product
    /// (or, for `2 1/2` without a proper fraction, to fail: two numbers in a row are not math).
    fn mixed_number(&mut self, value: BigRational, decimal: bool) -> Expr {
        let number = Expr::Num { value: value.clone(), decimal };
        if decimal || !value.is_integer() {
            return number;
        }
        let save = self.pos;
        let fraction = match self.peek() {
            Some(Tok::Cmd { name: "frac", .. }) => {
                self.pos += 1;
                self.frac_arg().and_then(|n| Ok((n, self.frac_arg()?))).ok()
            }
            Some(Tok::Num { .. }) => match self.toks.get(self.pos..self.pos + 3) {
                Some([Tok::Num { value: n, .. }, Tok::Sym('/'), Tok::Num { value: d, .. }])
                    if !self
                        .toks
                        .get(self.pos + 3)
                        .is_some_and(|t| matches!(t, Tok::Sym('^' | '!'))) =>
                {
                    self.pos += 3;
                    Some((int_literal(n), int_literal(d)))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((
            Expr::Num { value: n, decimal: false },
            Expr::Num { value: d, decimal: false },
        )) = fraction
            && n.is_positive()
            && d > n
            && n.is_integer()
            && d.is_integer()
        {
            return Expr::Num { value: value + n / d, decimal: false };
        }
        self.pos = save;
        number
    }

    /// A variable with an optional subscript (`x_1`, `a_{n}`); `e` and `i` are constants.
    fn variable(&mut self, name: String) -> Result<Expr> {
        if self.eat_sym('_') {
            let sub = self.subscript_text()?;
            return Ok(Expr::Var(format!("{name}_{sub}")));
        }
        Ok(match name.as_str() {
            "e" => Expr::E,
            "i" => Expr::I,
            _ => Expr::Var(name),
        })
    }

    /// The text of a subscript: one token or a braced group of simple tokens.
    fn subscript_text(&mut self) -> Result<String> {
        let simple = |t: &Tok| match t {
            Tok::Num { text, .. } => Some(text.clone()),
            Tok::Var(v) => Some(v.clone()),
            Tok::Sym(c @ ('+' | '-' | ',')) => Some(c.to_string()),
            _ => None,
        };
        if self.eat_sym('{') {
            let mut text = String::new();
            while !self.eat_sym('}') {
                let t = self.next().ok_or_else(|| ParseError("unclosed subscript".into()))?;
                text.push_str(&simple(t).ok_or_else(|| ParseError("complex subscript".into()))?);
            }
            return Ok(text);
        }
        let t = self.next().ok_or_else(|| ParseError("missing subscript".into()))?;
        simple(t).ok_or_else(|| ParseError("complex subscript".into()))
    }

    fn command(&mut self, name: &'static str) -> Result<Expr> {
        match name {
            "pi" => Ok(Expr::Pi),
            "infty" => Ok(Expr::Infinity),
            "frac" => {
                let num = self.frac_arg()?;
                let den = self.frac_arg()?;
                Ok(Expr::Product(vec![(false, num), (true, den)]))
            }
            "binom" => {
                let n = self.frac_arg()?;
                let k = self.frac_arg()?;
                Ok(Expr::Binom(Box::new(n), Box::new(k)))
            }
            "sqrt" => self.sqrt(),
            "lfloor" => self.delimited(Func::Floor, "rfloor"),
            "lceil" => self.delimited(Func::Ceil, "rceil"),
            "log" => self.log(),
            other => {
                let f = Func::from_name(other)
                    .ok_or_else(|| ParseError(format!("`{other}` is not a value")))?;
                self.function(f)
            }
        }
    }

    /// An argument of `\frac`/`\binom`/`\sqrt`: a braced group, else one atom (the lexer has
    /// already split `\frac12` into single digits).
    fn frac_arg(&mut self) -> Result<Expr> {
        if self.eat_sym('{') {
            let e = self.expr()?;
            self.expect_sym('}')?;
            return Ok(e);
        }
        self.primary()
    }

    fn sqrt(&mut self) -> Result<Expr> {
        if self.eat_sym('[') {
            let index = self.expr()?;
            self.expect_sym(']')?;
            let arg = self.frac_arg()?;
            let exponent = Expr::Product(vec![(false, Expr::int(1)), (true, index)]);
            return Ok(Expr::Pow(Box::new(arg), Box::new(exponent)));
        }
        Ok(Expr::Call(Func::Sqrt, Box::new(self.frac_arg()?)))
    }

    /// `\lfloor x \rfloor`.
    fn delimited(&mut self, f: Func, close: &str) -> Result<Expr> {
        let e = self.expr()?;
        if self.peek_cmd() != Some(close) {
            return Err(ParseError(format!("expected `\\{close}`")));
        }
        self.pos += 1;
        Ok(Expr::Call(f, Box::new(e)))
    }

    /// `\log_b x`, `\log(x)`.
    fn log(&mut self) -> Result<Expr> {
        let base = if self.eat_sym('_') { Some(Box::new(self.frac_arg()?)) } else { None };
        let power = self.function_power()?;
        let arg = Box::new(self.function_argument()?);
        let e = Expr::Log { base, arg };
        Ok(match power {
            Some(p) => Expr::Pow(Box::new(e), Box::new(p)),
            None => e,
        })
    }

    /// `\sin x`, `\sin(x)`, `\sin^2 x`, `\sin^{-1} x` (the inverse).
    fn function(&mut self, f: Func) -> Result<Expr> {
        let power = self.function_power()?;
        let is_minus_one = |p: &Expr| matches!(p, Expr::Neg(one) if **one == Expr::int(1));
        if let (Some(p), Some(inv)) = (&power, f.inverse())
            && is_minus_one(p)
        {
            return Ok(Expr::Call(inv, Box::new(self.function_argument()?)));
        }
        let e = Expr::Call(f, Box::new(self.function_argument()?));
        Ok(match power {
            Some(p) => Expr::Pow(Box::new(e), Box::new(p)),
            None => e,
        })
    }

    /// The `^p` written between a function name and its argument.
    fn function_power(&mut self) -> Result<Option<Expr>> {
        if self.eat_sym('^') { self.nested(Self::exponent).map(Some) } else { Ok(None) }
    }

    /// A function argument: a bracketed group, or a run of implicitly multiplied powers that
    /// stops at an operator or another function.
    fn function_argument(&mut self) -> Result<Expr> {
        if matches!(self.peek(), Some(Tok::Sym('(' | '[' | '{' | '|'))) {
            return self.power();
        }
        let mut factors = vec![(false, self.power()?)];
        while self.starts_implicit_factor(false) {
            factors.push((false, self.power()?));
        }
        Ok(if factors.len() == 1 { factors.remove(0).1 } else { Expr::Product(factors) })
    }
}

/// A literal as an expression, for the mixed-number check.
fn int_literal(value: &BigRational) -> Expr {
    Expr::Num { value: value.clone(), decimal: !value.is_integer() }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn parse(s: &str) -> Result<Expr> {
        parse_expr(&lex(s).map_err(|e| ParseError(e.0))?)
    }

    fn num(n: i64, d: i64) -> Expr {
        Expr::Num { value: BigRational::new(n.into(), d.into()), decimal: false }
    }

    fn var(v: &str) -> Expr {
        Expr::Var(v.into())
    }

    #[test]
    fn precedence_and_implicit_multiplication() {
        assert_eq!(
            parse("1+2*3").unwrap(),
            Expr::Sum(vec![
                (false, num(1, 1)),
                (false, Expr::Product(vec![(false, num(2, 1)), (false, num(3, 1))]))
            ])
        );
        assert_eq!(
            parse("2x").unwrap(),
            Expr::Product(vec![(false, num(2, 1)), (false, var("x"))])
        );
        assert_eq!(
            parse("-x^2").unwrap(),
            Expr::Neg(Box::new(Expr::Pow(Box::new(var("x")), Box::new(num(2, 1)))))
        );
        assert_eq!(
            parse("x^2y").unwrap(),
            Expr::Product(vec![
                (false, Expr::Pow(Box::new(var("x")), Box::new(num(2, 1)))),
                (false, var("y"))
            ])
        );
        assert_eq!(parse("2^10").unwrap(), Expr::Pow(Box::new(num(2, 1)), Box::new(num(10, 1))));
        assert!(parse("2 3").is_err());
        assert!(parse("x(x+1)").is_ok());
        assert!(parse("(x+1)(x-1)").is_ok());
        assert!(parse("2\\sqrt{3}\\pi r").is_ok());
    }

    #[test]
    fn latex_constructs() {
        assert_eq!(
            parse("\\frac12").unwrap(),
            Expr::Product(vec![(false, num(1, 1)), (true, num(2, 1))])
        );
        assert_eq!(
            parse("\\frac{a}{b}").unwrap(),
            Expr::Product(vec![(false, var("a")), (true, var("b"))])
        );
        assert_eq!(parse("2\\frac{1}{2}").unwrap(), num(5, 2));
        assert_eq!(parse("-2\\frac{1}{2}").unwrap(), Expr::Neg(Box::new(num(5, 2))));
        // Not a proper fraction of literals: a product.
        assert!(matches!(parse("2\\frac{3}{2}").unwrap(), Expr::Product(_)));
        assert_eq!(parse("4 4/9").unwrap(), num(40, 9));
        assert_eq!(parse("-4 4/9").unwrap(), Expr::Neg(Box::new(num(40, 9))));
        assert!(parse("4 9/4").is_err());
        assert!(parse("4 4/9 2").is_err());
        assert!(parse("4 4/9^2").is_err());
        assert!(matches!(parse("\\sqrt[3]{8}").unwrap(), Expr::Pow(..)));
        assert_eq!(parse("\\sqrt2").unwrap(), Expr::Call(Func::Sqrt, Box::new(num(2, 1))));
        assert!(matches!(parse("\\binom{5}{2}").unwrap(), Expr::Binom(..)));
        assert_eq!(parse("|x|").unwrap(), Expr::Call(Func::Abs, Box::new(var("x"))));
        assert!(parse("\\lfloor 2.5 \\rfloor").is_ok());
        assert!(parse("\\lfloor 2.5").is_err());
        assert_eq!(parse("x_1").unwrap(), var("x_1"));
        assert_eq!(parse("a_{n+1}").unwrap(), var("a_n+1"));
        assert_eq!(parse("e").unwrap(), Expr::E);
        assert_eq!(parse("5!").unwrap(), Expr::Factorial(Box::new(num(5, 1))));
        assert!(parse("5!!").is_err());
    }

    #[test]
    fn functions() {
        assert_eq!(parse("\\sin x").unwrap(), Expr::Call(Func::Sin, Box::new(var("x"))));
        assert!(matches!(parse("\\sin x \\cos x").unwrap(), Expr::Product(f) if f.len() == 2));
        assert_eq!(parse("\\sin^{-1} x").unwrap(), Expr::Call(Func::Asin, Box::new(var("x"))));
        assert!(matches!(parse("\\sin^2 x").unwrap(), Expr::Pow(..)));
        assert!(matches!(parse("\\log_2 8").unwrap(), Expr::Log { base: Some(_), .. }));
        assert!(matches!(parse("\\ln|x|").unwrap(), Expr::Call(Func::Ln, _)));
        assert!(matches!(parse("\\log x").unwrap(), Expr::Log { base: None, .. }));
        assert_eq!(
            parse("sin(2x)").unwrap(),
            Expr::Call(
                Func::Sin,
                Box::new(Expr::Product(vec![(false, num(2, 1)), (false, var("x"))]))
            )
        );
        assert!(parse("\\sin").is_err());
    }

    #[test]
    fn errors_and_depth_limit() {
        for bad in ["", "+", "(1", "1)", "1 +", "\\frac{1}", "x^", "\\cup", "1 = 2", "|x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&deep).is_err());
        let deep = format!("{}1{}", "{".repeat(MAX_DEPTH / 3), "}".repeat(MAX_DEPTH / 3));
        assert!(parse(&deep).is_ok());
        assert!(parse(&"-".repeat(10_000)).is_err());
        assert!(parse(&"\\sqrt".repeat(10_000)).is_err());
        assert!(parse(&"2^".repeat(10_000)).is_err());
        // Long flat sums are fine: the tree stays shallow.
        assert!(parse(&vec!["1"; 2000].join("+")).is_ok());
    }
}
