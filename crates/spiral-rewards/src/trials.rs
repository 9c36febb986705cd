//! Trial-and-error traces: warm-start traces that search by making tries and checking each one
//! in the open, and the aggregation answer that copies a candidate's try that checks.
//!
//! Combination ([`CombinationProblem`](crate::CombinationProblem)) tries values part by part;
//! Countdown ([`CountdownProblem`](crate::CountdownProblem)) tries whole chains of operations.
//! Either way a trace's chance of being right is set by how many tries it may make, not by what
//! the model knows, and a wrong trace shows its failed check: checking a candidate is then easier
//! than finding one, the setting where aggregating candidates can beat sampling more of them.

use rand::Rng;

use crate::task::Problem;

/// A problem whose warm-start traces can search by trial and error.
pub trait TrialTraces {
    /// The answer an aggregator is taught over `candidates` (the texts of traces): a try of
    /// theirs that checks, copied; where none checks, a new search of at most `tries` tries
    /// among those no candidate made. With `tries = 0`, the solution trace. `None` when the
    /// problem has no such trace.
    fn assemble<R: Rng + ?Sized>(
        &self,
        candidates: &[&str],
        tries: usize,
        rng: &mut R,
    ) -> Option<String>;

    /// A trial-and-error trace of at most `tries` tries: the answer over no candidates (with
    /// `tries = 0`, the solution trace).
    fn trial_trace<R: Rng + ?Sized>(&self, tries: usize, rng: &mut R) -> Option<String> {
        self.assemble(&[], tries, rng)
    }
}

impl TrialTraces for Problem {
    /// The problem's own [`TrialTraces::assemble`]; `None` for math and arith, which have no
    /// trial traces.
    fn assemble<R: Rng + ?Sized>(
        &self,
        candidates: &[&str],
        tries: usize,
        rng: &mut R,
    ) -> Option<String> {
        match self {
            Problem::Combination(p) => p.assemble(candidates, tries, rng),
            Problem::Countdown(p) => p.assemble(candidates, tries, rng),
            Problem::Math(_) | Problem::Arith(_) => None,
        }
    }
}
