//! SPIRAL's set-RL advantages and the clipped policy loss on one toy problem, end to end:
//! rewards -> advantages -> loss -> gradient.
//!
//! `cargo run --release -p spiral-examples --example advantages`

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use spiral_set_rl::{
    Estimator, GroupStats, LossAggregation, PolicyLossConfig, PolicyLossInput, SpiralConfig,
    policy_loss, spiral_advantages,
};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    // GRPO-family baselines on one group of 8 verifiable rewards.
    let rewards = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    for est in [
        Estimator::Grpo,
        Estimator::DrGrpo,
        Estimator::Rloo,
        Estimator::PassAtK { k: 4, normalize_std: false },
    ] {
        println!("{est:?}: {:.3?}", est.advantages(&rewards)?);
    }
    println!("{:?}", GroupStats::of(&[rewards.to_vec(), vec![1.0; 8]])?);

    // SPIRAL, the paper's setting: N1 = 8 search traces, K = 4 sets of n = 4, N2 = 4
    // aggregation traces per set. Only the aggregation traces are scored.
    let sets = [[0, 3, 5, 6], [1, 2, 3, 7], [0, 1, 4, 5], [2, 4, 6, 7]];
    let aggregation_rewards = [[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0; 4], [0.0; 4]];
    let spiral = spiral_advantages(8, &sets, &aggregation_rewards, &SpiralConfig::default())?;
    println!("set advantages:    {:.3?}", spiral.set_advantages);
    println!("search advantages: {:.3?}", spiral.search_advantages);
    println!("aggregation advantages of set 0: {:.3?}", spiral.aggregation_advantages[0]);

    // One loss over search traces 0 and 2 (weight 0.5) and set 0's first two aggregation traces
    // (weight 1), three tokens each, the last aggregation trace one token shorter.
    let dev = Default::default();
    let logp = Tensor::<B, 2>::from_data(TensorData::from([[-1.2f32, -0.7, -2.0]; 4]), &dev)
        .require_grad();
    let old_logp = logp.clone().detach().add_scalar(0.05);
    let advantages = Tensor::from_data(
        TensorData::from([
            spiral.search_advantages[0] as f32,
            spiral.search_advantages[2] as f32,
            spiral.aggregation_advantages[0][0] as f32,
            spiral.aggregation_advantages[0][1] as f32,
        ]),
        &dev,
    );
    let mask = Tensor::from_data(
        TensorData::from([[1.0f32, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
        &dev,
    );
    let mut input = PolicyLossInput::new(logp.clone(), old_logp, advantages, mask);
    input.weights = Some(Tensor::from_data(TensorData::from([0.5f32, 0.5, 1.0, 1.0]), &dev));
    // DAPO's clip-higher and Dr.GRPO's fixed-length normalisation.
    let config = PolicyLossConfig {
        clip_high: 0.28,
        aggregation: LossAggregation::SeqMeanTokenSumNorm { max_len: 3 },
        ..PolicyLossConfig::default()
    };
    let out = policy_loss(&config, input)?;
    println!("{:?}", out.stats);
    let grad = logp.grad(&out.loss.backward()).expect("logp requires grad");
    println!("d loss / d logp: {}", grad);
    Ok(())
}
