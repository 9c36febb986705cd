//! Agreement of the math verifier with two reference graders, measured on their own test suites.
//!
//! The suites are not part of this repository. Point `SPIRAL_CONFORMANCE` at a folder holding
//! `math_verify_cases.jsonl` (cases from Hugging Face Math-Verify's tests, each with the verdict
//! Math-Verify gives) and `qwen_grader_cases.jsonl` (cases from the Qwen2.5-Math grader's unit
//! tests); each line holds `id`, `response`, `answer`, `expected` and `nondefault_options`. Cases
//! tested under options other than the grader's defaults are left out of the Math-Verify count:
//! this verifier has only its default behaviour to offer there.
//!
//! Run with `--nocapture` to see the figures and the disagreeing cases. Without the variable the
//! test prints how to enable it and passes.

use std::path::Path;

use serde::Deserialize;
use spiral_rewards::MathReward;

/// One line of a suite.
#[derive(Deserialize)]
struct Case {
    id: String,
    response: String,
    answer: String,
    expected: bool,
    #[serde(default)]
    nondefault_options: Vec<String>,
}

/// The agreement of the verifier with one suite.
struct Agreement {
    total: usize,
    agreed: usize,
    /// Cases the reference rejects and this verifier accepts.
    false_positives: Vec<String>,
    /// Cases the reference accepts and this verifier rejects.
    false_negatives: Vec<String>,
}

impl Agreement {
    fn percent(&self) -> f64 {
        if self.total == 0 { 0.0 } else { 100.0 * self.agreed as f64 / self.total as f64 }
    }

    fn print(&self, name: &str) {
        println!(
            "{name}: {}/{} agreed ({:.1}%), {} false positives, {} false negatives",
            self.agreed,
            self.total,
            self.percent(),
            self.false_positives.len(),
            self.false_negatives.len()
        );
        for line in &self.false_positives {
            println!("  accepted, reference rejects: {line}");
        }
        for line in &self.false_negatives {
            println!("  rejected, reference accepts: {line}");
        }
    }
}

/// Reads a JSONL suite.
fn read_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A short description of a case for the report: its id and both answers, shortened.
fn describe(case: &Case) -> String {
    fn short(s: &str) -> String {
        let one_line = s.replace('\n', " ");
        let mut end = one_line.len().min(70);
        while !one_line.is_char_boundary(end) {
            end -= 1;
        }
        if end < one_line.len() { format!("{}...", &one_line[..end]) } else { one_line }
    }
    format!("{}: {:?} vs {:?}", case.id, short(&case.response), short(&case.answer))
}

/// Grades every case judged at default options.
fn measure(cases: &[Case], judge_all: bool) -> Agreement {
    let reward = MathReward::default();
    let mut agreement =
        Agreement { total: 0, agreed: 0, false_positives: Vec::new(), false_negatives: Vec::new() };
    for case in cases.iter().filter(|c| judge_all || c.nondefault_options.is_empty()) {
        agreement.total += 1;
        let accepted = reward.score_answer(&case.answer, &case.response).is_correct();
        match (accepted, case.expected) {
            (a, e) if a == e => agreement.agreed += 1,
            (true, false) => agreement.false_positives.push(describe(case)),
            _ => agreement.false_negatives.push(describe(case)),
        }
    }
    agreement
}

#[test]
fn agreement_with_reference_graders() {
    let Some(folder) = std::env::var_os("SPIRAL_CONFORMANCE") else {
        println!(
            "skipped: set SPIRAL_CONFORMANCE to a folder holding math_verify_cases.jsonl and \
             qwen_grader_cases.jsonl"
        );
        return;
    };
    let folder = Path::new(&folder);
    let math_verify = measure(&read_cases(&folder.join("math_verify_cases.jsonl")), false);
    // The Qwen grader's options only switch percent handling and closeness, which this verifier's
    // defaults cover: every case is judged.
    let qwen = measure(&read_cases(&folder.join("qwen_grader_cases.jsonl")), true);
    math_verify.print("Math-Verify (default options)");
    qwen.print("Qwen2.5-Math grader");

    assert!(math_verify.total > 0 && qwen.total > 0, "empty suites");
    assert!(
        math_verify.false_positives.is_empty() && qwen.false_positives.is_empty(),
        "the verifier accepts answers the reference graders reject"
    );
    assert!(math_verify.percent() >= 95.0, "Math-Verify agreement below 95%");
    assert!(qwen.agreed + 1 >= qwen.total, "more than one Qwen grader case disagrees");
}
