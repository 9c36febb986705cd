//! Fuzzes every reward (both percent modes of the math reward, so every extraction path: boxes
//! and runs of boxes, answer markers, math spans and numbers in prose) and the answer comparison
//! with arbitrary bytes: nothing may panic, hang
//! (run with `-timeout=5`) or return a reward outside [0, 1].
//!
//! The input is split at its first `0xFF` byte (never valid UTF-8) into a response and a
//! reference answer, so the fuzzer controls both sides of the comparison.

#![no_main]

use libfuzzer_sys::fuzz_target;
use spiral_rewards::{
    ArithProblem, ArithReward, CombinationProblem, CombinationReward, Congruence, CountdownProblem,
    CountdownReward, MathProblem, MathReward, PercentMode, Reward, extract_answer, math_equal,
    math_equal_with,
};

fuzz_target!(|data: &[u8]| {
    let (response, reference) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"42"[..]),
    };
    let response = String::from_utf8_lossy(response);
    let reference = String::from_utf8_lossy(reference);

    let combination = CombinationProblem::new(
        10,
        vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 7, b: 1, c: 2 }],
    );
    let scores = [
        MathReward::default().score(&MathProblem::new("", reference.as_ref()), &response),
        MathReward { percent: PercentMode::Strict, ..MathReward::default() }
            .score(&MathProblem::new("", reference.as_ref()), &response),
        CountdownReward::default().score(&CountdownProblem::new(vec![75, 25, 2, 8], 108), &response),
        ArithReward::default().score(&ArithProblem { expression: "1+1".into(), answer: 2 }, &response),
        CombinationReward::default().score(&combination, &response),
    ];
    assert!(combination.correct_parts(&response) <= combination.parts.len());
    for s in &scores {
        assert!((0.0..=1.0).contains(&s.reward));
        assert_eq!(s.reward == 1.0, s.failure.is_none());
    }
    let _ = extract_answer(&response);
    let _ = math_equal(&response, &reference);
    let _ = math_equal(&reference, &response);
    let _ = math_equal_with(&response, &reference, PercentMode::Strict);
    // Reflexivity: an answer that normalises to something equals itself.
    if !spiral_rewards::normalize_answer(&reference).is_empty() {
        assert!(math_equal(&reference, &reference));
    }
});
