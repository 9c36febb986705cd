//! Trial-and-error traces: warm-start traces that search by making tries and checking each one
//! in the open, and the aggregation answer that copies a candidate's try that checks.
//!
//! Combination ([`CombinationProblem`](crate::CombinationProblem)) tries values part by part;
//! Countdown ([`CountdownProblem`](crate::CountdownProblem)) tries whole chains of operations.
//! Either way a trace's chance of being right is set by how many tries it may make, not by what
//! the model knows, and a wrong trace shows its failed check: checking a candidate is then easier
//! than finding one, the setting where aggregating candidates can beat sampling more of them.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::task::Problem;

/// How trial traces are written: how many tries a trace may make, and which try it answers with.
/// A bare count of tries converts to these with the default answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trials {
    /// Tries a trace may make; 0 writes solution traces instead.
    pub tries: usize,
    /// Which try a Countdown trace boxes (combination answers every part whatever this says).
    pub boxed: BoxedTry,
}

impl From<usize> for Trials {
    fn from(tries: usize) -> Self {
        Self { tries, boxed: BoxedTry::default() }
    }
}

/// Which try a Countdown trial trace boxes as its answer (`task.countdown.boxed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxedTry {
    /// Its last try, whether it checks or not: every trace answers, and an aggregation answer
    /// copies a candidate's checking try, line and box.
    #[default]
    Last,
    /// Only a try that checks: a trace whose tries all fail ends without an answer (a box known
    /// to be wrong could only lose), so the boxes among an aggregator's candidates are those of
    /// checking tries, and an aggregation answer over a candidate that checks is the verdict word
    /// and that candidate's box.
    Checking,
}

/// A problem whose warm-start traces can search by trial and error.
pub trait TrialTraces {
    /// The answer an aggregator is taught over `candidates` (the texts of traces): a try of
    /// theirs that checks, copied; where none checks, a new search of at most `trials.tries`
    /// tries among those no candidate made. With no tries, the solution trace. `None` when the
    /// problem has no such trace.
    fn assemble<R: Rng + ?Sized>(
        &self,
        candidates: &[&str],
        trials: impl Into<Trials>,
        rng: &mut R,
    ) -> Option<String>;

    /// A trial-and-error trace: the answer over no candidates (with no tries, the solution
    /// trace).
    fn trial_trace<R: Rng + ?Sized>(
        &self,
        trials: impl Into<Trials>,
        rng: &mut R,
    ) -> Option<String> {
        self.assemble(&[], trials, rng)
    }
}

impl TrialTraces for Problem {
    /// The problem's own [`TrialTraces::assemble`]; `None` for math and arith, which have no
    /// trial traces.
    fn assemble<R: Rng + ?Sized>(
        &self,
        candidates: &[&str],
        trials: impl Into<Trials>,
        rng: &mut R,
    ) -> Option<String> {
        match self {
            Problem::Combination(p) => p.assemble(candidates, trials, rng),
            Problem::Countdown(p) => p.assemble(candidates, trials, rng),
            Problem::Math(_) | Problem::Arith(_) => None,
        }
    }
}
