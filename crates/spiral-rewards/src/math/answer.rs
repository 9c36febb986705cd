//! The structure of an answer above single expressions: tuples and intervals, sets (`\{1, 2\}`,
//! or `{1, 2}` with plain braces), bare comma lists, unions of intervals, matrices, equations,
//! one-variable inequalities, `±`, and plain text when nothing else fits.
//!
//! Follows Math-Verify's reading of these forms: `(1, 2]` is an interval and the bracket kind is
//! part of its value; `\{1, 2\}` and `{1, 2}` are unordered sets; `x > 3` is the interval
//! `(3, \infty)`; `a \pm b` is the set `{a + b, a - b}`. A bare list `1, 2` is kept apart from a
//! set because it compares both ways: unordered against a set or another bare list, in order
//! against a bracketed tuple (the comparison is in [`equiv`](super::equiv)). Plain braces make a
//! set only when they wrap the whole answer and hold a comma at their top level, so LaTeX
//! grouping (`{x}^{2}`, `{5}`) keeps its meaning. Text answers compare case-insensitively without
//! spaces.

use num_traits::{Signed, Zero};

use super::exact::rational;
use super::expr::Expr;
use super::lexer::{Tok, lex};
use super::normalize::compact;
use super::parser::{ParseError, parse_expr};

/// The most elements of a set, tuple or matrix compared item by item.
pub(crate) const MAX_ITEMS: usize = 32;

/// How deeply structures may nest (`{(1, [2, 3]), ...}`).
const MAX_NESTING: usize = 6;

/// A parsed answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// One expression.
    Expr(Expr),
    /// `lhs = rhs` (`a = b = c` keeps the first and last sides).
    Equation(Expr, Expr),
    /// A bracketed sequence: a tuple, or an interval when it has two items.
    Seq { open: char, close: char, items: Vec<Answer> },
    /// An unordered collection: `\{...\}`, `{a, b}`, or the two values of `±`.
    Set(Vec<Answer>),
    /// A bare comma list `a, b, ...`: a set against sets and lists, a tuple against tuples.
    List(Vec<Answer>),
    /// `A \cup B \cup ...`.
    Union(Vec<Answer>),
    /// A matrix, row by row.
    Matrix(Vec<Vec<Answer>>),
    /// Anything else, lower-cased without spaces.
    Text(String),
}

/// Parses a normalised answer; what is not math becomes [`Answer::Text`].
pub(crate) fn parse_answer(normalized: &str) -> Answer {
    let text = |s: &str| {
        // `V_1:V_2 = 11:21`: a label before a value that is not math (a ratio) is dropped.
        let value = labelled_value(s).unwrap_or(s);
        Answer::Text(compact(value).to_lowercase())
    };
    match lex(normalized) {
        Ok(toks) => parse_tokens(&toks, 0).unwrap_or_else(|_| text(normalized)),
        Err(_) => text(normalized),
    }
}

/// The value after `label =` when the text before the only `=` is a label written with
/// letters, subscripts, brackets, commas, colons and bars (`S_{MBCN}:S`), no digit outside a
/// subscript.
fn labelled_value(s: &str) -> Option<&str> {
    let (lhs, rhs) = s.split_once('=')?;
    if rhs.contains('=') || lhs.ends_with(['<', '>', '!']) {
        return None;
    }
    let mut in_subscript = 0usize;
    let mut has_letter = false;
    let mut after_underscore = false;
    for c in lhs.chars() {
        match c {
            '_' => after_underscore = true,
            '{' if after_underscore || in_subscript > 0 => in_subscript += 1,
            '}' if in_subscript > 0 => {
                in_subscript -= 1;
                after_underscore = false;
            }
            '0'..='9' if in_subscript > 0 || after_underscore => {
                after_underscore = in_subscript > 0
            }
            c if c.is_ascii_alphabetic() => {
                has_letter = true;
                after_underscore = in_subscript > 0;
            }
            '(' | ')' | ',' | ':' | '|' | ' ' | '{' | '}' => after_underscore = false,
            _ => return None,
        }
    }
    (has_letter && in_subscript == 0).then_some(rhs.trim())
}

/// Whether `toks` name a quantity rather than compute one: letters, subscripts, brackets,
/// commas, ratio colons, bars and `\frac`, without numbers outside subscripts, and more than a
/// lone variable (`(p,q)`, `f(x)`, `|AB|`, `A:B`, `\frac{NO}{BO}`, `V_{1}:V_{2}`). Math-Verify
/// drops such a label before `=` when the other answer is a bare value; `a+3z` and `7` are not
/// labels.
fn is_label(toks: &[Tok]) -> bool {
    let mut has_var = false;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Var(_) => has_var = true,
            Tok::Sym('_') => {
                i += 1;
                if toks.get(i) == Some(&Tok::Sym('{')) {
                    while i < toks.len() && toks[i] != Tok::Sym('}') {
                        i += 1;
                    }
                }
            }
            Tok::Sym('(' | ')' | ',' | ':' | '|' | '{' | '}') | Tok::Cmd { name: "frac", .. } => {}
            _ => return false,
        }
        i += 1;
    }
    has_var && !is_variable(toks)
}

/// A lone variable, possibly subscripted (`x`, `x_1`, `a_{n}`).
fn is_variable(toks: &[Tok]) -> bool {
    match toks {
        [Tok::Var(_)] | [Tok::Var(_), Tok::Sym('_'), _] => true,
        [Tok::Var(_), Tok::Sym('_'), Tok::Sym('{'), inner @ .., Tok::Sym('}')] => {
            !inner.contains(&Tok::Sym('}'))
        }
        _ => false,
    }
}

/// The items of a bracketed sequence: split at commas, else at semicolons (`(0;-2;6)`).
fn split_items(toks: &[Tok]) -> Result<Vec<&[Tok]>> {
    let parts = split_top(toks, |t| *t == Tok::Sym(','))?;
    if parts.len() > 1 {
        return Ok(parts);
    }
    split_top(toks, |t| *t == Tok::Sym(';'))
}

type Result<T> = std::result::Result<T, ParseError>;

fn err<T>(msg: &str) -> Result<T> {
    Err(ParseError(msg.to_owned()))
}

fn is_open(t: &Tok) -> bool {
    matches!(t, Tok::Sym('(' | '[' | '{') | Tok::SetOpen | Tok::Cmd { name: "matbegin", .. })
}

fn is_close(t: &Tok) -> bool {
    matches!(t, Tok::Sym(')' | ']' | '}') | Tok::SetClose | Tok::Cmd { name: "matend", .. })
}

/// Splits `toks` at the bracket-depth-0 tokens matching `sep`.
fn split_top(toks: &[Tok], sep: impl Fn(&Tok) -> bool) -> Result<Vec<&[Tok]>> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth = depth.checked_sub(1).ok_or_else(|| ParseError("unbalanced".into()))?;
        } else if depth == 0 && sep(t) {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
    }
    if depth != 0 {
        return err("unbalanced brackets");
    }
    parts.push(&toks[start..]);
    Ok(parts)
}

/// Whether the bracket opening `toks` closes at its last token.
fn wrapped(toks: &[Tok]) -> bool {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            match depth.checked_sub(1) {
                Some(0) => return i == toks.len() - 1 && i > 0,
                Some(d) => depth = d,
                None => return false,
            }
        } else if depth == 0 {
            return false;
        }
    }
    false
}

fn parse_tokens(toks: &[Tok], nesting: usize) -> Result<Answer> {
    if nesting > MAX_NESTING {
        return err("nested too deeply");
    }
    let (first, last) = match (toks.first(), toks.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return err("empty"),
    };
    if toks.len() == 1 && *first == (Tok::Cmd { name: "emptyset", latex: true }) {
        return Ok(Answer::Set(Vec::new()));
    }
    let unions = split_top(toks, |t| matches!(t, Tok::Cmd { name: "cup", .. }))?;
    if unions.len() > 1 {
        return items(&unions, nesting).map(Answer::Union);
    }
    if matches!(first, Tok::Cmd { name: "matbegin", .. }) && wrapped(toks) {
        return matrix(&toks[1..toks.len() - 1], nesting);
    }
    if *first == Tok::SetOpen && *last == Tok::SetClose && wrapped(toks) {
        let inner = &toks[1..toks.len() - 1];
        if inner.is_empty() {
            return Ok(Answer::Set(Vec::new()));
        }
        return items(&split_items(inner)?, nesting).map(Answer::Set);
    }
    // `{1, 2}`: plain braces around the whole answer with a separator inside are LaTeX grouping
    // around a bare list (Math-Verify reads `\boxed{{1,3}}` as `1, 3`); without one (`{5}`) they
    // are grouping alone.
    if *first == Tok::Sym('{') && *last == Tok::Sym('}') && wrapped(toks) {
        let inner = split_items(&toks[1..toks.len() - 1])?;
        if inner.len() > 1 {
            return items(&inner, nesting).map(Answer::List);
        }
    }
    // `(\matbegin ... \matend)`: brackets written around a matrix environment.
    if let (Tok::Sym('(' | '['), Some(Tok::Cmd { name: "matbegin", .. })) = (first, toks.get(1))
        && wrapped(toks)
        && wrapped(&toks[1..toks.len() - 1])
    {
        return parse_tokens(&toks[1..toks.len() - 1], nesting + 1);
    }
    if let Some(answer) = plus_minus(toks, nesting)? {
        return Ok(answer);
    }
    // `p=5,q=2;p=7,q=2` and `-12;-11`: semicolons separate the items of a list, above commas.
    let semicolons = split_top(toks, |t| *t == Tok::Sym(';'))?;
    if semicolons.len() > 1 {
        return items(&semicolons, nesting).map(Answer::List);
    }
    let commas = split_top(toks, |t| *t == Tok::Sym(','))?;
    if commas.len() > 1 {
        return items(&commas, nesting).map(Answer::List);
    }
    if let (Tok::Sym(open @ ('(' | '[')), Tok::Sym(close @ (')' | ']'))) = (first, last)
        && wrapped(toks)
    {
        let inner = split_items(&toks[1..toks.len() - 1])?;
        if inner.len() > 1 {
            let items = items(&inner, nesting)?;
            return Ok(Answer::Seq { open: *open, close: *close, items });
        }
    }
    if let Some(answer) = inequality(toks)? {
        return Ok(answer);
    }
    let sides = split_top(toks, |t| *t == Tok::Sym('='))?;
    if sides.len() > 1 && is_label(sides[0]) {
        return parse_tokens(sides[sides.len() - 1], nesting + 1);
    }
    if sides.len() > 1 {
        let lhs = parse_expr(sides[0])?;
        let rhs = parse_expr(sides[sides.len() - 1])?;
        return Ok(Answer::Equation(lhs, rhs));
    }
    parse_expr(toks).map(Answer::Expr)
}

/// Parses each part as an answer one level deeper.
fn items(parts: &[&[Tok]], nesting: usize) -> Result<Vec<Answer>> {
    if parts.len() > MAX_ITEMS {
        return err("too many items");
    }
    parts.iter().map(|p| parse_tokens(p, nesting + 1)).collect()
}

/// `\matbegin a & b \\ c & d \matend`.
fn matrix(inner: &[Tok], nesting: usize) -> Result<Answer> {
    let mut rows = Vec::new();
    for row in split_top(inner, |t| *t == Tok::RowSep)? {
        if row.is_empty() {
            continue;
        }
        rows.push(items(&split_top(row, |t| *t == Tok::Sym('&'))?, nesting)?);
    }
    if rows.is_empty() || rows.len() > MAX_ITEMS {
        return err("bad matrix size");
    }
    Ok(Answer::Matrix(rows))
}

/// `a \pm b` as the set `{a + b, a - b}` (one `±` at depth 0 only; more is not expanded).
fn plus_minus(toks: &[Tok], nesting: usize) -> Result<Option<Answer>> {
    let is_pm = |t: &Tok| matches!(t, Tok::Cmd { name: "pm" | "mp", .. });
    let positions: Vec<usize> =
        toks.iter().enumerate().filter(|(_, t)| is_pm(t)).map(|(i, _)| i).collect();
    match positions.as_slice() {
        [] => Ok(None),
        [i] => {
            let minus_first = matches!(toks[*i], Tok::Cmd { name: "mp", .. });
            let mut values = Vec::with_capacity(2);
            for sign in if minus_first { ['-', '+'] } else { ['+', '-'] } {
                let mut variant = toks.to_vec();
                variant[*i] = Tok::Sym(sign);
                values.push(parse_tokens(&variant, nesting + 1)?);
            }
            Ok(Some(Answer::Set(values)))
        }
        _ => err("several ±"),
    }
}

/// `x < 3`, `x \ge -1`, `1 < x \le 2`, `-x > -1`, `2x + 1 \le 5` in one variable, and
/// `0 < f(x) < 1` around a label, as intervals; `x \ne 3` as the union of two open intervals.
/// Math-Verify compares inequalities and intervals as one kind of object (sympy sets).
fn inequality(toks: &[Tok]) -> Result<Option<Answer>> {
    let is_rel = |t: &Tok| matches!(t, Tok::Sym('<' | '>' | '≤' | '≥' | '≠'));
    if !toks.iter().any(is_rel) {
        return Ok(None);
    }
    let parts = split_top(toks, is_rel)?;
    let rels: Vec<char> = toks
        .iter()
        .filter(|t| is_rel(t))
        .map(|t| if let Tok::Sym(c) = t { *c } else { ' ' })
        .collect();
    let is_var = |p: &[Tok]| matches!(p, [Tok::Var(_)]);
    let less = |c: char| c == '<' || c == '≤';
    let (lo, lo_strict, hi, hi_strict) = match (parts.as_slice(), rels.as_slice()) {
        ([v, bound], ['≠']) | ([bound, v], ['≠']) if is_var(v) => {
            let b = parse_expr(bound)?;
            return Ok(Some(Answer::Union(vec![
                interval(infinity(true), true, b.clone(), true),
                interval(b, true, infinity(false), true),
            ])));
        }
        (_, rs) if rs.contains(&'≠') => return err("unsupported relation"),
        ([v, bound], [r]) if is_var(v) => one_sided(parse_expr(bound)?, *r, true),
        ([bound, v], [r]) if is_var(v) => one_sided(parse_expr(bound)?, *r, false),
        ([lhs, rhs], [r]) => {
            // `k x + c r 0`: divide by `k`, flipping the relation when `k < 0`.
            let root = linear_root(&parse_expr(lhs)?, &parse_expr(rhs)?)?;
            one_sided(root.value, *r, root.increasing)
        }
        ([a, middle, b], [r1, r2]) if less(*r1) == less(*r2) => {
            let (a, b) = (parse_expr(a)?, parse_expr(b)?);
            let (lo, lo_rel, hi, hi_rel) =
                if less(*r1) { (a, *r1, b, *r2) } else { (b, *r2, a, *r1) };
            if is_var(middle) || is_label(middle) {
                (lo, strict(lo_rel), hi, strict(hi_rel))
            } else {
                // `1 < 2x + 1 < 5`: the bounds mapped through the inverse of the linear middle.
                let m = parse_expr(middle)?;
                let lo_b = linear_root(&m, &lo)?;
                let hi_b = linear_root(&m, &hi)?;
                if lo_b.increasing {
                    (lo_b.value, strict(lo_rel), hi_b.value, strict(hi_rel))
                } else {
                    (hi_b.value, strict(hi_rel), lo_b.value, strict(lo_rel))
                }
            }
        }
        _ => return err("unsupported relation"),
    };
    Ok(Some(interval(lo, lo_strict, hi, hi_strict)))
}

fn strict(c: char) -> bool {
    c == '<' || c == '>'
}

fn infinity(negative: bool) -> Expr {
    if negative { Expr::Neg(Box::new(Expr::Infinity)) } else { Expr::Infinity }
}

fn interval(lo: Expr, lo_strict: bool, hi: Expr, hi_strict: bool) -> Answer {
    Answer::Seq {
        open: if lo_strict { '(' } else { '[' },
        close: if hi_strict { ')' } else { ']' },
        items: vec![Answer::Expr(lo), Answer::Expr(hi)],
    }
}

/// `x r bound` (`var_left`) or `bound r x`, as (low, low strict, high, high strict).
fn one_sided(bound: Expr, r: char, var_left: bool) -> (Expr, bool, Expr, bool) {
    let below = (r == '<' || r == '≤') == var_left;
    if below {
        (infinity(true), true, bound, strict(r))
    } else {
        (bound, strict(r), infinity(false), true)
    }
}

/// Where `lhs - rhs`, linear in its one variable with rational coefficients, vanishes, and
/// whether it increases with the variable.
struct LinearRoot {
    value: Expr,
    increasing: bool,
}

/// The root of `lhs - rhs` as a linear function of its single variable (a relation `lhs r rhs`
/// reads `f r 0`), found exactly from its values at 0, 1 and 2.
fn linear_root(lhs: &Expr, rhs: &Expr) -> Result<LinearRoot> {
    let f = Expr::difference(lhs, rhs);
    let mut vars = std::collections::BTreeSet::new();
    f.collect_vars(&mut vars);
    let [var] = vars.into_iter().collect::<Vec<_>>()[..] else {
        return err("not one variable");
    };
    let at = |x: i64| rational(&substitute(&f, var, &Expr::int(x)));
    let (Some(f0), Some(f1), Some(f2)) = (at(0), at(1), at(2)) else {
        return err("not rational");
    };
    let slope = &f1 - &f0;
    if slope.is_zero() || &f2 - &f1 != slope {
        return err("not linear");
    }
    let root = -f0 / &slope;
    let value = Expr::Num { value: root, decimal: false };
    Ok(LinearRoot { value, increasing: slope.is_positive() })
}

/// `e` with every occurrence of variable `var` replaced by `value`.
fn substitute(e: &Expr, var: &str, value: &Expr) -> Expr {
    let sub = |x: &Expr| substitute(x, var, value);
    let boxed = |x: &Expr| Box::new(sub(x));
    match e {
        Expr::Var(name) if name == var => value.clone(),
        Expr::Sum(terms) => Expr::Sum(terms.iter().map(|(n, t)| (*n, sub(t))).collect()),
        Expr::Product(fs) => Expr::Product(fs.iter().map(|(d, f)| (*d, sub(f))).collect()),
        Expr::Neg(a) => Expr::Neg(boxed(a)),
        Expr::Pow(a, b) => Expr::Pow(boxed(a), boxed(b)),
        Expr::Call(f, a) => Expr::Call(*f, boxed(a)),
        Expr::Log { base, arg } => {
            Expr::Log { base: base.as_ref().map(|b| boxed(b)), arg: boxed(arg) }
        }
        Expr::Factorial(a) => Expr::Factorial(boxed(a)),
        Expr::Binom(a, b) => Expr::Binom(boxed(a), boxed(b)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Answer {
        parse_answer(s)
    }

    fn kind(a: &Answer) -> &'static str {
        match a {
            Answer::Expr(_) => "expr",
            Answer::Equation(..) => "equation",
            Answer::Seq { .. } => "seq",
            Answer::Set(_) => "set",
            Answer::List(_) => "list",
            Answer::Union(_) => "union",
            Answer::Matrix(_) => "matrix",
            Answer::Text(_) => "text",
        }
    }

    #[test]
    fn structures() {
        assert_eq!(kind(&p("3")), "expr");
        assert_eq!(kind(&p("(3)")), "expr");
        assert_eq!(kind(&p("(1, 2)")), "seq");
        assert!(matches!(p("[1, 2)"), Answer::Seq { open: '[', close: ')', .. }));
        assert_eq!(kind(&p("\\{1, 2\\}")), "set");
        assert_eq!(p("\\{\\}"), Answer::Set(vec![]));
        assert_eq!(p("\\emptyset"), Answer::Set(vec![]));
        assert_eq!(kind(&p("1, 2, 3")), "list");
        assert_eq!(kind(&p("{1, 2, 3}")), "list");
        assert_eq!(kind(&p("{(1, 2), 3}")), "list");
        assert_eq!(kind(&p("4;5;6")), "list");
        assert!(matches!(p("(1;2;3)"), Answer::Seq { items, .. } if items.len() == 3));
        assert_eq!(kind(&p("[\\matbegin 1 & 2 \\\\ 3 & 4 \\matend]")), "matrix");
        assert_eq!(kind(&p("{5}")), "expr");
        assert_eq!(kind(&p("{x}^{2}")), "expr");
        assert_eq!(kind(&p("{1}, {2}")), "list");
        assert_eq!(kind(&p("(-\\infty, 1) \\cup (2, \\infty)")), "union");
        assert_eq!(kind(&p("x = 5")), "equation");
        assert!(matches!(p("1 \\pm \\sqrt{2}"), Answer::Set(v) if v.len() == 2));
        assert_eq!(kind(&p("x = 1 \\pm 2")), "set");
        assert_eq!(kind(&p("\\matbegin 1 & 2 \\\\ 3 & 4 \\matend")), "matrix");
        assert_eq!(p("Monday"), Answer::Text("monday".into()));
        assert_eq!(kind(&p("(1, 2")), "text");
        assert_eq!(kind(&p("1 \\pm 2 \\pm 3")), "text");
    }

    #[test]
    fn inequalities_become_intervals() {
        let expect = |s: &str, o: char, c: char| {
            assert!(
                matches!(p(s), Answer::Seq { open, close, .. } if open == o && close == c),
                "{s}"
            );
        };
        expect("x > 3", '(', ')');
        expect("x \\ge 3", '[', ')');
        expect("x < 3", '(', ')');
        expect("3 \\ge x", '(', ']');
        expect("1 < x \\le 2", '(', ']');
        expect("2 \\ge x > 1", '(', ']');
        assert_eq!(kind(&p("1 < x > 2")), "text");
        // Linear in one variable: solved for it.
        expect("x + 1 > 2", '(', ')');
        expect("-2x \\ge -4", '(', ']');
        expect("1 < 2x + 1 \\le 5", '(', ']');
        expect("0 < f(x) < 1", '(', ')');
        assert_eq!(kind(&p("x \\ne 3")), "union");
        assert_eq!(kind(&p("x^2 > 4")), "text");
        assert_eq!(kind(&p("x + y > 2")), "text");
    }

    #[test]
    fn size_and_nesting_limits() {
        let many = vec!["1"; MAX_ITEMS + 1].join(",");
        assert_eq!(kind(&p(&many)), "text");
        let nested = format!("{}1,2{}", "\\{".repeat(20), "\\}".repeat(20));
        assert_eq!(kind(&p(&nested)), "text");
    }
}
