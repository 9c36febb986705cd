//! `spiral-eval passk` end to end: JSON against hand-computed pass@k and maj@k, the table with
//! its intervals, standard input, and one-line errors with exit code 2 that name file and line.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn spiral_eval(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spiral-eval"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Two problems, four samples each, interleaved: q1 has 2 correct ("4", "4.0"; the wrong ones
/// say "5" and nothing), q2 has 1 correct ("1/2") against three "3".
const SAMPLES: &str = r#"{"problem_id": "q1", "reward": 1, "answer": "4"}
{"problem_id": "q2", "reward": 0, "answer": "3", "response": "... \\boxed{3}"}
{"problem_id": "q1", "reward": 0, "answer": "5"}
{"problem_id": "q2", "reward": 1, "answer": "1/2"}

{"problem_id": "q1", "reward": 1, "answer": "4.0"}
{"problem_id": "q2", "reward": 0, "answer": "3"}
{"problem_id": "q1", "reward": 0, "answer": null}
{"problem_id": "q2", "reward": 0, "answer": "3"}
"#;

fn close(value: &serde_json::Value, expected: f64) -> bool {
    (value.as_f64().unwrap() - expected).abs() < 1e-12
}

#[test]
fn json_matches_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.jsonl");
    std::fs::write(&path, SAMPLES).unwrap();
    let out =
        spiral_eval(&["passk", "--input", path.to_str().unwrap(), "--k", "1,2,4", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // pass@1 = (2/4 + 1/4) / 2. pass@2: q1 1 - C(2,2)/C(4,2) = 5/6, q2 1 - C(3,2)/C(4,2) = 1/2.
    assert!(close(&json["pass@1"], 0.375));
    assert!(close(&json["pass@2"], (5.0 / 6.0 + 0.5) / 2.0));
    assert!(close(&json["pass@4"], 1.0));
    // maj@4: q1 votes 4 (two votes against one 5), q2 votes 3. maj@1 = accuracy of single votes.
    assert!(close(&json["maj@4"], 0.5));
    assert!(close(&json["maj@1"], 0.375));
    // maj@2. q1 is A, B, A, - (A = 4 = 4.0 right): pairs AA 1, AB twice 1/2 (a tie), A- twice 1,
    // B- 0 -> 4/6. q2 is B, A, B, B: AB three times 1/2, BB three times 0 -> 1/4.
    assert!(close(&json["maj@2"], (4.0 / 6.0 + 0.25) / 2.0));
    assert_eq!((json["problems"].as_u64(), json["samples"].as_u64()), (Some(2), Some(8)));
}

#[test]
fn table_reads_standard_input_and_shows_intervals() {
    let out = spiral_eval(&["passk", "--input", "-", "--k", "1,4", "--seed", "3"], Some(SAMPLES));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("<stdin>: 2 problems, 8 samples (4 per problem)\n"), "{text}");
    assert!(text.contains("metric      value   95% CI\n"), "{text}");
    assert!(text.contains("pass@4     1.0000   [1.0000, 1.0000]"), "{text}");
    assert!(text.contains("maj@4      0.5000   [0.0000, 1.0000]"), "{text}");
    assert!(text.contains("1000 resamples, seed 3"), "{text}");
}

#[test]
fn errors_are_one_line_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let name = path.to_str().unwrap();
    let cases = [
        (
            "{\"problem_id\": \"a\", \"reward\": 1}\n{\"problem_id\": \"a\", \"reward\": 2}\n",
            "2",
            format!("{name}:2: `reward` must be 0 or 1, got 2"),
        ),
        (
            "{\"problem_id\": \"a\", \"reward\": 1}\n",
            "1,2",
            format!("{name}: pass@2 needs at least 2 samples per problem, but problem `a` has 1"),
        ),
        ("", "1", format!("{name}: no samples to evaluate")),
    ];
    for (content, k, message) in cases {
        std::fs::write(&path, content).unwrap();
        let out = spiral_eval(&["passk", "--input", name, "--k", k], None);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr, format!("error: {message}\n"));
    }
    let out = spiral_eval(&["passk", "--input", "/no/such/samples.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("error: cannot read /no/such/samples.jsonl")
    );
}
