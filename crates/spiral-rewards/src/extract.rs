//! Finding the final answer in a response: the last `\boxed{...}` (or `\fbox{...}`), else a final
//! "the answer is X" / "Answer: X" line, else a GSM8K-style `#### X` line.
//!
//! Follows the Qwen2.5-Math evaluation's `extract_answer` (`last_boxed_only_string` and the
//! "answer is" fallbacks) and Math-Verify's `boxed` and `answer` extraction targets. Every scan is
//! linear in the response: only the *last* `\boxed` is brace-matched, so a megabyte of unclosed
//! `\boxed{` costs one pass, not one pass per occurrence.

/// The content of the last `\boxed{...}` or `\fbox{...}` in `text`, braces matched (escaped `\{`
/// and `\}` do not count), or of a `\boxed X` written without braces (up to the next `$` or line
/// end). `None` when there is none or the last one is never closed.
///
/// ```
/// use spiral_rewards::last_boxed;
///
/// assert_eq!(last_boxed("so \\boxed{1} or rather \\boxed{\\frac{1}{2}}."), Some("\\frac{1}{2}"));
/// assert_eq!(last_boxed("\\fbox{\\{1, 2\\}}"), Some("\\{1, 2\\}"));
/// assert_eq!(last_boxed("\\boxed{unclosed"), None);
/// ```
pub fn last_boxed(text: &str) -> Option<&str> {
    let (start, command) = ["\\boxed", "\\fbox"]
        .into_iter()
        .filter_map(|c| text.rfind(c).map(|i| (i, c)))
        .max_by_key(|&(i, _)| i)?;
    let rest = &text[start + command.len()..];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if let Some(inner) = trimmed.strip_prefix('{') {
        return matched_group(inner);
    }
    if trimmed.len() == rest.len() {
        // `\boxedfoo`: not the command.
        return None;
    }
    // `\boxed 5$`: the rest of the math span.
    let end = trimmed.find(['$', '\n']).unwrap_or(trimmed.len());
    Some(trimmed[..end].trim())
}

/// `inner` starts just after an opening `{`: the text up to its matching `}`.
fn matched_group(inner: &str) -> Option<&str> {
    let bytes = inner.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // An escaped character (`\{`, `\}`, `\\`) is never a group delimiter.
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&inner[..i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The final answer of a response: [`last_boxed`], else the text after the last "answer is" /
/// "answer:" (case-insensitive, up to the end of its line, `$...$` and a trailing period removed),
/// else the text after the last `####`. `None` when none is found or it is empty.
///
/// ```
/// use spiral_rewards::extract_answer;
///
/// assert_eq!(extract_answer("... so \\boxed{42}."), Some("42"));
/// assert_eq!(extract_answer("Thus, the final answer is $\\frac{1}{2}$. I hope it is correct."),
///            Some("\\frac{1}{2}"));
/// assert_eq!(extract_answer("**Answer:** 7 apples\n"), Some("7 apples"));
/// assert_eq!(extract_answer("#### 1,000"), Some("1,000"));
/// assert_eq!(extract_answer("I don't know."), None);
/// ```
pub fn extract_answer(text: &str) -> Option<&str> {
    if let Some(boxed) = last_boxed(text) {
        let boxed = boxed.trim();
        return (!boxed.is_empty()).then_some(boxed);
    }
    answer_is(text).or_else(|| hashes(text)).filter(|a| !a.is_empty())
}

/// The answer after the last "answer is" / "answer:" phrase.
fn answer_is(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let needle = b"answer";
    let mut search_end = bytes.len();
    // Walk the occurrences of "answer" from the last one back until one is followed by "is" or ":".
    while let Some(pos) = rfind_ascii_ci(&bytes[..search_end], needle) {
        let after = &text[pos + needle.len()..];
        if let Some(rest) = after_answer_marker(after) {
            return Some(clean_line_answer(rest));
        }
        search_end = pos;
    }
    None
}

/// After "answer": skips markdown emphasis and spaces, then requires ` is` or `:`; returns the rest.
fn after_answer_marker(after: &str) -> Option<&str> {
    fn skip(s: &str) -> &str {
        s.trim_start_matches(['*', '_', ' ', '\t'])
    }
    let s = skip(after);
    let rest = if let Some(r) = s.strip_prefix(':') {
        r
    } else {
        let r = s.strip_prefix("is").or_else(|| s.strip_prefix("IS"))?;
        // "answer isn't" / "answer issue" are not the marker.
        if r.chars().next().is_some_and(char::is_alphanumeric) {
            return None;
        }
        skip(r).strip_prefix(':').unwrap_or(r)
    };
    Some(skip(rest))
}

/// The rest of the line after an answer marker, without `$` delimiters, emphasis or a final period.
fn clean_line_answer(rest: &str) -> &str {
    let line = rest.split('\n').next().unwrap_or("").trim();
    let line = if let Some(inner) = line.strip_prefix('$') {
        // `$X$. I hope it is correct.` (Minerva format): the first math span.
        let inner = inner.trim_start_matches('$');
        inner.split('$').next().unwrap_or(inner)
    } else {
        // "The answer is 4. Next, ...": the sentence ends at the first period followed by a space.
        line.split(". ").next().unwrap_or(line)
    };
    line.trim().trim_end_matches(['.', '*', ' ']).trim_start_matches('*').trim()
}

/// The answer after the last `####` (GSM8K's reference format).
fn hashes(text: &str) -> Option<&str> {
    let pos = text.rfind("####")?;
    Some(clean_line_answer(text[pos + 4..].trim_start_matches('#')))
}

/// The last position of `needle` in `hay`, ASCII case-insensitively.
fn rfind_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_boxed_takes_the_last_and_matches_nested_braces() {
        assert_eq!(last_boxed("\\boxed{1} then \\boxed{2}"), Some("2"));
        assert_eq!(last_boxed("\\boxed{\\frac{a}{b^{2}}}"), Some("\\frac{a}{b^{2}}"));
        assert_eq!(last_boxed("\\boxed{ 5 }"), Some(" 5 "));
        assert_eq!(last_boxed("\\boxed {7}"), Some("7"));
        assert_eq!(last_boxed("\\fbox{3} \\boxed{4}"), Some("4"));
        assert_eq!(last_boxed("\\boxed{4} \\fbox{3}"), Some("3"));
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed("\\boxed{}"), Some(""));
    }

    #[test]
    fn last_boxed_handles_escapes_and_the_braceless_form() {
        assert_eq!(last_boxed("\\boxed{\\{1,2\\}}"), Some("\\{1,2\\}"));
        // An escaped closing brace does not end the group.
        assert_eq!(last_boxed("\\boxed{a\\}b}"), Some("a\\}b"));
        assert_eq!(last_boxed("$\\boxed 5$ done"), Some("5"));
        assert_eq!(last_boxed("\\boxedx"), None);
        // The last box is never closed: no answer (no fallback to earlier ones).
        assert_eq!(last_boxed("\\boxed{1} \\boxed{2"), None);
    }

    #[test]
    fn answer_patterns() {
        assert_eq!(extract_answer("The answer is 5."), Some("5"));
        assert_eq!(extract_answer("the ANSWER IS: 12\nmore text"), Some("12"));
        assert_eq!(extract_answer("Answer: $x = 3$"), Some("x = 3"));
        assert_eq!(extract_answer("**Final Answer:** 9"), Some("9"));
        assert_eq!(extract_answer("The answer is 1. Then the answer is 2."), Some("2"));
        // "answer isn't" is not a marker; the earlier one is used.
        assert_eq!(extract_answer("The answer is 4. My answer isn't sure."), Some("4"));
        assert_eq!(extract_answer("answer is"), None);
        assert_eq!(extract_answer("\\boxed{}"), None);
        assert_eq!(extract_answer("#### 18"), Some("18"));
        // Boxed wins over patterns.
        assert_eq!(extract_answer("The answer is 3, so \\boxed{4}"), Some("4"));
    }

    #[test]
    fn multibyte_text_around_markers_is_safe() {
        assert_eq!(extract_answer("réponse… answer: ∞ é"), Some("∞ é"));
        assert_eq!(extract_answer("ÄNSWER is 3"), None);
        assert_eq!(last_boxed("\\boxed{é}"), Some("é"));
    }

    #[test]
    fn megabyte_responses_are_linear() {
        let big = "\\boxed{".repeat(200_000);
        let start = std::time::Instant::now();
        assert_eq!(extract_answer(&big), None);
        let big = format!("{}\\boxed{{7}}", "answer x ".repeat(150_000));
        assert_eq!(extract_answer(&big), Some("7"));
        let big = "answer answer ".repeat(100_000);
        assert_eq!(extract_answer(&big), None);
        assert!(start.elapsed().as_secs_f64() < 5.0);
    }

    #[test]
    fn thousands_of_nested_braces() {
        let deep = format!("\\boxed{{{}1{}}}", "{".repeat(5000), "}".repeat(5000));
        assert_eq!(extract_answer(&deep).map(str::len), Some(10_001));
    }
}
