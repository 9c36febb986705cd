//! Score answers with `spiral-rewards`: compare math answers, generate Countdown and arithmetic
//! problems with their warm-start traces, and score a small JSONL batch as `spiral-eval score`
//! does.
//!
//! `cargo run --release -p spiral-examples --example score_answers`

use spiral_rewards::{
    ArithConfig, ArithReward, CountdownConfig, CountdownReward, MathProblem, MathReward,
    PromptStyle, Reward, ScoreOptions, Task, math_equal, score_jsonl,
};

fn main() -> anyhow::Result<()> {
    println!("== math answers ==");
    for (prediction, reference) in [
        ("\\dfrac{1}{2}", "0.5"),
        ("(x+1)^2", "x^2+2x+1"),
        ("x = 5", "5"),
        ("\\text{(B)}", "B"),
        ("[1, 2)", "(1, 2)"),
        ("12345678901234567891", "12345678901234567890"),
    ] {
        println!("{prediction:>24}  vs  {reference:<22} -> {}", math_equal(prediction, reference));
    }
    let problem = MathProblem::new("Expand (x+1)^2.", "x^2+2x+1");
    let scored =
        MathReward::default().score(&problem, "We expand... so the answer is \\boxed{(x+1)^2}.");
    println!("reward {} for extracted {:?}", scored.reward, scored.extracted);

    println!("\n== countdown (seed 0) ==");
    for p in CountdownConfig::default().generate(2, 0)? {
        let trace = p.solution_trace().expect("generated problems are solvable");
        let reward = CountdownReward::default().score(&p, &trace).reward;
        println!("{}\n{trace}\n-> reward {reward}\n", p.prompt(PromptStyle::Compact));
    }
    let p = &CountdownConfig::default().generate(1, 0)?[0];
    let wrong = CountdownReward::default().score(p, "\\boxed{1+1}");
    println!("a wrong answer fails because: {}", wrong.failure.expect("wrong answer"));

    println!("\n== arithmetic (seed 0) ==");
    for p in ArithConfig::default().generate(2, 0)? {
        let trace = p.solution_trace().expect("generated problems evaluate");
        let reward = ArithReward::default().score(&p, &trace).reward;
        println!("{}\n{trace}\n-> reward {reward}\n", p.prompt(PromptStyle::Compact));
    }

    println!("== a JSONL batch, as `spiral-eval score --task math` ==");
    let batch = concat!(
        r#"{"response": "... so \\boxed{\\frac{3}{4}}", "answer": "0.75"}"#,
        "\n",
        r#"{"response": "The answer is 7.", "answer": "8"}"#,
        "\n",
        r#"{"response": "I am not sure.", "answer": "1"}"#,
        "\n"
    );
    let mut out = Vec::new();
    let summary = score_jsonl(batch.as_bytes(), "batch", &ScoreOptions::new(Task::Math), &mut out)?;
    print!("{}", String::from_utf8(out)?);
    println!("{summary}");
    Ok(())
}
