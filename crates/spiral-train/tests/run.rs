//! Two RL steps of each algorithm on a tiny config, end to end: warm start, collection,
//! learning, evaluation, and the run folder (config, metrics, checkpoints, report).

use spiral_train::{RunConfig, run};

fn tiny(algorithm: &str) -> RunConfig {
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
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    RunConfig::default_with(&overrides).unwrap()
}

#[test]
fn every_algorithm_runs_two_steps() {
    for algorithm in ["spiral", "grpo", "dr_grpo"] {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(algorithm);
        let last = run(&config, dir.path()).unwrap();
        assert_eq!(last.problems, 4);
        let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> =
            metrics.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let train: Vec<_> = lines.iter().filter(|l| l["kind"] == "train").collect();
        let evals: Vec<_> = lines.iter().filter(|l| l["kind"] == "eval").collect();
        assert_eq!(train.len(), 2, "{algorithm}");
        assert_eq!(evals.len(), 3, "{algorithm}: warm start and after each step");
        for l in &train {
            for key in [
                "search_reward",
                "loss",
                "lr",
                "grad_norm",
                "generated_tokens",
                "rollout_seconds",
                "learn_seconds",
            ] {
                assert!(l.get(key).is_some(), "{algorithm}: train line lacks {key}");
            }
        }
        assert_eq!(train[0]["aggregation_reward"].is_null(), algorithm != "spiral");
        for e in &evals {
            for key in ["pass@1", "maj@n", "agg@1", "pass@2"] {
                assert!(
                    e[key].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
                    "{algorithm}: {key}"
                );
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
    }
}
