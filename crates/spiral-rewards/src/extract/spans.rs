//! Values in prose: math spans (`$...$`, `$$...$$`, `\(...\)`, `\[...\]`) and plain numbers
//! (`1,000.99`, `2,74`, `-3`, `2/3`), each with an optional percent suffix (`%`, `percent`,
//! `percentage`, `pct`).
//!
//! Follows Math-Verify's extraction patterns: display math may span lines, inline math may not
//! (`$ \n 9 \n $` is no value, and the `9` inside it is not read as a number either); a `$` that
//! never closes is a currency sign; a number must start the text or follow a space, `=`, `**`
//! or a currency sign, so that `AZYUK2A` holds no number. Every scan is linear: the position of
//! the next closing delimiter is cached, so a text full of unclosed `\[` costs one pass.

/// A value found in the text: what to grade, and the byte just after it.
pub(crate) struct Value<'a> {
    pub(crate) text: &'a str,
    pub(crate) next: usize,
}

/// The longest math span read, in bytes.
const SPAN_LIMIT: usize = 4096;

/// Currency signs a number may follow.
const CURRENCY: &[char] = &['$', '€', '£', '¥', '₹'];

/// Percent suffixes, longest first.
const PERCENT: &[&str] = &["\\%", "%", "percentage", "percent", "pct"];

/// The delimiters of math spans: opening, closing, whether the span may hold a line break.
const DELIMITERS: [(&str, &str, bool); 4] =
    [("$$", "$$", true), ("\\[", "\\]", true), ("$", "$", false), ("\\(", "\\)", false)];

/// What starts at a position.
enum Span {
    /// A math span: the content's range, and the end of the closing delimiter.
    Valid(usize, usize, usize),
    /// An inline span across lines: no value, and none inside it; the end of its closer.
    Malformed(usize),
    /// No span.
    None,
}

/// The next occurrence of each closing delimiter, cached so that forward scans stay linear.
struct Closers {
    next: [Option<Option<usize>>; 4],
}

impl Closers {
    fn new() -> Self {
        Self { next: [None; 4] }
    }

    /// The first occurrence of closer `k` at or after `from` (not escaped for `$`).
    fn find(&mut self, text: &str, k: usize, from: usize) -> Option<usize> {
        if let Some(cached) = self.next[k]
            && cached.is_none_or(|p| p >= from)
        {
            return cached;
        }
        let close = DELIMITERS[k].1;
        let mut at = from;
        let found = loop {
            match text.get(at..).and_then(|rest| rest.find(close)) {
                Some(i) if close == "$" && text[..at + i].ends_with('\\') => at += i + 1,
                Some(i) => break Some(at + i),
                None => break None,
            }
        };
        self.next[k] = Some(found);
        found
    }
}

/// The span starting at `i`, if any.
fn span_at(text: &str, i: usize, closers: &mut Closers) -> Span {
    let rest = &text[i..];
    for (k, (open, _, multiline)) in DELIMITERS.iter().enumerate() {
        if !rest.starts_with(open) {
            continue;
        }
        // `\$` is a dollar sign, and `5$` a price.
        if *open == "$" && text[..i].ends_with(|c: char| c == '\\' || c.is_ascii_digit()) {
            return Span::None;
        }
        let start = i + open.len();
        let Some(close) = closers.find(text, k, start) else { return Span::None };
        if close - start > SPAN_LIMIT {
            return Span::None;
        }
        let end = close + DELIMITERS[k].1.len();
        if !multiline && text[start..close].contains('\n') {
            return Span::Malformed(end);
        }
        let content = &text[start..close];
        let trimmed = content.trim();
        if trimmed.is_empty() {
            return Span::None;
        }
        let lead = content.len() - content.trim_start().len();
        return Span::Valid(start + lead, start + lead + trimmed.len(), end);
    }
    Span::None
}

/// Whether `s` starts with a math delimiter.
pub(crate) fn starts_math_delimiter(s: &str) -> bool {
    DELIMITERS.iter().any(|(open, ..)| s.starts_with(open))
}

/// The length of a percent suffix (after optional spaces) at the start of `rest`.
fn percent_len(rest: &str) -> usize {
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    let r = &rest[spaces..];
    for p in PERCENT {
        if r.len() >= p.len() && r.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()) {
            let glued = r[p.len()..].starts_with(|c: char| c.is_ascii_alphanumeric());
            if !glued {
                return spaces + p.len();
            }
        }
    }
    0
}

/// Whether a number may start at `i`: at the start, or after a space, `=`, `*`, or a currency
/// sign that is itself at the start or after one of those.
fn anchored(text: &str, i: usize) -> bool {
    let mut before = text[..i].chars().rev();
    let free = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || c == '=' || c == '*');
    match before.next() {
        Some(c) if CURRENCY.contains(&c) => free(before.next()),
        c => free(c),
    }
}

/// The end of a plain number starting at `i` (`-1,000.99`, `2,74`, `.5`, `2/3`), if one does.
fn number_end(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let digits =
        |from: usize| b[from.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut j = i + usize::from(b.get(i) == Some(&b'-'));
    let lead = digits(j);
    if lead == 0 {
        // `.5`
        if b.get(j) == Some(&b'.') && digits(j + 1) > 0 {
            return Some(j + 1 + digits(j + 1));
        }
        return None;
    }
    let first = j;
    j += lead;
    let mut grouped = false;
    if lead <= 3 && b[first] != b'0' {
        while b.get(j) == Some(&b',') && digits(j + 1) == 3 {
            j += 4;
            grouped = true;
        }
    }
    let decimal_mark =
        if grouped { b.get(j) == Some(&b'.') } else { matches!(b.get(j), Some(b'.' | b',')) };
    // A decimal part, or the denominator of a fraction such as `2/3`.
    let fraction = b.get(j) == Some(&b'/');
    if (decimal_mark || fraction) && digits(j + 1) > 0 {
        j += 1 + digits(j + 1);
    }
    Some(j)
}

/// The value starting exactly at `i`: a math span or an anchored number, with its percent
/// suffix.
pub(crate) fn value_at(text: &str, i: usize) -> Option<Value<'_>> {
    value_with(text, i, &mut Closers::new()).ok().flatten()
}

/// The value at `i`; `Err(end)` when a malformed span starts there (skip to `end`).
fn value_with<'a>(
    text: &'a str,
    i: usize,
    closers: &mut Closers,
) -> Result<Option<Value<'a>>, usize> {
    let i = if text[i..].starts_with("**") { i + 2 } else { i };
    match span_at(text, i, closers) {
        Span::Valid(start, end, next) => {
            let pct = percent_len(&text[next..]);
            let stop = if pct > 0 && text[i..].starts_with('$') { next + pct } else { end };
            return Ok(Some(Value { text: &text[start..stop], next: next + pct }));
        }
        Span::Malformed(end) => return Err(end),
        Span::None => {}
    }
    if !text[i..].starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        || !anchored(text, i)
    {
        return Ok(None);
    }
    let Some(end) = number_end(text, i) else { return Ok(None) };
    let stop = end + percent_len(&text[end..]);
    Ok(Some(Value { text: text[i..stop].trim_end(), next: stop }))
}

/// The first value starting in `text[from..to]`.
pub(crate) fn first_value_in(text: &str, from: usize, to: usize) -> Option<&str> {
    let mut closers = Closers::new();
    let mut i = from;
    while i < to {
        match value_with(text, i, &mut closers) {
            Ok(Some(v)) => return Some(v.text),
            Ok(None) => i += text[i..].chars().next().map_or(1, char::len_utf8),
            Err(_) => return None,
        }
    }
    None
}

/// The first value in `s`.
pub(crate) fn first_value(s: &str) -> Option<&str> {
    first_value_in(s, 0, s.len())
}

/// The last value of `text` (Math-Verify's fallback without an anchor), skipping what lies
/// inside malformed spans.
pub(crate) fn last_value(text: &str) -> Option<&str> {
    let mut closers = Closers::new();
    let mut last = None;
    let mut i = 0;
    while i < text.len() {
        match value_with(text, i, &mut closers) {
            Ok(Some(v)) => {
                last = Some(v.text);
                i = v.next.max(i + 1);
            }
            Err(end) => i = end,
            Ok(None) => i += text[i..].chars().next().map_or(1, char::len_utf8),
        }
        while !text.is_char_boundary(i.min(text.len())) {
            i += 1;
        }
    }
    last
}

/// `i` moved past ASCII spaces.
pub(crate) fn skip_spaces(text: &str, i: usize) -> usize {
    i + text[i..].len() - text[i..].trim_start_matches([' ', '\t']).len()
}

/// The largest character boundary of `text` at or below `i`.
pub(crate) fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_numbers_in_prose() {
        assert_eq!(last_value("so we get $x = 4$ and then 12 apples"), Some("12"));
        assert_eq!(last_value("the total is $3 + 4$."), Some("3 + 4"));
        assert_eq!(last_value("paid $2,500.75 in all"), Some("2,500.75"));
        assert_eq!(last_value("roughly 3,25 litres"), Some("3,25"));
        assert_eq!(last_value("it grew by 40 pct"), Some("40 pct"));
        assert_eq!(last_value("it grew by $40$ percent"), Some("40$ percent"));
        assert_eq!(last_value("a ratio of 5/8."), Some("5/8"));
        assert_eq!(last_value("display \\[\n 7 \n\\] here"), Some("7"));
        assert_eq!(last_value("a code QX7B"), None);
        assert_eq!(last_value("no numbers"), None);
    }

    #[test]
    fn inline_math_does_not_cross_lines() {
        assert_eq!(last_value("value $ \n 6 \n $"), None);
        assert_eq!(last_value("value \\( \n 6 \n \\)"), None);
        assert_eq!(last_value("value $$ \n 6 \n $$"), Some("6"));
        assert_eq!(value_at("\\$5 $x$", 4).map(|v| v.text), Some("x"));
    }

    #[test]
    fn unclosed_delimiters_are_linear() {
        let text = "\\[ 1 ".repeat(40_000) + "$ 2 ".repeat(40_000).as_str();
        let start = std::time::Instant::now();
        assert_eq!(last_value(&text), Some("2"));
        assert!(start.elapsed().as_secs_f64() < 2.0);
    }
}
