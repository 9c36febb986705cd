//! Two RL steps of each algorithm on a tiny config, end to end: warm start, collection,
//! learning, evaluation, and the run folder (config, metrics, checkpoints, report); and resume:
//! a run stopped after every step and resumed each time writes the same metrics as one that
//! ran straight through.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spiral_train::{
    EvalRecord, Outcome, Record, RunConfig, RunControl, TrainRecord, read_metrics, run,
};

fn tiny(algorithm: &str) -> RunConfig {
    tiny_with(algorithm, &[])
}

/// [`tiny`] with `extra` overrides (`key=value`) after its own.
fn tiny_with(algorithm: &str, extra: &[&str]) -> RunConfig {
    let overrides: Vec<String> = [
        &format!("algorithm.name={algorithm}"),
        "task.train_problems=40",
        "task.test_problems=4",
        "model.hidden_size=16",
        "model.num_layers=1",
        "model.num_heads=2",
        "warm_start.steps=2",
        "warm_start.batch_size=4",
        "algorithm.n1=4",
        "algorithm.n=2",
        "algorithm.k=2",
        "algorithm.n2=2",
        "rollout.max_new_tokens=8",
        "train.steps=2",
        "train.problems_per_step=2",
        "train.epochs=2",
        "eval.problems=4",
        "eval.n=2",
        "eval.every=1",
        "train.keep_checkpoints=1",
        "train.checkpoint_every=1",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    RunConfig::default_with(&overrides).unwrap()
}

#[test]
fn every_algorithm_runs_two_steps() {
    for algorithm in ["spiral", "paragator", "grpo", "dr_grpo", "multitask"] {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(algorithm);
        let Outcome::Finished(last) = run(&config, dir.path(), &RunControl::default()).unwrap()
        else {
            panic!("{algorithm}: nobody asked the run to stop");
        };
        assert_eq!(last.problems, 4);
        let records = read_metrics(&dir.path().join("metrics.jsonl")).unwrap();
        let train: Vec<&TrainRecord> = records
            .iter()
            .filter_map(|r| if let Record::Train(t) = r { Some(t) } else { None })
            .collect();
        let evals: Vec<&EvalRecord> = records
            .iter()
            .filter_map(|r| if let Record::Eval(e) = r { Some(e) } else { None })
            .collect();
        assert_eq!(train.len(), 2, "{algorithm}");
        assert_eq!(evals.len(), 3, "{algorithm}: warm start and after each step");
        for t in &train {
            assert!((0.0..=1.0).contains(&t.search_reward), "{algorithm}: {t:?}");
            assert!(t.loss.is_finite() && t.grad_norm.is_finite() && t.lr >= 0.0, "{t:?}");
            assert!(t.generated_tokens > 0 && t.approx_kl.is_finite(), "{algorithm}: {t:?}");
            assert_eq!(t.ref_kl, 0.0, "{algorithm}: no KL penalty, no reference");
            let seconds = [t.rollout_seconds, t.reference_seconds, t.learn_seconds];
            assert!(seconds.iter().all(|s| *s >= 0.0), "{algorithm}: {t:?}");
        }
        let aggregates = ["spiral", "paragator", "multitask"].contains(&algorithm);
        assert_eq!(train[0].aggregation_reward.is_none(), !aggregates, "{algorithm}");
        for e in &evals {
            let pass_at_2 = e.pass_at_k().iter().find(|(k, _)| *k == 2).map(|&(_, v)| v);
            for (key, value) in [
                ("pass@1", Some(e.pass_at_1)),
                ("maj@n", Some(e.maj_at_n)),
                ("agg@1", Some(e.agg_at_1)),
                ("pass@2", pass_at_2),
            ] {
                assert!(value.is_some_and(|v| (0.0..=1.0).contains(&v)), "{algorithm}: {key}");
            }
        }
        assert!(dir.path().join("checkpoints/step-2/model.safetensors").exists());
        assert!(!dir.path().join("checkpoints/step-1").exists(), "only the newest step is kept");
        assert!(!dir.path().join("checkpoints/step-2.tmp").exists(), "no temporary folder is left");
        assert!(dir.path().join("checkpoints/warm-start/config.json").exists());
        let saved = RunConfig::from_toml(
            &std::fs::read_to_string(dir.path().join("config.toml")).unwrap(),
            "config.toml",
            &[],
        )
        .unwrap();
        assert_eq!(saved, config, "the saved config reloads to the one that ran");
        assert!(std::fs::read_to_string(dir.path().join("report.md")).unwrap().contains("agg@1"));
        assert!(dir.path().join("eval.png").exists() && dir.path().join("rewards.svg").exists());
    }
}

/// Metrics without wall-clock measurements (times, rates, and the MFU computed from them),
/// which differ between any two runs.
fn deterministic_metrics(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let records = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    let mut lines: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::to_value(r).unwrap()).collect();
    for line in &mut lines {
        let object = line.as_object_mut().unwrap();
        object.retain(|key, _| {
            !key.ends_with("_seconds") && !key.ends_with("_per_s") && !key.starts_with("mfu_")
        });
    }
    lines
}

/// The RL steps' records of the run in `dir`.
fn train_records(dir: &std::path::Path) -> Vec<TrainRecord> {
    let records = read_metrics(&dir.join("metrics.jsonl")).unwrap();
    records
        .into_iter()
        .filter_map(|r| if let Record::Train(t) = r { Some(t) } else { None })
        .collect()
}

/// Runs `config` straight through, and again stopped after every step (with junk appended to
/// the metrics after each stop, as a crash would leave) and resumed each time; the metrics must
/// be identical and the final checkpoint's `weights_file` byte for byte the same.
fn assert_resumed_run_matches(mut config: RunConfig, weights_file: &str) {
    config.train.steps = 3;
    // Only the stops checkpoint, so every resume goes through a stop's checkpoint.
    config.train.checkpoint_every = 100;

    let straight = tempfile::tempdir().unwrap();
    run(&config, straight.path(), &RunControl::default()).unwrap();

    // A stop requested before the run starts takes effect after every step: each call advances
    // one step (warm start, then RL), checkpoints and returns.
    let stopped = tempfile::tempdir().unwrap();
    let stop_every_step =
        |resume| RunControl { resume, stop: Arc::new(AtomicBool::new(true)), ..Default::default() };
    let mut calls = 0;
    let mut resume = false;
    loop {
        calls += 1;
        let warm_start_steps = config.warm_start.steps + config.warm_start.aggregator_steps;
        assert!(calls < warm_start_steps + 10, "the run never finished");
        match run(&config, stopped.path(), &stop_every_step(resume)).unwrap() {
            Outcome::Finished(_) => break,
            Outcome::Stopped(checkpoint) => {
                assert!(checkpoint.join("optimizer.bin").exists());
                // Warm-start checkpoints are whole models; RL ones hold `weights_file`.
                let rl = checkpoint.ends_with("warm-start")
                    || checkpoint.to_string_lossy().contains("step-");
                let file = if rl { weights_file } else { "model.safetensors" };
                assert!(checkpoint.join(file).exists(), "{}", checkpoint.display());
                // A crash after the checkpoint leaves lines the resumed run must drop.
                let metrics = stopped.path().join("metrics.jsonl");
                let mut text = std::fs::read_to_string(&metrics).unwrap();
                text.push_str("{\"kind\": \"train\", \"step\": 999}\n");
                std::fs::write(&metrics, text).unwrap();
            }
        }
        resume = true;
    }
    // Every warm-start step but the last stops inside the warm start; the last ends it, then
    // RL steps 1 and 2 stop and step 3 finishes.
    assert_eq!(calls, config.warm_start.steps + config.warm_start.aggregator_steps + 2);
    let expected = deterministic_metrics(straight.path());
    let got = deterministic_metrics(stopped.path());
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "the resumed run's metrics differ");
    }
    let weights = |dir: &std::path::Path| {
        std::fs::read(dir.join("checkpoints/step-3").join(weights_file)).unwrap()
    };
    assert!(weights(straight.path()) == weights(stopped.path()), "final weights differ");
}

/// `tiny` on one-digit sums with a warm start long enough that GRPO finds correct traces, so
/// RL steps update the weights (a tiny SPIRAL run's aggregator never scores, which leaves every
/// advantage at zero).
fn tiny_learning() -> RunConfig {
    let mut config = tiny("grpo");
    config.task.kind = spiral_rewards::Task::Arith;
    config.task.arith = spiral_rewards::ArithConfig {
        min_operands: 2,
        max_operands: 2,
        max_operand: 9,
        operators: "+".into(),
        parentheses: false,
    };
    config.model.hidden_size = 32;
    config.warm_start.steps = 60;
    config.warm_start.lr = 1e-2;
    config.rollout.max_new_tokens = 24;
    config
}

/// Sequences trained in each RL step of the run in `dir`.
fn trained_sequences(dir: &std::path::Path) -> Vec<u64> {
    train_records(dir).iter().map(|t| t.trained_sequences as u64).collect()
}

#[test]
fn a_run_stopped_after_every_step_and_resumed_matches_an_uninterrupted_one() {
    // SPIRAL's collection (set draws, aggregation prompts) resumes exactly...
    let mut spiral = tiny("spiral");
    spiral.warm_start.steps = 3;
    assert_resumed_run_matches(spiral, "model.safetensors");
    // ...and so do updates, the optimiser state and the schedule.
    let config = tiny_learning();
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    assert!(trained_sequences(dir.path()).iter().all(|&n| n > 0), "no RL update to resume");
    assert_resumed_run_matches(config, "model.safetensors");
}

/// A KL penalty to the policy RL started from: the reference's log-probs travel with every
/// trained sequence, the penalty is measured once the policy moves, and a resumed run (which
/// reads the reference back from the `warm-start` checkpoint) matches an uninterrupted one.
#[test]
fn a_kl_penalty_to_the_warm_start_is_measured_and_resumes_exactly() {
    let mut config = tiny_learning();
    config.train.loss.kl_beta = 0.1;
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    let kl: Vec<f64> = train_records(dir.path()).iter().map(|t| t.ref_kl).collect();
    assert_eq!(kl.len(), 2);
    // The second epoch of the first step already scores a moved policy.
    assert!(kl.iter().all(|&k| k > 0.0 && k.is_finite()), "{kl:?}");
    assert_resumed_run_matches(config, "model.safetensors");
}

/// Adapter dropout draws from burn's process-wide generator, so the tests whose runs use it
/// take turns (the test harness runs tests on several threads).
static DROPOUT_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `tiny_learning` with rank-4 adapters (with dropout, whose draws must resume exactly too).
fn tiny_lora() -> RunConfig {
    let mut config = tiny_learning();
    config.lora.enabled = true;
    config.lora.rank = 4;
    config.lora.alpha = 8.0;
    config.lora.dropout = 0.1;
    config
}

#[test]
fn a_lora_run_resumes_exactly_too() {
    let _turn = DROPOUT_RNG.lock().unwrap_or_else(|e| e.into_inner());
    assert_resumed_run_matches(tiny_lora(), "adapter_model.safetensors");
}

#[test]
fn a_lora_run_trains_adapters_over_a_frozen_base() {
    let _turn = DROPOUT_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    run(&tiny_lora(), dir.path(), &RunControl::default()).unwrap();
    let checkpoints = dir.path().join("checkpoints");
    // The warm start trained every weight and became the frozen base; checkpoints hold
    // adapters only, in PEFT's format, naming that base.
    let base = spiral_model::Checkpoint::<burn::backend::Flex>::load(
        checkpoints.join("base"),
        &Default::default(),
    )
    .unwrap();
    let step = checkpoints.join("step-2");
    assert!(!step.join("model.safetensors").exists());
    let adapter: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(adapter["base_model_name_or_path"], "../base");
    assert_eq!(adapter["r"], 4);
    let adapted = base.model.clone().load_adapter(&step).unwrap();
    assert!(trained_sequences(dir.path()).iter().all(|&n| n > 0));
    // AdamW keeps two float32 moments for the adapters only (plus the record's framing).
    let moments = 2 * 4 * adapted.lora_parameters() as u64;
    let optimizer = std::fs::metadata(step.join("optimizer.bin")).unwrap().len();
    assert!(
        optimizer >= moments && optimizer < moments + moments / 4,
        "optimizer.bin has {optimizer} bytes; the adapters' moments take {moments}, the whole \
         model's would take {}",
        2 * 4 * adapted.config().num_parameters()
    );
    // Training moved the adapters (they start as the identity).
    let ids: Vec<u32> = base.tokenizer.encode("Compute 3+4.\n", false).unwrap();
    let scores = |m: &spiral_model::CausalLm<burn::backend::Flex>| {
        let scores = m.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap();
        scores.logprobs.into_data().to_vec::<f32>().unwrap()
    };
    let (before, after) = (scores(&base.model), scores(&adapted));
    assert!(before.iter().zip(&after).any(|(a, b)| (a - b).abs() > 1e-6), "adapters unchanged");

    // Switching LoRA off for a run whose checkpoints hold adapters is refused by name.
    let mut off = tiny_lora();
    off.lora.enabled = false;
    off.train.steps = 3;
    let resume = RunControl { resume: true, ..Default::default() };
    let err = run(&off, dir.path(), &resume).unwrap_err().to_string();
    assert!(err.contains("lora.enabled"), "{err}");
}

/// Aggregation prompts that hold 4 whole traces, at a reduced size: traces of 512 tokens make
/// prompts of over 2,000, long enough for the blockwise attention, in a run with activation
/// checkpointing on.
#[test]
fn spiral_trains_on_aggregation_prompts_of_four_long_traces() {
    let config = tiny_with(
        "spiral",
        &[
            "algorithm.n1=4",
            "algorithm.n=4",
            "algorithm.k=1",
            "algorithm.n2=1",
            "rollout.max_new_tokens=512",
            // Nearly greedy sampling from large random weights falls into a loop rather than
            // ending the trace.
            "rollout.temperature=0.05",
            "model.init_std=1.0",
            "model.max_position_embeddings=4096",
            "train.activation_checkpointing=true",
            "train.steps=1",
            "train.epochs=1",
            "warm_start.steps=0",
            "eval.every=1000",
            "eval.problems=1",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    let train = train_records(dir.path());
    assert_eq!(train.len(), 1);
    // 2 problems x (4 search traces + 1 aggregation) of the full length: each aggregation
    // prompt held 4 traces of 512 tokens. A random model earns no reward, so no sequence has an
    // advantage to train on; the learner's step on sequences this long, checkpointed, is held
    // to the ordinary one in tests/learner.rs.
    assert_eq!(train[0].generated_tokens, 2 * 5 * 512, "{:?}", train[0]);
}

/// A micro-batch whose estimated memory exceeds the machine's is refused before any work, with
/// the options that lower it.
#[test]
fn a_micro_batch_too_large_for_the_machine_is_refused_before_any_work() {
    let config = tiny_with("spiral", &["train.micro_batch=100000000"]);
    let dir = tempfile::tempdir().unwrap();
    let error = run(&config, dir.path(), &RunControl::default()).unwrap_err().to_string();
    for option in ["train.micro_batch", "train.activation_checkpointing", "available"] {
        assert!(error.contains(option), "{option}: {error}");
    }
    assert!(!dir.path().join("metrics.jsonl").exists());
}

/// Every RL option at once, end to end: a tempered policy, old log-probs recomputed by the
/// learner with a truncated-IS correction, sequence-level ratios, overlong masking and its soft
/// penalty, and dynamic sampling. The mismatch is measured every step (about 0 here: sampler
/// and learner are one float32 model on one device), dynamic sampling takes extra rounds when
/// problems carry no signal, and a resumed run matches an uninterrupted one.
#[test]
fn the_rl_options_run_together_measure_and_resume_exactly() {
    let mut config = tiny_learning();
    for (key, value) in [
        ("rollout.temperature", "0.8"),
        ("train.loss.recompute_old_logprobs", "true"),
        ("train.loss.correction.kind", "\"tis\""),
        ("train.loss.ratio_level", "\"sequence\""),
        ("train.overlong.mask_truncated", "true"),
        ("train.overlong.buffer", "8"),
        ("train.overlong.penalty", "0.5"),
        ("train.dynamic_sampling", "true"),
        ("train.dynamic_sampling_max_rounds", "3"),
    ] {
        config = RunConfig::from_toml(&config.to_toml(), "test", &[format!("{key}={value}")])
            .unwrap_or_else(|e| panic!("{key}: {e:#}"));
    }
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    let records = train_records(dir.path());
    for r in &records {
        let kl = r.rollout_mismatch_kl.expect("measured every step with a batch");
        assert!(kl.abs() < 1e-4, "{kl}");
        assert!(r.rollout_mismatch_max_ratio.unwrap() < 1.01, "{r:?}");
        assert!((1..=3).contains(&r.dynamic_rounds), "{r:?}");
        // A step that kept going found problems without signal.
        assert!(r.dynamic_rounds == 1 || r.dynamic_dropped > 0, "{r:?}");
    }
    assert!(records.iter().any(|r| r.dynamic_rounds > 1), "no step needed another round");
    assert_resumed_run_matches(config, "model.safetensors");
}

/// The aggregator's warm-start stage on the model's own candidates, then RL on the combination
/// task with the multitask control and leave-one-out set baselines: the stage runs, the report
/// shows the gate, and a run stopped at every step (inside the stage too) resumes exactly.
#[test]
fn the_aggregator_stage_runs_reports_its_gate_and_resumes_exactly() {
    let config = tiny_with(
        "multitask",
        &[
            "task.kind=\"combination\"",
            "task.combination.parts=2",
            "rollout.max_new_tokens=24",
            "warm_start.aggregator_steps=2",
            "algorithm.set_baseline=\"leave_one_out\"",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    assert!(dir.path().join("checkpoints/warm-start-search").is_dir());
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.contains("Aggregator gate") && report.contains("agg@1 >= maj@n"), "{report}");
    // The evaluation before RL alone also aggregates over made-up candidates (which solve
    // parts, where the tiny model itself solves none).
    let evals: Vec<EvalRecord> = read_metrics(&dir.path().join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| if let Record::Eval(e) = r { Some(e) } else { None })
        .collect();
    assert!(evals[0].agg_part_made_up.is_some(), "{:?}", evals[0]);
    assert!(evals[1..].iter().all(|e| e.agg_part_made_up.is_none()), "{evals:?}");
    assert_resumed_run_matches(config, "model.safetensors");
}

/// With bf16 compute on the CPU the sampler and the learner still agree: the rollout reads
/// weights stored in bf16, the learner casts its float32 weights to bf16 before each product,
/// and both run the same kernels, so the measured mismatch stays about 0.
#[test]
fn bf16_sampler_and_learner_agree_on_the_cpu() {
    let mut config = tiny_learning();
    config.model.precision = spiral_model::Precision::Bfloat16;
    config.train.steps = 1;
    let dir = tempfile::tempdir().unwrap();
    run(&config, dir.path(), &RunControl::default()).unwrap();
    let records = train_records(dir.path());
    let kl = records[0].rollout_mismatch_kl.expect("measured");
    assert!(kl.abs() < 1e-4, "{kl}");
    assert!(records[0].rollout_mismatch_max_ratio.unwrap() < 1.05, "{:?}", records[0]);
}
