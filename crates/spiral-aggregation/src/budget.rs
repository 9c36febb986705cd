//! Fitting candidates into a token budget, so that an aggregation prompt never exceeds the
//! model's context.
//!
//! The crate counts tokens through [`TokenCounter`], any `Fn(&str) -> usize`: the caller passes
//! its tokenizer (`|s| tokenizer.encode(s, false).map_or(usize::MAX, |ids| ids.len())`), and the
//! crate stays free of model code. Counts need not be additive (a tokenizer may merge across the
//! seam between two pieces): every prompt is counted whole after it is rendered, and the fitting
//! loop shrinks and retries until that count is within the budget.
//!
//! Policies ([`BudgetPolicy`]):
//! - `keep_final_part` (default): every candidate stays, and the longest ones are cut to their
//!   final part, where the answer is, behind a truncation marker. The room left after the
//!   template, the problem and the markers is shared by water-filling: candidates shorter than
//!   the common cap are kept whole, the others get the cap.
//! - `drop_candidates`: candidates are taken in prompt order and each one that still fits whole
//!   is kept; the others are left out.
//! - `refuse`: an over-long prompt is an error.

use serde::{Deserialize, Serialize};

use crate::error::AggregationError;
use crate::template::PromptTemplate;

/// Counts the tokens of a text. Implemented by every `Fn(&str) -> usize`.
///
/// ```
/// use spiral_aggregation::TokenCounter;
///
/// let words = |s: &str| s.split_whitespace().count();
/// assert_eq!(words.count("two words"), 2);
/// ```
pub trait TokenCounter {
    /// The number of tokens of `text`.
    fn count(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize + ?Sized> TokenCounter for F {
    fn count(&self, text: &str) -> usize {
        self(text)
    }
}

/// What to do when the candidates do not fit the token budget (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPolicy {
    /// Keep every candidate; cut the longest to their final part, sharing the room equally.
    #[default]
    KeepFinalPart,
    /// Keep whole candidates in prompt order while they fit; leave out the others.
    DropCandidates,
    /// Fail with [`AggregationError::Budget`].
    Refuse,
}

/// What became of one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Shown whole.
    Whole,
    /// Shown as the marker and its final part.
    Truncated,
    /// Left out.
    Dropped,
}

/// A rendered prompt that fits, and what became of each candidate.
pub(crate) struct Fit {
    pub message: String,
    pub tokens: usize,
    pub fates: Vec<Fate>,
}

/// Renders `problem` with `candidates` (in prompt order, trimmed) within `budget` tokens.
pub(crate) fn fit<C: TokenCounter + ?Sized>(
    template: &PromptTemplate,
    problem: &str,
    candidates: &[&str],
    budget: Option<usize>,
    policy: BudgetPolicy,
    counter: &C,
) -> Result<Fit, AggregationError> {
    let whole: Vec<Shown<'_>> = candidates.iter().map(|&c| Shown::Whole(c)).collect();
    let message = render(template, problem, &whole);
    let tokens = counter.count(&message);
    let Some(budget) = budget.filter(|&b| tokens > b) else {
        return Ok(Fit { message, tokens, fates: vec![Fate::Whole; candidates.len()] });
    };
    match policy {
        BudgetPolicy::Refuse => Err(AggregationError::Budget {
            budget,
            reason: format!("the prompt needs {tokens} tokens and the budget policy is `refuse`"),
        }),
        BudgetPolicy::DropCandidates => {
            drop_candidates(template, problem, candidates, budget, counter)
        }
        BudgetPolicy::KeepFinalPart => {
            keep_final_part(template, problem, candidates, budget, counter)
        }
    }
}

/// A candidate as it appears in the prompt.
#[derive(Clone, Copy)]
enum Shown<'a> {
    Whole(&'a str),
    /// The final part kept after the truncation marker.
    Tail(&'a str),
    Dropped,
}

/// The user message: shown candidates numbered 1, 2, ... in order, dropped ones skipped.
fn render(template: &PromptTemplate, problem: &str, shown: &[Shown<'_>]) -> String {
    let mut blocks = Vec::with_capacity(shown.len());
    for s in shown {
        let block = match *s {
            Shown::Whole(text) => template.render_candidate(blocks.len() + 1, text),
            Shown::Tail(tail) => template.render_candidate(
                blocks.len() + 1,
                &format!("{}{tail}", template.truncation_marker),
            ),
            Shown::Dropped => continue,
        };
        blocks.push(block);
    }
    template.render_message(problem, &blocks)
}

fn fates(shown: &[Shown<'_>]) -> Vec<Fate> {
    shown
        .iter()
        .map(|s| match s {
            Shown::Whole(_) => Fate::Whole,
            Shown::Tail(_) => Fate::Truncated,
            Shown::Dropped => Fate::Dropped,
        })
        .collect()
}

fn drop_candidates<C: TokenCounter + ?Sized>(
    template: &PromptTemplate,
    problem: &str,
    candidates: &[&str],
    budget: usize,
    counter: &C,
) -> Result<Fit, AggregationError> {
    let mut shown = vec![Shown::Dropped; candidates.len()];
    let mut best: Option<(String, usize)> = None;
    for (i, &text) in candidates.iter().enumerate() {
        shown[i] = Shown::Whole(text);
        let message = render(template, problem, &shown);
        let tokens = counter.count(&message);
        if tokens <= budget {
            best = Some((message, tokens));
        } else {
            shown[i] = Shown::Dropped;
        }
    }
    let (message, tokens) = best.ok_or_else(|| AggregationError::Budget {
        budget,
        reason: "no candidate fits whole (budget policy `drop_candidates`)".into(),
    })?;
    Ok(Fit { message, tokens, fates: fates(&shown) })
}

fn keep_final_part<C: TokenCounter + ?Sized>(
    template: &PromptTemplate,
    problem: &str,
    candidates: &[&str],
    budget: usize,
    counter: &C,
) -> Result<Fit, AggregationError> {
    // Everything but the candidates' text: the template, the problem and one marker each.
    let bare = vec![Shown::Tail(""); candidates.len()];
    let overhead = counter.count(&render(template, problem, &bare));
    if overhead > budget {
        return Err(AggregationError::Budget {
            budget,
            reason: format!(
                "the template, the problem and {} truncation markers alone need {overhead} tokens",
                candidates.len()
            ),
        });
    }
    let lengths: Vec<usize> = candidates.iter().map(|c| counter.count(c)).collect();
    let mut room = budget - overhead;
    loop {
        let cap = water_level(&lengths, room);
        let shown: Vec<Shown<'_>> = candidates
            .iter()
            .zip(&lengths)
            .map(|(&text, &len)| {
                if len <= cap {
                    Shown::Whole(text)
                } else {
                    Shown::Tail(final_part(text, cap, counter))
                }
            })
            .collect();
        let message = render(template, problem, &shown);
        let tokens = counter.count(&message);
        if tokens <= budget {
            return Ok(Fit { message, tokens, fates: fates(&shown) });
        }
        if room == 0 {
            return Err(AggregationError::Budget {
                budget,
                reason: format!("the prompt still needs {tokens} tokens with every candidate cut"),
            });
        }
        // Counts are not additive across seams: shrink the room by the excess and retry.
        room = room.saturating_sub((tokens - budget).max(1));
    }
}

/// The largest cap with `sum(min(len, cap)) <= room` (every length when they all fit).
pub(crate) fn water_level(lengths: &[usize], room: usize) -> usize {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mut left = room;
    for (i, &len) in sorted.iter().enumerate() {
        let sharing = sorted.len() - i;
        if len.saturating_mul(sharing) > left {
            return left / sharing;
        }
        left -= len;
    }
    sorted.last().copied().unwrap_or(0)
}

/// The longest suffix of `text` with at most `cap` tokens, starting at a word when one starts
/// soon after the cut.
fn final_part<'a, C: TokenCounter + ?Sized>(text: &'a str, cap: usize, counter: &C) -> &'a str {
    if cap == 0 {
        return "";
    }
    // Binary search over character boundaries for the earliest start that fits; the end of the
    // text (the empty suffix) always fits.
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let (mut lo, mut hi) = (0, starts.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if counter.count(&text[starts[mid]..]) <= cap { hi = mid } else { lo = mid + 1 }
    }
    let tail = &text[starts[hi]..];
    // Do not show half a word: skip to the next whitespace if it comes within a few characters.
    let cut_mid_word = hi > 0 && !text[..starts[hi]].ends_with(char::is_whitespace);
    match tail.char_indices().take(24).find(|(_, c)| c.is_whitespace()) {
        Some((i, c)) if cut_mid_word => &tail[i + c.len_utf8()..],
        _ => tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn water_level_by_hand() {
        assert_eq!(water_level(&[3, 10, 20], 100), 20);
        // 3 whole, then 17 shared by two: 8 each.
        assert_eq!(water_level(&[3, 10, 20], 20), 8);
        assert_eq!(water_level(&[10, 10], 19), 9);
        assert_eq!(water_level(&[5], 0), 0);
        assert_eq!(water_level(&[], 7), 0);
    }

    #[test]
    fn water_level_is_the_largest_cap_that_fits() {
        // Against a loop over every cap.
        let lengths = [0, 4, 4, 9, 17, 30];
        for room in 0..70 {
            let fits = |cap: usize| lengths.iter().map(|&l| l.min(cap)).sum::<usize>() <= room;
            let slow = (0..=30).rev().find(|&c| fits(c)).unwrap();
            assert_eq!(water_level(&lengths, room), slow, "room {room}");
        }
    }

    #[test]
    fn final_part_keeps_whole_words_at_the_end() {
        let text = "alpha beta gamma delta epsilon";
        assert_eq!(final_part(text, 2, &words), "delta epsilon");
        assert_eq!(final_part(text, 9, &words), text);
        assert_eq!(final_part(text, 0, &words), "");
        // Counting characters, the cut lands mid-word and moves to the next word.
        let chars = |s: &str| s.chars().count();
        assert_eq!(final_part(text, 10, &chars), "epsilon");
        assert_eq!(final_part("ééé ààà", 4, &chars), "ààà");
    }
}
