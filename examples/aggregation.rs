//! `spiral-aggregation` without a model: SPIRAL's set drawing and aggregation prompts under a
//! token budget, majority vote, and three RSA rounds with a mock aggregator.
//!
//! `cargo run --release -p spiral-examples --example aggregation`

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use spiral_aggregation::{
    AggregationConfig, AggregationPrompt, BoxError, BudgetPolicy, Generation, PromptBuilder,
    RsaConfig, RsaDriver, RsaInput, draw_distinct_sets, majority_vote,
};
use spiral_rewards::{MathProblem, MathReward, extract_answer};

fn main() -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(0);
    // Any `Fn(&str) -> usize` counts tokens; a real run passes its tokenizer.
    let count = |s: &str| s.split_whitespace().count();

    // SPIRAL's training setting: N1 = 8 search traces, K = 4 distinct sets of n = 4.
    let question = "What is 17 * 3?";
    let traces: Vec<String> = (0..8)
        .map(|i| {
            let answer = if i % 3 == 0 { 41 } else { 51 };
            let steps = "Multiply the tens, then the units, then add. ".repeat(i + 1);
            format!("{steps}So 17 * 3 = \\boxed{{{answer}}}.")
        })
        .collect();
    let sets = draw_distinct_sets(traces.len(), 4, 4, &mut rng)?;
    println!("sets: {sets:?}");

    // Prompts capped at 200 words: long traces keep their final part, where the answer is.
    let config = AggregationConfig {
        max_prompt_tokens: Some(200),
        budget_policy: BudgetPolicy::KeepFinalPart,
        ..AggregationConfig::default()
    };
    let builder = PromptBuilder::new(config)?;
    for set in &sets {
        let candidates: Vec<&str> = set.iter().map(|&i| traces[i].as_str()).collect();
        let prompt = builder.build(question, &candidates, &count, &mut rng)?;
        // `order` and `truncated` index the candidates given; map them back to trace numbers.
        let shown: Vec<usize> = prompt.order.iter().map(|&j| set[j]).collect();
        let cut: Vec<usize> = prompt.truncated.iter().map(|&j| set[j]).collect();
        println!("prompt of {} words: traces {shown:?} in that order, {cut:?} cut", prompt.tokens);
    }
    let first: Vec<&str> = sets[0].iter().map(|&i| traces[i].as_str()).collect();
    println!("\n{}\n", builder.build(question, &first, &count, &mut rng)?.text);

    // Majority vote over all eight traces' answers.
    let answers: Vec<Option<&str>> = traces.iter().map(|t| extract_answer(t)).collect();
    let vote = majority_vote(&answers, &mut rng).expect("every trace has an answer");
    println!("majority: {:?} with {} of {} votes", answers[vote.winner], vote.votes, vote.voters);

    // RSA: 16 traces per problem, sets of K = 4, three rounds. The mock aggregator copies the
    // most common answer among the candidates it is shown 90% of the time, else answers wrongly.
    let problems: Vec<MathProblem> = (1..=5)
        .map(|i| MathProblem::new(format!("What is {i} * 7?"), (i * 7).to_string()))
        .collect();
    let inputs: Vec<RsaInput<'_, MathProblem>> = problems
        .iter()
        .map(|p| {
            let right: usize = p.answer.parse().unwrap();
            let population = (0..16)
                .map(|_| {
                    let answer =
                        if rng.random_bool(0.45) { right } else { right + rng.random_range(1..4) };
                    Generation { text: format!("... \\boxed{{{answer}}}"), tokens: 40 }
                })
                .collect();
            RsaInput { question: &p.question, problem: p, population }
        })
        .collect();
    let mut model_rng = StdRng::seed_from_u64(1);
    let mut mock = |prompts: &[AggregationPrompt]| -> Result<Vec<Generation>, BoxError> {
        Ok(prompts.iter().map(|p| mock_aggregate(p, &mut model_rng)).collect())
    };
    let builder = PromptBuilder::new(AggregationConfig::default())?;
    let driver =
        RsaDriver::new(RsaConfig { rounds: 3, k: 4, ..RsaConfig::default() }, &builder, &count)?;
    let run = driver.run(&inputs, &MathReward::default(), &mut mock)?;
    println!("\nround  pass@1  maj@N  pass@N  tokens per problem (prompts + generations)");
    for s in run.summaries() {
        println!(
            "{:>5}  {:.3}   {:.3}  {:.3}   {:.0}",
            s.round,
            s.pass_at_1,
            s.majority,
            s.pass_at_n,
            s.generated_tokens + s.prompt_tokens
        );
    }
    Ok(())
}

/// The plurality answer among a prompt's candidates with probability 0.9, else a wrong one.
fn mock_aggregate(prompt: &AggregationPrompt, rng: &mut StdRng) -> Generation {
    let shown: Vec<&str> =
        prompt.text.split("\\boxed{").skip(1).filter_map(|s| s.split('}').next()).collect();
    // The template's own `\boxed{}` comes last.
    let candidates = &shown[..shown.len() - 1];
    let votes = |a: &str| candidates.iter().filter(|&&b| b == a).count();
    let best = candidates.iter().copied().max_by_key(|a| votes(a)).unwrap_or("0");
    let answer = if rng.random_bool(0.9) { best.to_owned() } else { format!("{best}9") };
    Generation { text: format!("Checking the candidates: \\boxed{{{answer}}}"), tokens: 30 }
}
