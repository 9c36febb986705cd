//! The learner on a tiny from-scratch model: supervised steps fit the data, policy steps move
//! log-probs in the direction of the advantage, and micro-batching does not change the step.

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use spiral_model::{CausalLm, ModelConfig};
use spiral_set_rl::PolicyLossConfig;
use spiral_train::{Learner, OptimConfig, TrainSequence};

type B = Autodiff<Flex>;

fn model() -> CausalLm<B> {
    CausalLm::random(ModelConfig::small(32, 32, 2, 4), 3, 0.05, &Default::default()).unwrap()
}

fn seq(tokens: &[u32], prompt_len: usize, advantage: f64) -> TrainSequence {
    TrainSequence {
        tokens: tokens.to_vec(),
        prompt_len,
        advantage,
        old_logprobs: None,
        ref_logprobs: None,
        rollout_logprobs: None,
        weight: 1.0,
    }
}

fn batch() -> Vec<TrainSequence> {
    vec![
        seq(&[1, 2, 3, 4, 5, 6], 2, 1.0),
        seq(&[1, 7, 8, 9], 1, -1.0),
        seq(&[3, 3, 10, 11, 12], 3, 0.5),
    ]
}

/// Sum of completion log-probs of each sequence under the learner's current model.
fn completion_logprob(learner: &Learner<B>, s: &TrainSequence) -> f64 {
    let scores = learner
        .inference_model()
        .token_logprobs(std::slice::from_ref(&s.tokens), &[s.prompt_len], false)
        .unwrap();
    scores
        .logprobs
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap()
        .iter()
        .map(|&x| x as f64)
        .sum()
}

fn optim(lr: f64) -> OptimConfig {
    OptimConfig { lr, total_steps: 1000, max_grad_norm: None, ..Default::default() }
}

#[test]
fn supervised_steps_fit_the_data() {
    let mut learner = Learner::new(model(), optim(1e-2));
    let first = learner.sft_step(&batch()).unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = learner.sft_step(&batch()).unwrap();
    }
    assert_eq!(first.tokens, 4 + 3 + 2);
    assert!(last.loss < first.loss * 0.3, "loss {} -> {}", first.loss, last.loss);
    assert_eq!(learner.steps(), 31);
}

#[test]
fn policy_steps_follow_the_advantage() {
    let mut learner = Learner::new(model(), optim(3e-3));
    let b = batch();
    let before: Vec<f64> = b.iter().map(|s| completion_logprob(&learner, s)).collect();
    for _ in 0..3 {
        learner.policy_step(&b, &PolicyLossConfig::default()).unwrap();
    }
    let after: Vec<f64> = b.iter().map(|s| completion_logprob(&learner, s)).collect();
    assert!(after[0] > before[0], "positive advantage raises log-prob");
    assert!(after[1] < before[1], "negative advantage lowers log-prob");
}

#[test]
fn micro_batches_give_the_same_step() {
    let b = batch();
    for config in [None, Some(PolicyLossConfig::default())] {
        let mut whole = Learner::new(model(), optim(1e-2));
        let mut micro = Learner::new(model(), optim(1e-2)).with_micro_batch(1);
        let (a, m) = match &config {
            None => (whole.sft_step(&b).unwrap(), micro.sft_step(&b).unwrap()),
            Some(c) => (whole.policy_step(&b, c).unwrap(), micro.policy_step(&b, c).unwrap()),
        };
        assert!((a.loss - m.loss).abs() < 1e-5, "{} vs {}", a.loss, m.loss);
        assert!((a.grad_norm - m.grad_norm).abs() < 1e-4 * a.grad_norm.max(1.0));
        for s in &b {
            assert!((completion_logprob(&whole, s) - completion_logprob(&micro, s)).abs() < 1e-4);
        }
    }
}

/// Shards run on forked models with their own autodiff graphs; their gradients must add up to
/// the whole micro-batch's (same loss, same gradient norm, same updated weights).
#[test]
fn shards_give_the_same_step() {
    let b = batch();
    for config in [None, Some(PolicyLossConfig::default())] {
        for shards in [2, 3] {
            let mut serial = Learner::new(model(), optim(1e-2)).with_shards(1);
            let mut sharded = Learner::new(model(), optim(1e-2)).with_shards(shards);
            let (a, s) = match &config {
                None => (serial.sft_step(&b).unwrap(), sharded.sft_step(&b).unwrap()),
                Some(c) => {
                    (serial.policy_step(&b, c).unwrap(), sharded.policy_step(&b, c).unwrap())
                }
            };
            assert!((a.loss - s.loss).abs() < 1e-5, "{shards} shards: {} vs {}", a.loss, s.loss);
            assert!((a.grad_norm - s.grad_norm).abs() < 1e-4 * a.grad_norm.max(1.0));
            assert!((a.entropy - s.entropy).abs() < 1e-5);
            for seq in &b {
                let (x, y) = (completion_logprob(&serial, seq), completion_logprob(&sharded, seq));
                assert!((x - y).abs() < 1e-4, "{shards} shards: {x} vs {y}");
            }
        }
    }
}

/// Activation checkpointing re-runs each layer from its saved input in the backward pass; the
/// gradients must add up to those of the ordinary pass: same loss, gradient norm and updated
/// weights, for supervised and policy steps, tied and untied heads, full weights and LoRA.
#[test]
fn activation_checkpointing_gives_the_same_step() {
    let untied = || {
        let config = ModelConfig { tie_word_embeddings: false, ..ModelConfig::small(32, 32, 2, 4) };
        CausalLm::random(config, 5, 0.05, &Default::default()).unwrap()
    };
    let lora = || {
        let config = spiral_model::LoraConfig { rank: 4, alpha: 16.0, ..Default::default() };
        model().with_lora(&config, 1).unwrap()
    };
    let b = batch();
    for (what, make) in
        [("tied", &model as &dyn Fn() -> CausalLm<B>), ("untied", &untied), ("lora", &lora)]
    {
        for config in [None, Some(PolicyLossConfig::default())] {
            let mut plain = Learner::new(make(), optim(1e-2)).with_shards(1);
            let mut checkpointed = Learner::new(make(), optim(1e-2))
                .with_shards(1)
                .with_activation_checkpointing(true);
            for _ in 0..2 {
                let (a, c) = match &config {
                    None => (plain.sft_step(&b).unwrap(), checkpointed.sft_step(&b).unwrap()),
                    Some(l) => (
                        plain.policy_step(&b, l).unwrap(),
                        checkpointed.policy_step(&b, l).unwrap(),
                    ),
                };
                assert!((a.loss - c.loss).abs() < 1e-5, "{what}: {} vs {}", a.loss, c.loss);
                let worst = 1e-4 * a.grad_norm.max(1.0);
                assert!((a.grad_norm - c.grad_norm).abs() < worst, "{what}: {a:?} vs {c:?}");
            }
            for seq in &b {
                let (x, y) =
                    (completion_logprob(&plain, seq), completion_logprob(&checkpointed, seq));
                assert!((x - y).abs() < 1e-4, "{what}: {x} vs {y}");
            }
        }
    }
}

/// An aggregation-length sequence (4 traces of 512 tokens after the problem, then the answer
/// trace): the attention works block by block, and the checkpointed step equals the ordinary one.
#[test]
fn activation_checkpointing_gives_the_same_step_on_an_aggregation_length_sequence() {
    let long = || {
        let config =
            ModelConfig { max_position_embeddings: 4096, ..ModelConfig::small(32, 32, 2, 4) };
        CausalLm::random(config, 9, 0.05, &Default::default()).unwrap()
    };
    let tokens: Vec<u32> = (0..2_600u32).map(|i| (i * 7 + i / 13) % 32).collect();
    let b = vec![seq(&tokens, 2_100, 1.0)];
    let mut plain = Learner::new(long(), optim(1e-2));
    let mut checkpointed = Learner::new(long(), optim(1e-2)).with_activation_checkpointing(true);
    let loss = PolicyLossConfig::default();
    let (a, c) =
        (plain.policy_step(&b, &loss).unwrap(), checkpointed.policy_step(&b, &loss).unwrap());
    assert!((a.loss - c.loss).abs() < 1e-5, "{} vs {}", a.loss, c.loss);
    assert!((a.grad_norm - c.grad_norm).abs() < 1e-4 * a.grad_norm.max(1.0), "{a:?} vs {c:?}");
    let (x, y) = (completion_logprob(&plain, &b[0]), completion_logprob(&checkpointed, &b[0]));
    assert!((x - y).abs() < 1e-3 * x.abs().max(1.0), "{x} vs {y}");
}

/// Re-running a layer would draw other dropout masks, so the combination is refused by name.
#[test]
fn activation_checkpointing_refuses_lora_dropout() {
    let config =
        spiral_model::LoraConfig { rank: 4, alpha: 16.0, dropout: 0.1, ..Default::default() };
    let mut learner = Learner::new(model().with_lora(&config, 1).unwrap(), optim(1e-2))
        .with_activation_checkpointing(true);
    let error = learner.sft_step(&batch()).unwrap_err().to_string();
    assert!(error.contains("activation checkpointing") && error.contains("dropout"), "{error}");
}

#[test]
fn off_policy_ratios_come_from_old_logprobs() {
    let mut learner = Learner::new(model(), optim(1e-2));
    let mut b = batch();
    // Old log-probs far below the current ones: ratios are large and get clipped.
    for s in &mut b {
        s.old_logprobs = Some(vec![-20.0; s.tokens.len() - s.prompt_len]);
    }
    let stats = learner.policy_step(&b, &PolicyLossConfig::default()).unwrap();
    assert!(stats.clip_fraction > 0.5, "{stats:?}");
    b[0].old_logprobs = Some(vec![0.0]);
    assert!(
        learner
            .policy_step(&b, &PolicyLossConfig::default())
            .unwrap_err()
            .to_string()
            .contains("old log-probs")
    );
}

/// Policy-gradient learning end to end on a toy reward (the share of token 3 in a 6-token
/// completion): rollouts from the engine with their recorded log-probs, GRPO advantages,
/// clipped policy steps. The reward must rise well above the random policy's.
#[test]
fn rl_raises_a_toy_reward() {
    let learner = Learner::new(model(), optim(3e-3)).with_micro_batch(16);
    let (before, after, _) = toy_rl(learner, 25);
    assert!(before < 0.15, "a random policy over 32 tokens rarely writes token 3: {before}");
    assert!(after > before + 0.3, "reward {before:.3} -> {after:.3}");
}

#[test]
fn rl_with_lora_raises_a_toy_reward_and_leaves_the_base_alone() {
    let config = spiral_model::LoraConfig { rank: 4, alpha: 16.0, ..Default::default() };
    // Adapters move the residual stream only; the frozen lm_head must be large enough for that
    // to reach a confident token-3 logit (at std 0.05 the largest reachable logit is ~1.6).
    let base =
        CausalLm::random(ModelConfig::small(32, 32, 2, 4), 3, 0.3, &Default::default()).unwrap();
    let frozen = |m: &spiral_model::CausalLm<B>| {
        let q = &m.layers[0].self_attn.q_proj.weight;
        (m.embed_tokens.val().into_data(), q.val().into_data())
    };
    let before_weights = frozen(&base);
    let learner =
        Learner::new(base.with_lora(&config, 1).unwrap(), optim(1e-2)).with_micro_batch(16);
    let (before, after, learner) = toy_rl(learner, 60);
    assert!(after > before + 0.3, "reward {before:.3} -> {after:.3}");
    assert_eq!(frozen(learner.model()), before_weights, "a frozen base weight changed");
}

/// `steps` GRPO steps towards writing token 3 from engine rollouts with their recorded log-probs;
/// the mean reward before and after, and the learner.
fn toy_rl(mut learner: Learner<B>, steps: u64) -> (f64, f64, Learner<B>) {
    use spiral_rollout::{RolloutEngine, RolloutRequest, SamplingParams, StopConditions};

    let engine = RolloutEngine::default();
    let reward = |tokens: &[u32]| tokens.iter().filter(|&&t| t == 3).count() as f64 / 6.0;
    let sample = |learner: &Learner<B>, seed: u64, n: usize| {
        let request = RolloutRequest {
            prompts: vec![vec![1], vec![2]],
            n,
            sampling: SamplingParams { temperature: 1.0, seed, ..Default::default() },
            stop: StopConditions { eos_token_ids: vec![], stop_strings: vec![], max_new_tokens: 6 },
            max_total_tokens: None,
        };
        engine.generate(&learner.inference_model(), None, &request).unwrap().samples
    };
    let mean_reward = |learner: &Learner<B>| {
        let samples = sample(learner, 999, 64);
        samples.iter().map(|s| reward(&s.tokens)).sum::<f64>() / samples.len() as f64
    };
    let before = mean_reward(&learner);
    for step in 0..steps {
        let samples = sample(&learner, step, 8);
        let mut batch = Vec::new();
        for (p, group) in samples.chunks(8).enumerate() {
            let rewards: Vec<f64> = group.iter().map(|s| reward(&s.tokens)).collect();
            let advantages = spiral_set_rl::grpo_advantages(&rewards).unwrap();
            for (s, a) in group.iter().zip(advantages) {
                batch.push(TrainSequence {
                    tokens: [vec![p as u32 + 1], s.tokens.clone()].concat(),
                    prompt_len: 1,
                    advantage: a,
                    old_logprobs: Some(s.logprobs.clone()),
                    ref_logprobs: None,
                    rollout_logprobs: None,
                    weight: 1.0,
                });
            }
        }
        learner.policy_step(&batch, &PolicyLossConfig::default()).unwrap();
    }
    let after = mean_reward(&learner);
    (before, after, learner)
}

#[test]
fn a_kl_penalty_needs_reference_logprobs_of_the_right_length() {
    let loss = PolicyLossConfig { kl_beta: 0.1, ..Default::default() };
    let mut learner = Learner::new(model(), optim(1e-2));
    let err = learner.policy_step(&batch(), &loss).unwrap_err().to_string();
    assert!(err.contains("ref_logprobs"), "{err}");
    let mut wrong = batch();
    for s in &mut wrong {
        s.ref_logprobs = Some(vec![-1.0; 2]);
    }
    let err = learner.policy_step(&wrong, &loss).unwrap_err().to_string();
    assert!(err.contains("sequence 0: 2 reference log-probs for 4 completion tokens"), "{err}");
    // With the policy itself as the reference the penalty starts at zero.
    let mut same = batch();
    for s in &mut same {
        let scores = learner
            .inference_model()
            .token_logprobs(std::slice::from_ref(&s.tokens), &[s.prompt_len], false)
            .unwrap();
        let row: Vec<f32> = scores.logprobs.into_data().convert::<f32>().into_vec().unwrap();
        s.ref_logprobs = Some(row[s.prompt_len - 1..].to_vec());
    }
    let stats = learner.policy_step(&same, &loss).unwrap();
    assert!(stats.ref_kl.abs() < 1e-6, "{}", stats.ref_kl);
}

/// The learner's completion log-probs of `s` at `temperature`, from the model itself.
fn tempered_logprobs(learner: &Learner<B>, s: &TrainSequence, temperature: f64) -> Vec<f32> {
    let model = learner.model().valid();
    let scores = model
        .token_logprobs_tempered(
            std::slice::from_ref(&s.tokens),
            &[s.prompt_len],
            false,
            temperature,
        )
        .unwrap();
    scores.logprobs.into_data().convert::<f32>().into_vec::<f32>().unwrap()[s.prompt_len - 1..]
        .to_vec()
}

/// Re-scoring the old policy makes the learner's tempered log-probs the old ones and keeps the
/// rollout's; the step then measures their mismatch as the k3 mean and the largest ratio.
#[test]
fn recomputed_old_logprobs_and_the_mismatch_they_measure() {
    let temperature = 0.7;
    let learner = Learner::new(model(), optim(1e-3)).with_temperature(temperature);
    // Rollout log-probs off the learner's by known amounts.
    let offsets = [0.05f32, -0.2, 0.3, -0.1];
    let mut batch = batch();
    let mut expected = (0.0f64, 0.0f64, 0.0f64);
    for s in &mut batch {
        let own = tempered_logprobs(&learner, s, temperature);
        let rollout: Vec<f32> =
            own.iter().enumerate().map(|(j, lp)| lp + offsets[j % offsets.len()]).collect();
        for (a, b) in own.iter().zip(&rollout) {
            let x = (a - b) as f64;
            expected.0 += x.exp() - x - 1.0;
            expected.1 += 1.0;
            expected.2 = expected.2.max(x.abs());
        }
        s.old_logprobs = Some(rollout);
    }
    let rollout: Vec<_> = batch.iter().map(|s| s.old_logprobs.clone()).collect();
    let mut learner = learner;
    learner.recompute_old_logprobs(&mut batch).unwrap();
    for (s, rollout) in batch.iter().zip(&rollout) {
        assert_eq!(s.rollout_logprobs, *rollout);
        let own = tempered_logprobs(&learner, s, temperature);
        for (a, b) in s.old_logprobs.as_ref().unwrap().iter().zip(&own) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
    let stats = learner.policy_step(&batch, &PolicyLossConfig::default()).unwrap();
    let kl = stats.rollout_mismatch_kl.unwrap();
    assert!((kl - expected.0 / expected.1).abs() < 1e-5, "{kl} vs {}", expected.0 / expected.1);
    let max = stats.rollout_mismatch_max_ratio.unwrap();
    assert!((max - expected.2.exp()).abs() < 1e-4, "{max} vs {}", expected.2.exp());
    // On-policy with the learner's own old log-probs: the PPO ratio starts at 1.
    assert!(stats.approx_kl.abs() < 1e-9, "{}", stats.approx_kl);
}

/// At a temperature, policy steps train the tempered policy: a step's approx KL against old
/// log-probs equal to the tempered ones is 0, and against the plain ones it is not.
#[test]
fn policy_steps_train_the_tempered_policy() {
    let temperature = 0.5;
    for (old_temperature, on_policy) in [(temperature, true), (1.0, false)] {
        let mut learner = Learner::new(model(), optim(1e-3)).with_temperature(temperature);
        let mut batch = batch();
        for s in &mut batch {
            s.old_logprobs = Some(tempered_logprobs(&learner, s, old_temperature));
        }
        let stats = learner.policy_step(&batch, &PolicyLossConfig::default()).unwrap();
        assert_eq!(stats.approx_kl.abs() < 1e-9, on_policy, "{stats:?}");
    }
}
