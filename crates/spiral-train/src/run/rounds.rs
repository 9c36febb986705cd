//! One RL step's collection, with dynamic sampling when configured (DAPO, Yu et al., 2025,
//! section 3.2): problems whose traces all have the same raw correctness carry no training
//! signal, so they are dropped and further problems are sampled, round after round, until
//! `problems_per_step` informative ones are gathered or `dynamic_sampling_max_rounds` rounds
//! have run (the step then trains on those it has).
//!
//! Round 0 takes the step's problems as without dynamic sampling; round r > 0 takes
//! `problems_per_step` problems drawn from a stream keyed by (seed, step, r), so a resumed run
//! draws the same ones. Every rank collects its share of each round, the informative flags are
//! summed over ranks, and the first problems in the round's order are kept on every rank alike.

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use spiral_model::CausalLm;
use spiral_rewards::Problem;
use spiral_rollout::stream_seed;

use super::purpose;
use crate::collect::{Collected, Draws, collect};
use crate::config::RunConfig;
use crate::distributed::{World, share};
use crate::task::TaskData;

/// What dynamic sampling did in one step.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rounds {
    /// Rounds of collection (1 without dynamic sampling).
    pub(super) rounds: usize,
    /// Problems dropped for carrying no signal.
    pub(super) dropped: usize,
}

/// Everything a step's collection reads.
pub(super) struct StepCollection<'a, B: Backend> {
    pub(super) policy: &'a CausalLm<B>,
    pub(super) reference: Option<&'a CausalLm<B>>,
    pub(super) data: &'a TaskData,
    pub(super) config: &'a RunConfig,
    pub(super) world: &'a World,
    pub(super) rl_seed: u64,
    pub(super) step: usize,
}

impl<B: Backend> StepCollection<'_, B> {
    /// Collects this rank's share of the step: its problems `problems` (round 0), and with
    /// dynamic sampling the informative problems of further rounds.
    pub(super) fn run(&self, problems: &[&Problem]) -> anyhow::Result<(Collected, Rounds)> {
        let tr = &self.config.train;
        let mut collected = self.round(problems, 0)?;
        if !tr.dynamic_sampling {
            return Ok((collected, Rounds { rounds: 1, dropped: 0 }));
        }
        let wanted = tr.problems_per_step;
        let (mut kept, informative) = self.keep_informative(&mut collected, problems.len(), wanted);
        let mut rounds = Rounds { rounds: 1, dropped: problems.len() - informative };
        while kept < wanted && rounds.rounds < tr.dynamic_sampling_max_rounds {
            let round = rounds.rounds;
            let mut rng = StdRng::seed_from_u64(stream_seed(
                self.rl_seed,
                purpose::DYNAMIC_SAMPLING,
                (self.step as u64) << 16 | round as u64,
            ));
            let train = &self.data.train;
            let drawn: Vec<&Problem> = sample(&mut rng, train.len(), wanted.min(train.len()))
                .iter()
                .map(|i| &train[i])
                .collect();
            let mut more = self.round(&drawn, round)?;
            let (added, informative) = self.keep_informative(&mut more, drawn.len(), wanted - kept);
            rounds.dropped += drawn.len() - informative;
            kept += added;
            collected.absorb(more);
            rounds.rounds += 1;
        }
        Ok((collected, rounds))
    }

    /// Collects this rank's share of `problems` (one round's, in order).
    fn round(&self, problems: &[&Problem], round: usize) -> anyhow::Result<Collected> {
        let (rank, size) = (self.world.0.rank(), self.world.0.world_size());
        let here = share(problems.len(), rank, size);
        // Every draw is keyed by a problem's index in the round, so the shares draw what one
        // process would; later rounds draw from streams of their own.
        let key = |purpose: u64| {
            let step = stream_seed(self.rl_seed, purpose, self.step as u64);
            if round == 0 {
                step
            } else {
                stream_seed(step, purpose::DYNAMIC_SAMPLING, round as u64)
            }
        };
        let draws = Draws {
            rollout: key(purpose::ROLLOUT),
            sets: key(purpose::COLLECT),
            first_problem: here.start,
        };
        let mine = &problems[here];
        collect(self.policy, self.reference, self.data, mine, self.config, draws)
    }

    /// Keeps, of this rank's share of a round of `round_size` problems, those among the first
    /// `wanted` informative problems of the whole round; returns how many the whole round kept
    /// and how many of its problems were informative.
    fn keep_informative(
        &self,
        c: &mut Collected,
        round_size: usize,
        wanted: usize,
    ) -> (usize, usize) {
        let (rank, size) = (self.world.0.rank(), self.world.0.world_size());
        let here = share(round_size, rank, size);
        let mut flags = vec![0.0; round_size];
        for (i, &informative) in c.informative.iter().enumerate() {
            flags[here.start + i] = f64::from(u8::from(informative));
        }
        self.world.0.sum_f64(&mut flags);
        let mut taken = 0;
        let keep: Vec<bool> = flags
            .iter()
            .map(|&f| {
                let keep = f > 0.0 && taken < wanted;
                taken += usize::from(keep);
                keep
            })
            .collect();
        c.keep_problems(&keep[here]);
        (taken, flags.iter().filter(|&&f| f > 0.0).count())
    }
}
