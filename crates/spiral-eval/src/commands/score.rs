//! `spiral-eval score`: score the responses of a JSONL file with a verifiable reward. Reading,
//! scoring and the summary live in `spiral-rewards` (`score_jsonl`); this file only parses the
//! arguments, opens the files and prints the summary.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::Context;
use spiral_rewards::{FieldNames, ScoreOptions, Task, score_jsonl};

/// Arguments of `spiral-eval score`.
#[derive(clap::Args)]
#[command(after_help = "\
Input lines (one JSON object each; blank lines are skipped):
  math:      {\"response\": \"... \\\\boxed{\\\\frac{1}{2}}\", \"answer\": \"0.5\"}
             (a GSM8K answer \"... #### 42\" is read as 42)
  countdown: {\"response\": \"... \\\\boxed{(75-25)*2}\", \"nums\": [75, 25, 2], \"target\": 100}
  arith:     {\"response\": \"... \\\\boxed{28}\", \"answer\": 28}
Output lines, one per scored input line, in order:
  {\"reward\":1.0,\"extracted\":\"0.5\",\"failure\":null,\"line\":1}
A summary (count, mean reward) goes to standard error.")]
pub struct ScoreArgs {
    /// The task: math, countdown or arith.
    #[arg(long, value_parser = parse_task)]
    pub task: Task,
    /// JSONL file of responses, one per line (`-` reads standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Where to write the JSONL scores (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Field holding the response text.
    #[arg(long, default_value = "response")]
    pub response_field: String,
    /// Field holding the reference answer (countdown: the target) [default: answer; countdown:
    /// target].
    #[arg(long)]
    pub answer_field: Option<String>,
    /// Field holding the problem (countdown: the numbers; math and arith: optional)
    /// [default: problem; countdown: nums].
    #[arg(long)]
    pub problem_field: Option<String>,
    /// Count and report malformed lines instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

fn parse_task(s: &str) -> Result<Task, String> {
    s.parse().map_err(|e: spiral_rewards::RewardError| e.to_string())
}

/// Runs the command: all lines are scored before anything is written, so a malformed line leaves
/// no partial output.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let defaults = FieldNames::for_task(args.task);
    let options = ScoreOptions {
        response_field: args.response_field,
        fields: FieldNames {
            problem: args.problem_field.unwrap_or(defaults.problem),
            answer: args.answer_field.unwrap_or(defaults.answer),
        },
        skip_bad: args.skip_bad,
        ..ScoreOptions::new(args.task)
    };
    let name = args.input.display().to_string();
    let input: Box<dyn BufRead> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.input).with_context(|| format!("cannot open {name}"))?;
        Box::new(BufReader::new(file))
    };
    let source = if name == "-" { "<stdin>" } else { &name };
    let mut scores = Vec::new();
    let summary = score_jsonl(input, source, &options, &mut scores)?;
    match &args.output {
        None => {
            io::stdout().lock().write_all(&scores).context("cannot write to standard output")?
        }
        Some(path) => std::fs::write(path, &scores)
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    for error in &summary.skipped_errors {
        eprintln!("skipped {error}");
    }
    if summary.skipped > summary.skipped_errors.len() {
        eprintln!(
            "skipped {} more malformed lines",
            summary.skipped - summary.skipped_errors.len()
        );
    }
    eprintln!("{source}: {summary}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &tempfile::TempDir, task: Task, input: &str) -> ScoreArgs {
        let path = dir.path().join("responses.jsonl");
        std::fs::write(&path, input).unwrap();
        ScoreArgs {
            task,
            input: path,
            output: Some(dir.path().join("scores.jsonl")),
            response_field: "response".into(),
            answer_field: None,
            problem_field: None,
            skip_bad: false,
        }
    }

    fn output(dir: &tempfile::TempDir) -> Vec<String> {
        let text = std::fs::read_to_string(dir.path().join("scores.jsonl")).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn scores_a_math_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = concat!(
            r#"{"response": "so \\boxed{\\frac{1}{2}}", "answer": "0.5"}"#,
            "\n",
            r#"{"response": "I think 3", "answer": "4"}"#,
            "\n"
        );
        run(args(&dir, Task::Math, input)).unwrap();
        let lines = output(&dir);
        assert_eq!(
            lines[0],
            r#"{"reward":1.0,"extracted":"\\frac{1}{2}","failure":null,"line":1}"#
        );
        assert!(lines[1].starts_with(r#"{"reward":0.0,"extracted":"3","failure":"#));
    }

    #[test]
    fn countdown_with_custom_fields() {
        let dir = tempfile::tempdir().unwrap();
        let input = r#"{"completion": "\\boxed{3*4}", "numbers": "3 4", "goal": 12}"#;
        let mut a = args(&dir, Task::Countdown, input);
        a.response_field = "completion".into();
        a.problem_field = Some("numbers".into());
        a.answer_field = Some("goal".into());
        run(a).unwrap();
        assert!(output(&dir)[0].starts_with(r#"{"reward":1.0"#));
    }

    #[test]
    fn malformed_lines_name_file_and_line_or_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let input = "{\"response\": \"\\\\boxed{5}\", \"answer\": 5}\n{\"answer\": 5}\n";
        let err = run(args(&dir, Task::Arith, input)).unwrap_err();
        assert!(format!("{err:#}").ends_with("responses.jsonl:2: missing field `response`"));
        assert!(!dir.path().join("scores.jsonl").exists());
        let mut a = args(&dir, Task::Arith, input);
        a.skip_bad = true;
        run(a).unwrap();
        assert_eq!(output(&dir).len(), 1);
        let missing =
            ScoreArgs { input: dir.path().join("none.jsonl"), ..args(&dir, Task::Math, "") };
        assert!(format!("{:#}", run(missing).unwrap_err()).starts_with("cannot open"));
    }

    #[test]
    fn task_names_are_checked() {
        assert_eq!(parse_task("arith"), Ok(Task::Arith));
        assert!(
            parse_task("gsm8k").unwrap_err().contains("expected one of math, countdown, arith")
        );
    }
}
