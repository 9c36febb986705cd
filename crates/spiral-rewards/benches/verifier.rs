//! Verifier throughput on typical 2 KB chain-of-thought responses, in responses per second
//! (target: >= 100k/s on one core). Run with `cargo bench -p spiral-rewards`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spiral_rewards::{
    CountdownProblem, CountdownReward, MathProblem, MathReward, Reward, math_equal,
};

/// About 2 KB of reasoning ending in `\boxed{answer}`.
fn response(answer: &str) -> String {
    let step = "We have $a_{n+1} = \\frac{a_n}{2} + 3$, so substituting $n = 4$ gives \
                $a_5 = \\frac{12}{2} + 3 = 9$. Checking the parity again, the sum is even. ";
    let mut text = String::new();
    while text.len() < 2000 {
        text.push_str(step);
    }
    text.push_str(&format!("Therefore the answer is $\\boxed{{{answer}}}$."));
    text
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("verifier");
    group.throughput(Throughput::Elements(1));
    let reward = MathReward::default();
    let cases = [
        ("math_same_text", "\\frac{3}{4}", "\\frac{3}{4}"),
        ("math_fraction_vs_decimal", "\\dfrac{3}{4}", "0.75"),
        ("math_wrong_number", "17", "18"),
        ("math_symbolic", "(x+1)^2", "x^2+2x+1"),
        ("math_interval", "\\left[ -1, \\frac{1}{2} \\right)", "[-1, 0.5)"),
    ];
    for (name, answer, gold) in cases {
        let problem = MathProblem::new("q", gold);
        let text = response(answer);
        assert!(text.len() >= 2000);
        group.bench_function(name, |b| {
            b.iter(|| reward.score(black_box(&problem), black_box(&text)))
        });
    }
    let countdown = CountdownProblem::new(vec![75, 25, 2, 8], 108);
    let text = response("(75-25)*2+8");
    group.bench_function("countdown", |b| {
        b.iter(|| CountdownReward::default().score(black_box(&countdown), black_box(&text)))
    });
    group.bench_function("math_equal_only", |b| {
        b.iter(|| math_equal(black_box("\\frac{1}{3}"), black_box("0.3333")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
