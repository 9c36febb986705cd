//! Majority vote (self-consistency, Wang et al., 2023) over extracted final answers.
//!
//! Answers are grouped by `spiral-rewards`' equivalence ([`answer_classes`], i.e. `math_equal`:
//! `1/2`, `0.5` and `\frac{1}{2}` are one answer), so the vote and the reward agree on what "the
//! same answer" means. Responses without an answer do not vote. A tie between the largest classes
//! is broken uniformly at random with the caller's seeded generator.

use rand::Rng;
use serde::Serialize;
use spiral_rewards::answer_classes;

/// The outcome of a vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vote {
    /// A response holding the winning answer: the first (lowest index) member of its class.
    pub winner: usize,
    /// Votes for the winning answer.
    pub votes: usize,
    /// Responses that had an answer.
    pub voters: usize,
    /// How many answers tied for the most votes (1 when there was no tie).
    pub tied: usize,
}

/// Majority vote over `answers` (one per response; `None` for a response without one), grouping
/// equivalent answers with [`answer_classes`]. `None` when no response has an answer.
///
/// ```
/// use rand::SeedableRng;
/// use spiral_aggregation::majority_vote;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let answers = [Some("0.5"), None, Some("3"), Some("\\frac{1}{2}")];
/// let vote = majority_vote(&answers, &mut rng).unwrap();
/// assert_eq!((vote.winner, vote.votes, vote.voters, vote.tied), (0, 2, 3, 1));
/// ```
pub fn majority_vote<S: AsRef<str>, R: Rng + ?Sized>(
    answers: &[Option<S>],
    rng: &mut R,
) -> Option<Vote> {
    vote_on_classes(&answer_class_ids(answers), rng)
}

/// Each answer's class under [`answer_classes`], numbered 0, 1, ... in order of first appearance;
/// `None` for a missing answer.
///
/// ```
/// use spiral_aggregation::answer_class_ids;
///
/// let answers = [Some("3"), None, Some("1/2"), Some("0.5"), Some("3.0")];
/// assert_eq!(answer_class_ids(&answers), [Some(0), None, Some(1), Some(1), Some(0)]);
/// ```
pub fn answer_class_ids<S: AsRef<str>>(answers: &[Option<S>]) -> Vec<Option<usize>> {
    let present: Vec<(usize, &str)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_ref().map(|a| (i, a.as_ref())))
        .collect();
    let texts: Vec<&str> = present.iter().map(|&(_, a)| a).collect();
    // answer_classes names a class by its first member's position in `texts`; renumber 0, 1, ...
    let mut representatives: Vec<usize> = Vec::new();
    let mut ids = vec![None; answers.len()];
    for (&(i, _), rep) in present.iter().zip(answer_classes(&texts)) {
        let id = representatives.iter().position(|&r| r == rep).unwrap_or_else(|| {
            representatives.push(rep);
            representatives.len() - 1
        });
        ids[i] = Some(id);
    }
    ids
}

/// Majority vote over answers already grouped: `classes[i]` names response i's answer class (any
/// label, e.g. from another equivalence), `None` for no answer.
///
/// ```
/// use rand::SeedableRng;
/// use spiral_aggregation::vote_on_classes;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let vote = vote_on_classes(&[Some(7), Some(9), Some(9)], &mut rng).unwrap();
/// assert_eq!((vote.winner, vote.votes), (1, 2));
/// ```
pub fn vote_on_classes<R: Rng + ?Sized>(classes: &[Option<usize>], rng: &mut R) -> Option<Vote> {
    // (class label, votes, first member), in order of first appearance.
    let mut tally: Vec<(usize, usize, usize)> = Vec::new();
    for (i, class) in classes.iter().enumerate() {
        let Some(class) = *class else { continue };
        match tally.iter_mut().find(|t| t.0 == class) {
            Some(t) => t.1 += 1,
            None => tally.push((class, 1, i)),
        }
    }
    let votes = tally.iter().map(|t| t.1).max()?;
    let leaders: Vec<usize> = tally.iter().filter(|t| t.1 == votes).map(|t| t.2).collect();
    let winner =
        if leaders.len() == 1 { leaders[0] } else { leaders[rng.random_range(0..leaders.len())] };
    Some(Vote { winner, votes, voters: classes.iter().flatten().count(), tied: leaders.len() })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn equivalent_answers_vote_together() {
        let mut rng = StdRng::seed_from_u64(0);
        let answers = [Some("x = 2"), Some("3"), Some("2"), Some("3.0"), Some("2.0"), None];
        let vote = majority_vote(&answers, &mut rng).unwrap();
        assert_eq!((vote.winner, vote.votes, vote.voters, vote.tied), (0, 3, 5, 1));
    }

    #[test]
    fn no_answers_no_vote() {
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(majority_vote::<&str, _>(&[None, None], &mut rng), None);
        assert_eq!(majority_vote::<&str, _>(&[], &mut rng), None);
    }

    #[test]
    fn ties_are_broken_uniformly_and_reproducibly() {
        let answers = [Some("1"), Some("2"), Some("3"), Some("1"), Some("2"), Some("3"), Some("4")];
        let winner = |seed| majority_vote(&answers, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_eq!(winner(3), winner(3));
        let mut wins = [0usize; 3];
        for seed in 0..3000 {
            let v = winner(seed);
            assert_eq!((v.votes, v.tied), (2, 3));
            wins[v.winner] += 1;
        }
        assert!(wins.iter().all(|&w| (900..1100).contains(&w)), "{wins:?}");
    }
}
