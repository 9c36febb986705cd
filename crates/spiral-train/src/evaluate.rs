//! Evaluation on held-out problems, the numbers SPIRAL is judged by: `pass@1` (mean accuracy
//! of single search traces), `pass@k` (unbiased, Chen et al. 2021), `maj@n` (majority vote over
//! the n traces' answers) and `agg@1` (accuracy of one aggregation trace that reads the same n
//! traces).

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use spiral_aggregation::majority_vote;
use spiral_eval::{
    ChatMode, Completion, ModelSampler, ProblemSamples, SamplerSettings, pass_at_k_per_problem,
};
use spiral_model::CausalLm;
use spiral_rewards::{Problem, Reward, Scored, TaskReward};
use spiral_rollout::stream_seed;

use crate::config::RunConfig;
use crate::distributed::{World, share};
use crate::task::TaskData;

/// One evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    /// Mean accuracy of single search traces.
    #[serde(rename = "pass@1")]
    pub pass_at_1: f64,
    /// Unbiased pass@k for k = 2, 4, ... up to n.
    pub pass_at_k: Vec<(usize, f64)>,
    /// Accuracy of the majority answer of the n traces.
    #[serde(rename = "maj@n")]
    pub maj_at_n: f64,
    /// Accuracy of one aggregation over the n traces (mean over `eval.aggregations` samples).
    #[serde(rename = "agg@1")]
    pub agg_at_1: f64,
    /// Problems evaluated.
    pub problems: usize,
    /// Traces per problem.
    pub n: usize,
    /// Accuracy of the aggregation on problems whose n traces hold at least one correct one
    /// (how well the model picks), `None` when no problem had one.
    pub agg_given_correct: Option<f64>,
    /// Accuracy of the aggregation on problems whose n traces are all wrong (how often it
    /// repairs them).
    pub agg_given_none: Option<f64>,
    /// Share of aggregation traces whose answer (as the verifier reads it) is one of their
    /// candidates' answers: how often the aggregator selects rather than writes its own.
    pub agg_picks: Option<f64>,
    /// Accuracy of those that select: against pass@1, a candidate drawn at random, it says
    /// whether the aggregator selects better than chance.
    pub agg_given_pick: Option<f64>,
    /// For problems of independently checked parts (combination): the aggregation's accuracy on
    /// the parts that at least one of its candidates answers correctly, `None` for other tasks.
    /// A combination answer can take each part from another candidate, so this, not
    /// `agg_picks`, says how well the aggregator finds what its candidates solved.
    pub agg_part_given_solved: Option<f64>,
    /// With [`MadeUpCandidates::Measure`]: `agg_given_correct` over candidates the task makes
    /// up as the warm start's aggregation examples are ([`TaskData::made_up_candidates`])
    /// instead of the model's own traces: the aggregation's accuracy on sets that hold a correct
    /// one. Far above `agg_given_correct`, the aggregator works and the search traces it reads
    /// are what it cannot use; near it, the aggregator itself falls short.
    pub agg_made_up_given_correct: Option<f64>,
    /// The same as `agg_part_given_solved` over made-up candidates (combination).
    pub agg_part_made_up: Option<f64>,
    /// Entropy of the search policy in nats per token, estimated by the mean surprise
    /// `-log p` of its sampled search-trace tokens: how widely it still searches.
    pub search_entropy: Option<f64>,
    /// Distinct answers among a problem's n traces, averaged over problems (an unreadable
    /// answer counts as one more): how different the parallel traces are.
    pub distinct_answers: f64,
    /// What the model wrote for each evaluated problem, for people to read.
    #[serde(skip)]
    pub transcripts: Vec<Transcript>,
}

/// Whether an evaluation also aggregates over made-up candidates
/// ([`EvalMetrics::agg_made_up_given_correct`]): one more aggregation pass, measured where the
/// aggregator is judged (before RL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeUpCandidates {
    /// Aggregate over the model's own traces only.
    Skip,
    /// Also over made-up candidates.
    Measure,
}

/// The stream of the made-up candidates of evaluated problem `i` (apart from the stream of its
/// vote and prompt order).
const MADE_UP_STREAM: u64 = 1;

/// One evaluated problem: its search traces and the aggregation over them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transcript {
    /// The search prompt.
    pub prompt: String,
    /// The n search traces and whether each is correct.
    pub traces: Vec<(String, bool)>,
    /// The aggregation prompt.
    pub aggregation_prompt: String,
    /// The first aggregation trace and whether it is correct.
    pub aggregation: (String, bool),
}

/// Evaluates `model` on the first `eval.problems` test problems: `eval.n` search traces each and
/// `eval.aggregations` aggregation traces over them, sampled through `spiral-eval`'s
/// [`ModelSampler`], with `spiral-eval`'s unbiased pass@k. `maj@n` is one vote per problem with
/// ties broken by the seeded draw that also shuffles that problem's aggregation prompt (not
/// `spiral-eval`'s expected vote over every tie).
pub fn evaluate<B: Backend>(
    model: &CausalLm<B>,
    data: &TaskData,
    config: &RunConfig,
    seed: u64,
    reference: MadeUpCandidates,
) -> anyhow::Result<EvalMetrics> {
    evaluate_on(model, data, config, seed, &World::default(), reference)
}

/// [`evaluate`] split across the ranks of `world`: each samples its share of the problems, with
/// every draw keyed by a problem's index among them, and every rank gets the metrics and the
/// transcripts of all of them.
pub fn evaluate_on<B: Backend>(
    model: &CausalLm<B>,
    data: &TaskData,
    config: &RunConfig,
    seed: u64,
    world: &World,
    reference: MadeUpCandidates,
) -> anyhow::Result<EvalMetrics> {
    let n = config.eval.n;
    let all: Vec<&Problem> = data.test.iter().take(config.eval.problems).collect();
    let here = share(all.len(), world.0.rank(), world.0.world_size());
    let problems = &all[here.clone()];
    let local = evaluate_share(model, data, config, seed, problems, here.start, reference)?;
    // Sums over problems, then over ranks.
    let mut sums = local.sums.clone();
    world.0.sum_f64(&mut sums);
    let totals = Sums::read(&sums, n);
    let mut transcripts = Vec::with_capacity(all.len());
    for part in world.0.gather_bytes(&serde_json::to_vec(&local.transcripts)?) {
        transcripts.extend(serde_json::from_slice::<Vec<Transcript>>(&part)?);
    }
    let rate = |(hits, total): (f64, f64)| (total > 0.0).then(|| hits / total);
    let count = all.len().max(1) as f64;
    Ok(EvalMetrics {
        pass_at_1: totals.correct / (count * n as f64),
        pass_at_k: totals.pass_at_k.into_iter().map(|(k, sum)| (k, sum / count)).collect(),
        maj_at_n: totals.maj / count,
        agg_at_1: (totals.given_correct.0 + totals.given_none.0) / count,
        problems: all.len(),
        n,
        agg_given_correct: rate(totals.given_correct),
        agg_given_none: rate(totals.given_none),
        agg_picks: rate((totals.picks.0, totals.picks.2)),
        agg_given_pick: rate((totals.picks.1, totals.picks.0)),
        agg_part_given_solved: rate((totals.solved_parts.1, totals.solved_parts.0)),
        agg_made_up_given_correct: rate((
            totals.made_up.given_correct.1,
            totals.made_up.given_correct.0,
        )),
        agg_part_made_up: rate((totals.made_up.parts.1, totals.made_up.parts.0)),
        search_entropy: rate(totals.surprise),
        distinct_answers: totals.distinct / count,
        transcripts,
    })
}

/// What one share of the problems measured, as sums over its problems ([`Sums`]' layout), and
/// its transcripts.
struct Share {
    sums: Vec<f64>,
    transcripts: Vec<Transcript>,
}

/// The sums an evaluation adds up over problems (and ranks), flattened as `[correct traces,
/// pass@k for k = 2, 4, .. (one each), majority hits, aggregation hits and problems given a
/// correct trace, the same given none, then aggregation traces that pick a candidate's answer,
/// those of them that are correct, and aggregation traces, then parts some trace answers
/// correctly and the aggregations' mean accuracy on them, then the same four over made-up
/// candidates ([`Aggregated`]), then the search traces' summed surprise and tokens, and
/// distinct answers]`.
struct Sums {
    correct: f64,
    pass_at_k: Vec<(usize, f64)>,
    maj: f64,
    given_correct: (f64, f64),
    given_none: (f64, f64),
    picks: (f64, f64, f64),
    solved_parts: (f64, f64),
    made_up: Aggregated,
    surprise: (f64, f64),
    distinct: f64,
}

/// How aggregations over some candidate sets scored: (sets holding a correct candidate, summed
/// mean accuracy on them) and (parts some candidate solved, summed mean accuracy on them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Aggregated {
    given_correct: (f64, f64),
    parts: (f64, f64),
}

impl Sums {
    fn flatten(&self) -> Vec<f64> {
        let mut out = vec![self.correct];
        out.extend(self.pass_at_k.iter().map(|&(_, x)| x));
        out.extend([self.maj, self.given_correct.0, self.given_correct.1]);
        out.extend([self.given_none.0, self.given_none.1]);
        out.extend([self.picks.0, self.picks.1, self.picks.2]);
        out.extend([self.solved_parts.0, self.solved_parts.1]);
        let m = &self.made_up;
        out.extend([m.given_correct.0, m.given_correct.1, m.parts.0, m.parts.1]);
        out.extend([self.surprise.0, self.surprise.1, self.distinct]);
        out
    }

    fn read(values: &[f64], n: usize) -> Self {
        let ks = n.ilog2() as usize;
        let at = |i: usize| values[i];
        Self {
            correct: at(0),
            pass_at_k: (1..=ks).map(|e| (1usize << e, at(e))).collect(),
            maj: at(ks + 1),
            given_correct: (at(ks + 2), at(ks + 3)),
            given_none: (at(ks + 4), at(ks + 5)),
            picks: (at(ks + 6), at(ks + 7), at(ks + 8)),
            solved_parts: (at(ks + 9), at(ks + 10)),
            made_up: Aggregated {
                given_correct: (at(ks + 11), at(ks + 12)),
                parts: (at(ks + 13), at(ks + 14)),
            },
            surprise: (at(ks + 15), at(ks + 16)),
            distinct: at(ks + 17),
        }
    }
}

/// Samples and scores `problems`, the first of which is problem `first` of the evaluation.
fn evaluate_share<B: Backend>(
    model: &CausalLm<B>,
    data: &TaskData,
    config: &RunConfig,
    seed: u64,
    problems: &[&Problem],
    first: usize,
    reference: MadeUpCandidates,
) -> anyhow::Result<Share> {
    let n = config.eval.n;
    let ks: Vec<usize> = (1..=n.ilog2()).map(|e| 1usize << e).collect();
    if problems.is_empty() {
        let empty = Sums {
            correct: 0.0,
            pass_at_k: ks.iter().map(|&k| (k, 0.0)).collect(),
            maj: 0.0,
            given_correct: (0.0, 0.0),
            given_none: (0.0, 0.0),
            picks: (0.0, 0.0, 0.0),
            solved_parts: (0.0, 0.0),
            made_up: Aggregated::default(),
            surprise: (0.0, 0.0),
            distinct: 0.0,
        };
        return Ok(Share { sums: empty.flatten(), transcripts: Vec::new() });
    }
    let (mut sampling, stop) = data.rollout_settings(&config.rollout, seed);
    // Prompt p of this share is prompt `first + p` of the evaluation, for the sampler's streams.
    sampling.first_prompt = first;
    // The prompts are rendered by `TaskData` already, chat template included where it applies.
    let settings =
        SamplerSettings { sampling, max_new_tokens: stop.max_new_tokens, chat: ChatMode::Off };
    let sampler = ModelSampler::new(model, &data.tokenizer, &settings)?;
    let prompts: Vec<String> = problems.iter().map(|p| data.search_prompt(p)).collect();
    let completions: Vec<_> = sampler.generate(&prompts, n, seed)?.into_iter().flatten().collect();
    let surprise = completions
        .iter()
        .fold((0.0, 0.0), |(nats, tokens), c| (nats - c.logprob, tokens + c.tokens as f64));
    let texts: Vec<String> = completions.into_iter().map(|c| c.text).collect();
    // The verifier's reading of each trace: its reward, and the answer it found (what the
    // majority vote counts, so that a vote is over answers the task recognises).
    let scored: Vec<Scored> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| TaskReward::default().score(problems[i / n], t))
        .collect();
    let correct: Vec<f64> = scored.iter().map(|s| s.reward).collect();
    let samples: Vec<ProblemSamples> = correct
        .chunks(n)
        .enumerate()
        .map(|(p, rewards)| ProblemSamples {
            id: (first + p).to_string(),
            correct: rewards.iter().map(|&r| r > 0.0).collect(),
            answers: Vec::new(),
        })
        .collect();
    let pass_at_k = ks
        .iter()
        .map(|&k| Ok((k, pass_at_k_per_problem(&samples, k)?.iter().sum::<f64>())))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut maj = 0.0;
    let mut distinct = 0.0;
    let mut agg_prompts = Vec::with_capacity(problems.len());
    for (p, problem) in problems.iter().enumerate() {
        // Each problem's own stream (ties of the vote, order of the candidates), keyed by its
        // index in the evaluation.
        let mut rng = StdRng::seed_from_u64(stream_seed(seed, 0, (first + p) as u64));
        let group = &texts[p * n..(p + 1) * n];
        let answers: Vec<Option<&str>> =
            scored[p * n..(p + 1) * n].iter().map(|s| s.extracted.as_deref()).collect();
        let mut seen: Vec<Option<&str>> = Vec::with_capacity(n);
        for a in &answers {
            if !seen.contains(a) {
                seen.push(*a);
            }
        }
        distinct += seen.len() as f64;
        if let Some(vote) = majority_vote(&answers, &mut rng) {
            maj += correct[p * n + vote.winner];
        }
        agg_prompts.push(data.aggregation_prompt(problem, group, &mut rng));
    }
    let per_problem = config.eval.aggregations;
    let aggregations = sampler.generate(&agg_prompts, per_problem, seed ^ 0xA66)?;
    let mut transcripts = Vec::with_capacity(problems.len());
    // (correct aggregations, problems) when some trace is correct, and when none is; each
    // problem counts the mean accuracy of its aggregation samples.
    let (mut given_correct, mut given_none) = ((0.0, 0.0), (0.0, 0.0));
    // (aggregation traces answering with a candidate's answer, those correct, all of them).
    let mut picks = (0.0, 0.0, 0.0);
    // (parts some trace answers correctly, the aggregations' mean accuracy on them).
    let mut solved_parts = (0.0, 0.0);
    for (p, (problem, completions)) in problems.iter().zip(aggregations).enumerate() {
        let candidates: Vec<&str> =
            scored[p * n..(p + 1) * n].iter().filter_map(|s| s.extracted.as_deref()).collect();
        let judged: Vec<Scored> =
            completions.iter().map(|c| TaskReward::default().score(problem, &c.text)).collect();
        for s in &judged {
            if s.extracted.as_deref().is_some_and(|answer| candidates.contains(&answer)) {
                picks.0 += 1.0;
                picks.1 += s.reward;
            }
            picks.2 += 1.0;
        }
        let (parts, hits) =
            part_accuracy(problem, &texts[p * n..(p + 1) * n], &completions, per_problem);
        solved_parts.0 += parts;
        solved_parts.1 += hits;
        let scores: Vec<f64> = judged.iter().map(|s| s.reward).collect();
        let group = &correct[p * n..(p + 1) * n];
        let bucket =
            if group.iter().any(|&r| r > 0.0) { &mut given_correct } else { &mut given_none };
        bucket.0 += scores.iter().sum::<f64>() / per_problem as f64;
        bucket.1 += 1.0;
        transcripts.push(Transcript {
            prompt: prompts[p].clone(),
            traces: (p * n..(p + 1) * n).map(|i| (texts[i].clone(), correct[i] > 0.0)).collect(),
            aggregation_prompt: agg_prompts[p].clone(),
            aggregation: (completions[0].text.clone(), scores[0] > 0.0),
        });
    }
    let made_up = match reference {
        MadeUpCandidates::Skip => Aggregated::default(),
        MadeUpCandidates::Measure => {
            aggregate_made_up(&sampler, data, problems, first, n, per_problem, seed)?
        }
    };
    let sums = Sums {
        correct: correct.iter().sum(),
        pass_at_k,
        maj,
        given_correct,
        given_none,
        picks,
        solved_parts,
        made_up,
        surprise,
        distinct,
    };
    Ok(Share { sums: sums.flatten(), transcripts })
}

/// For a problem of independently checked parts, whether each part is answered correctly by at
/// least one of `traces`; `None` for tasks with one answer.
fn solved_by_some(problem: &Problem, traces: &[String]) -> Option<Vec<bool>> {
    let mut solved = problem.parts_answered("")?;
    for trace in traces {
        let answered = problem.parts_answered(trace)?;
        solved.iter_mut().zip(answered).for_each(|(s, a)| *s |= a);
    }
    Some(solved)
}

/// Aggregations over candidates the task makes up for each of `problems` (the first of them
/// problem `first` of the evaluation), `per_problem` each, scored as [`Aggregated`]; nothing for
/// tasks without made-up candidates (math).
fn aggregate_made_up<B: Backend>(
    sampler: &ModelSampler<'_, B>,
    data: &TaskData,
    problems: &[&Problem],
    first: usize,
    n: usize,
    per_problem: usize,
    seed: u64,
) -> anyhow::Result<Aggregated> {
    let mut sets = Vec::with_capacity(problems.len());
    let mut prompts = Vec::with_capacity(problems.len());
    for (p, problem) in problems.iter().enumerate() {
        let stream = stream_seed(seed, MADE_UP_STREAM, (first + p) as u64);
        let mut rng = StdRng::seed_from_u64(stream);
        // Every synthetic problem has a trace, so prompt p stays problem p (the sampler's
        // streams); math has none at all.
        let Some(candidates) = data.made_up_candidates(problem, n, &mut rng) else {
            return Ok(Aggregated::default());
        };
        prompts.push(data.aggregation_prompt(problem, &candidates, &mut rng));
        sets.push(candidates);
    }
    let mut out = Aggregated::default();
    let aggregations = sampler.generate(&prompts, per_problem, seed ^ 0x4EF)?;
    for ((problem, candidates), completions) in problems.iter().zip(&sets).zip(aggregations) {
        let right = |text: &str| TaskReward::default().score(problem, text).reward;
        if candidates.iter().any(|c| right(c) > 0.0) {
            let accuracy = completions.iter().map(|c| right(&c.text)).sum::<f64>();
            out.given_correct.0 += 1.0;
            out.given_correct.1 += accuracy / per_problem as f64;
        }
        let (parts, hits) = part_accuracy(problem, candidates, &completions, per_problem);
        out.parts.0 += parts;
        out.parts.1 += hits;
    }
    Ok(out)
}

/// For a problem of parts: how many parts some of `candidates` answers correctly, and the
/// aggregations' summed mean accuracy on those parts; (0, 0) for other tasks.
fn part_accuracy(
    problem: &Problem,
    candidates: &[String],
    aggregations: &[Completion],
    per_problem: usize,
) -> (f64, f64) {
    let Some(solved) = solved_by_some(problem, candidates) else { return (0.0, 0.0) };
    let answered: Vec<Vec<bool>> =
        aggregations.iter().filter_map(|c| problem.parts_answered(&c.text)).collect();
    let mut out = (0.0, 0.0);
    for (part, _) in solved.iter().enumerate().filter(|&(_, &s)| s) {
        out.0 += 1.0;
        out.1 += answered.iter().filter(|a| a[part]).count() as f64 / per_problem as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use spiral_rewards::{CombinationProblem, Congruence, CountdownProblem};

    /// A model whose weights are all zero gives every token the same logit, so every sampled
    /// token's surprise is `ln V` and so is the search entropy, whatever was sampled.
    #[test]
    fn the_search_entropy_of_a_uniform_policy_is_the_log_of_the_vocabulary() {
        let overrides = ["task.train_problems=8", "task.test_problems=3", "eval.problems=3"]
            .into_iter()
            .chain(["eval.n=2", "rollout.max_new_tokens=5"])
            .map(String::from)
            .collect::<Vec<_>>();
        let config = RunConfig::default_with(&overrides).unwrap();
        let data = TaskData::new(&config.task, None, 1).unwrap();
        let vocab = data.tokenizer.vocab_size();
        let model_config = spiral_model::ModelConfig::small(vocab, 16, 1, 2);
        let model =
            CausalLm::<burn::backend::Flex>::random(model_config, 0, 0.0, &Default::default())
                .unwrap();
        let e = evaluate(&model, &data, &config, 7, MadeUpCandidates::Skip).unwrap();
        let entropy = e.search_entropy.unwrap();
        assert!((entropy - (vocab as f64).ln()).abs() < 1e-4, "{entropy} against ln {vocab}");
    }

    #[test]
    fn a_part_is_solved_when_any_trace_answers_it() {
        let parts = vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }];
        let problem = Problem::Combination(CombinationProblem::new(10, parts));
        let traces = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // x1 = 7 and x2 = 3 solve it; each trace has one part right.
        let complementary = traces(&["x1=7\nx2=4", "x1=1\nx2=3"]);
        assert_eq!(solved_by_some(&problem, &complementary), Some(vec![true, true]));
        let one = traces(&["x1=2\nx2=4", "x1=1\nx2=3", "no answer"]);
        assert_eq!(solved_by_some(&problem, &one), Some(vec![false, true]));
        assert_eq!(solved_by_some(&problem, &[]), Some(vec![false, false]));
        let countdown = Problem::Countdown(CountdownProblem { numbers: vec![3, 4], target: 7 });
        assert_eq!(solved_by_some(&countdown, &traces(&["3+4=7"])), None);
    }
}
