//! Credit within groups (GRPO, Dr.GRPO): each problem's N1 search traces are one group, and each
//! trace's advantage compares its reward with the group's (`spiral_set_rl::grpo_advantages`,
//! `dr_grpo_advantages`).

use spiral_set_rl::{dr_grpo_advantages, grpo_advantages};

use super::{Credited, OverlongConfig, Search, sequence};
use crate::algorithm::GroupAdvantage;
use crate::config::AlgorithmSection;

/// Credits the `problems` groups of `search` by `estimator`; a trace with a zero advantage is
/// trained as `algorithm.zero_advantage` says.
pub(super) fn credit(
    search: &Search,
    problems: usize,
    estimator: GroupAdvantage,
    a: &AlgorithmSection,
    overlong: &OverlongConfig,
) -> anyhow::Result<Credited> {
    let mut credited = Credited::default();
    for problem in 0..problems {
        let group = &search.rewards[search.layout.problem(problem)];
        let advantages = match estimator {
            GroupAdvantage::Grpo => grpo_advantages(group)?,
            GroupAdvantage::DrGrpo => dr_grpo_advantages(group)?,
        };
        credited.zero_signal += usize::from(advantages.iter().all(|&x| x == 0.0));
        for (j, &advantage) in advantages.iter().enumerate() {
            let sample = &search.output.samples[search.layout.trace(problem, j)];
            if !overlong.trains(sample) || !a.trains(advantage) {
                continue;
            }
            credited.batch.push(sequence(
                &search.prompts[problem],
                sample,
                advantage,
                a.search_weight,
            ));
            credited.problem_of.push(problem);
        }
    }
    Ok(credited)
}
