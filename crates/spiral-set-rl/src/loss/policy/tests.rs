//! Tests of the policy loss against direct implementations of its formulas.

use burn::backend::{Autodiff, Flex};
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::loss::correction::CorrectionKind;
use crate::loss::reference::{Batch, configs, input, random_batch, reference, t1, t2};

type Ad = Autodiff<Flex>;

fn assert_stats_close(got: &PolicyLossStats, want: &PolicyLossStats, what: &str) {
    let close = |a: f64, b: f64| (a - b).abs() <= 2e-5 * (1.0 + b.abs());
    let pairs = [
        ("loss", got.loss, want.loss),
        ("pg_loss", got.pg_loss, want.pg_loss),
        ("clip_fraction", got.clip_fraction, want.clip_fraction),
        ("dual_clip_fraction", got.dual_clip_fraction, want.dual_clip_fraction),
        ("approx_kl", got.approx_kl, want.approx_kl),
        ("mean_ratio", got.mean_ratio, want.mean_ratio),
        ("num_tokens", got.num_tokens, want.num_tokens),
        ("ref_kl", got.ref_kl.unwrap_or(-1.0), want.ref_kl.unwrap_or(-1.0)),
        ("entropy", got.entropy.unwrap_or(-1.0), want.entropy.unwrap_or(-1.0)),
        ("corrected_fraction", got.corrected_fraction, want.corrected_fraction),
        (
            "rollout_mismatch_kl",
            got.rollout_mismatch_kl.unwrap_or(-1.0),
            want.rollout_mismatch_kl.unwrap_or(-1.0),
        ),
        (
            "rollout_mismatch_max_ratio",
            got.rollout_mismatch_max_ratio.unwrap_or(-1.0),
            want.rollout_mismatch_max_ratio.unwrap_or(-1.0),
        ),
    ];
    for (name, a, b) in pairs {
        assert!(close(a, b), "{what}: {name} {a} vs reference {b}");
    }
}

#[test]
fn matches_the_per_token_loop_in_every_mode() {
    let mut rng = StdRng::seed_from_u64(5);
    for round in 0..4 {
        let mut batch = random_batch(&mut rng, 6, 9);
        if round % 2 == 1 {
            batch.weights = None;
            batch.entropy = None;
        }
        if round == 2 {
            batch.denominator = Some(40.0);
        }
        for cfg in configs() {
            let got = policy_loss::<Flex>(&cfg, input(&batch)).unwrap().stats;
            assert_stats_close(&got, &reference(&cfg, &batch), &format!("{cfg:?} round {round}"));
        }
    }
}

#[test]
fn corrections_act_on_some_tokens_and_need_what_they_correct_against() {
    let mut rng = StdRng::seed_from_u64(11);
    let batch = random_batch(&mut rng, 6, 9);
    let plain = policy_loss::<Flex>(&PolicyLossConfig::default(), input(&batch)).unwrap();
    assert!(plain.stats.rollout_mismatch_kl.unwrap() > 0.0);
    assert!(plain.stats.rollout_mismatch_max_ratio.unwrap() > 1.0);
    assert_eq!(plain.stats.corrected_fraction, 0.0);
    for kind in [CorrectionKind::Tis, CorrectionKind::Mis] {
        for level in [Level::Token, Level::Sequence] {
            let cfg = PolicyLossConfig {
                correction: CorrectionConfig { kind, level, cap: 1.5 },
                recompute_old_logprobs: true,
                ..Default::default()
            };
            let out = policy_loss::<Flex>(&cfg, input(&batch)).unwrap().stats;
            let f = out.corrected_fraction;
            assert!(f > 0.0 && f < 1.0, "{kind:?} {level:?}: {f}");
            assert!((out.loss - plain.stats.loss).abs() > 1e-6, "{kind:?} {level:?}");
            let mut without = input::<Flex>(&batch);
            without.rollout_logp = None;
            assert!(policy_loss(&cfg, without).is_err(), "no rollout log-probs");
            let unrecomputed = PolicyLossConfig { recompute_old_logprobs: false, ..cfg };
            assert!(policy_loss::<Flex>(&unrecomputed, input(&batch)).is_err());
        }
    }
    let bad = CorrectionConfig { kind: CorrectionKind::Tis, cap: 1.0, ..Default::default() };
    let cfg =
        PolicyLossConfig { correction: bad, recompute_old_logprobs: true, ..Default::default() };
    assert!(matches!(policy_loss::<Flex>(&cfg, input(&batch)), Err(SetRlError::Config(_))));
}

#[test]
fn sequence_ratios_clip_whole_sequences_by_hand() {
    // One sequence, two tokens, log-ratios 0.1 and 0.5: GSPO's ratio is exp(0.3) ~ 1.35,
    // clipped at 1.2 for A = +1, so no token gets a gradient; token ratios would leave the
    // first token (ratio exp(0.1) ~ 1.105) unclipped.
    let dev = Default::default();
    let logp = Tensor::<Ad, 2>::from_data(TensorData::from([[-1.0f32, -1.0]]), &dev).require_grad();
    let old = Tensor::from_data(TensorData::from([[-1.1f32, -1.5]]), &dev);
    let adv = Tensor::from_data(TensorData::from([1.0f32]), &dev);
    let mask = Tensor::from_data(TensorData::from([[1.0f32, 1.0]]), &dev);
    let cfg = PolicyLossConfig {
        ratio_level: Level::Sequence,
        aggregation: LossAggregation::SeqMeanTokenMean,
        ..Default::default()
    };
    let inp = PolicyLossInput::new(logp.clone(), old.clone(), adv.clone(), mask.clone());
    let out = policy_loss(&cfg, inp).unwrap();
    assert!((out.stats.loss + 1.2).abs() < 1e-6, "{:?}", out.stats);
    assert_eq!(out.stats.clip_fraction, 1.0);
    let g: Vec<f32> = logp.grad(&out.loss.backward()).unwrap().into_data().to_vec().unwrap();
    assert_eq!(g, [0.0, 0.0]);
    // A = -1: the clip (at 0.8 from below) does not bind, and both tokens share the
    // gradient of exp(mean): d/dlogp_t = s / 2.
    let adv = Tensor::from_data(TensorData::from([-1.0f32]), &dev);
    let logp = logp.detach().require_grad();
    let out = policy_loss(&cfg, PolicyLossInput::new(logp.clone(), old, adv, mask)).unwrap();
    let s = 0.3f64.exp();
    assert!((out.stats.loss - s).abs() < 1e-5, "{:?}", out.stats);
    let g: Vec<f32> = logp.grad(&out.loss.backward()).unwrap().into_data().to_vec().unwrap();
    for x in g {
        assert!((x as f64 - s / 2.0).abs() < 1e-5, "{x} vs {}", s / 2.0);
    }
}

#[test]
fn reference_policy_is_optional_without_kl() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut batch = random_batch(&mut rng, 3, 4);
    batch.reference = None;
    let cfg = PolicyLossConfig::default();
    let out = policy_loss::<Flex>(&cfg, input(&batch)).unwrap();
    assert_eq!(out.stats.ref_kl, None);
    assert_stats_close(&out.stats, &reference(&cfg, &batch), "no reference");
    let cfg = PolicyLossConfig { kl_beta: 0.1, ..cfg };
    let err = policy_loss::<Flex>(&cfg, input(&batch)).unwrap_err();
    assert_eq!(err, SetRlError::MissingReference { beta: 0.1 });
}

#[test]
fn gradient_matches_finite_differences() {
    let mut rng = StdRng::seed_from_u64(17);
    let batch = random_batch(&mut rng, 4, 5);
    for cfg in configs() {
        let x = t2::<Ad>(&batch.logp).require_grad();
        let inp = PolicyLossInput { logp: x.clone(), ..input::<Ad>(&batch) };
        let out = policy_loss(&cfg, inp).unwrap();
        let grads = out.loss.backward();
        let grad: Vec<f64> = x.grad(&grads).unwrap().into_data().iter::<f64>().collect();
        let h = 1e-6;
        for i in 0..batch.logp.len() {
            for t in 0..batch.logp[0].len() {
                let mut plus = batch.clone();
                plus.logp[i][t] += h;
                let mut minus = batch.clone();
                minus.logp[i][t] -= h;
                let fd = (reference(&cfg, &plus).loss - reference(&cfg, &minus).loss) / (2.0 * h);
                let g = grad[i * batch.logp[0].len() + t];
                assert!((g - fd).abs() < 1e-4 * (1.0 + fd.abs()), "{cfg:?} [{i},{t}]: {g} vs {fd}");
            }
        }
    }
}

#[test]
fn tiny_case_by_hand() {
    // Two tokens of one sequence, token-mean, eps = 0.2, A = +1.
    // Token 0: rho = 1 (inside the clip): loss -1, gradient d(-rho)/dlogp / 2 = -1/2.
    // Token 1: rho = e^0.5 > 1.2 (clipped above): loss -1.2, gradient 0.
    let cfg = PolicyLossConfig::default();
    let logp = Tensor::<Ad, 2>::from_data(TensorData::from([[-1.0f32, -1.0]]), &Default::default())
        .require_grad();
    let old = Tensor::from_data(TensorData::from([[-1.0f32, -1.5]]), &Default::default());
    let adv = Tensor::from_data(TensorData::from([1.0f32]), &Default::default());
    let mask = Tensor::from_data(TensorData::from([[1.0f32, 1.0]]), &Default::default());
    let out = policy_loss(&cfg, PolicyLossInput::new(logp.clone(), old, adv, mask)).unwrap();
    assert!((out.stats.loss - (-1.0 - 1.2) / 2.0).abs() < 1e-6, "{:?}", out.stats);
    assert_eq!(out.stats.clip_fraction, 0.5);
    let grads = out.loss.backward();
    let g: Vec<f32> = logp.grad(&grads).unwrap().into_data().to_vec().unwrap();
    assert!((g[0] + 0.5).abs() < 1e-6 && g[1] == 0.0, "{g:?}");
    // Gradient descent raises the log-prob of a positive-advantage token.
    assert!(g[0] < 0.0);
}

#[test]
fn negative_advantage_pushes_down_and_dual_clip_caps() {
    // A = -1, rho = e^1.5 ~ 4.48: unclipped loss 4.48; dual clip c = 3 caps it at 3 (no grad).
    let dev = Default::default();
    let make = || Tensor::<Ad, 2>::from_data(TensorData::from([[0.0f32]]), &dev).require_grad();
    let old = Tensor::from_data(TensorData::from([[-1.5f32]]), &dev);
    let adv = Tensor::from_data(TensorData::from([-1.0f32]), &dev);
    let mask = Tensor::from_data(TensorData::from([[1.0f32]]), &dev);
    for (dual_clip, loss, grad) in [(None, 1.5f64.exp(), 1.5f64.exp()), (Some(3.0), 3.0, 0.0)] {
        let cfg = PolicyLossConfig { dual_clip, ..PolicyLossConfig::default() };
        let logp = make();
        let inp = PolicyLossInput::new(logp.clone(), old.clone(), adv.clone(), mask.clone());
        let out = policy_loss(&cfg, inp).unwrap();
        assert!((out.stats.loss - loss).abs() < 1e-5, "{:?}", out.stats);
        let g: Vec<f64> = logp.grad(&out.loss.backward()).unwrap().into_data().iter().collect();
        assert!((g[0] - grad).abs() < 1e-4, "{dual_clip:?}: {g:?}");
    }
}

#[test]
fn weights_scale_each_sequence() {
    // Search traces weighted 0.5, aggregation traces 1: each sequence's gradient scales.
    let mut rng = StdRng::seed_from_u64(3);
    let mut batch = random_batch(&mut rng, 4, 3);
    batch.mask = vec![vec![1.0; 3]; 4];
    let cfg =
        PolicyLossConfig { aggregation: LossAggregation::SeqMeanTokenMean, ..Default::default() };
    let grad_of = |weights: Option<Vec<f64>>| {
        let b = Batch { weights, ..batch.clone() };
        let x = t2::<Ad>(&b.logp).require_grad();
        let out =
            policy_loss(&cfg, PolicyLossInput { logp: x.clone(), ..input::<Ad>(&b) }).unwrap();
        x.grad(&out.loss.backward()).unwrap().into_data().iter::<f64>().collect::<Vec<f64>>()
    };
    let plain = grad_of(None);
    let weighted = grad_of(Some(vec![0.5, 0.5, 1.0, 1.0]));
    for (k, (p, w)) in plain.iter().zip(&weighted).enumerate() {
        let scale = if k / 3 < 2 { 0.5 } else { 1.0 };
        assert!((w - scale * p).abs() < 1e-6, "{k}: {w} vs {scale} * {p}");
    }
}

#[test]
fn bad_inputs_are_named() {
    let mut rng = StdRng::seed_from_u64(1);
    let batch = random_batch(&mut rng, 2, 3);
    let cfg = PolicyLossConfig::default();
    let mut inp = input::<Flex>(&batch);
    inp.advantages = t1(&[1.0, 2.0, 3.0]);
    let err = policy_loss(&cfg, inp).unwrap_err();
    assert_eq!(err.to_string(), "advantages has shape [3], expected [2]");
    let mut inp = input::<Flex>(&batch);
    inp.mask = t2(&[vec![1.0; 3]]);
    assert!(matches!(policy_loss(&cfg, inp), Err(SetRlError::Shape { .. })));
    for bad in [
        PolicyLossConfig { clip_low: 1.0, ..cfg },
        PolicyLossConfig { clip_high: -0.1, ..cfg },
        PolicyLossConfig { dual_clip: Some(1.0), ..cfg },
        PolicyLossConfig { kl_beta: f64::NAN, ..cfg },
        PolicyLossConfig {
            aggregation: LossAggregation::SeqMeanTokenSumNorm { max_len: 0 },
            ..cfg
        },
    ] {
        assert!(matches!(policy_loss(&bad, input::<Flex>(&batch)), Err(SetRlError::Config(_))));
    }
}

#[test]
fn config_from_json() {
    let cfg: PolicyLossConfig = serde_json::from_str(
        r#"{"clip_high": 0.28, "dual_clip": 3.0, "kl_beta": 0.01, "kl_estimator": "k2",
            "aggregation": {"mode": "seq-mean-token-sum-norm", "max_len": 1024}}"#,
    )
    .unwrap();
    assert_eq!(cfg.clip_low, 0.2);
    assert_eq!(cfg.clip_high, 0.28);
    assert_eq!(cfg.kl_estimator, KlEstimator::K2);
    assert_eq!(cfg.aggregation, LossAggregation::SeqMeanTokenSumNorm { max_len: 1024 });
    assert!(serde_json::from_str::<PolicyLossConfig>(r#"{"clip": 0.2}"#).is_err());
}
