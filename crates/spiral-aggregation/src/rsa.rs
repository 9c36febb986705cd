//! Recursive self-aggregation (Venkatraman et al., 2025, "Recursive Self-Aggregation Unlocks
//! Deep Thinking in Large Language Models"; ParaGator's and SPIRAL's multi-round inference).
//!
//! Round 0 is the initial population P_0 of N traces per problem, sampled by the caller. Round t
//! (1..=T) draws N sets of K members of P_{t-1} ([`draw_rsa_sets`]), builds one aggregation prompt
//! per set ([`PromptBuilder`]), and the aggregations form P_t. Every round is scored with the
//! task's [`Reward`]: pass@1 (mean reward), majority vote over the population (seeded tie-break)
//! and pass@N (best reward), each averaged over problems.
//!
//! The model is behind the [`Aggregator`] trait: it turns a batch of prompts into one generation
//! each. All problems' prompts of a round go to it in one call, so a batched rollout engine sees
//! large batches. Any `FnMut(&[AggregationPrompt]) -> Result<Vec<Generation>, BoxError>` is an
//! aggregator, which is how the tests plug in a mock.

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use spiral_rewards::Reward;

use crate::budget::TokenCounter;
use crate::error::AggregationError;
use crate::prompt::{AggregationPrompt, PromptBuilder};
use crate::sets::{SetSampling, draw_rsa_sets};
use crate::vote::majority_vote;

/// The error an [`Aggregator`] may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One generated trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text (without the prompt).
    pub text: String,
    /// Generated tokens (for token-efficiency curves).
    pub tokens: usize,
}

/// Turns aggregation prompts into generations: the model side of RSA.
pub trait Aggregator {
    /// One generation per prompt, in order. The caller renders each prompt's
    /// [`messages`](AggregationPrompt::messages) through its chat template.
    fn generate(&mut self, prompts: &[AggregationPrompt]) -> Result<Vec<Generation>, BoxError>;
}

impl<F> Aggregator for F
where
    F: FnMut(&[AggregationPrompt]) -> Result<Vec<Generation>, BoxError>,
{
    fn generate(&mut self, prompts: &[AggregationPrompt]) -> Result<Vec<Generation>, BoxError> {
        self(prompts)
    }
}

/// RSA settings (`[rsa]` in a run config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RsaConfig {
    /// Aggregation rounds T (0 scores the initial population only).
    pub rounds: usize,
    /// Traces per aggregation prompt, K.
    pub k: usize,
    /// How each round's sets are drawn.
    pub sampling: SetSampling,
    /// Seed of set drawing, candidate shuffling and vote tie-breaks.
    pub seed: u64,
}

impl Default for RsaConfig {
    fn default() -> Self {
        Self { rounds: 3, k: 4, sampling: SetSampling::default(), seed: 0 }
    }
}

/// One problem's input: the question shown in prompts, what the reward checks, and P_0.
#[derive(Clone, Debug)]
pub struct RsaInput<'a, P: ?Sized> {
    /// The problem statement shown in aggregation prompts.
    pub question: &'a str,
    /// What the reward scores against.
    pub problem: &'a P,
    /// The initial population (N traces sampled from the question).
    pub population: Vec<Generation>,
}

/// A scored member of a population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The trace.
    pub text: String,
    /// Its generated tokens.
    pub tokens: usize,
    /// Its reward.
    pub reward: f64,
    /// Its extracted final answer.
    pub answer: Option<String>,
}

/// One problem's population after a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProblemRound {
    /// The scored members.
    pub members: Vec<Member>,
    /// The member holding the majority answer; `None` when no member has an answer.
    pub vote: Option<usize>,
    /// Prompt tokens of this round's aggregation prompts (0 in round 0).
    pub prompt_tokens: usize,
}

impl ProblemRound {
    /// Mean reward of the population (pass@1).
    pub fn mean_reward(&self) -> f64 {
        self.members.iter().map(|m| m.reward).sum::<f64>() / self.members.len().max(1) as f64
    }

    /// Best reward in the population (pass@N).
    pub fn best_reward(&self) -> f64 {
        self.members.iter().map(|m| m.reward).fold(0.0, f64::max)
    }

    /// Reward of the majority answer (0 when nobody answered).
    pub fn vote_reward(&self) -> f64 {
        self.vote.map_or(0.0, |v| self.members[v].reward)
    }

    /// Generated tokens of the population.
    pub fn generated_tokens(&self) -> usize {
        self.members.iter().map(|m| m.tokens).sum()
    }
}

/// Metrics of one round, averaged over problems.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// The round (0 = initial population).
    pub round: usize,
    /// Mean reward of the population members (pass@1).
    pub pass_at_1: f64,
    /// Reward of the majority-vote answer (maj@N).
    pub majority: f64,
    /// Best reward in the population (pass@N).
    pub pass_at_n: f64,
    /// Generated tokens per problem in this round.
    pub generated_tokens: f64,
    /// Prompt tokens per problem in this round.
    pub prompt_tokens: f64,
}

/// One round: every problem's population, and the averages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RsaRound {
    /// The averages.
    pub summary: RoundSummary,
    /// Per problem, in input order.
    pub problems: Vec<ProblemRound>,
}

/// The rounds of an RSA run, round 0 (the initial population) first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RsaRun {
    /// Rounds 0..=T.
    pub rounds: Vec<RsaRound>,
}

impl RsaRun {
    /// The per-round averages.
    pub fn summaries(&self) -> Vec<RoundSummary> {
        self.rounds.iter().map(|r| r.summary).collect()
    }
}

/// Runs RSA over problems with a prompt builder and a token counter.
///
/// ```
/// use spiral_aggregation::{
///     AggregationConfig, AggregationPrompt, BoxError, Generation, PromptBuilder, RsaConfig,
///     RsaDriver, RsaInput,
/// };
/// use spiral_rewards::{MathProblem, MathReward};
///
/// let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
/// let words = |s: &str| s.split_whitespace().count();
/// let config = RsaConfig { rounds: 2, k: 2, ..RsaConfig::default() };
/// let driver = RsaDriver::new(config, &builder, &words).unwrap();
/// // A mock model that always answers 4.
/// let mut model = |prompts: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> {
///     Ok(prompts.iter().map(|_| Generation { text: "\\boxed{4}".into(), tokens: 3 }).collect())
/// };
/// let problem = MathProblem::new("2+2?", "4");
/// let population = ["\\boxed{4}", "\\boxed{5}", "\\boxed{5}"]
///     .map(|t| Generation { text: t.into(), tokens: 3 })
///     .to_vec();
/// let inputs = [RsaInput { question: "2+2?", problem: &problem, population }];
/// let run = driver.run(&inputs, &MathReward::default(), &mut model).unwrap();
/// let s = run.summaries();
/// assert_eq!((s[0].pass_at_1, s[0].majority, s[0].pass_at_n), (1.0 / 3.0, 0.0, 1.0));
/// assert_eq!((s[2].pass_at_1, s[2].majority), (1.0, 1.0));
/// ```
#[derive(Debug)]
pub struct RsaDriver<'a, C: ?Sized> {
    config: RsaConfig,
    prompts: &'a PromptBuilder,
    counter: &'a C,
}

impl<'a, C: TokenCounter + ?Sized> RsaDriver<'a, C> {
    /// Checks the config (K >= 1).
    pub fn new(
        config: RsaConfig,
        prompts: &'a PromptBuilder,
        counter: &'a C,
    ) -> Result<Self, AggregationError> {
        if config.k == 0 {
            return Err(AggregationError::config("rsa.k", "must be at least 1, got 0"));
        }
        Ok(Self { config, prompts, counter })
    }

    /// Runs `config.rounds` rounds on every input; each population must have at least K
    /// members. The run is reproducible given the seed and a deterministic aggregator.
    pub fn run<P, R, A>(
        &self,
        inputs: &[RsaInput<'_, P>],
        reward: &R,
        aggregator: &mut A,
    ) -> Result<RsaRun, AggregationError>
    where
        P: ?Sized,
        R: Reward<Problem = P>,
        A: Aggregator + ?Sized,
    {
        let k = self.config.k;
        if let Some((i, input)) = inputs.iter().enumerate().find(|(_, x)| x.population.len() < k) {
            return Err(AggregationError::config(
                "rsa.k",
                format!("problem {i} has {} traces, fewer than k = {k}", input.population.len()),
            ));
        }
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let first: Vec<ProblemRound> = inputs
            .iter()
            .map(|x| score_population(reward, x.problem, x.population.clone(), 0, &mut rng))
            .collect();
        let mut rounds = vec![summarize(0, first)];
        for round in 1..=self.config.rounds {
            let previous = &rounds[round - 1].problems;
            let mut prompts = Vec::new();
            for (input, pop) in inputs.iter().zip(previous) {
                prompts.extend(self.prompts_for(input.question, &pop.members, &mut rng)?);
            }
            let mut generations =
                aggregator.generate(&prompts).map_err(AggregationError::Aggregator)?;
            if generations.len() != prompts.len() {
                return Err(AggregationError::ResponseCount {
                    expected: prompts.len(),
                    got: generations.len(),
                });
            }
            let mut problems = Vec::with_capacity(inputs.len());
            let mut start = 0;
            for (input, pop) in inputs.iter().zip(previous) {
                let n = pop.members.len();
                let gens: Vec<Generation> = generations.drain(..n).collect();
                let tokens = prompts[start..start + n].iter().map(|p| p.tokens).sum();
                start += n;
                problems.push(score_population(reward, input.problem, gens, tokens, &mut rng));
            }
            rounds.push(summarize(round, problems));
        }
        Ok(RsaRun { rounds })
    }

    /// One prompt per member of the next population: N sets of K members of `members`.
    fn prompts_for(
        &self,
        question: &str,
        members: &[Member],
        rng: &mut StdRng,
    ) -> Result<Vec<AggregationPrompt>, AggregationError> {
        let n = members.len();
        let sets = draw_rsa_sets(n, self.config.k, n, self.config.sampling, rng)?;
        sets.iter()
            .map(|set| {
                let texts: Vec<&str> = set.iter().map(|&m| members[m].text.as_str()).collect();
                self.prompts.build(question, &texts, self.counter, rng)
            })
            .collect()
    }
}

/// Scores generations with the reward and takes the majority vote.
fn score_population<P: ?Sized, R: Reward<Problem = P>>(
    reward: &R,
    problem: &P,
    generations: Vec<Generation>,
    prompt_tokens: usize,
    rng: &mut StdRng,
) -> ProblemRound {
    let members: Vec<Member> = generations
        .into_iter()
        .map(|g| {
            let scored = reward.score(problem, &g.text);
            Member {
                text: g.text,
                tokens: g.tokens,
                reward: scored.reward,
                answer: scored.extracted,
            }
        })
        .collect();
    let answers: Vec<Option<&str>> = members.iter().map(|m| m.answer.as_deref()).collect();
    let vote = majority_vote(&answers, rng).map(|v| v.winner);
    ProblemRound { members, vote, prompt_tokens }
}

fn summarize(round: usize, problems: Vec<ProblemRound>) -> RsaRound {
    let n = problems.len().max(1) as f64;
    let mean = |f: &dyn Fn(&ProblemRound) -> f64| problems.iter().map(f).sum::<f64>() / n;
    let summary = RoundSummary {
        round,
        pass_at_1: mean(&ProblemRound::mean_reward),
        majority: mean(&ProblemRound::vote_reward),
        pass_at_n: mean(&ProblemRound::best_reward),
        generated_tokens: mean(&|p| p.generated_tokens() as f64),
        prompt_tokens: mean(&|p| p.prompt_tokens as f64),
    };
    RsaRound { summary, problems }
}

#[cfg(test)]
mod tests {
    use spiral_rewards::{MathProblem, MathReward};

    use super::*;
    use crate::prompt::AggregationConfig;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn gens(texts: &[&str]) -> Vec<Generation> {
        texts.iter().map(|t| Generation { text: (*t).into(), tokens: words(t) }).collect()
    }

    /// The answers boxed in a prompt, in order.
    fn boxed_in(prompt: &str) -> Vec<String> {
        prompt
            .split("\\boxed{")
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .map(str::to_owned)
            .collect()
    }

    /// A mock aggregator that answers with the majority of the candidates it is shown (ties: the
    /// first shown), so a population with a correct plurality converges to it.
    fn majority_mock(prompts: &[AggregationPrompt]) -> Result<Vec<Generation>, BoxError> {
        Ok(prompts
            .iter()
            .map(|p| {
                let answers = boxed_in(&p.text);
                // The template's own `\boxed{}` is the last match: drop it.
                let answers = &answers[..answers.len() - 1];
                let votes = |a: &String| answers.iter().filter(|b| *b == a).count();
                let most = answers.iter().map(votes).max().unwrap();
                let best = answers.iter().find(|a| votes(a) == most).unwrap();
                Generation { text: format!("So \\boxed{{{best}}}"), tokens: 2 }
            })
            .collect())
    }

    #[test]
    fn majority_mock_converges_and_metrics_follow() {
        let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
        // K = N: every prompt shows the whole population, so each round's outcome is certain.
        let config = RsaConfig { rounds: 2, k: 4, ..RsaConfig::default() };
        let driver = RsaDriver::new(config, &builder, &words).unwrap();
        let p1 = MathProblem::new("q1", "7");
        let p2 = MathProblem::new("q2", "1/2");
        let pop1 = gens(&["\\boxed{7}", "\\boxed{3}", "no answer", "\\boxed{7}"]);
        let pop2 = gens(&["\\boxed{0.5}", "\\boxed{2}", "\\boxed{2}", "\\boxed{2}"]);
        let inputs = [
            RsaInput { question: "q1", problem: &p1, population: pop1 },
            RsaInput { question: "q2", problem: &p2, population: pop2 },
        ];
        let mut calls = Vec::new();
        let mut model = |prompts: &[AggregationPrompt]| {
            calls.push(prompts.len());
            majority_mock(prompts)
        };
        let run = driver.run(&inputs, &MathReward::default(), &mut model).unwrap();
        // One batched call per round, one prompt per member of every population.
        assert_eq!(calls, vec![8, 8]);
        let s = run.summaries();
        assert_eq!(s.len(), 3);
        // Round 0 by hand: q1 pass@1 2/4, vote 7 (correct), best 1; q2 pass@1 1/4, vote 2
        // (wrong), best 1.
        assert_eq!((s[0].pass_at_1, s[0].majority, s[0].pass_at_n), (0.375, 0.5, 1.0));
        assert_eq!((s[0].generated_tokens, s[0].prompt_tokens), (4.5, 0.0));
        // Then q1 is all 7 and q2 all 2: the correct 0.5 is lost, and pass@N drops with it.
        for r in &s[1..] {
            assert_eq!((r.pass_at_1, r.majority, r.pass_at_n), (0.5, 0.5, 0.5));
            assert!(r.prompt_tokens > 0.0 && r.generated_tokens == 8.0);
        }
        let q1 = &run.rounds[2].problems[0];
        assert!(q1.members.iter().all(|m| m.answer.as_deref() == Some("7") && m.reward == 1.0));
        assert_eq!(run.rounds[1].problems[1].vote_reward(), 0.0);
    }

    #[test]
    fn runs_are_reproducible_and_seeded() {
        let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
        let p = MathProblem::new("q", "1");
        let population =
            gens(&["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "\\boxed{1}", "\\boxed{2}"]);
        let run = |seed, sampling| {
            let config = RsaConfig { rounds: 2, k: 2, sampling, seed };
            let driver = RsaDriver::new(config, &builder, &words).unwrap();
            let inputs = [RsaInput { question: "q", problem: &p, population: population.clone() }];
            let mut texts = Vec::new();
            let mut echo = |prompts: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> {
                texts.extend(prompts.iter().map(|p| p.text.clone()));
                majority_mock(prompts)
            };
            driver.run(&inputs, &MathReward::default(), &mut echo).unwrap();
            texts
        };
        for sampling in [SetSampling::Independent, SetSampling::Balanced] {
            assert_eq!(run(1, sampling), run(1, sampling));
            assert_ne!(run(1, sampling), run(2, sampling));
        }
    }

    #[test]
    fn aggregator_failures_and_bad_inputs_are_errors() {
        let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
        let p = MathProblem::new("q", "1");
        let inputs = [RsaInput { question: "q", problem: &p, population: gens(&["a", "b"]) }];
        let reward = MathReward::default();
        let driver =
            RsaDriver::new(RsaConfig { rounds: 1, k: 2, ..RsaConfig::default() }, &builder, &words)
                .unwrap();
        let mut failing = |_: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> {
            Err("out of memory".into())
        };
        let err = driver.run(&inputs, &reward, &mut failing).unwrap_err();
        assert_eq!(err.to_string(), "aggregator failed: out of memory");
        let mut short =
            |_: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> { Ok(gens(&["x"])) };
        let err = driver.run(&inputs, &reward, &mut short).unwrap_err();
        assert_eq!(err.to_string(), "aggregator returned 1 responses for 2 prompts");
        let driver =
            RsaDriver::new(RsaConfig { k: 3, ..RsaConfig::default() }, &builder, &words).unwrap();
        let err = driver.run(&inputs, &reward, &mut short).unwrap_err();
        assert!(err.to_string().contains("problem 0 has 2 traces, fewer than k = 3"), "{err}");
        assert!(
            RsaDriver::new(RsaConfig { k: 0, ..RsaConfig::default() }, &builder, &words).is_err()
        );
    }

    #[test]
    fn zero_rounds_scores_the_initial_population() {
        let builder = PromptBuilder::new(AggregationConfig::default()).unwrap();
        let p = MathProblem::new("q", "1");
        let inputs =
            [RsaInput { question: "q", problem: &p, population: gens(&["\\boxed{1}", "no"]) }];
        let driver =
            RsaDriver::new(RsaConfig { rounds: 0, k: 1, ..RsaConfig::default() }, &builder, &words)
                .unwrap();
        let run = driver.run(&inputs, &MathReward::default(), &mut majority_mock).unwrap();
        assert_eq!(run.rounds.len(), 1);
        assert_eq!(run.rounds[0].problems[0].vote, Some(0));
        assert_eq!(run.summaries()[0].pass_at_1, 0.5);
    }
}
