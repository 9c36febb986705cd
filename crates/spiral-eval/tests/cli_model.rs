//! `spiral-eval logprobs` and `generate` on the fixture checkpoints: the numbers transformers
//! computed, and one clear line with exit code 2 for a bad path or checkpoint.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures").join(name)
}

fn spiral_eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spiral-eval")).args(args).output().unwrap()
}

fn expected(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("expected.json")).unwrap())
        .unwrap()
}

#[test]
fn logprobs_json_matches_transformers() {
    let exp = expected("qwen2");
    let case = &exp["logprob_cases"][1];
    let model = fixture("qwen2");
    let out = spiral_eval(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        case["prompt"].as_str().unwrap(),
        "--completion",
        case["completion"].as_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompt_len = case["prompt_len"].as_u64().unwrap() as usize;
    let ids: Vec<u64> = case["input_ids"].as_array().unwrap()[prompt_len..]
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let got_ids: Vec<u64> =
        got["token_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(got_ids, ids);
    for (g, e) in
        got["logprobs"].as_array().unwrap().iter().zip(case["logprobs"].as_array().unwrap())
    {
        assert!((g.as_f64().unwrap() - e.as_f64().unwrap()).abs() < 1e-4);
    }
}

#[test]
fn greedy_generate_matches_transformers() {
    for name in ["qwen3", "llama"] {
        let exp = expected(name);
        let model = fixture(name);
        let out = spiral_eval(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            exp["greedy"]["prompt"].as_str().unwrap(),
            "--max-new-tokens",
            "24",
            "--greedy",
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got["token_ids"], exp["greedy"]["new_ids"], "{name}");
        assert!(got["text"].is_string());
    }
}

#[test]
fn sampling_is_seeded_and_chat_renders() {
    let model = fixture("qwen3");
    let run = |seed: &str| {
        let out = spiral_eval(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "What is 2 + 2?",
            "--chat",
            "--max-new-tokens",
            "12",
            "--temperature",
            "0.8",
            "--top-p",
            "0.9",
            "--seed",
            seed,
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["token_ids"].clone()
    };
    assert_eq!(run("3"), run("3"));
    assert_ne!(run("3"), run("4"));
}

#[test]
fn n_samples_come_from_one_prompt() {
    let model = fixture("qwen2");
    let out = spiral_eval(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "The quick",
        "--n",
        "3",
        "--max-new-tokens",
        "6",
        "--temperature",
        "1.0",
        "--seed",
        "9",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["sample"], i);
        let len = line["token_ids"].as_array().unwrap().len();
        // A random model may sample an EOS early; otherwise the sample runs to the limit.
        let want = if len == 6 { "length" } else { "eos" };
        assert!(len <= 6);
        assert_eq!(line["finish_reason"], want, "{line}");
    }
    assert_ne!(lines[0]["token_ids"], lines[1]["token_ids"]);
}

#[test]
fn bad_paths_and_checkpoints_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), "{ broken").unwrap();
    for model in ["/no/such/model".to_string(), tmp.path().display().to_string()] {
        let out = spiral_eval(&["generate", "--model", &model, "--prompt", "x", "--greedy"]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line, got: {stderr}");
        assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{stderr}");
    }
    let out = spiral_eval(&[
        "logprobs",
        "--model",
        "/no/such/model",
        "--prompt",
        "a",
        "--completion",
        "b",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
