//! Tokens of a normalised math answer, LaTeX (`\frac{1}{2}`, `\sqrt2`, `\pi`) and plain text
//! (`sqrt(2)`, `pi`, `x**2`, `1.5e3`) alike.
//!
//! Follows the token set of latex2sympy (the LaTeX front end both the Qwen2.5-Math grader and
//! Math-Verify use), reduced to what final answers contain. Anything else is an error, and the
//! comparison then falls back to text.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;

/// The largest power of ten accepted in scientific notation (`1e400` is refused).
const MAX_EXP10: i64 = 400;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A number literal: its digits as written (for `\frac12`), its exact value, and whether it
    /// was written with a decimal point or an exponent.
    Num { text: String, value: BigRational, decimal: bool },
    /// A variable: one Latin letter or a Greek letter name.
    Var(String),
    /// A function, constant or structural command (`frac`, `sqrt`, `sin`, `pi`, `infty`, `pm`,
    /// `cup`, ...); `latex` is true for `\name`, false for a plain word.
    Cmd { name: &'static str, latex: bool },
    /// A symbol: `+ - * / ^ _ ( ) [ ] { } , = ! | < > & ; :` and `≤ ≥ ≠`.
    Sym(char),
    /// `\{`.
    SetOpen,
    /// `\}`.
    SetClose,
    /// `\\`, the row separator of a matrix.
    RowSep,
}

/// Why an answer could not be tokenised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError(pub(crate) String);

/// Commands and words that are functions, constants or structure.
const NAMES: &[&str] = &[
    "frac", "sqrt", "binom", "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "abs", "floor", "ceil", "lfloor",
    "rfloor", "lceil", "rceil", "pi", "infty", "emptyset", "pm", "mp", "cup", "cap", "matbegin",
    "matend",
];

/// Plain words that are functions or constants (the rest of [`NAMES`] needs a backslash).
const PLAIN_WORDS: &[&str] = &[
    "sqrt", "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "ln", "log", "exp", "abs", "floor", "ceil", "pi",
];

/// Greek letters, read as variables (`\pi` is the constant, not in this list).
const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "varrho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
];

/// Tokenises `s`.
pub(crate) fn lex(s: &str) -> Result<Vec<Tok>, LexError> {
    let mut toks = Vec::with_capacity(s.len() / 2 + 1);
    let bytes = s.as_bytes();
    let mut i = 0;
    // Digits still to be read one at a time: LaTeX's `\frac12` is `\frac{1}{2}`, `\sqrt2x` is
    // `\sqrt{2}x`.
    let mut single_digits = 0u8;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if single_digits > 0 && b.is_ascii_digit() {
            let text = s[i..i + 1].to_owned();
            let value = BigRational::from_integer(BigInt::from(b - b'0'));
            toks.push(Tok::Num { text, value, decimal: false });
            single_digits -= 1;
            i += 1;
            continue;
        }
        single_digits = 0;
        if b.is_ascii_digit() || (b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i = lex_number(s, i, &mut toks)?;
        } else if b == b'\\' {
            i = lex_command(s, i, &mut toks)?;
            single_digits = match toks.last() {
                Some(Tok::Cmd { name: "frac" | "binom", latex: true }) => 2,
                Some(Tok::Cmd { name: "sqrt", latex: true }) => 1,
                _ => 0,
            };
        } else if b.is_ascii_alphabetic() {
            i = lex_word(s, i, &mut toks)?;
        } else if b == b'*' && bytes.get(i + 1) == Some(&b'*') {
            toks.push(Tok::Sym('^'));
            i += 2;
        } else if matches!(b, b'<' | b'>' | b'!') && bytes.get(i + 1) == Some(&b'=') {
            // Plain-text relations `<=`, `>=`, `!=`.
            toks.push(Tok::Sym(match b {
                b'<' => '≤',
                b'>' => '≥',
                _ => '≠',
            }));
            i += 2;
        } else if b"+-*/^_()[]{},=!|<>&;:".contains(&b) {
            toks.push(Tok::Sym(b as char));
            i += 1;
        } else {
            let c = s[i..].chars().next().unwrap_or('\0');
            toks.push(unicode_token(c).ok_or_else(|| LexError(format!("unexpected `{c}`")))?);
            i += c.len_utf8();
        }
    }
    Ok(toks)
}

/// A number at `start`: digits, an optional fraction, an optional `e[+-]digits` exponent.
fn lex_number(s: &str, start: usize, toks: &mut Vec<Tok>) -> Result<usize, LexError> {
    let bytes = s.as_bytes();
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let int_len = digits(start);
    let mut end = start + int_len;
    let mut frac = "";
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        let frac_len = digits(end + 1);
        frac = &s[end + 1..end + 1 + frac_len];
        end += 1 + frac_len;
    }
    let mut exp10 = 0i64;
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign_len = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exp_len = digits(end + 1 + sign_len);
        let after = end + 1 + sign_len + exp_len;
        // `2e3` is 2000, but `2e` and `2ex` are products with Euler's number and `x`.
        if exp_len > 0 && !bytes.get(after).is_some_and(u8::is_ascii_alphabetic) {
            let text = &s[end + 1 + sign_len..after];
            exp10 = text.parse::<i64>().unwrap_or(i64::MAX).min(MAX_EXP10 + 1);
            if bytes[end + 1] == b'-' {
                exp10 = -exp10;
            }
            if exp10.abs() > MAX_EXP10 {
                return Err(LexError(format!("exponent of `{}` is too large", &s[start..after])));
            }
            end = after;
        }
    }
    let int = &s[start..start + int_len];
    let mantissa: BigInt = format!("{int}{frac}").parse().unwrap_or_else(|_| BigInt::zero());
    let scale = exp10 - frac.len() as i64;
    let ten = BigInt::from(10u32);
    let pow = num_traits::pow(ten, scale.unsigned_abs() as usize);
    let value = if scale >= 0 {
        BigRational::from_integer(mantissa * pow)
    } else {
        BigRational::new(mantissa, pow)
    };
    let decimal = !frac.is_empty() || exp10 != 0 || end > start + int_len;
    toks.push(Tok::Num { text: s[start..start + int_len].to_owned(), value, decimal });
    Ok(end)
}

/// A `\command` at `start`.
fn lex_command(s: &str, start: usize, toks: &mut Vec<Tok>) -> Result<usize, LexError> {
    let rest = &s[start + 1..];
    let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    if letters == 0 {
        let c = rest.chars().next().ok_or_else(|| LexError("trailing `\\`".into()))?;
        match c {
            '{' => toks.push(Tok::SetOpen),
            '}' => toks.push(Tok::SetClose),
            '\\' => toks.push(Tok::RowSep),
            '|' => toks.push(Tok::Sym('|')),
            ',' | ';' | ':' | '!' | ' ' | '$' | '%' => {}
            _ => return Err(LexError(format!("unknown command `\\{c}`"))),
        }
        return Ok(start + 1 + c.len_utf8());
    }
    let name = &rest[..letters];
    let end = start + 1 + letters;
    let tok = match name {
        "cdot" | "times" | "ast" => Tok::Sym('*'),
        "div" => Tok::Sym('/'),
        "lt" => Tok::Sym('<'),
        "gt" => Tok::Sym('>'),
        "le" | "leq" | "leqslant" => Tok::Sym('≤'),
        "ge" | "geq" | "geqslant" => Tok::Sym('≥'),
        "ne" | "neq" => Tok::Sym('≠'),
        "vert" | "lvert" | "rvert" | "mid" => Tok::Sym('|'),
        "lbrace" => Tok::SetOpen,
        "rbrace" => Tok::SetClose,
        "langle" => Tok::Sym('('),
        "rangle" => Tok::Sym(')'),
        "lbrack" => Tok::Sym('['),
        "rbrack" => Tok::Sym(']'),
        "dfrac" | "tfrac" => Tok::Cmd { name: "frac", latex: true },
        "quad" | "qquad" => return Ok(end),
        _ => {
            if let Some(&g) = GREEK.iter().find(|&&g| g == name) {
                Tok::Var(g.to_owned())
            } else if let Some(&n) = NAMES.iter().find(|&&n| n == name) {
                Tok::Cmd { name: n, latex: true }
            } else {
                return Err(LexError(format!("unknown command `\\{name}`")));
            }
        }
    };
    toks.push(tok);
    Ok(end)
}

/// A run of ASCII letters at `start`: a known word, or one or two single-letter variables.
/// Longer unknown words (`Monday`) are not math.
fn lex_word(s: &str, start: usize, toks: &mut Vec<Tok>) -> Result<usize, LexError> {
    let len = s.as_bytes()[start..].iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let word = &s[start..start + len];
    if let Some(&w) = PLAIN_WORDS.iter().find(|&&w| w == word) {
        toks.push(Tok::Cmd { name: w, latex: false });
        return Ok(start + len);
    }
    // `sinx`: a function name followed by at most two variables.
    let (prefix, letters) = match PLAIN_WORDS.iter().find(|&&w| word.starts_with(w)) {
        Some(&w) if len - w.len() <= 2 => (Some(w), &word[w.len()..]),
        _ => (None, word),
    };
    if letters.len() > 2 {
        return Err(LexError(format!("`{word}` is a word, not math")));
    }
    if let Some(w) = prefix {
        toks.push(Tok::Cmd { name: w, latex: false });
    }
    toks.extend(letters.chars().map(|c| Tok::Var(c.to_string())));
    Ok(start + len)
}

/// Unicode math characters.
fn unicode_token(c: char) -> Option<Tok> {
    let cmd = |name| Some(Tok::Cmd { name, latex: true });
    match c {
        'π' => cmd("pi"),
        '∞' => cmd("infty"),
        '√' => Some(Tok::Cmd { name: "sqrt", latex: false }),
        '±' => cmd("pm"),
        '∓' => cmd("mp"),
        '∪' => cmd("cup"),
        '∩' => cmd("cap"),
        '∅' => cmd("emptyset"),
        '×' | '·' | '⋅' | '∗' => Some(Tok::Sym('*')),
        '÷' => Some(Tok::Sym('/')),
        '−' | '–' => Some(Tok::Sym('-')),
        '≤' | '≥' | '≠' => Some(Tok::Sym(c)),
        'α'..='ω' => Some(Tok::Var(c.to_string())),
        _ => None,
    }
}

/// `true` when `t` is the integer literal `n`.
#[cfg(test)]
fn is_int(t: &Tok, n: i64) -> bool {
    matches!(t, Tok::Num { value, decimal: false, .. } if *value == BigRational::from_integer(n.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::One;

    #[test]
    fn numbers() {
        let t = lex("12 3.5 .25 1e3 2.5E-2").unwrap();
        assert!(is_int(&t[0], 12));
        assert!(
            matches!(&t[1], Tok::Num { value, decimal: true, .. } if *value == BigRational::new(7.into(), 2.into()))
        );
        assert!(
            matches!(&t[2], Tok::Num { value, .. } if *value == BigRational::new(1.into(), 4.into()))
        );
        assert!(
            matches!(&t[3], Tok::Num { value, decimal: true, .. } if *value == BigRational::from_integer(1000.into()))
        );
        assert!(
            matches!(&t[4], Tok::Num { value, .. } if *value == BigRational::new(1.into(), 40.into()))
        );
        // `2e` and `2ex` keep `e` as a letter.
        assert_eq!(lex("2e").unwrap()[1], Tok::Var("e".into()));
        // `2e3x` is not scientific notation: the exponent may not run into a letter.
        assert_eq!(lex("2e3x").unwrap().len(), 4);
        assert!(lex("1e999").is_err());
        let long = "9".repeat(500);
        assert!(matches!(&lex(&long).unwrap()[0], Tok::Num { text, .. } if text.len() == 500));
    }

    #[test]
    fn commands_words_and_symbols() {
        let t = lex("\\frac{a}{b} \\cdot \\theta").unwrap();
        assert_eq!(t[0], Tok::Cmd { name: "frac", latex: true });
        assert_eq!(t[1], Tok::Sym('{'));
        assert_eq!(t[2], Tok::Var("a".into()));
        assert_eq!(t[7], Tok::Sym('*'));
        assert_eq!(t[8], Tok::Var("theta".into()));
        assert_eq!(lex("sqrt(2)").unwrap()[0], Tok::Cmd { name: "sqrt", latex: false });
        assert_eq!(lex("x**2").unwrap()[1], Tok::Sym('^'));
        assert_eq!(lex("sinx").unwrap().len(), 2);
        assert_eq!(lex("xy").unwrap().len(), 2);
        assert!(lex("Monday").is_err());
        assert!(lex("\\foo").is_err());
        assert!(lex("\\").is_err());
        assert_eq!(
            lex("\\{1\\}").unwrap(),
            vec![
                Tok::SetOpen,
                Tok::Num { text: "1".into(), value: BigRational::one(), decimal: false },
                Tok::SetClose
            ]
        );
        assert_eq!(lex("1 \\\\ 2").unwrap()[1], Tok::RowSep);
        assert_eq!(lex("3π").unwrap()[1], Tok::Cmd { name: "pi", latex: true });
        assert_eq!(lex("2 ≤ x").unwrap()[1], Tok::Sym('≤'));
        assert_eq!(lex("x >= 2").unwrap()[1], Tok::Sym('≥'));
        assert_eq!(lex("x<=2").unwrap()[1], Tok::Sym('≤'));
        assert_eq!(lex("x != 2").unwrap()[1], Tok::Sym('≠'));
        assert_eq!(lex("3:4").unwrap()[1], Tok::Sym(':'));
        assert!(lex("é").is_err());
        assert!(lex("'").is_err());
    }

    #[test]
    fn latex_single_digit_arguments() {
        let digits = |s: &str| -> Vec<String> {
            lex(s)
                .unwrap()
                .into_iter()
                .filter_map(|t| match t {
                    Tok::Num { text, .. } => Some(text),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(digits("\\frac12"), ["1", "2"]);
        assert_eq!(digits("\\frac 123"), ["1", "2", "3"]);
        assert_eq!(digits("\\sqrt23"), ["2", "3"]);
        assert_eq!(digits("\\frac{12}{34}"), ["12", "34"]);
        assert_eq!(digits("sqrt 23"), ["23"]);
    }
}
