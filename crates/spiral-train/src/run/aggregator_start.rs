//! The warm start's second stage: the aggregator learns on the model's own candidates.
//!
//! Stage one teaches the format from generated solution traces and made-up candidates; an
//! aggregator trained that way reads candidates unlike those its policy writes, and at the start
//! of RL it tends to answer worse than copying any one of them. Stage two samples `n` traces per
//! problem from the stage-one model (frozen: `checkpoints/warm-start-search`), builds the
//! aggregation prompt over them, and trains the answer a good aggregator gives: a correct
//! candidate copied when one exists, else a correct solution (or, with `aggregator_unsolved =
//! "search"`, a search example of the problem instead, so that the aggregator never learns to
//! write past its candidates). With trial traces the answer is the one `TrialTraces::assemble`
//! gives instead: for combination (`task.combination.tries > 0`) each part copied from a
//! candidate that solved it, the others searched again among the values no candidate tried; for
//! Countdown (`task.countdown.tries > 0`) a candidate's try that checks, else a new search among
//! the tries no candidate made. A share of each batch stays search examples so that search is
//! not forgotten.
//!
//! Every draw is keyed by (seed, step, example), and each rank samples the candidates of its
//! share of the batch only, with the sample streams the whole batch would use, so the stage is
//! the same on any number of ranks.

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_model::CausalLm;
use spiral_rewards::Problem;
use spiral_rollout::{RolloutEngine, RolloutRequest, stream_seed};

use super::purpose;
use crate::config::{RunConfig, UnsolvedSets};
use crate::distributed::{World, share};
use crate::learner::TrainSequence;
use crate::task::{EOS, TaskData, reward};

/// One example of a stage-two batch: a problem, and whether it is an aggregation example.
struct Spec<'a> {
    problem: &'a Problem,
    aggregation: bool,
}

/// This rank's share of stage-two step `step`'s batch, its candidates sampled from `stage_one`.
pub(super) fn aggregator_examples<B: Backend>(
    stage_one: &CausalLm<B>,
    data: &TaskData,
    config: &RunConfig,
    world: &World,
    step: usize,
) -> anyhow::Result<Vec<TrainSequence>> {
    let (w, n) = (&config.warm_start, config.algorithm.n);
    let seed = stream_seed(config.run.seed, purpose::AGGREGATOR_START, step as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let specs: Vec<Spec<'_>> = (0..w.batch_size)
        .map(|_| Spec {
            problem: &data.train[rng.random_range(0..data.train.len())],
            aggregation: rng.random::<f64>() >= w.aggregator_search_fraction,
        })
        .collect();
    let here = share(specs.len(), world.0.rank(), world.0.world_size());
    let mine = &specs[here.clone()];
    // The candidates of this share's aggregation examples, drawn as the whole batch's request
    // would draw them: prompt p of the whole request is the p-th aggregation example.
    let before = specs[..here.start].iter().filter(|s| s.aggregation).count();
    let asked: Vec<&Spec<'_>> = mine.iter().filter(|s| s.aggregation).collect();
    let (mut sampling, stop) = data.rollout_settings(&config.rollout, seed);
    sampling.first_prompt = before;
    let request = RolloutRequest {
        prompts: asked.iter().map(|s| data.encode(&data.search_prompt(s.problem))).collect(),
        n,
        sampling,
        stop,
        max_total_tokens: None,
    };
    let samples = if asked.is_empty() {
        Vec::new()
    } else {
        RolloutEngine::default().generate(stage_one, None, &request)?.samples
    };
    let mut candidates = samples.chunks(n.max(1));
    let mut out = Vec::with_capacity(mine.len());
    for (i, spec) in mine.iter().enumerate() {
        let example = here.start + i;
        let mut rng =
            StdRng::seed_from_u64(stream_seed(seed, purpose::AGGREGATOR_START, example as u64));
        let solution = data.trace(spec.problem, &mut rng).ok_or_else(|| {
            anyhow::anyhow!("the aggregator warm start needs solution traces (synthetic tasks)")
        })?;
        let (prompt, target) = if spec.aggregation {
            let texts: Vec<String> = candidates
                .next()
                .expect("one group of candidates per aggregation example")
                .iter()
                .map(|s| data.decode(&s.tokens))
                .collect();
            let assembled = data.assembled_answer(spec.problem, &texts, &mut rng);
            let correct = texts.iter().find(|t| reward(spec.problem, t) > 0.0).cloned();
            let prompt = data.aggregation_prompt(spec.problem, &texts, &mut rng);
            match (assembled, correct, w.aggregator_unsolved) {
                (Some(answer), _, _) => (prompt, answer),
                (None, Some(copy), _) => (prompt, copy),
                (None, None, UnsolvedSets::Solution) => (prompt, solution),
                (None, None, UnsolvedSets::Search) => (data.search_prompt(spec.problem), solution),
            }
        } else {
            (data.search_prompt(spec.problem), solution)
        };
        out.push(crate::task::supervised(
            data.encode(&prompt),
            data.encode(&format!("{}{EOS}", target.trim_end_matches(EOS))),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random model never writes a correct candidate, so every aggregation example has an
    /// unsolved set: answered with the solution after its aggregation prompt by default, and
    /// turned into a search example with `aggregator_unsolved = "search"`.
    #[test]
    fn unsolved_sets_are_answered_or_become_search_examples() {
        let overrides = [
            "task.kind=\"combination\"",
            "task.combination.parts=2",
            "task.train_problems=20",
            "task.test_problems=4",
            "eval.problems=4",
            "rollout.max_new_tokens=8",
            "warm_start.batch_size=8",
            "warm_start.aggregator_search_fraction=0",
        ]
        .map(String::from);
        let mut config = RunConfig::default_with(&overrides).unwrap();
        let data = TaskData::new(&config.task, None, 1).unwrap();
        let model_config = spiral_model::ModelConfig::small(data.tokenizer.vocab_size(), 16, 1, 2);
        let device = Default::default();
        let model =
            CausalLm::<burn::backend::Flex>::random(model_config, 3, 0.02, &device).unwrap();
        let examples = |config: &RunConfig| {
            let batch = aggregator_examples(&model, &data, config, &World::default(), 0).unwrap();
            assert_eq!(batch.len(), 8);
            batch.iter().map(|s| data.decode(&s.tokens[..s.prompt_len])).collect::<Vec<_>>()
        };
        let answered = examples(&config);
        assert!(answered.iter().all(|p| p.contains("Candidates:")), "{answered:?}");
        config.warm_start.aggregator_unsolved = UnsolvedSets::Search;
        let searched = examples(&config);
        assert!(searched.iter().all(|p| !p.contains("Candidates:")), "{searched:?}");
    }
}
