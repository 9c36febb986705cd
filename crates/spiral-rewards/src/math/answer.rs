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
    let text = || Answer::Text(compact(normalized).to_lowercase());
    match lex(normalized) {
        Ok(toks) => parse_tokens(&toks, 0).unwrap_or_else(|_| text()),
        Err(_) => text(),
    }
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
        return items(&split_top(inner, |t| *t == Tok::Sym(','))?, nesting).map(Answer::Set);
    }
    // `{1, 2}`: plain braces around the whole answer with a comma inside are a set too; without
    // a comma (`{5}`) they are LaTeX grouping.
    if *first == Tok::Sym('{') && *last == Tok::Sym('}') && wrapped(toks) {
        let inner = split_top(&toks[1..toks.len() - 1], |t| *t == Tok::Sym(','))?;
        if inner.len() > 1 {
            return items(&inner, nesting).map(Answer::Set);
        }
    }
    if let Some(answer) = plus_minus(toks, nesting)? {
        return Ok(answer);
    }
    let commas = split_top(toks, |t| *t == Tok::Sym(','))?;
    if commas.len() > 1 {
        return items(&commas, nesting).map(Answer::List);
    }
    if let (Tok::Sym(open @ ('(' | '[')), Tok::Sym(close @ (')' | ']'))) = (first, last)
        && wrapped(toks)
    {
        let inner = split_top(&toks[1..toks.len() - 1], |t| *t == Tok::Sym(','))?;
        if inner.len() > 1 {
            let items = items(&inner, nesting)?;
            return Ok(Answer::Seq { open: *open, close: *close, items });
        }
    }
    if let Some(answer) = inequality(toks)? {
        return Ok(answer);
    }
    let sides = split_top(toks, |t| *t == Tok::Sym('='))?;
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

/// `x < 3`, `x \ge -1`, `1 < x \le 2` in one variable, as intervals.
fn inequality(toks: &[Tok]) -> Result<Option<Answer>> {
    let is_rel = |t: &Tok| matches!(t, Tok::Sym('<' | '>' | '≤' | '≥'));
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
    let inf = |negative: bool| {
        if negative { Expr::Neg(Box::new(Expr::Infinity)) } else { Expr::Infinity }
    };
    let strict = |c: char| c == '<' || c == '>';
    let less = |c: char| c == '<' || c == '≤';
    let (lo, lo_strict, hi, hi_strict) = match (parts.as_slice(), rels.as_slice()) {
        ([v, bound], [r]) if is_var(v) => {
            let b = parse_expr(bound)?;
            if less(*r) {
                (inf(true), true, b, strict(*r))
            } else {
                (b, strict(*r), inf(false), true)
            }
        }
        ([bound, v], [r]) if is_var(v) => {
            let b = parse_expr(bound)?;
            if less(*r) {
                (b, strict(*r), inf(false), true)
            } else {
                (inf(true), true, b, strict(*r))
            }
        }
        ([a, v, b], [r1, r2]) if is_var(v) && less(*r1) == less(*r2) => {
            let (a, b) = (parse_expr(a)?, parse_expr(b)?);
            if less(*r1) {
                (a, strict(*r1), b, strict(*r2))
            } else {
                (b, strict(*r2), a, strict(*r1))
            }
        }
        _ => return err("unsupported relation"),
    };
    Ok(Some(Answer::Seq {
        open: if lo_strict { '(' } else { '[' },
        close: if hi_strict { ')' } else { ']' },
        items: vec![Answer::Expr(lo), Answer::Expr(hi)],
    }))
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
        assert_eq!(kind(&p("{1, 2, 3}")), "set");
        assert_eq!(kind(&p("{(1, 2), 3}")), "set");
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
        assert_eq!(kind(&p("x + 1 > 2")), "text");
    }

    #[test]
    fn size_and_nesting_limits() {
        let many = vec!["1"; MAX_ITEMS + 1].join(",");
        assert_eq!(kind(&p(&many)), "text");
        let nested = format!("{}1,2{}", "\\{".repeat(20), "\\}".repeat(20));
        assert_eq!(kind(&p(&nested)), "text");
    }
}
