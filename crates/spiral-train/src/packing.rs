//! How a training batch is cut into micro-batches and shards so that little compute goes to
//! padding. Each forward pass pads its sequences to the longest one, and an RL batch mixes short
//! search traces with aggregation prompts several times longer (Countdown: about 60 and 250
//! tokens). Cut in arrival order, every micro-batch held an aggregation prompt and paid for it
//! in every row. Sorted by length, the micro-batches group similar lengths. Each micro-batch is
//! then split into contiguous shards of about equal padded size (rows x longest row), since the
//! shards run concurrently and a step waits for the slowest. Gradients are summed over the
//! whole batch, so the order changes nothing but float rounding.

use std::ops::Range;

use crate::learner::TrainSequence;

/// The batch sorted by length, shortest first (stable, so equal lengths keep their order).
pub(crate) fn by_length(batch: &[TrainSequence]) -> Vec<TrainSequence> {
    let mut sorted = batch.to_vec();
    sorted.sort_by_key(|s| s.tokens.len());
    sorted
}

/// At most `pieces` contiguous, non-empty ranges covering `lengths` (sorted or not) whose largest
/// padded size (rows x longest row) is as small as possible.
pub(crate) fn balanced_pieces(lengths: &[usize], pieces: usize) -> Vec<Range<usize>> {
    if lengths.is_empty() {
        return Vec::new();
    }
    // The smallest bound on a piece's size that a greedy left-to-right cut meets with at most
    // `pieces` pieces. Extending a piece never makes it smaller, so the greedy cut is optimal
    // for a given bound, and the bound can be found by bisection.
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let (mut low, mut high) = (longest, longest * lengths.len());
    while low < high {
        let bound = low + (high - low) / 2;
        if greedy_cut(lengths, bound).len() <= pieces.max(1) {
            high = bound;
        } else {
            low = bound + 1;
        }
    }
    greedy_cut(lengths, low)
}

/// Cuts `lengths` into the fewest contiguous pieces, left to right, each of padded size at most
/// `bound` (a single row larger than `bound` still gets a piece of its own).
fn greedy_cut(lengths: &[usize], bound: usize) -> Vec<Range<usize>> {
    let mut cuts = Vec::new();
    let (mut start, mut longest) = (0, 0);
    for (i, &len) in lengths.iter().enumerate() {
        let grown = longest.max(len);
        if i > start && grown * (i + 1 - start) > bound {
            cuts.push(start..i);
            (start, longest) = (i, len);
        } else {
            longest = grown;
        }
    }
    cuts.push(start..lengths.len());
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(lengths: &[usize], piece: &Range<usize>) -> usize {
        piece.len() * lengths[piece.clone()].iter().max().unwrap()
    }

    /// Every way of cutting `lengths` into at most `pieces` contiguous pieces, smallest largest
    /// size.
    fn best_by_search(lengths: &[usize], pieces: usize) -> usize {
        if pieces == 1 || lengths.len() <= 1 {
            return size(lengths, &(0..lengths.len()));
        }
        let whole = size(lengths, &(0..lengths.len()));
        (1..lengths.len())
            .map(|cut| size(lengths, &(0..cut)).max(best_by_search(&lengths[cut..], pieces - 1)))
            .fold(whole, usize::min)
    }

    #[test]
    fn pieces_cover_the_batch_and_match_an_exhaustive_search() {
        let batches: [&[usize]; 5] = [
            &[60, 61, 62, 64, 240, 250, 251],
            &[10; 9],
            &[5, 300],
            &[3, 9, 4, 12, 7, 1, 30, 2],
            &[100],
        ];
        for lengths in batches {
            for pieces in 1..=4 {
                let cut = balanced_pieces(lengths, pieces);
                assert!(!cut.is_empty() && cut.len() <= pieces, "{lengths:?} in {pieces}: {cut:?}");
                assert_eq!(cut[0].start, 0);
                assert_eq!(cut.last().unwrap().end, lengths.len());
                assert!(cut.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
                let largest = cut.iter().map(|p| size(lengths, p)).max().unwrap();
                assert_eq!(largest, best_by_search(lengths, pieces), "{lengths:?} in {pieces}");
            }
        }
        assert!(balanced_pieces(&[], 2).is_empty());
    }

    #[test]
    fn sorting_groups_search_traces_apart_from_aggregation_prompts() {
        let sequence = |len: usize| TrainSequence {
            tokens: vec![1; len],
            prompt_len: 1,
            advantage: len as f64,
            old_logprobs: None,
            ref_logprobs: None,
            rollout_logprobs: None,
            weight: 1.0,
        };
        let batch: Vec<TrainSequence> = [60, 250, 61, 240, 60].into_iter().map(sequence).collect();
        let sorted: Vec<f64> = by_length(&batch).iter().map(|s| s.advantage).collect();
        assert_eq!(sorted, [60.0, 60.0, 61.0, 240.0, 250.0]);
    }
}
