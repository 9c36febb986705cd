//! String-level normalisation of a math answer before it is parsed or compared.
//!
//! Follows the Qwen2.5-Math grader's `strip_string` (itself from the MATH benchmark's
//! `is_equiv`) and Math-Verify's LaTeX normalisation config: `\dfrac`/`\tfrac` to `\frac`,
//! `\left`/`\right` and spacing commands dropped, `\text{...}` unwrapped, unit words, degrees,
//! `\$` and percent signs dropped, thousands separators removed, `x \in S` to `S`. `\frac12`
//! shorthand and `x = 5` are handled by the parser and the comparison, not here.
//!
//! Every pass is a single left-to-right scan; the input is capped at
//! [`MAX_ANSWER_BYTES`](super::MAX_ANSWER_BYTES) by the caller.

/// Commands whose braced argument is kept and the command dropped (`\text{cm}` -> ` cm `).
const TEXT_COMMANDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textrm",
    "textsf",
    "texttt",
    "textnormal",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "mathbb",
    "mathcal",
    "boldsymbol",
    "mbox",
    "hbox",
    "operatorname",
];

/// Commands dropped outright (sizing and style; their argument, if any, is an ordinary group).
const DROPPED_COMMANDS: &[&str] = &[
    "left",
    "right",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "!",
    "circ",
    "degree",
];

/// Commands renamed (`\dfrac` -> `\frac`, ...).
const RENAMED_COMMANDS: &[(&str, &str)] = &[
    ("dfrac", "frac"),
    ("tfrac", "frac"),
    ("cfrac", "frac"),
    ("dbinom", "binom"),
    ("tbinom", "binom"),
    ("varnothing", "emptyset"),
    ("infin", "infty"),
];

/// Spacing commands, replaced by a space (or nothing between two digits: `1\,000`).
const SPACE_COMMANDS: &[&str] = &[",", ";", ":", " ", "quad", "qquad", "enspace", "thinspace"];

/// Unit and filler words removed from answers that contain a digit (whole words only). Single
/// letters are never removed: `5m` may be a product.
const UNIT_WORDS: &[&str] = &[
    "unit",
    "units",
    "sq",
    "square",
    "cubic",
    "mm",
    "cm",
    "km",
    "millimeter",
    "millimeters",
    "centimeter",
    "centimeters",
    "centimetre",
    "centimetres",
    "meter",
    "meters",
    "metre",
    "metres",
    "kilometer",
    "kilometers",
    "inch",
    "inches",
    "ft",
    "foot",
    "feet",
    "yard",
    "yards",
    "mile",
    "miles",
    "mph",
    "kg",
    "gram",
    "grams",
    "kilogram",
    "kilograms",
    "lb",
    "lbs",
    "pound",
    "pounds",
    "ounce",
    "ounces",
    "oz",
    "ml",
    "liter",
    "liters",
    "litre",
    "litres",
    "gallon",
    "gallons",
    "sec",
    "second",
    "seconds",
    "minute",
    "minutes",
    "hr",
    "hrs",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "degree",
    "degrees",
    "percent",
    "percentage",
    "pct",
];

/// Commands that a doubled backslash (`\\frac`, from text escaped twice) still names.
const DOUBLED_COMMANDS: &[&str] = &[
    "frac", "dfrac", "tfrac", "left", "right", "sqrt", "le", "leq", "ge", "geq", "lt", "gt", "neq",
    "ne", "pi", "cdot", "times", "text", "mathrm", "infty", "cup", "in", "pm",
];

/// Normalises a math answer for comparison (see the module docs for the rules).
///
/// ```
/// use spiral_rewards::normalize_answer;
///
/// assert_eq!(normalize_answer("\\left( \\dfrac{1}{2}, 3 \\right)"), "( \\frac{1}{2}, 3 )");
/// assert_eq!(normalize_answer("\\$1,000.50"), "1000.50");
/// assert_eq!(normalize_answer("90^\\circ"), "90");
/// assert_eq!(normalize_answer("12 \\text{ cm}^2"), "12");
/// assert_eq!(normalize_answer("50\\%"), "50");
/// assert_eq!(normalize_answer("x \\in [0, 1]"), "[0, 1]");
/// ```
pub fn normalize_answer(answer: &str) -> String {
    let s = strip_math_delimiters(answer.trim());
    let s = s.replace(['\n', '\r', '\t'], " ");
    let s = keep_exact_side(&s);
    let s = unwrap_text_commands(&s);
    let s = rewrite_commands(&s);
    let s = join_brace_commas(&s);
    let s = s.replace(['$', '%', '°', '~'], " ");
    let s = s.replace("^{}", "");
    let s = rewrite_words(&s);
    let s = remove_thousands_separators(&s);
    let s = strip_membership(&s);
    let s = collapse_spaces(&s);
    s.trim_end_matches(['.', ' ']).trim_end_matches("\\\\").trim().to_owned()
}

/// `\\frac` -> `\frac` for the commands of [`DOUBLED_COMMANDS`], unless the answer is a
/// matrix (where `\\` ends a row and may precede anything). For text escaped twice (a
/// reference stored as `\\left(`, a response whose box reads `\\boxed`); it is not part of
/// [`normalize_answer`], where `\\le` is a line break before `le`.
pub(crate) fn undouble_backslashes(s: &str) -> String {
    if !s.contains("\\\\") || s.contains("\\begin") {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\\\") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let name_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        if name_len > 0 && DOUBLED_COMMANDS.contains(&&after[..name_len]) {
            out.push('\\');
        } else {
            out.push_str("\\\\");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `A \approx B`: an approximation after an exact value is dropped (`x = 1/3 \approx 0.33` is
/// `x = 1/3`); alone, it states the value (`x \approx 11` is `x = 11`), as Math-Verify reads it.
fn keep_exact_side(s: &str) -> String {
    let s = s.replace('≈', "\\approx ");
    let Some(pos) = s.find("\\approx") else { return s };
    let after = pos + "\\approx".len();
    if s.as_bytes().get(after).is_some_and(u8::is_ascii_alphabetic) {
        return s;
    }
    if s[..pos].contains('=') {
        s[..pos].to_owned()
    } else {
        format!("{} = {}", &s[..pos], &s[after..])
    }
}

/// `14{,}916`, `14 {, }916` -> `14,916`: a braced comma is a thousands separator, and the spaces
/// around it go with it.
fn join_brace_commas(s: &str) -> String {
    let s = s.replace("{, }", "{,}");
    if !s.contains("{,}") {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split("{,}").enumerate() {
        if i > 0 {
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push(',');
            out.push_str(part.trim_start());
        } else {
            out.push_str(part);
        }
    }
    out
}

/// `1000,99` -> `1000.99`: a normalised answer that is two digit runs joined by one comma
/// without spaces (so not a thousands separator, which normalisation has already removed).
pub(crate) fn decimal_comma(s: &str) -> Option<String> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = unsigned.split_once(',')?;
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (digits(int) && digits(frac)).then(|| s.replacen(',', ".", 1))
}

/// Whether a normalised answer is a number written with a decimal point (`1.22`, `-0.5`).
pub(crate) fn is_decimal_number(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    unsigned.split_once('.').is_some_and(|(int, frac)| {
        int.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `s` without spaces: the key of the fast string-equality check.
pub(crate) fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The letter of a multiple-choice answer written as `B`, `(B)`, `B)` or `(B) text`.
pub(crate) fn choice_letter(s: &str, allow_trailing_text: bool) -> Option<char> {
    let t = s.trim();
    let b = t.as_bytes();
    if allow_trailing_text
        && b.len() >= 3
        && b[0] == b'('
        && b[2] == b')'
        && b[1].is_ascii_alphabetic()
    {
        return Some(b[1].to_ascii_uppercase() as char);
    }
    let t = t.trim_start_matches('(').trim_end_matches(['.', ')', ':']).trim();
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// Drops `$...$`, `\(...\)` and `\[...\]` around the whole answer.
fn strip_math_delimiters(s: &str) -> &str {
    let mut s = s;
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
            s = s[open.len()..s.len() - close.len()].trim();
        }
    }
    s
}

/// The name of the command starting at byte `i` of `s` (which holds a `\`): letters, or a single
/// non-letter character.
fn command_at(s: &str, i: usize) -> &str {
    let rest = &s[i + 1..];
    let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    if letters > 0 {
        &rest[..letters]
    } else {
        rest.chars().next().map_or("", |c| &rest[..c.len_utf8()])
    }
}

/// Replaces `\text{X}` (and the other [`TEXT_COMMANDS`]) by ` X `, whatever the nesting.
fn unwrap_text_commands(s: &str) -> String {
    // Mark the closing brace of every unwrapped group, then copy in one pass.
    let bytes = s.as_bytes();
    let closers = matching_braces(bytes);
    let mut drop_close = vec![false; bytes.len()];
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        if drop_close[i] {
            out.push(' ');
            i += 1;
            continue;
        }
        if bytes[i] == b'\\' {
            let name = command_at(s, i);
            let after = i + 1 + name.len();
            if TEXT_COMMANDS.contains(&name) {
                let open = after + count_spaces(&bytes[after..]);
                if bytes.get(open) == Some(&b'{')
                    && let Some(close) = closers[open]
                {
                    drop_close[close] = true;
                    out.push(' ');
                    i = open + 1;
                    continue;
                }
            }
            // Copy the command whole so that `\\text` is not read as `\` + `\text`.
            out.push_str(&s[i..after]);
            i = after;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Number of leading ASCII spaces.
fn count_spaces(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b' ').count()
}

/// For every `{` of `bytes`, the index of its matching `}` (escaped braces skipped), in one pass.
fn matching_braces(bytes: &[u8]) -> Vec<Option<usize>> {
    let mut closers = vec![None; bytes.len()];
    let mut open = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    closers[o] = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    closers
}

/// Drops sizing/style/degree commands, renames synonyms, turns spacing into spaces, turns
/// matrix environments into `\matbegin ... \matend`, drops `\$`/`\%` and `^{\circ}`.
fn rewrite_commands(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let name = command_at(s, i);
        let after = i + 1 + name.len();
        if DROPPED_COMMANDS.contains(&name) {
            // `^\circ` and `^{\circ}`: drop the caret and braces too.
            if name == "circ" {
                strip_degree_caret(&mut out);
                i = after;
                if out.ends_with('{') && bytes.get(i) == Some(&b'}') {
                    out.pop();
                    strip_degree_caret(&mut out);
                    i += 1;
                }
                continue;
            }
            // `\right.` / `\left.`: the invisible delimiter goes too.
            i = if (name == "left" || name == "right") && bytes.get(after) == Some(&b'.') {
                after + 1
            } else {
                after
            };
            // `\!` is a negative space, used inside numbers (`16,\!386`): it leaves no gap, and
            // after a comma it joins the groups of a number written `11,\! 111`.
            if name != "!" {
                out.push(' ');
            } else if out.ends_with(',') {
                i += count_spaces(&bytes[i..]);
            }
            continue;
        }
        if let Some((_, to)) = RENAMED_COMMANDS.iter().find(|(from, _)| *from == name) {
            out.push('\\');
            out.push_str(to);
            i = after;
            continue;
        }
        if SPACE_COMMANDS.contains(&name) {
            let between_digits = out.ends_with(|c: char| c.is_ascii_digit())
                && bytes.get(after).is_some_and(u8::is_ascii_digit);
            if !between_digits {
                out.push(' ');
            }
            i = after;
            continue;
        }
        if name == "$" || name == "%" {
            out.push(' ');
            i = after;
            continue;
        }
        if (name == "begin" || name == "end")
            && let Some((env, len)) = environment_name(&s[after..])
            && (env.ends_with("matrix") || env == "array")
        {
            out.push_str(if name == "begin" { " \\matbegin " } else { " \\matend " });
            i = after + len;
            // `\begin{array}{cc}`: the column specification is not content.
            if env == "array"
                && name == "begin"
                && let Some((_, spec)) = environment_name(&s[i..])
            {
                i += spec;
            }
            continue;
        }
        out.push_str(&s[i..after]);
        i = after;
    }
    out
}

/// Removes a trailing `^` (and spaces) before a dropped `\circ`.
fn strip_degree_caret(out: &mut String) {
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if out.ends_with('^') {
        out.pop();
    } else if out.ends_with("^{") {
        out.truncate(out.len() - 2);
        out.push('{');
    }
}

/// `{pmatrix}` at the start of `s`: the name and the length of the braced group.
fn environment_name(s: &str) -> Option<(&str, usize)> {
    let inner = s.strip_prefix('{')?;
    // Environment names are short; never scan far for the brace.
    let end = inner.bytes().take(24).position(|b| b == b'}')?;
    Some((&inner[..end], end + 2))
}

/// Drops unit words (when a digit is present), turns `and` into `,` and `infinity`/`inf` into
/// `\infty`. Words directly after a `\` are command names and are kept.
fn rewrite_words(s: &str) -> String {
    let has_digit = s.bytes().any(|b| b.is_ascii_digit());
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !b.is_ascii_alphabetic() {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let len = bytes[i..].iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let word = &s[i..i + len];
        let is_command = i > 0 && bytes[i - 1] == b'\\';
        let glued_before = i > 0 && bytes[i - 1].is_ascii_alphanumeric();
        let glued_after = bytes.get(i + len).is_some_and(u8::is_ascii_alphanumeric);
        let bounded = !glued_before && !glued_after;
        i += len;
        if is_command || !bounded {
            out.push_str(word);
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if has_digit && UNIT_WORDS.contains(&lower.as_str()) {
            i += unit_power_len(&bytes[i..]);
            out.push(' ');
        } else if lower == "and" || lower == "or" {
            out.push(',');
        } else if lower == "infinity" || lower == "inf" {
            out.push_str("\\infty ");
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Length of a `^2`, `^3`, `^{2}` or `^{3}` (after spaces) following a unit word.
fn unit_power_len(rest: &[u8]) -> usize {
    let spaces = count_spaces(rest);
    let r = &rest[spaces..];
    for pattern in [&b"^{2}"[..], b"^{3}", b"^2", b"^3"] {
        if r.starts_with(pattern) {
            return spaces + pattern.len();
        }
    }
    0
}

/// `1,234,567` -> `1234567` at bracket depth 0 when the first group is 1-3 digits not starting
/// with 0 and every later group has exactly three digits; `(2,100)` is a point and is kept.
fn remove_thousands_separators(s: &str) -> String {
    if !s.contains(',') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut depth = 0i64;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        let starts_number = b.is_ascii_digit()
            && b != b'0'
            && (i == 0 || !matches!(bytes[i - 1], b'0'..=b'9' | b'.' | b','));
        if depth == 0
            && starts_number
            && let Some(end) = thousands_run(bytes, i)
        {
            out.extend(s[i..end].chars().filter(|&c| c != ','));
            i = end;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// End of a thousands-separated integer starting at `start`, if there is one.
fn thousands_run(bytes: &[u8], start: usize) -> Option<usize> {
    let lead = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    if lead > 3 {
        return None;
    }
    let mut end = start + lead;
    let mut groups = 0;
    while bytes.get(end) == Some(&b',')
        && bytes.len() >= end + 4
        && bytes[end + 1..end + 4].iter().all(u8::is_ascii_digit)
        && !bytes.get(end + 4).is_some_and(u8::is_ascii_digit)
    {
        end += 4;
        groups += 1;
    }
    (groups > 0).then_some(end)
}

/// `x \in S` -> `S` when the left side is a short name.
fn strip_membership(s: &str) -> String {
    if let Some(pos) = s.find("\\in") {
        let after = pos + 3;
        let is_in = !s.as_bytes().get(after).is_some_and(u8::is_ascii_alphabetic);
        let lhs = s[..pos].trim();
        let short_name = !lhs.is_empty()
            && lhs.len() <= 3
            && lhs.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if is_in && short_name {
            return s[after..].to_owned();
        }
    }
    s.to_owned()
}

/// Runs of spaces to one space, trimmed.
fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize_answer(s)
    }

    #[test]
    fn fractions_and_delimiters() {
        assert_eq!(n("\\dfrac{3}{4}"), "\\frac{3}{4}");
        assert_eq!(n("\\tfrac12"), "\\frac12");
        assert_eq!(n("$\\frac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(n("\\(x+1\\)"), "x+1");
        assert_eq!(n("\\left[ 1, 2 \\right)"), "[ 1, 2 )");
        assert_eq!(n("\\left. x \\right|_0"), "x |_0");
        assert_eq!(n("\\leftarrow"), "\\leftarrow");
        assert_eq!(n("\\displaystyle\\binom{5}{2}"), "\\binom{5}{2}");
        assert_eq!(n("\\dbinom{5}{2}"), "\\binom{5}{2}");
    }

    #[test]
    fn text_units_degrees_money_percent() {
        assert_eq!(n("\\text{(B)}"), "(B)");
        assert_eq!(n("\\textbf{Monday}"), "Monday");
        assert_eq!(n("5\\text{ cm}"), "5");
        assert_eq!(n("5 \\mbox{ square units}"), "5");
        assert_eq!(n("10 \\text{ ft}^{2}"), "10");
        assert_eq!(n("30^{\\circ}"), "30");
        assert_eq!(n("30 ^ \\circ"), "30");
        assert_eq!(n("30°"), "30");
        assert_eq!(n("45 degrees"), "45");
        assert_eq!(n("\\$ 12.50"), "12.50");
        assert_eq!(n("25\\%"), "25");
        assert_eq!(n("25 percent"), "25");
        // No digit: words are the answer.
        assert_eq!(n("\\text{feet}"), "feet");
        assert_eq!(n("2 \\text{ and } 3"), "2 , 3");
        assert_eq!(n("infinity"), "\\infty");
        assert_eq!(n("\\text{\\textbf{nested}}"), "nested");
    }

    #[test]
    fn spacing_and_thousands() {
        assert_eq!(n("1,000,000"), "1000000");
        assert_eq!(n("1{,}000"), "1000");
        assert_eq!(n("1\\,000"), "1000");
        assert_eq!(n("\\$16,\\!386.20"), "16386.20");
        assert_eq!(n("12,345.5"), "12345.5");
        assert_eq!(n("(2,100)"), "(2,100)");
        assert_eq!(n("0,100"), "0,100");
        assert_eq!(n("1,2"), "1,2");
        assert_eq!(n("1234,567"), "1234,567");
        assert_eq!(n("x\\,y\\;z\\quad w"), "x y z w");
        assert_eq!(n("\\!3"), "3");
        assert_eq!(n("5."), "5");
        assert_eq!(n("  a   b  "), "a b");
    }

    #[test]
    fn membership_and_matrices() {
        assert_eq!(n("x \\in (1, 2]"), "(1, 2]");
        assert_eq!(n("\\infty"), "\\infty");
        assert_eq!(
            n("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"),
            "\\matbegin 1 & 2 \\\\ 3 & 4 \\matend"
        );
    }

    #[test]
    fn choice_letters() {
        assert_eq!(choice_letter("B", false), Some('B'));
        assert_eq!(choice_letter("(c)", false), Some('C'));
        assert_eq!(choice_letter("D)", false), Some('D'));
        assert_eq!(choice_letter("(B) 12", true), Some('B'));
        assert_eq!(choice_letter("(B) 12", false), None);
        assert_eq!(choice_letter("12", true), None);
        assert_eq!(choice_letter("AB", true), None);
    }

    #[test]
    fn adversarial_inputs_do_not_panic() {
        for s in [
            "\\",
            "\\text",
            "\\text{",
            "\\text{{{{",
            "}}}}",
            "\\begin",
            "\\begin{",
            "\\left",
            "^\\circ",
            "{\\circ}",
            "1,",
            ",000",
            "é\\é",
            "\\in",
            "$",
            "$$",
            "\\(",
        ] {
            let _ = n(s);
        }
        let deep = format!("{}\\text{{x}}{}", "{".repeat(3000), "}".repeat(3000));
        assert!(n(&deep).contains('x'));
    }
}
