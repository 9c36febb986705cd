//! The reproduction end to end on a tiny config: the shared warm start, every algorithm from a
//! copy of it, the measurements, and the report; run again, it redoes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spiral_repro::measure::MeasureOptions;
use spiral_repro::{ReproOptions, reproduce};

fn tiny() -> ReproOptions {
    let overrides = [
        "task.train_problems=40",
        "task.test_problems=4",
        "model.hidden_size=16",
        "model.num_layers=1",
        "model.num_heads=2",
        "warm_start.steps=2",
        "warm_start.batch_size=4",
        "rollout.max_new_tokens=8",
        "train.steps=1",
        "train.problems_per_step=1",
        "eval.problems=2",
        "eval.n=2",
        // Sets of 2: what the measurements aggregate over.
        "algorithm.n=2",
    ];
    ReproOptions {
        mode: "test".into(),
        seeds: vec![1, 2],
        variants: ReproOptions::full().variants,
        overrides: overrides.map(String::from).to_vec(),
        problems: 3,
        measure: MeasureOptions {
            k_max: 4,
            n_max: 2,
            aggregations: 2,
            budgets: vec![4, 8],
            rsa_population: 2,
            rsa_k: 2,
            rsa_rounds: 1,
            max_new_tokens: 8,
            temperature: 1.0,
            seed: 3,
            pipeline_n: 2,
        },
        eval_every: None,
        // A two-step warm start fails the gate; these tests are about what runs after it.
        ignore_gate: true,
        warm_start: None,
    }
}

#[test]
fn a_tiny_reproduction_writes_its_report_and_resumes_without_redoing_work() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let stop = Arc::new(AtomicBool::new(false));
    let report = reproduce(&tiny(), &configs, &work, &out, &stop).unwrap();

    let text = std::fs::read_to_string(&report).unwrap();
    for heading in [
        "## Headline",
        "## Aggregator gate",
        "## Primary metric",
        "## pass@k",
        "## Recursive self-aggregation",
        "## Sequential",
        "## Scaling efficiency at fixed accuracy targets",
        "## Training",
    ] {
        assert!(text.contains(heading), "{heading} missing from\n{text}");
    }
    for algorithm in ["GRPO", "Dr.GRPO", "ParaGator", "SPIRAL"] {
        assert!(text.contains(algorithm), "{algorithm}");
    }
    assert!(text.contains("Student-t"), "two seeds get intervals over seeds");
    // Two seeds of SPIRAL and of each baseline: the primary metric against each.
    assert!(text.contains("| GRPO | "), "{text}");
    // ... and each setting seed by seed, so the spread over seeds shows beside it.
    assert!(text.contains("| SPIRAL | agg@1 over 2 | "), "{text}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["primary"].as_array().unwrap().len(), 3, "{}", results["primary"]);
    assert_eq!(results["gate"].as_array().unwrap().len(), 4);
    // SPIRAL's envelope against each of the three baselines, at every fixed target.
    let envelope = results["envelope_efficiency"].as_array().unwrap();
    assert_eq!(envelope.len(), 3, "{envelope:?}");
    assert_eq!(envelope[0]["targets"].as_array().unwrap().len(), 4);
    // Each RL run's training is kept with its measurement; the warm start has none.
    for model in results["measured"].as_array().unwrap() {
        let training = &model["training"];
        if model["name"] == "warm-start" {
            assert!(training.is_null(), "{training}");
        } else {
            assert_eq!(training["steps"], 1, "{}: {training}", model["name"]);
            assert!(training["generated_tokens_per_step"].as_f64().unwrap() > 0.0, "{training}");
        }
    }
    for file in [
        "pass_at_k.png",
        "rsa.svg",
        "envelope.svg",
        "training_pass_at_1.svg",
        "results.json",
        "configs/spiral.toml",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    // Every run started from the shared warm start: same warm-start metrics line.
    let first_eval = |run: &str| {
        let metrics = std::fs::read_to_string(work.join(run).join("metrics.jsonl")).unwrap();
        metrics.lines().find(|l| l.contains("\"eval\"")).unwrap().to_string()
    };
    assert_eq!(first_eval("grpo-seed1"), first_eval("spiral-seed2"));
    // The algorithm configs were applied.
    let grpo = std::fs::read_to_string(work.join("grpo-seed1/config.toml")).unwrap();
    assert!(grpo.contains("n1 = 24") && grpo.contains("seed = 1"), "{grpo}");
    // 24 traces of the run's 8 tokens, not of the shipped config's 48.
    assert!(grpo.contains("tokens_per_problem = 192"), "{grpo}");
    // Titled by its task and folder, not by the base config's name.
    assert!(grpo.contains("name = \"countdown-grpo-seed1\""), "{grpo}");

    // Run again: nothing is retrained or remeasured (the measurements are read back).
    let measured = work.join("measure/spiral-seed1.json");
    let before = std::fs::metadata(&measured).unwrap().modified().unwrap();
    reproduce(&tiny(), &configs, &work, &out, &stop).unwrap();
    assert_eq!(std::fs::metadata(&measured).unwrap().modified().unwrap(), before);
}

/// The names of the models `out/results.json` holds, in its order.
fn measured_names(out: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    let measured = results["measured"].as_array().unwrap();
    measured.iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

/// A study continues from its report alone: a model kept in `results.json` is neither trained
/// nor measured again from an empty work folder and stays in the report beside the new ones;
/// once every model asked for is kept, not even the warm start is trained; a study with other
/// settings is refused the report folder, which keeps what it holds.
#[test]
fn a_study_continues_from_the_models_kept_in_its_report() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stop = Arc::new(AtomicBool::new(false));
    let mut options = tiny();
    options.seeds = vec![1];
    options.variants = vec!["grpo".into()];
    reproduce(&options, &configs, &dir.path().join("first"), &out, &stop).unwrap();
    let results = |out: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
    };
    let grpo = results(&out)["measured"][1].clone();
    assert_eq!(grpo["name"], "grpo-seed1");
    assert_eq!(grpo["config"]["train"]["seed"], 1, "kept with its config");
    assert!(grpo["evals"].as_array().is_some_and(|e| !e.is_empty()), "and its evaluations");

    let second = dir.path().join("second");
    options.variants = vec!["default".into()];
    let report = reproduce(&options, &configs, &second, &out, &stop).unwrap();
    assert!(!second.join("grpo-seed1").exists(), "GRPO was carried over, not run again");
    assert!(second.join("spiral-seed1/checkpoints/step-1").exists());
    assert!(!second.join("measure/warm-start.json").exists(), "the warm start's measurement too");
    assert_eq!(measured_names(&out), ["warm-start", "grpo-seed1", "spiral-seed1"]);
    assert_eq!(results(&out)["measured"][1], grpo);
    assert_eq!(results(&out)["primary"].as_array().unwrap().len(), 1, "SPIRAL against GRPO");
    let text = std::fs::read_to_string(report).unwrap();
    assert!(text.contains("--algorithms grpo,default --seeds 1"), "{text}");

    let third = dir.path().join("third");
    options.variants = vec!["grpo".into(), "default".into()];
    reproduce(&options, &configs, &third, &out, &stop).unwrap();
    assert!(!third.join("warm-start").exists(), "every model kept: nothing to train");
    assert_eq!(measured_names(&out), ["warm-start", "grpo-seed1", "spiral-seed1"]);
    // The report rewritten from its kept models alone speaks of the seeds measured, not of
    // those a call names.
    options.variants = Vec::new();
    options.seeds = vec![1, 2, 3];
    let report = reproduce(&options, &configs, &third, &out, &stop).unwrap();
    let text = std::fs::read_to_string(report).unwrap();
    assert!(text.contains("--algorithms grpo,default --seeds 1 "), "{text}");
    assert!(text.contains("One seed"), "{text}");
    options.seeds = vec![1];

    // The shipped GRPO config changed since: its kept model is dropped, SPIRAL's stays.
    let changed = dir.path().join("configs");
    std::fs::create_dir_all(&changed).unwrap();
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, changed.join(path.file_name().unwrap())).unwrap();
    }
    let grpo = std::fs::read_to_string(changed.join("grpo.toml")).unwrap();
    std::fs::write(changed.join("grpo.toml"), grpo.replace("n1 = 24", "n1 = 20")).unwrap();
    options.variants = vec!["default".into()];
    reproduce(&options, &changed, &dir.path().join("fourth"), &out, &stop).unwrap();
    assert_eq!(measured_names(&out), ["warm-start", "spiral-seed1"]);

    // Another study's report is refused before anything runs, and left as it was.
    let other = dir.path().join("other");
    options.variants = vec!["grpo".into()];
    options.overrides.push("warm_start.steps=3".into());
    let before = std::fs::read(out.join("results.json")).unwrap();
    let err = reproduce(&options, &configs, &other, &out, &stop).unwrap_err();
    assert!(format!("{err:#}").contains("measured by a study with other settings"), "{err:#}");
    assert!(!other.join("warm-start").exists(), "nothing was trained");
    assert_eq!(std::fs::read(out.join("results.json")).unwrap(), before);
    // Measured before models kept their configs, the report can never be continued: a call that
    // trains replaces it, and one that only rewrites the report is refused.
    let mut legacy: serde_json::Value = serde_json::from_slice(&before).unwrap();
    for m in legacy["measured"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("config");
    }
    std::fs::write(out.join("results.json"), legacy.to_string()).unwrap();
    let mut rewrite = options.clone();
    rewrite.variants.clear();
    let err = reproduce(&rewrite, &configs, &other, &out, &stop).unwrap_err();
    assert!(format!("{err:#}").contains("before models kept their configs"), "{err:#}");
    assert!(!other.join("warm-start").exists(), "nothing was trained");
    reproduce(&options, &configs, &other, &out, &stop).unwrap();
    assert!(other.join("grpo-seed1/checkpoints/step-1").exists(), "another warm start: rerun");
    assert_eq!(measured_names(&out), ["warm-start", "grpo-seed1"]);
}

/// A finished warm start from elsewhere stands in for training one, copied into the work
/// folder; one trained under other settings is refused with the keys that differ.
#[test]
fn a_study_starts_from_a_warm_start_trained_elsewhere_under_its_settings() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut options = tiny();
    options.seeds = vec![1];
    options.variants = vec![];
    let trained = dir.path().join("trained");
    reproduce(&options, &configs, &trained, &dir.path().join("out-a"), &stop).unwrap();

    options.variants = vec!["grpo".into()];
    options.warm_start = Some(trained.join("warm-start"));
    let work = dir.path().join("work");
    reproduce(&options, &configs, &work, &dir.path().join("out-b"), &stop).unwrap();
    let metrics = |run: &std::path::Path| std::fs::read(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics(&work.join("warm-start")), metrics(&trained.join("warm-start")));
    assert!(work.join("grpo-seed1/checkpoints/step-1").exists());

    // One kept beside the report is used without being named.
    let out = dir.path().join("out-c");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::rename(work.join("warm-start"), out.join("warm-start")).unwrap();
    options.warm_start = None;
    let beside = dir.path().join("beside");
    reproduce(&options, &configs, &beside, &out, &stop).unwrap();
    assert_eq!(metrics(&beside.join("warm-start")), metrics(&trained.join("warm-start")));
    options.warm_start = Some(trained.join("warm-start"));

    options.overrides.push("warm_start.steps=3".into());
    let err = reproduce(&options, &configs, &dir.path().join("w"), &dir.path().join("o"), &stop)
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("differing: warm_start.steps"), "{message}");
}

/// A run stopped half-way is kept beside the report; a later call from an empty work folder
/// resumes it there and ends with the weights of a run never stopped, then drops the copy.
#[test]
fn a_stopped_run_resumes_from_its_copy_beside_the_report() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let mut options = tiny();
    options.seeds = vec![1];
    options.variants = vec!["grpo".into()];
    options.overrides.push("train.steps=2".into());
    let weights = |work: &std::path::Path| {
        std::fs::read(work.join("grpo-seed1/checkpoints/step-2/model.safetensors")).unwrap()
    };
    let unstopped = dir.path().join("unstopped");
    let calm = Arc::new(AtomicBool::new(false));
    reproduce(&options, &configs, &unstopped, &dir.path().join("out-a"), &calm).unwrap();

    // The warm start first, then the RL run asked to stop: it ends after its first step.
    let out = dir.path().join("out");
    let first = dir.path().join("first");
    let mut warm_only = options.clone();
    warm_only.variants = vec![];
    reproduce(&warm_only, &configs, &first, &out, &calm).unwrap();
    let stopping = Arc::new(AtomicBool::new(true));
    let err = reproduce(&options, &configs, &first, &out, &stopping).unwrap_err();
    assert!(format!("{err:#}").contains("run the same command again"), "{err:#}");
    let kept = out.join("unfinished/grpo-seed1");
    assert!(kept.join("checkpoints/step-1/model.safetensors").exists());
    assert_eq!(std::fs::read_to_string(kept.join("checkpoints/latest")).unwrap(), "step-1");

    let second = dir.path().join("second");
    reproduce(&options, &configs, &second, &out, &calm).unwrap();
    assert!(second.join("grpo-seed1/checkpoints/step-1").exists(), "resumed, not restarted");
    assert_eq!(
        weights(&second),
        weights(&unstopped),
        "the resumed run ends where one never stopped"
    );
    assert!(!kept.exists(), "a measured run's copy is dropped");
    assert_eq!(measured_names(&out), ["warm-start", "grpo-seed1"]);
}

/// The tiny reproduction with one seed and its gate enforced (its two-step warm start fails
/// it), changed by `adjust`: the work folder (kept while the returned directory lives) and the
/// report's text.
fn gated_reproduction(
    adjust: impl FnOnce(&mut ReproOptions),
) -> (tempfile::TempDir, PathBuf, String) {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let mut options = tiny();
    options.ignore_gate = false;
    options.seeds = vec![1];
    adjust(&mut options);
    let stop = Arc::new(AtomicBool::new(false));
    let report = reproduce(&options, &configs, &work, &out, &stop).unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("The gate does not pass"), "{text}");
    (dir, work, text)
}

/// A warm start that fails the aggregator gate starts no RL run unless asked to, and its report
/// says so; the warm start is still measured.
#[test]
fn a_failed_gate_starts_no_rl_run() {
    let (_dir, work, text) = gated_reproduction(|_| {});
    assert!(text.contains("were therefore not started"), "{text}");
    assert!(text.contains("No RL run measured yet"), "{text}");
    assert!(work.join("measure/warm-start.json").exists());
    let runs: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with("-seed1"))
        .collect();
    assert!(runs.is_empty(), "{runs:?}");
}

/// Arith, the control task, starts its RL runs whatever its gate says.
#[test]
fn the_control_task_runs_whatever_its_gate() {
    let (_dir, work, text) = gated_reproduction(|options| {
        options.variants = vec!["grpo".into()];
        options.overrides.push("task.kind=\"arith\"".into());
    });
    assert!(!text.contains("were therefore not started"), "{text}");
    assert!(work.join("grpo-seed1/checkpoints/step-1").exists());
}

#[test]
fn a_lora_reproduction_gives_every_run_the_frozen_base() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let mut options = tiny();
    options.seeds = vec![1];
    options.overrides.extend(["lora.enabled=true".into(), "lora.rank=2".into()]);
    let stop = Arc::new(AtomicBool::new(false));
    let report =
        reproduce(&options, &configs, &dir.path().join("work"), &dir.path().join("out"), &stop)
            .unwrap();
    assert!(report.exists());
    let run = dir.path().join("work/spiral-seed1/checkpoints");
    assert!(run.join("base/model.safetensors").exists());
    assert!(run.join("step-1/adapter_model.safetensors").exists());
}

#[test]
fn measurements_sample_traces_as_long_as_the_runs_do() {
    let full = ReproOptions::full();
    let run = spiral_train::RunConfig::default_with(&[
        "rollout.max_new_tokens=96".into(),
        "rollout.temperature=0.7".into(),
    ])
    .unwrap();
    let measured = full.sampling_as(&run);
    assert_eq!(measured.measure.max_new_tokens, 96);
    assert_eq!(measured.measure.temperature, 0.7);
    assert_eq!(measured.measure.budgets, [24, 48, 72, 96]);
    // Aggregation over the trained set size at most (4 traces per set by default).
    assert_eq!(
        (full.measure.n_max, measured.measure.n_max, measured.measure.pipeline_n),
        (16, 4, 4)
    );
    let wider = full.sampling_as(
        &spiral_train::RunConfig::default_with(&["algorithm.n1=16".into(), "algorithm.n=8".into()])
            .unwrap(),
    );
    assert_eq!((wider.measure.n_max, wider.measure.pipeline_n), (8, 8));
    let default = spiral_train::RunConfig::default_with(&[]).unwrap();
    let same = full.sampling_as(&default);
    assert_eq!(same.measure, MeasureOptions { n_max: 4, ..full.measure });
}

/// A task's study traces fit its token limit: the longest of four warm-start traces of each of
/// its 2,000 training problems (for combination, every part failing all its tries on two-digit
/// values; for Countdown, four tries on large numbers) and its end-of-sequence token, with the
/// limit not much looser than that.
fn longest_trace_fits(task: &str) -> spiral_train::RunConfig {
    use rand::SeedableRng;
    let mut overrides = spiral_repro::task_overrides(task);
    overrides.push(format!("task.kind={task:?}"));
    let config = spiral_train::RunConfig::default_with(&overrides).unwrap();
    let data = spiral_train::TaskData::new(&config.task, None, 1).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut longest = 0;
    for p in &data.train {
        for _ in 0..4 {
            longest = longest.max(data.trace(p, &mut rng).unwrap().chars().count());
        }
    }
    // Characters are tokens for a model trained from scratch; one more for the end token.
    assert!(longest < config.rollout.max_new_tokens, "{task}: {longest}");
    assert!(longest + 1 > config.rollout.max_new_tokens - 10, "{task}: {longest}, a loose limit");
    config
}

#[test]
fn the_combination_setting_fits_its_longest_trace() {
    let config = longest_trace_fits("combination");
    let c = &config.task.combination;
    assert_eq!((c.parts, c.tries), (2, 4));
    assert_eq!((config.warm_start.steps, config.warm_start.aggregator_steps), (2000, 0));
}

#[test]
fn the_countdown_setting_fits_its_longest_trace() {
    let config = longest_trace_fits("countdown");
    assert_eq!(config.task.countdown.tries, 4);
    assert_eq!((config.warm_start.steps, config.warm_start.aggregator_steps), (5000, 0));
    assert!(spiral_repro::task_overrides("arith").is_empty());
}

/// A task's settings override a study's (combination trains no aggregator stage, though the
/// study's default has one) but not a quick check's short warm start; `--set` overrides both.
#[test]
fn task_settings_sit_between_the_mode_and_the_command_line() {
    let config = |mut options: ReproOptions, task: &str, extra: &[&str]| {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        options.set_task(task, &extra);
        spiral_train::RunConfig::default_with(&options.overrides).unwrap()
    };
    let study = config(ReproOptions::study(), "combination", &[]);
    assert_eq!(study.task.kind.name(), "combination");
    assert_eq!((study.warm_start.steps, study.warm_start.aggregator_steps), (2000, 0));
    assert_eq!(study.train.steps, 300);
    let quick = config(ReproOptions::quick(), "countdown", &[]);
    assert_eq!((quick.warm_start.steps, quick.train.steps), (150, 8));
    assert_eq!(quick.task.countdown.tries, 4);
    let set = config(ReproOptions::study(), "countdown", &["warm_start.steps=6000"]);
    assert_eq!(set.warm_start.steps, 6000);
}

/// Two invocations at once on one work folder and one report, with different settings: one
/// trains the shared warm start while the other waits for it, and the report ends with both
/// models, whichever wrote it last.
#[test]
fn invocations_running_at_once_share_the_warm_start_and_the_report() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let dir = tempfile::tempdir().unwrap();
    let (work, out) = (dir.path().join("work"), dir.path().join("out"));
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let calls: Vec<_> = ["grpo", "dr_grpo"]
            .into_iter()
            .map(|setting| {
                let mut options = tiny();
                options.seeds = vec![1];
                options.variants = vec![setting.into()];
                let (configs, work, out, stop) = (&configs, &work, &out, &stop);
                scope.spawn(move || reproduce(&options, configs, work, out, stop))
            })
            .collect();
        for call in calls {
            call.join().unwrap().unwrap();
        }
    });
    assert_eq!(measured_names(&out), ["warm-start", "grpo-seed1", "dr_grpo-seed1"]);

    // The same run asked of a second process while the first trains it is refused by name.
    let mut options = tiny();
    options.seeds = vec![2];
    options.variants = vec!["grpo".into()];
    let held = std::fs::File::create(work.join("grpo-seed2.lock")).unwrap();
    held.lock().unwrap();
    let err = reproduce(&options, &configs, &work, &out, &stop).unwrap_err();
    assert!(
        format!("{err:#}").contains("grpo-seed2 is being trained by another process"),
        "{err:#}"
    );
}
