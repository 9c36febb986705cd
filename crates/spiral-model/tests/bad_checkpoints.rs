//! A bad checkpoint gives an error that names the file and key at fault and what was expected:
//! missing, unexpected and misshapen weights, truncated safetensors, malformed `config.json`,
//! unsupported features, a missing or broken tokenizer, a missing shard.

mod common;

use std::path::{Path, PathBuf};

use common::{B, fixture};
use spiral_model::{Checkpoint, ModelError, hf_tensors, write_safetensors};

/// A private copy of a fixture folder that a test may damage.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    (tmp, dir)
}

fn load_err(dir: &Path) -> String {
    let err: ModelError = Checkpoint::<B>::load(dir, &Default::default()).unwrap_err();
    err.to_string()
}

/// Rewrites `model.safetensors` with `edit` applied to the (name, shape, values) list.
fn rewrite_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    let model = Checkpoint::<B>::load(dir, &Default::default()).unwrap().model;
    let mut tensors = hf_tensors(&model);
    edit(&mut tensors);
    write_safetensors(&dir.join("model.safetensors"), tensors, None).unwrap();
}

#[test]
fn missing_weight_is_named() {
    let (_tmp, dir) = copy_fixture("qwen3");
    rewrite_weights(&dir, |t| {
        t.retain(|(name, _, _)| name != "model.layers.1.self_attn.k_norm.weight")
    });
    let err = load_err(&dir);
    assert!(err.contains("missing weight `model.layers.1.self_attn.k_norm.weight`"), "{err}");
    assert!(err.contains("[32]"), "expected shape should be stated: {err}");
}

#[test]
fn unexpected_weight_is_named() {
    let (_tmp, dir) = copy_fixture("qwen3");
    rewrite_weights(&dir, |t| {
        t.push(("model.layers.0.mlp.extra.weight".into(), vec![2], vec![0.0, 1.0]))
    });
    let err = load_err(&dir);
    assert!(
        err.contains("unexpected weight") && err.contains("model.layers.0.mlp.extra.weight"),
        "{err}"
    );
}

#[test]
fn shape_mismatch_is_named_with_both_shapes() {
    let (_tmp, dir) = copy_fixture("qwen3");
    rewrite_weights(&dir, |t| {
        let entry = t.iter_mut().find(|(n, _, _)| n == "model.norm.weight").unwrap();
        entry.1 = vec![32];
        entry.2.truncate(32);
    });
    let err = load_err(&dir);
    assert!(
        err.contains("model.norm.weight") && err.contains("[32]") && err.contains("[64]"),
        "{err}"
    );
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn truncated_file_is_refused() {
    let (_tmp, dir) = copy_fixture("qwen3");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors") && err.contains("invalid safetensors"), "{err}");
    std::fs::write(&path, &bytes[..5]).unwrap();
    assert!(load_err(&dir).contains("invalid safetensors"));
}

#[test]
fn malformed_config_names_the_file_and_position() {
    let (_tmp, dir) = copy_fixture("qwen2");
    let path = dir.join("config.json");
    std::fs::write(&path, "{\"model_type\": \"qwen2\", \"vocab_size\": }").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("config.json") && err.contains("line 1"), "{err}");
    std::fs::write(&path, "{\"model_type\": \"qwen2\"}").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("config.json") && err.contains("vocab_size"), "{err}");
}

#[test]
fn config_weights_mismatch_is_a_shape_error() {
    let (_tmp, dir) = copy_fixture("qwen2");
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"intermediate_size\": 128", "\"intermediate_size\": 96");
    std::fs::write(&path, text).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("mlp.gate_proj.weight") && err.contains("[96, 64]"), "{err}");
}

#[test]
fn unsupported_feature_is_refused_by_name() {
    let (_tmp, dir) = copy_fixture("qwen3");
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"use_sliding_window\": false", "\"use_sliding_window\": true");
    std::fs::write(&path, text).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("use_sliding_window") && err.contains("config.json"), "{err}");
}

#[test]
fn missing_shard_is_named() {
    let (_tmp, dir) = copy_fixture("llama");
    std::fs::remove_file(dir.join("model-00002-of-00003.safetensors")).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model-00002-of-00003.safetensors"), "{err}");
}

#[test]
fn tokenizer_problems_are_named() {
    let (_tmp, dir) = copy_fixture("qwen3");
    std::fs::write(dir.join("tokenizer.json"), "{not json").unwrap();
    let err = load_err(&dir);
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("tokenizer.json") && err.contains("not found"), "{err}");
}

#[test]
fn missing_folder_and_missing_weights_are_named() {
    let err = load_err(Path::new("/nonexistent/model"));
    assert!(err.contains("/nonexistent/model"), "{err}");
    let (_tmp, dir) = copy_fixture("qwen3");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("model.safetensors"), "{err}");
}
