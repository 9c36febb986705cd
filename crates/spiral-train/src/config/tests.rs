//! Tests of run configs: defaults, overrides, ranges and the relations between values.

use super::*;

#[test]
fn the_embedded_default_is_valid() {
    let c = RunConfig::default_with(&[]).unwrap();
    assert_eq!(c.algorithm.name, Algorithm::Spiral);
    let again = RunConfig::from_toml(&c.to_toml(), "resolved", &[]).unwrap();
    assert_eq!(c, again, "the resolved config reloads to itself");
}

/// Every numeric key, optional ones set, has a documented range, and every documented
/// range is a key; `docs/config.md` lists them.
#[test]
fn every_numeric_key_has_a_documented_range() {
    let full = RunConfig::default_with(
        &[
            "run.peak_flops=1e12",
            "model.num_kv_heads=2",
            "model.head_dim=32",
            "model.intermediate_size=256",
            "model.max_position_embeddings=512",
            "algorithm.tokens_per_problem=640",
            "train.seed=3",
            "train.loss.dual_clip=3.0",
            "train.loss.aggregation={mode = \"seq-mean-token-sum-norm\", max_len = 64}",
        ]
        .map(String::from),
    )
    .unwrap();
    let keys: Vec<String> = crate::ranges::numeric_keys(&toml::Table::try_from(&full).unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for key in &keys {
        let documented = crate::ranges::RANGES.iter().any(|(k, _, _)| k == key);
        assert!(documented, "{key} has no range in ranges::RANGES");
    }
    for (key, _, _) in crate::ranges::RANGES {
        assert!(keys.iter().any(|k| k == key), "{key} is documented but no config has it");
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let text = std::fs::read_to_string(&docs).unwrap();
    assert!(
        text.contains(&crate::ranges::markdown()),
        "docs/config.md does not hold the table of ranges::markdown(); paste it in:\n{}",
        crate::ranges::markdown()
    );
}

#[test]
fn out_of_range_values_are_refused_naming_the_key_value_and_range() {
    for (set, expected) in [
        ("train.optim.lr=-0.001", "train.optim.lr = -0.001 is out of range: expected > 0"),
        ("rollout.top_p=1.5", "rollout.top_p = 1.5 is out of range: expected (0, 1]"),
        ("lora.dropout=1.0", "lora.dropout = 1 is out of range: expected [0, 1)"),
        ("train.epochs=0", "train.epochs = 0 is out of range: expected >= 1"),
    ] {
        let err = RunConfig::default_with(&[set.to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains(expected), "{set}: {err:#}");
    }
}

#[test]
fn every_shipped_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            RunConfig::from_file(&path, &[]).unwrap();
            checked += 1;
        }
    }
    assert!(checked >= 5, "default, the three algorithm configs and the GPU config");
}

/// The per-algorithm configs are the default run with another `[algorithm]` (and run name):
/// retuning the default must retune them, or the comparison is not like for like.
#[test]
fn algorithm_configs_differ_from_the_default_only_in_the_algorithm() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let default = RunConfig::default_with(&[]).unwrap();
    // The default (SPIRAL) run generates at most this many tokens per problem.
    let budget = default.traces_per_problem() * default.train_max_new_tokens();
    for name in ["grpo", "dr_grpo", "paragator"] {
        let mut config = RunConfig::from_file(&dir.join(format!("{name}.toml")), &[]).unwrap();
        assert_eq!(config.algorithm.tokens_per_problem, Some(budget), "{name}: matched compute");
        config.run.name = default.run.name.clone();
        config.algorithm = default.algorithm.clone();
        assert_eq!(config, default, "{name}.toml differs from default.toml outside [algorithm]");
    }
}

#[test]
fn matched_compute_shares_the_token_budget() {
    let spiral = RunConfig::default_with(&["algorithm.tokens_per_problem=1152".into()]).unwrap();
    assert_eq!(spiral.traces_per_problem(), 8 + 8 * 2);
    assert_eq!(spiral.train_max_new_tokens(), 48);
    let grpo = RunConfig::default_with(&[
        "algorithm.name=grpo".into(),
        "algorithm.n1=12".into(),
        "algorithm.tokens_per_problem=1152".into(),
    ])
    .unwrap();
    assert_eq!(grpo.train_max_new_tokens(), 96, "12 traces of twice the length");
    let err = RunConfig::default_with(&["algorithm.tokens_per_problem=10".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokens_per_problem"), "{err}");
}

#[test]
fn overrides_apply_and_are_typed() {
    let c = RunConfig::default_with(&[
        "algorithm.n1=6".into(),
        "algorithm.name=grpo".into(),
        "train.optim.lr=1e-4".into(),
    ])
    .unwrap();
    assert_eq!((c.algorithm.n1, c.algorithm.name, c.train.optim.lr), (6, Algorithm::Grpo, 1e-4));
}

#[test]
fn the_schedule_spans_the_rl_phase() {
    let c = RunConfig::default_with(&["train.steps=40".into(), "train.epochs=2".into()]).unwrap();
    assert_eq!(c.rl_optim().total_steps, 80);
    assert!(c.to_toml().contains("total_steps = 80"), "the saved config shows it");
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let err = RunConfig::default_with(&["algorithm.n3=4".into()]).unwrap_err().to_string();
    assert!(err.contains("n3"), "{err}");
    let err = RunConfig::default_with(&["nosuch.key=1".into()]).unwrap_err().to_string();
    assert!(err.contains("nosuch"), "{err}");
    let err = RunConfig::default_with(&["algorithm.k=71".into()]).unwrap_err().to_string();
    assert!(err.contains("algorithm.k") && err.contains("70"), "{err}");
    let err = RunConfig::default_with(&["algorithm.n=9".into()]).unwrap_err().to_string();
    assert!(err.contains("algorithm.n "), "{err}");
    let err = RunConfig::from_toml("[run]\nname = 3", "bad.toml", &[]).unwrap_err().to_string();
    assert!(err.contains("bad.toml"), "{err}");
}
