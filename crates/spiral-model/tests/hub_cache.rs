//! Models and PEFT adapters named by hub id and found in a local Hugging Face cache laid out as
//! `huggingface_hub` writes it (`models--org--name/{refs,snapshots,blobs}`), and adapters loaded
//! onto a base given explicitly, as `PeftModel.from_pretrained(base, adapter)` does.

mod common;

use std::path::{Path, PathBuf};

use common::{B, expected, fixture, to_vec};
use spiral_model::lora::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use spiral_model::{CausalLm, Checkpoint, HubCache, ModelConfig, ModelError, save_pretrained};

const COMMIT: &str = "4e3b1c0d9a8f7e6d5c4b3a29181706f5e4d3c2b1";
const LOGPROB_TOLERANCE: f64 = 1e-4;

/// Puts the files of `source` into `cache` as `repo` at COMMIT, with `refs/main` naming it and
/// every file a symlink into `blobs/` (copies where symlinks are unavailable).
fn add_to_cache(cache: &Path, repo: &str, source: &Path) -> PathBuf {
    let folder = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = folder.join("snapshots").join(COMMIT);
    for dir in [&snapshot, &folder.join("refs"), &folder.join("blobs")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(folder.join("refs/main"), COMMIT).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let blob = folder.join("blobs").join(format!("blob-{name}"));
        std::fs::copy(&path, &blob).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(format!("../../blobs/blob-{name}"), snapshot.join(&name))
            .unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&blob, snapshot.join(&name)).unwrap();
    }
    snapshot
}

/// A copy of the qwen3_lora adapter with `base_model_name_or_path` set to `base`.
fn adapter_naming(base: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [ADAPTER_CONFIG, ADAPTER_WEIGHTS] {
        std::fs::copy(fixture("qwen3_lora").join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().join(ADAPTER_CONFIG);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["base_model_name_or_path"] = serde_json::Value::from(base);
    std::fs::write(&path, json.to_string()).unwrap();
    dir
}

fn logprobs(model: &CausalLm<B>) -> Vec<Vec<f32>> {
    let seq: Vec<u32> = (0..16).map(|i| (i * 29 + 3) % 400).collect();
    to_vec(model.token_logprobs(&[seq], &[1], false).unwrap().logprobs)
}

/// Worst difference from PEFT's log-probs on the qwen3_lora cases.
fn worst_vs_peft(model: &CausalLm<B>) -> f64 {
    let mut worst: f64 = 0.0;
    for case in expected("qwen3_lora").logprob_cases {
        let got =
            &to_vec(model.token_logprobs(&[case.input_ids], &[1], false).unwrap().logprobs)[0];
        for (g, e) in got.iter().zip(&case.full_logprobs) {
            worst = worst.max((*g as f64 - e).abs());
        }
    }
    worst
}

#[test]
fn a_cached_model_loads_by_id_and_revision() {
    let root = tempfile::tempdir().unwrap();
    let snapshot = add_to_cache(root.path(), "tiny/qwen3", &fixture("qwen3"));
    let cache = HubCache::at(root.path());
    let device = Default::default();
    let local = Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap();
    for name in ["tiny/qwen3".to_string(), "tiny/qwen3@main".into(), format!("tiny/qwen3@{COMMIT}")]
    {
        let ckpt = Checkpoint::<B>::load_in(&cache, &name, &device).unwrap();
        assert_eq!(ckpt.dir, snapshot);
        assert_eq!(logprobs(&ckpt.model), logprobs(&local.model), "{name}");
    }
    let e = Checkpoint::<B>::load_in(&cache, "tiny/qwen4", &device).unwrap_err();
    assert!(matches!(e, ModelError::NotFound { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("models--tiny--qwen4") && e.contains("huggingface-cli download"), "{e}");
}

#[test]
fn an_adapter_id_loads_onto_the_cached_base_it_names() {
    let root = tempfile::tempdir().unwrap();
    add_to_cache(root.path(), "tiny/qwen3", &fixture("qwen3"));
    let adapter = adapter_naming("tiny/qwen3");
    add_to_cache(root.path(), "tiny/qwen3-lora", adapter.path());
    let cache = HubCache::at(root.path());
    let device = Default::default();
    let ckpt = Checkpoint::<B>::load_in(&cache, "tiny/qwen3-lora", &device).unwrap();
    assert!(worst_vs_peft(&ckpt.model) < LOGPROB_TOLERANCE);

    // The base named in a local adapter folder is looked up in the cache too.
    let ckpt = Checkpoint::<B>::load_in(&cache, adapter.path(), &device).unwrap();
    assert!(worst_vs_peft(&ckpt.model) < LOGPROB_TOLERANCE);

    // A base the cache lacks: the adapter config, the key and the searched folders are named.
    let adapter = adapter_naming("tiny/absent");
    let e = Checkpoint::<B>::load_in(&cache, adapter.path(), &device).unwrap_err().to_string();
    assert!(e.contains(ADAPTER_CONFIG) && e.contains("base_model_name_or_path"), "{e}");
    assert!(e.contains("models--tiny--absent"), "{e}");
}

#[test]
fn an_adapter_base_is_found_beside_the_adapter_then_in_the_working_directory() {
    let device = Default::default();
    // Relative to the adapter folder: a copy of the base beside it.
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    for entry in std::fs::read_dir(fixture("qwen3")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, base.join(path.file_name().unwrap())).unwrap();
    }
    let adapter = root.path().join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    let named = adapter_naming("../base");
    for f in [ADAPTER_CONFIG, ADAPTER_WEIGHTS] {
        std::fs::copy(named.path().join(f), adapter.join(f)).unwrap();
    }
    let ckpt = Checkpoint::<B>::load(&adapter, &device).unwrap();
    assert!(worst_vs_peft(&ckpt.model) < LOGPROB_TOLERANCE);

    // Relative to the working directory (the crate's folder under `cargo test`).
    let named = adapter_naming("tests/fixtures/qwen3");
    let ckpt = Checkpoint::<B>::load(named.path(), &device).unwrap();
    assert!(worst_vs_peft(&ckpt.model) < LOGPROB_TOLERANCE);
}

#[test]
fn an_explicit_base_overrides_the_one_the_adapter_names() {
    let device = Default::default();
    let root = tempfile::tempdir().unwrap();
    add_to_cache(root.path(), "tiny/qwen3", &fixture("qwen3"));
    add_to_cache(root.path(), "tiny/qwen3-lora", adapter_naming("nowhere/at-all").path());
    let cache = HubCache::at(root.path());
    for (base, adapter) in [
        ("tiny/qwen3", "tiny/qwen3-lora"),
        (fixture("qwen3").to_str().unwrap(), "tiny/qwen3-lora"),
        ("tiny/qwen3", fixture("qwen3_lora").to_str().unwrap()),
    ] {
        let ckpt = Checkpoint::<B>::load_with_adapter_in(&cache, base, adapter, &device).unwrap();
        assert!(ckpt.model.lora().is_some());
        assert!(worst_vs_peft(&ckpt.model) < LOGPROB_TOLERANCE, "{base} + {adapter}");
    }
    let e = Checkpoint::<B>::load_with_adapter_in(&cache, "tiny/qwen3", "tiny/qwen3", &device)
        .unwrap_err()
        .to_string();
    assert!(e.contains(ADAPTER_CONFIG) && e.contains("not a PEFT adapter folder"), "{e}");
}

#[test]
fn a_base_of_other_shapes_is_refused_naming_the_module_and_both_shapes() {
    let device = Default::default();
    // qwen3's adapters project 64 -> 128 in q_proj (4 heads of 32); this base has heads of 16.
    let dir = tempfile::tempdir().unwrap();
    let reference = Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap();
    let mut config: ModelConfig = reference.model.config().clone();
    config.head_dim = 16;
    let model = CausalLm::<B>::random(config, 1, 0.02, &device).unwrap();
    save_pretrained(&model, &reference.tokenizer, dir.path()).unwrap();
    let e =
        Checkpoint::<B>::load_with_adapter(dir.path(), fixture("qwen3_lora"), &device).unwrap_err();
    assert!(matches!(e, ModelError::AdapterMismatch { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("`model.layers.0.self_attn.q_proj`"), "{e}");
    assert!(e.contains("[128, 4]") && e.contains("[64, 64]"), "{e}");
}
