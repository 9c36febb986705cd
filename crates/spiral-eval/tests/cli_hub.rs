//! Model and adapter arguments given as hub ids, found in the Hugging Face cache the environment
//! names (`HF_HUB_CACHE`, `HF_HOME`), and `--adapter` loading a PEFT adapter onto `--model`:
//! the log-probs PEFT computed for the fixture adapter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMMIT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures").join(name)
}

/// `spiral-eval` with only the Hugging Face variables given here set.
fn spiral_eval(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spiral-eval"));
    for var in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).args(args).output().unwrap()
}

/// Copies `source` into the cache at `root` as `repo`, at COMMIT with `refs/main` naming it.
fn add_to_cache(root: &Path, repo: &str, source: &Path) {
    let folder = root.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = folder.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(folder.join("refs")).unwrap();
    std::fs::write(folder.join("refs/main"), COMMIT).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
    }
}

/// The second qwen3_lora case: prompt, completion, and PEFT's log-probs of the completion.
fn peft_case() -> (String, String, Vec<f64>) {
    let text = std::fs::read_to_string(fixture("qwen3_lora").join("expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = &json["logprob_cases"][1];
    let logprobs = case["logprobs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
    (
        case["prompt"].as_str().unwrap().into(),
        case["completion"].as_str().unwrap().into(),
        logprobs.collect(),
    )
}

fn assert_peft_logprobs(out: &Output, expected: &[f64]) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = got["logprobs"].as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!((g.as_f64().unwrap() - e).abs() < 1e-4, "{g} vs {e}");
    }
}

#[test]
fn ids_resolve_in_the_cache_the_environment_names() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join("hub");
    add_to_cache(&hub, "tiny/qwen3", &fixture("qwen3"));
    add_to_cache(&hub, "tiny/qwen3-lora", &fixture("qwen3_lora"));
    let (prompt, completion, expected) = peft_case();
    let logprobs = |model: &str, adapter: Option<&str>, env: &[(&str, &Path)]| {
        let mut args = vec!["logprobs", "--model", model, "--prompt", &prompt];
        args.extend(["--completion", &completion, "--json"]);
        if let Some(adapter) = adapter {
            args.extend(["--adapter", adapter]);
        }
        spiral_eval(&args, env)
    };
    // Base and adapter both by id, through HF_HUB_CACHE, then through HF_HOME.
    let out = logprobs("tiny/qwen3", Some("tiny/qwen3-lora@main"), &[("HF_HUB_CACHE", &hub)]);
    assert_peft_logprobs(&out, &expected);
    let out = logprobs("tiny/qwen3", Some("tiny/qwen3-lora"), &[("HF_HOME", home.path())]);
    assert_peft_logprobs(&out, &expected);
    // A local adapter folder onto a cached base.
    let adapter = fixture("qwen3_lora");
    let out = logprobs("tiny/qwen3", adapter.to_str(), &[("HF_HUB_CACHE", &hub)]);
    assert_peft_logprobs(&out, &expected);

    // A miss names the folder searched and the command that fills the cache, on one line.
    let out = logprobs("tiny/absent", None, &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&hub.join("models--tiny--absent").display().to_string()), "{stderr}");
    assert!(stderr.contains("huggingface-cli download tiny/absent"), "{stderr}");
}

#[test]
fn adapter_on_generate_matches_the_adapter_folder_loaded_alone() {
    let base = fixture("qwen3");
    let adapter = fixture("qwen3_lora");
    let generate = |extra: &[&str]| {
        let mut args = vec!["generate", "--prompt", "The quick brown fox", "--greedy"];
        args.extend(["--max-new-tokens", "8", "--json"]);
        args.extend(extra);
        let out = spiral_eval(&args, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let explicit =
        generate(&["--model", base.to_str().unwrap(), "--adapter", adapter.to_str().unwrap()]);
    let alone = generate(&["--model", adapter.to_str().unwrap()]);
    let plain = generate(&["--model", base.to_str().unwrap()]);
    assert_eq!(explicit, alone);
    assert_ne!(explicit, plain, "the adapter changes the greedy tokens");

    // An adapter that does not fit the base: the module and both shapes, exit code 2.
    let llama = fixture("llama");
    let out = spiral_eval(
        &["generate", "--model", llama.to_str().unwrap(), "--adapter", adapter.to_str().unwrap()]
            .into_iter()
            .chain(["--prompt", "x", "--greedy"])
            .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("self_attn.q_proj") && stderr.contains("[64, 64]"), "{stderr}");
}

#[test]
fn export_merges_the_adapter_into_a_plain_folder_in_the_dtype_asked_for() {
    let base = fixture("qwen3");
    let adapter = fixture("qwen3_lora");
    let (prompt, completion, expected) = peft_case();
    let tmp = tempfile::tempdir().unwrap();
    let export = |out: &Path, extra: &[&str]| {
        let mut args = vec!["export", "--model", base.to_str().unwrap()];
        args.extend(["--adapter", adapter.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        args.extend(extra);
        let run = spiral_eval(&args, &[]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    };
    let logprobs = |model: &Path| {
        let args = ["logprobs", "--model", model.to_str().unwrap(), "--prompt", &prompt];
        spiral_eval(&[&args[..], &["--completion", &completion, "--json"]].concat(), &[])
    };

    // Float32, sharded: no adapter files, an index, and PEFT's log-probs without PEFT.
    let merged = tmp.path().join("merged");
    export(&merged, &["--max-shard-size", "100KB"]);
    assert!(merged.join("model.safetensors.index.json").is_file());
    assert!(!merged.join("adapter_config.json").exists());
    assert_peft_logprobs(&logprobs(&merged), &expected);

    // bfloat16: half the bytes, config.json says so, log-probs within bf16 rounding.
    let bf16 = tmp.path().join("bf16");
    export(&bf16, &["--save-dtype", "bfloat16"]);
    let config = std::fs::read_to_string(bf16.join("config.json")).unwrap();
    assert!(config.contains("\"torch_dtype\": \"bfloat16\""), "{config}");
    let f32_bytes: u64 = std::fs::read_dir(&merged)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let bf16_bytes = std::fs::metadata(bf16.join("model.safetensors")).unwrap().len();
    assert!(bf16_bytes * 2 < f32_bytes + 16_384, "{bf16_bytes} vs {f32_bytes}");
    let out = logprobs(&bf16);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (g, e) in got["logprobs"].as_array().unwrap().iter().zip(&expected) {
        assert!((g.as_f64().unwrap() - e).abs() < 0.05, "{g} vs {e}");
    }

    // A bad size is refused by name before anything is loaded.
    let run =
        spiral_eval(&["export", "--model", "x", "--out", "y", "--max-shard-size", "5TB"], &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("max-shard-size"));
}
