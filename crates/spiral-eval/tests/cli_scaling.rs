//! `spiral-eval scaling` end to end on the random tiny Qwen3 fixture: rewards are ~0, so this
//! checks the mechanics (JSON shape, curve lengths, engine calls, report files, and the
//! efficiency output with a baseline).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn model() -> String {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures/qwen3");
    dir.to_str().unwrap().to_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

const DATA: &str = "{\"id\": \"a\", \"problem\": \"2+3\", \"answer\": 5}\n\
                    {\"id\": \"b\", \"problem\": \"4*2\", \"answer\": 8}\n\
                    {\"id\": \"c\", \"problem\": \"9-1\", \"answer\": 8}\n";

fn scaling(data: &str, extra: &[&str]) -> Output {
    let model = model();
    let mut args = vec!["scaling", "--model", &model, "--data", data, "--task", "arith"];
    args.extend_from_slice(&["--n-max", "2", "--budgets", "8,4", "--max-new-tokens", "6"]);
    args.extend_from_slice(&["--limit", "2"]);
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_spiral-eval")).args(&args).output().unwrap()
}

fn check_curve(curve: &Value, xs: &[f64]) {
    let points = curve["points"].as_array().unwrap();
    assert!(curve["label"].is_string());
    if !xs.is_empty() {
        let got: Vec<f64> = points.iter().map(|p| p["x"].as_f64().unwrap()).collect();
        assert_eq!(got, xs);
    }
    for p in points {
        let y = p["y"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&y), "{y}");
    }
}

fn check_model(m: &Value) {
    for name in ["pass@N", "maj@N", "agg@1"] {
        check_curve(&m["parallel"][name], &[1.0, 2.0]);
    }
    for name in ["maj@N", "agg@1"] {
        let points = m["tokens"][name]["points"].as_array().unwrap();
        assert!((1..=2).contains(&points.len()));
        check_curve(&m["tokens"][name], &[]);
    }
    check_curve(&m["sequential"], &[4.0, 8.0]);
    // One aggregation engine call per N, one prompt per problem.
    assert_eq!(m["aggregation_calls"], serde_json::json!([2, 2]));
    let tokens = m["tokens_per_n"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        let (search, total) = (t[0].as_f64().unwrap(), t[1].as_f64().unwrap());
        assert!(search >= 1.0 && total > search, "{t}");
    }
}

#[test]
fn scaling_writes_curves_report_and_baseline_efficiency() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(&data, DATA).unwrap();
    let data = data.to_str().unwrap();
    let out = dir.path().join("report");
    let json: Value =
        serde_json::from_str(&ok(&scaling(data, &["--json", "--out", out.to_str().unwrap()])))
            .unwrap();
    assert_eq!(json["problems"], 2);
    assert_eq!(json["ns"], serde_json::json!([1, 2]));
    assert_eq!(json["budgets"], serde_json::json!([4, 8]));
    check_model(&json["model"]);
    assert!(json.get("baseline").is_none() && json.get("efficiency").is_none());
    for file in [
        "report.md",
        "parallel.png",
        "parallel.svg",
        "tokens.png",
        "tokens.svg",
        "sequential.png",
        "sequential.svg",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Parallel scaling") && report.contains("Sequential scaling"));

    // Several aggregations per problem and N: one engine call per N, 3 prompts per problem.
    let json: Value =
        serde_json::from_str(&ok(&scaling(data, &["--json", "--aggregations", "3"]))).unwrap();
    assert_eq!(json["model"]["aggregation_calls"], serde_json::json!([6, 6]));
    assert_eq!(json["model"]["parallel"]["agg@1"]["points"].as_array().unwrap().len(), 2);

    // The same fixture as its own baseline: every curve compared, with the definition.
    let model = model();
    let text = ok(&scaling(data, &["--baseline", &model]));
    assert!(text.contains("scaling efficiency of"), "{text}");
    assert!(text.contains("scaling efficiency at accuracy a = C_base(a) / C_model(a)"), "{text}");
    let json: Value =
        serde_json::from_str(&ok(&scaling(data, &["--baseline", &model, "--json"]))).unwrap();
    check_model(&json["baseline"]);
    let efficiency = json["efficiency"].as_array().unwrap();
    assert_eq!(efficiency.len(), 5);
    for e in efficiency {
        assert!(e["curve"].is_string() && e["unit"].is_string());
        let text = e["text"].as_str().unwrap();
        assert!(text.contains("C_base(a) / C_model(a)"), "{text}");
    }
    // Same model, same seed: the same curves, so the efficiency is 1 wherever it is defined.
    assert_eq!(json["model"]["parallel"], json["baseline"]["parallel"]);
    for e in efficiency.iter().filter(|e| !e["efficiency"].is_null()) {
        let ratio = e["efficiency"]["ratio"].as_f64().unwrap();
        assert!((ratio - 1.0).abs() < 1e-9, "{e}");
    }
}
