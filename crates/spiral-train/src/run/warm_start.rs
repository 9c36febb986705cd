//! The warm start: supervised steps on generated solution traces and aggregation examples (see
//! `TaskData::warm_start_examples`), so that RL starts from a policy that samples correct traces
//! some of the time and an aggregator that has seen the prompt format; optionally a second stage
//! that trains the aggregator on the model's own candidates ([`super::aggregator_start`]); then
//! an evaluation, the baseline every RL step is compared with.

use std::sync::atomic::Ordering;

use anyhow::Context;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::rngs::StdRng;
use spiral_model::CausalLm;
use spiral_rollout::stream_seed;

use super::aggregator_start::aggregator_examples;
use super::{PhaseEnd, Run, purpose, summary};
use crate::checkpoint::{self, TrainerState};
use crate::distributed::share;
use crate::evaluate::{EvalMetrics, MadeUpCandidates};
use crate::learner::Learner;
use crate::metrics::{Record, WarmStartRecord};
use crate::schedule::OptimConfig;

/// The checkpoint of the stage-one model, which the aggregator stage samples from.
const STAGE_ONE: &str = "warm-start-search";

/// The stage-one model, read back from its checkpoint (bit for bit what it was, so a resumed
/// run samples the same candidates).
fn load_stage_one<Train: AutodiffBackend>(
    run: &Run<'_, Train>,
) -> anyhow::Result<CausalLm<Train::InnerBackend>> {
    let path = run.checkpoints.join(STAGE_ONE);
    let checkpoint = spiral_model::Checkpoint::<Train::InnerBackend>::load(&path, run.device)
        .with_context(|| format!("the stage-one model, {}", path.display()))?;
    Ok(checkpoint.model.for_inference_in(run.config.model.precision))
}

/// Runs the warm-start steps left in `state` on `model`, logging every tenth, and evaluates the
/// result; `state` then starts the RL phase. Stopped on request, it saves `warm-start-partial`.
pub(super) fn warm_start<Train: AutodiffBackend>(
    run: &mut Run<'_, Train>,
    state: &mut TrainerState,
    model: CausalLm<Train>,
) -> anyhow::Result<PhaseEnd<(CausalLm<Train>, EvalMetrics)>> {
    let (config, seed) = (run.config, run.config.run.seed);
    let w = &config.warm_start;
    let total = w.steps + w.aggregator_steps;
    let optim = OptimConfig {
        lr: w.lr,
        warmup_steps: total / 10,
        total_steps: total,
        ..Default::default()
    };
    let world = &run.control.world;
    let learner = Learner::new(model, optim)
        .with_micro_batch(config.train.micro_batch)
        .with_activation_checkpointing(config.train.activation_checkpointing)
        .with_world(world.0.clone());
    let mut learner = run.restore(learner, state)?;
    let mut progress = run.progress(total, state.step, "warm start");
    // The frozen stage-one model the second stage samples candidates from.
    let mut stage_one = None;
    for step in state.step..total {
        if step == w.steps && w.aggregator_steps > 0 {
            let at = TrainerState {
                step,
                optimizer_steps: learner.steps(),
                metrics_bytes: run.metrics.bytes,
                ..state.clone()
            };
            run.save(&learner, STAGE_ONE, &at)?;
        }
        // The step reads its loss back to the host, so the clock covers the device's work.
        let started = Instant::now();
        let stats = if step < w.steps {
            let mut rng =
                StdRng::seed_from_u64(stream_seed(seed, purpose::WARM_START_DATA, step as u64));
            let batch = run.data.warm_start_examples(
                w.batch_size,
                config.algorithm.n,
                w.aggregation_fraction,
                &mut rng,
            );
            // This rank's share of the batch; the step is the whole batch's on every rank.
            let here = share(batch.len(), world.0.rank(), world.0.world_size());
            learner.sft_step(&batch[here])?
        } else {
            if stage_one.is_none() {
                stage_one = Some(load_stage_one(run)?);
            }
            let model = stage_one.as_ref().expect("loaded above");
            let mine = aggregator_examples(model, &run.data, config, world, step - w.steps)?;
            learner.sft_step(&mine)?
        };
        let seconds = started.elapsed().as_secs_f64();
        progress.step(format!("loss {:.3}", stats.loss));
        if step % 10 == 0 || step + 1 == w.steps {
            run.metrics.log(Record::WarmStart(WarmStartRecord {
                step,
                loss: stats.loss,
                lr: stats.lr,
                grad_norm: stats.grad_norm,
                tokens: stats.tokens,
                step_seconds: seconds,
                tokens_per_s: stats.tokens as f64 / seconds.max(1e-9),
                learner_shards: Some(stats.shards),
            }))?;
        }
        let stop = run.control.world.any(run.control.stop.load(Ordering::SeqCst));
        if stop && step + 1 < total {
            progress.abandon();
            state.step = step + 1;
            state.optimizer_steps = learner.steps();
            state.metrics_bytes = run.metrics.bytes;
            let name = "warm-start-partial";
            run.save(&learner, name, state)?;
            run.write_report()?;
            return Ok(PhaseEnd::Stopped(run.checkpoints.join(name)));
        }
    }
    progress.finish();
    // The evaluation the aggregator gate reads: also over made-up candidates, for its diagnosis.
    let eval = run.evaluate(&learner.inference_model(), MadeUpCandidates::Measure)?;
    run.log_eval(0, &eval)?;
    eprintln!("warm start: {}", summary(&eval));
    // The RL phase starts from here with a fresh optimiser; every algorithm trained from this
    // run's warm start starts from this checkpoint.
    *state = TrainerState {
        phase: checkpoint::Phase::Rl,
        step: 0,
        optimizer_steps: 0,
        metrics_bytes: run.metrics.bytes,
        ..state.clone()
    };
    Ok(PhaseEnd::Done((learner.model().clone(), eval)))
}
