//! `spiral-eval sample` and `rsa` end to end on the random tiny Qwen3 fixture: rewards are ~0, so
//! these check the mechanics (lines, fields, ids, rounds, engine calls, seeding, the report, and
//! what `passk` makes of the samples file) and one-line errors with exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn model() -> String {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures/qwen3");
    dir.to_str().unwrap().to_owned()
}

fn spiral_eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spiral-eval")).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A one-line error with exit code 2 whose message contains `needle`.
fn fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{stderr}");
}

/// Three arithmetic problems: one with an `id`, two named by their line (a blank line between).
const DATA: &str = "{\"id\": \"first\", \"problem\": \"2+3\", \"answer\": 5}\n\
                    {\"problem\": \"4*2\", \"answer\": 8}\n\
                    \n\
                    {\"problem\": \"9-1\", \"answer\": 8}\n";

fn data(dir: &Path, text: &str) -> String {
    let path = dir.join("data.jsonl");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn sample(data: &str, extra: &[&str]) -> Output {
    let model = model();
    let mut args = vec!["sample", "--model", &model, "--data", data, "--task", "arith"];
    args.extend_from_slice(&["--n", "3", "--max-new-tokens", "6"]);
    args.extend_from_slice(extra);
    spiral_eval(&args)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn sample_writes_one_line_per_sample_that_passk_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), DATA);
    let output = dir.path().join("samples.jsonl");
    ok(&sample(&data, &["--seed", "3", "--output", output.to_str().unwrap()]));
    let samples = lines(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(samples.len(), 9);
    let ids: Vec<&str> = samples.iter().map(|s| s["problem_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["first", "first", "first", "2", "2", "2", "4", "4", "4"]);
    for (i, s) in samples.iter().enumerate() {
        let object = s.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let expected =
            ["answer", "finish_reason", "problem_id", "response", "reward", "sample", "tokens"];
        assert_eq!(keys, expected);
        assert_eq!(s["sample"], i % 3);
        let reward = s["reward"].as_f64().unwrap();
        assert!(reward == 0.0 || reward == 1.0);
        assert!(s["answer"].is_null() || s["answer"].is_string());
        assert!(s["response"].is_string());
        let tokens = s["tokens"].as_u64().unwrap();
        assert!((1..=6).contains(&tokens));
        let finish = s["finish_reason"].as_str().unwrap();
        assert!(finish == "eos" || (finish == "length" && tokens == 6), "{s}");
    }
    let passk =
        spiral_eval(&["passk", "--input", output.to_str().unwrap(), "--k", "1,3", "--json"]);
    let summary: Value = serde_json::from_str(&ok(&passk)).unwrap();
    assert_eq!((summary["problems"].as_u64(), summary["samples"].as_u64()), (Some(3), Some(9)));
    let pass1 = summary["pass@1"].as_f64().unwrap();
    assert!((0.0..=summary["pass@3"].as_f64().unwrap()).contains(&pass1));
    assert!(summary["maj@3"].is_number());
}

#[test]
fn sample_is_seeded_and_limit_and_chat_apply() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), DATA);
    let a = ok(&sample(&data, &["--seed", "7"]));
    assert_eq!(a, ok(&sample(&data, &["--seed", "7"])));
    assert_ne!(a, ok(&sample(&data, &["--seed", "8"])));
    // --limit keeps the first problems, and their samples do not depend on the rest.
    let first = ok(&sample(&data, &["--seed", "7", "--limit", "1"]));
    assert_eq!(first.lines().count(), 3);
    assert!(a.starts_with(&first));
    // The fixture has a chat template, so the default is chat; --no-chat sends plain text.
    assert_eq!(a, ok(&sample(&data, &["--seed", "7", "--chat"])));
    assert_ne!(a, ok(&sample(&data, &["--seed", "7", "--no-chat"])));
    // Greedy samples are all the same.
    let greedy = lines(&ok(&sample(&data, &["--temperature", "0"])));
    assert!(greedy[..3].iter().all(|s| s["response"] == greedy[0]["response"]));
}

#[test]
fn sample_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = data(dir.path(), "{\"problem\": \"2+3\", \"answer\": 5}\n\n{\"problem\": \"1+1\"}\n");
    fails_with(&sample(&bad, &[]), &format!("{bad}:3: missing field `answer`"));
    let dup = data(
        dir.path(),
        "{\"id\": 1, \"problem\": \"1+2\", \"answer\": 3}\n\
         {\"id\": \"1\", \"problem\": \"2+2\", \"answer\": 4}\n",
    );
    fails_with(&sample(&dup, &[]), "data.jsonl:2: duplicate id `1` (first on line 1)");
    let missing = dir.path().join("nope.jsonl");
    fails_with(&sample(missing.to_str().unwrap(), &[]), "nope.jsonl");
    let data = data(dir.path(), DATA);
    let bad_model = dir.path().join("no-model");
    let out = spiral_eval(&[
        "sample",
        "--model",
        bad_model.to_str().unwrap(),
        "--data",
        &data,
        "--task",
        "arith",
    ]);
    fails_with(&out, "no-model");
    fails_with(&sample(&data, &["--top-p", "0"]), "top_p");
}

/// `rsa` with a population of 4 and K as given.
fn rsa(data: &str, k: &str, extra: &[&str]) -> Output {
    let model = model();
    let mut args = vec!["rsa", "--model", &model, "--data", data, "--task", "arith"];
    args.extend_from_slice(&["--population", "4", "--k", k, "--max-new-tokens", "6"]);
    args.extend_from_slice(extra);
    spiral_eval(&args)
}

#[test]
fn rsa_runs_rounds_in_one_engine_call_each_and_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), DATA);
    let out_dir = dir.path().join("report");
    let traces = dir.path().join("traces.jsonl");
    let (out_arg, traces_arg) = (out_dir.to_str().unwrap(), traces.to_str().unwrap());
    let out = rsa(
        &data,
        "2",
        &["--rounds", "2", "--seed", "1", "--json", "--out", out_arg, "--traces", traces_arg],
    );
    let json: Value = serde_json::from_str(&ok(&out)).unwrap();
    let rounds = json["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    for (t, r) in rounds.iter().enumerate() {
        assert_eq!(r["round"], t);
        for key in ["pass@1", "maj@N", "pass@N"] {
            assert!((0.0..=1.0).contains(&r[key].as_f64().unwrap()), "{key}: {r}");
        }
        assert!(r["generated_tokens"].as_f64().unwrap() >= 4.0);
        assert_eq!(r["prompt_tokens"].as_f64().unwrap() > 0.0, t > 0, "{r}");
    }
    // One batched call per round with one prompt per member of every population: 3 x 4.
    assert_eq!(json["engine_calls"], serde_json::json!([12, 12]));
    assert_eq!((json["problems"].as_u64(), json["population"].as_u64()), (Some(3), Some(4)));
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    for needle in ["- commit: `", "| round | pass@1 | maj@N | pass@N |", "![", "\"population\": 4"]
    {
        assert!(report.contains(needle), "{needle} not in\n{report}");
    }
    for image in ["rsa.png", "rsa.svg"] {
        assert!(std::fs::metadata(out_dir.join(image)).unwrap().len() > 1000, "{image}");
    }
    // The traces hold every population, round by round and problem by problem; their rewards
    // average to the round's pass@1.
    let lines: Vec<Value> = std::fs::read_to_string(&traces)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3 * 3);
    for (t, r) in rounds.iter().enumerate() {
        let round = &lines[3 * t..3 * (t + 1)];
        let mut rewards = 0.0;
        for (i, line) in round.iter().enumerate() {
            let id = ["first", "2", "4"][i]; // the `id` field, else the line number
            assert_eq!((line["round"].as_u64(), line["id"].as_str()), (Some(t as u64), Some(id)));
            assert_eq!(line["prompt_tokens"].as_u64().unwrap() > 0, t > 0, "{line}");
            let members = line["members"].as_array().unwrap();
            assert_eq!(members.len(), 4);
            for m in members {
                assert!(m["text"].is_string() && m["tokens"].as_u64().unwrap() >= 1, "{m}");
                rewards += m["reward"].as_f64().unwrap() / 4.0;
            }
        }
        assert!((rewards / 3.0 - r["pass@1"].as_f64().unwrap()).abs() < 1e-9, "round {t}");
    }
    // The same seed gives the same run; the table prints one row per round.
    let again: Value =
        serde_json::from_str(&ok(&rsa(&data, "2", &["--rounds", "2", "--seed", "1", "--json"])))
            .unwrap();
    assert_eq!(again["rounds"], json["rounds"]);
    let table = ok(&rsa(&data, "2", &["--rounds", "1", "--limit", "2"]));
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn rsa_refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), DATA);
    fails_with(&rsa(&data, "5", &[]), "--k must be between 1 and --population (4), got 5");
    let bad = self::data(dir.path(), "{\"problem\": \"2+\", \"answer\": \"x\"}\n");
    fails_with(&rsa(&bad, "2", &[]), "data.jsonl:1:");
}
