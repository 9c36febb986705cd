//! Collection split into shares of a step's problems draws what one collection of them all
//! would, whichever ranks collect which problems, since every draw is keyed by a problem's index
//! in the step ([`spiral_train::Draws`]). The engine's own test holds a split request's samples
//! to the whole request's token for token.

use burn::backend::Flex;
use spiral_model::{CausalLm, ModelConfig};
use spiral_train::{Draws, RunConfig, TaskData, collect};

#[test]
fn shares_of_a_step_collect_what_the_whole_step_does() {
    for algorithm in ["spiral", "grpo"] {
        let overrides: Vec<String> = [
            &format!("algorithm.name={algorithm}"),
            "task.train_problems=20",
            "algorithm.n1=4",
            "algorithm.n=2",
            "algorithm.k=2",
            "algorithm.n2=2",
            "rollout.max_new_tokens=12",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let config = RunConfig::default_with(&overrides).unwrap();
        let data = TaskData::new(&config.task, None, 0).unwrap();
        let vocab = data.tokenizer.vocab_size();
        // Large weights, so that traces vary in length and content.
        let model = CausalLm::<Flex>::random(
            ModelConfig::small(vocab, 16, 1, 2),
            1,
            0.5,
            &Default::default(),
        )
        .unwrap();
        let problems: Vec<_> = data.train[..5].iter().collect();
        let run = |range: std::ops::Range<usize>, rollout: u64| {
            let draws = Draws { rollout, sets: 12, first_problem: range.start };
            collect(&model, None, &data, &problems[range], &config, draws).unwrap()
        };
        let whole = run(0..5, 11);
        let shares = [run(0..2, 11), run(2..3, 11), run(3..5, 11)];
        // A random model earns no reward, so nothing is trained: the traces' lengths are what
        // tell the draws apart (each trace ends at its first end-of-sequence token).
        let tokens: usize = shares.iter().map(|c| c.generated_tokens).sum();
        assert_eq!(whole.generated_tokens, tokens, "{algorithm}: the shares sampled other traces");
        let traces = 5 * if algorithm == "spiral" { 4 + 2 * 2 } else { 4 };
        assert!(whole.generated_tokens < traces * 12, "{algorithm}: no trace ended early");
        assert_ne!(whole.generated_tokens, run(0..5, 99).generated_tokens, "{algorithm}");
    }
}
