//! maj@k: the accuracy of a majority vote over k samples (self-consistency, Wang et al., 2023).
//!
//! For one problem, maj@k is the expected correctness of the vote over k of its n samples drawn
//! without replacement, the analogue of unbiased pass@k:
//! - answers are grouped by `spiral-rewards`' equivalence (`math_equal`, through
//!   `spiral_aggregation::answer_class_ids`, as the aggregation crate's `majority_vote` does);
//!   samples without an answer do not vote;
//! - an answer class is as correct as the mean reward of its members (0 or 1 unless the grader
//!   disagrees with itself);
//! - a tie is counted at its expectation, the mean correctness of the tied classes, rather than
//!   broken at random, which removes tie-break noise from the estimate; a subset with no answer
//!   scores 0.
//!
//! The expectation over k-subsets is exact (every subset enumerated) when there are at most
//! [`MajorityOptions::exact_limit`] of them, else a mean over [`MajorityOptions::draws`] seeded
//! random subsets. maj@n is always exact (one subset).

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use spiral_aggregation::{Subsets, answer_class_ids, binomial};

use crate::error::EvalError;
use crate::metrics::passk::too_few;
use crate::metrics::samples::ProblemSamples;

/// How the expectation over k-subsets is taken (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MajorityOptions {
    /// Enumerate every k-subset when there are at most this many.
    pub exact_limit: u128,
    /// Otherwise, average over this many random k-subsets.
    pub draws: usize,
    /// Seed of the random subsets.
    pub seed: u64,
}

impl Default for MajorityOptions {
    fn default() -> Self {
        Self { exact_limit: 5000, draws: 2000, seed: 0 }
    }
}

/// Each problem's maj@k (module docs). Errors when a problem has fewer than k samples or no
/// answers.
///
/// ```
/// use spiral_eval::{MajorityOptions, ProblemSamples, maj_at_k_per_problem};
///
/// // Answers A, A, B, C with A correct.
/// let answers = ["7", "7.0", "3", "x"].map(|a| Some(a.to_string())).to_vec();
/// let p = ProblemSamples { id: "q".into(), correct: vec![true, true, false, false], answers };
/// let maj = |k| maj_at_k_per_problem(std::slice::from_ref(&p), k, &MajorityOptions::default()).unwrap()[0];
/// assert_eq!(maj(4), 1.0);
/// // Of the 6 pairs: {A, A} wins, {A, B} and {A, C} (4 pairs) are ties worth 1/2, {B, C} loses.
/// assert_eq!(maj(2), 0.5);
/// ```
pub fn maj_at_k_per_problem(
    problems: &[ProblemSamples],
    k: usize,
    options: &MajorityOptions,
) -> Result<Vec<f64>, EvalError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    problems
        .iter()
        .map(|p| {
            if k == 0 || k > p.n() {
                return Err(too_few(p, k, "maj"));
            }
            if p.answers.len() != p.n() {
                return Err(EvalError::Metric(format!(
                    "maj@{k} needs every sample's answer, but problem `{}` has {} answers for {} samples",
                    p.id,
                    p.answers.len(),
                    p.n()
                )));
            }
            Ok(Ballot::new(p).expected(k, options, &mut rng))
        })
        .collect()
}

/// One problem's samples as vote classes.
struct Ballot {
    /// Each sample's class, `None` for no answer.
    classes: Vec<Option<usize>>,
    /// Each class's correctness (mean reward of its members).
    class_correct: Vec<f64>,
}

impl Ballot {
    fn new(p: &ProblemSamples) -> Self {
        let classes = answer_class_ids(&p.answers);
        let num_classes = classes.iter().flatten().max().map_or(0, |&m| m + 1);
        let mut sums = vec![(0.0, 0usize); num_classes];
        for (class, &correct) in classes.iter().zip(&p.correct) {
            if let Some(c) = *class {
                sums[c].0 += f64::from(u8::from(correct));
                sums[c].1 += 1;
            }
        }
        let class_correct = sums.iter().map(|&(s, n)| s / n as f64).collect();
        Self { classes, class_correct }
    }

    /// The vote's expected correctness on the samples `subset`, ties at their expectation.
    fn score(&self, subset: &[usize], tally: &mut [usize]) -> f64 {
        tally.fill(0);
        for &i in subset {
            if let Some(c) = self.classes[i] {
                tally[c] += 1;
            }
        }
        let most = tally.iter().copied().max().unwrap_or(0);
        if most == 0 {
            return 0.0;
        }
        let (sum, tied) = tally
            .iter()
            .zip(&self.class_correct)
            .filter(|(t, _)| **t == most)
            .fold((0.0, 0usize), |(s, n), (_, c)| (s + c, n + 1));
        sum / tied as f64
    }

    /// The mean score over k-subsets: all of them, or `options.draws` random ones.
    fn expected(&self, k: usize, options: &MajorityOptions, rng: &mut StdRng) -> f64 {
        let n = self.classes.len();
        let mut tally = vec![0; self.class_correct.len()];
        let exact = binomial(n, k).is_some_and(|c| c <= options.exact_limit);
        if exact {
            let (sum, count) = Subsets::new(n, k)
                .fold((0.0, 0usize), |(s, c), subset| (s + self.score(&subset, &mut tally), c + 1));
            return sum / count as f64;
        }
        let draws = options.draws.max(1);
        let sum: f64 =
            (0..draws).map(|_| self.score(&sample(rng, n, k).into_vec(), &mut tally)).sum();
        sum / draws as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(answers: &[Option<&str>], correct: &[bool]) -> ProblemSamples {
        ProblemSamples {
            id: "q".into(),
            correct: correct.to_vec(),
            answers: answers.iter().map(|a| a.map(str::to_owned)).collect(),
        }
    }

    fn maj(p: &ProblemSamples, k: usize, options: &MajorityOptions) -> f64 {
        maj_at_k_per_problem(std::slice::from_ref(p), k, options).unwrap()[0]
    }

    #[test]
    fn by_hand() {
        // A, A, B, C with A correct.
        let p =
            problem(&[Some("1/2"), Some("0.5"), Some("3"), Some("4")], &[true, true, false, false]);
        let o = MajorityOptions::default();
        assert_eq!(maj(&p, 1, &o), 0.5);
        assert_eq!(maj(&p, 2, &o), 0.5);
        // Triples: {A, A, B} and {A, A, C} win; {A, B, C} twice is a three-way tie worth 1/3.
        assert!((maj(&p, 3, &o) - (2.0 + 2.0 / 3.0) / 4.0).abs() < 1e-15);
        assert_eq!(maj(&p, 4, &o), 1.0);
        // Abstentions: B, -, A with A correct: maj@3 is a tie A/B worth 1/2; a pair {-, B} scores 0.
        let p = problem(&[Some("5"), None, Some("7")], &[false, false, true]);
        assert_eq!(maj(&p, 3, &o), 0.5);
        assert!((maj(&p, 2, &o) - (0.5 + 0.0 + 1.0) / 3.0).abs() < 1e-15);
        // Nobody answers: 0.
        assert_eq!(maj(&problem(&[None, None], &[false, false]), 2, &o), 0.0);
    }

    #[test]
    fn maj_at_1_is_accuracy_when_everyone_answers() {
        let p = problem(
            &[Some("1"), Some("2"), Some("1"), Some("9"), Some("1")],
            &[true, false, true, false, true],
        );
        assert!((maj(&p, 1, &MajorityOptions::default()) - 0.6).abs() < 1e-15);
    }

    #[test]
    fn sampled_subsets_agree_with_enumeration() {
        // n = 16: C(16, 8) = 12870 subsets; enumerated with the default limit raised, sampled
        // with it lowered.
        let answers: Vec<Option<String>> = (0..16)
            .map(|i| match i % 5 {
                0 | 3 => Some("42".to_owned()),
                1 => Some("41".to_owned()),
                2 => None,
                _ => Some(format!("{}", 40 + i % 3)),
            })
            .collect();
        let correct: Vec<bool> = answers.iter().map(|a| a.as_deref() == Some("42")).collect();
        let p = ProblemSamples { id: "q".into(), correct, answers };
        for k in [3, 8, 13] {
            let exact =
                maj(&p, k, &MajorityOptions { exact_limit: u128::MAX, ..Default::default() });
            let sampled = maj(&p, k, &MajorityOptions { exact_limit: 0, draws: 20_000, seed: 3 });
            // The sampled mean of scores in [0, 1] has std <= 0.5 / sqrt(20000) = 0.0035.
            assert!((exact - sampled).abs() < 0.015, "k={k}: {exact} vs {sampled}");
        }
    }

    #[test]
    fn errors() {
        let p = problem(&[Some("1")], &[true]);
        let err = maj_at_k_per_problem(std::slice::from_ref(&p), 2, &MajorityOptions::default());
        assert_eq!(
            err.unwrap_err().to_string(),
            "maj@2 needs at least 2 samples per problem, but problem `q` has 1"
        );
        let p = ProblemSamples { id: "q".into(), correct: vec![true], answers: vec![] };
        let err = maj_at_k_per_problem(&[p], 1, &MajorityOptions::default()).unwrap_err();
        assert!(err.to_string().contains("needs every sample's answer"));
    }
}
