//! Finding the final answer in a response, in Math-Verify's order of priority: a "final answer
//! is X. I hope it is correct" line (the Minerva format); else the last `\boxed{}` or `\fbox{}`
//! or "final answer ... is X", whichever ends later; else the value after the last "answer"
//! marker ("Answer:", "the answer is", or "answer" followed by math); else a GSM8K-style
//! `#### X` line; else the last math span or number of the text ([`spans`]).
//!
//! After a marker, the sentence is the answer when it is math as a whole (`x = 3`), else the
//! first value in it (`The largest $n$ is 34` gives `34`), else the sentence (a word answer).
//! Several boxed answers that end the response joined only by connectors (`\boxed{1} and
//! \boxed{2}`) are returned together, so that a set can be graded against them.
//!
//! Follows Math-Verify's `parse` extraction (`LatexExtractionConfig`, `ExprExtractionConfig`)
//! and the Qwen2.5-Math evaluation's `extract_answer`. Every scan is linear or bounded per
//! marker: only the last `\boxed` of a run is brace-matched from the end, at most
//! [`MAX_MARKERS`] markers are tried, and no marker reads more than [`SPAN_LIMIT`] bytes.

mod spans;

use spans::{
    first_value, first_value_in, floor_boundary, last_value, skip_spaces, starts_math_delimiter,
    value_at,
};

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
    boxed_content(&text[start + command.len()..])
}

/// The content of a box whose command ends just before `rest`.
fn boxed_content(rest: &str) -> Option<&str> {
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

/// The final answer of a response, found as Math-Verify finds it (see the module docs for the
/// order): a `\boxed{}`, an answer-marked value, else the last math span or number of the text.
/// When several boxed answers end the response, the last of them. `None` when nothing is found.
///
/// ```
/// use spiral_rewards::extract_answer;
///
/// assert_eq!(extract_answer("... so \\boxed{42}."), Some("42"));
/// assert_eq!(extract_answer("Thus, the final answer is $\\frac{1}{2}$. I hope it is correct."),
///            Some("\\frac{1}{2}"));
/// assert_eq!(extract_answer("**Answer:** 7 apples\n"), Some("7"));
/// assert_eq!(extract_answer("Final Answer: The largest $n$ is 34."), Some("34"));
/// assert_eq!(extract_answer("#### 1,000"), Some("1,000"));
/// assert_eq!(extract_answer("so the total is 1,000.99 dollars"), Some("1,000.99"));
/// assert_eq!(extract_answer("I don't know."), None);
/// ```
pub fn extract_answer(text: &str) -> Option<&str> {
    extract_answers(text).pop()
}

/// The final answer of a response, or the run of boxed answers that ends it (`\boxed{1} and
/// \boxed{2}`), in order. Empty when nothing is found.
pub(crate) fn extract_answers(text: &str) -> Vec<&str> {
    // A value found after a marker may itself be boxed (`is $\boxed{5}$`).
    let mut answers = find_answers(text);
    for a in &mut answers {
        if let Some(inner) = last_boxed(a) {
            *a = inner.trim();
        }
    }
    answers.retain(|a| !a.is_empty());
    answers
}

/// [`extract_answers`] before boxes inside marked values are opened.
fn find_answers(text: &str) -> Vec<&str> {
    if let Some(value) = final_answer_hope(text) {
        return vec![value];
    }
    let boxed = boxed_run(text);
    let final_is = final_answer_is(text);
    match (boxed, final_is) {
        (Some((_, box_end)), Some((value, end))) if end > box_end => return vec![value],
        (Some((run, _)), _) => return run,
        (None, Some((value, _))) => return vec![value],
        (None, None) => {}
    }
    answer_marked(text)
        .or_else(|| hashes(text))
        .or_else(|| last_value(text))
        .filter(|a| !a.is_empty())
        .into_iter()
        .collect()
}

/// How far past "answer" a value may start (Math-Verify's `.{0,50}`).
const ANSWER_REACH: usize = 50;

/// How far past "final answer" its "is" may be (Math-Verify's `.{0,100}`).
const FINAL_REACH: usize = 100;

/// The longest math span or answer sentence read, in bytes: every scan after a marker is
/// bounded by it, so that a megabyte of markers costs a bounded amount per marker.
const SPAN_LIMIT: usize = 4096;

/// How many markers are tried, from the last one back.
const MAX_MARKERS: usize = 64;

/// How many boxed answers one run may hold.
const MAX_RUN: usize = 32;

/// The longest text between two boxed answers of one run, in bytes.
const MAX_GAP: usize = 64;

/// `final answer is X. I hope`, Math-Verify's first-priority pattern (the Minerva format): it
/// wins over any `\boxed{}` of the reasoning before it.
fn final_answer_hope(text: &str) -> Option<&str> {
    let needle = b"final answer is";
    let mut search_end = text.len();
    for _ in 0..MAX_MARKERS {
        let pos = rfind_ascii_ci(&text.as_bytes()[..search_end], needle)?;
        search_end = pos;
        let rest = skip_spaces(text, pos + needle.len());
        let rest = if text[rest..].starts_with(':') { skip_spaces(text, rest + 1) } else { rest };
        let Some(value) = value_at(text, rest) else { continue };
        let mut after = value.next;
        if text[after..].starts_with('.') {
            after += 1;
        }
        if text[after..].starts_with(' ') {
            after += 1;
        }
        if text[after..].starts_with("I hope") {
            return Some(value.text);
        }
    }
    None
}

/// `final answer ... is X` with at most [`FINAL_REACH`] bytes between: the value and where it
/// ends.
fn final_answer_is(text: &str) -> Option<(&str, usize)> {
    let needle = b"final answer";
    let mut search_end = text.len();
    for _ in 0..MAX_MARKERS {
        let pos = rfind_ascii_ci(&text.as_bytes()[..search_end], needle)?;
        search_end = pos;
        let from = pos + needle.len();
        let reach = floor_boundary(text, (from + FINAL_REACH + 3).min(text.len()));
        let window = &text[from..reach];
        let mut offset = 0;
        while let Some(i) = window[offset..].find(" is") {
            let at = from + offset + i + 3;
            offset += i + 3;
            if text[at..].starts_with(|c: char| c.is_alphanumeric()) {
                continue;
            }
            let mut start = if text[at..].starts_with(':') { at + 1 } else { at };
            // A number must follow a space, as in Math-Verify's anchored number pattern.
            start = skip_spaces(text, start);
            if let Some(value) = value_at(text, start) {
                return Some((value.text, value.next));
            }
        }
    }
    None
}

/// The last boxed answer and those just before it, joined by nothing but connectors (`and`,
/// `or`, commas, spacing, math delimiters, a label such as `y_2 =`), and where the run ends.
fn boxed_run(text: &str) -> Option<(Vec<&str>, usize)> {
    let (start, content, end) = boxed_before(text, text.len())?;
    let mut run = vec![content];
    let mut next_start = start;
    while run.len() < MAX_RUN {
        let Some((start, content, end)) = boxed_before(text, next_start) else { break };
        // A box nested in another ends inside it: not a run.
        if end > next_start || !is_connector(&text[end..next_start]) {
            break;
        }
        run.push(content);
        next_start = start;
    }
    run.reverse();
    run.retain(|a| !a.is_empty());
    (!run.is_empty()).then_some((run, end))
}

/// The last `\boxed{...}` or `\fbox{...}` starting before `limit`: its start, its trimmed
/// content and the end of its closing brace.
fn boxed_before(text: &str, limit: usize) -> Option<(usize, &str, usize)> {
    let head = &text[..limit];
    let (start, command) = ["\\boxed", "\\fbox"]
        .into_iter()
        .filter_map(|c| head.rfind(c).map(|i| (i, c)))
        .max_by_key(|&(i, _)| i)?;
    let content = boxed_content(&text[start + command.len()..])?;
    let content_start = content.as_ptr() as usize - text.as_ptr() as usize;
    let after = content_start + content.len();
    let end = if text[after..].starts_with('}') { after + 1 } else { after };
    Some((start, content.trim(), end))
}

/// Whether the text between two boxed answers only connects them.
fn is_connector(gap: &str) -> bool {
    if gap.len() > MAX_GAP || gap.contains('\n') {
        return false;
    }
    let mut cleaned = gap.to_owned();
    for pattern in ["\\quad", "\\qquad", "\\text", "\\(", "\\)", "\\[", "\\]", "\\,", "\\ "] {
        cleaned = cleaned.replace(pattern, " ");
    }
    cleaned = cleaned.replace(['$', '{', '}', ',', ';', '.', '='], " ");
    cleaned.split_whitespace().all(|word| {
        let lower = word.to_ascii_lowercase();
        lower == "and"
            || lower == "or"
            // A label of the next answer: `y_2`, `x_{1}`.
            || (word.len() <= 6
                && word.starts_with(|c: char| c.is_ascii_alphabetic())
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// The value after the last "answer" marker that has one: after "answer:" or "answer is", the
/// sentence when it is math as a whole, else the first value in it, else the sentence (a word
/// answer); after a bare "answer", a math span or number starting within [`ANSWER_REACH`] bytes.
fn answer_marked(text: &str) -> Option<&str> {
    let needle = b"answer";
    let mut search_end = text.len();
    for _ in 0..MAX_MARKERS {
        let pos = rfind_ascii_ci(&text.as_bytes()[..search_end], needle)?;
        search_end = pos;
        let after = pos + needle.len();
        if let Some(rest) = after_answer_marker(&text[after..]) {
            let rest_start = text.len() - rest.len();
            if let Some(value) = value_at(text, rest_start) {
                return Some(value.text);
            }
            if starts_math_delimiter(rest) {
                // A malformed math span (inline math across lines): nothing to read here.
                continue;
            }
            let sentence = clean_line_answer(&rest[..floor_boundary(rest, SPAN_LIMIT)]);
            if sentence.is_empty() {
                continue;
            }
            if crate::math::is_math(sentence) {
                return Some(sentence);
            }
            return Some(first_value(sentence).unwrap_or(sentence));
        }
        let reach = floor_boundary(text, (after + ANSWER_REACH).min(text.len()));
        if let Some(value) = first_value_in(text, after, reach) {
            return Some(value);
        }
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
        // Not the marker (`Ä` is not `A`), but the number is the last value of the text.
        assert_eq!(extract_answer("ÄNSWER is 3"), Some("3"));
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
