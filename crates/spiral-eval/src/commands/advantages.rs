//! `spiral-eval advantages`: GRPO, Dr.GRPO, RLOO, pass@k and SPIRAL advantages for groups sampled
//! elsewhere. The line formats and the estimators live in `spiral-set-rl` (`process_jsonl`); this
//! file only opens the files and names them in errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use spiral_set_rl::{SetRlError, process_jsonl};

/// Arguments of `spiral-eval advantages`.
#[derive(clap::Args)]
#[command(after_help = "\
Input lines (one JSON object each; blank lines are skipped):
  {\"id\": \"q1\", \"estimator\": \"grpo\", \"rewards\": [1, 0, 0, 1]}
      estimator: grpo | dr_grpo | rloo | pass_at_k (needs \"k\"; optional \"normalize_std\")
  {\"id\": \"q2\", \"estimator\": \"spiral\", \"num_search\": 8, \"sets\": [[0, 3, 5, 6], ...],
   \"aggregation_rewards\": [[1, 0, 1, 1], ...]}      (optional \"normalize_std\")
Output lines, same order and id:
  {\"id\": \"q1\", \"advantages\": [...]}
  {\"id\": \"q2\", \"search_advantages\": [...], \"aggregation_advantages\": [[...], ...],
   \"set_advantages\": [...]}")]
pub struct AdvantagesArgs {
    /// JSONL file of groups, one per line (`-` reads standard input).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Where to write the JSONL answers (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Runs the command: every line is checked before anything is written, and an output file is
/// only created once all lines are good.
pub fn run(args: AdvantagesArgs) -> anyhow::Result<()> {
    let stdin = args.input.as_os_str() == "-";
    let name = if stdin { "<stdin>".to_string() } else { args.input.display().to_string() };
    let input: Box<dyn BufRead> = if stdin {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.input).with_context(|| format!("cannot open {name}"))?;
        Box::new(BufReader::new(file))
    };
    let mut answers = Vec::new();
    process_jsonl(input, &mut answers).map_err(|err| match err {
        SetRlError::Line { line, error } => anyhow!("{name}:{line}: {error}"),
        other => anyhow!("{name}: {other}"),
    })?;
    match &args.output {
        None => io::stdout().lock().write_all(&answers).context("cannot write to standard output"),
        Some(path) => std::fs::write(path, &answers)
            .with_context(|| format!("cannot write {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &tempfile::TempDir, input: &str) -> AdvantagesArgs {
        let path = dir.path().join("groups.jsonl");
        std::fs::write(&path, input).unwrap();
        AdvantagesArgs { input: path, output: Some(dir.path().join("out.jsonl")) }
    }

    #[test]
    fn writes_one_answer_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let input = concat!(
            r#"{"id": "a", "estimator": "dr_grpo", "rewards": [1, 0]}"#,
            "\n",
            r#"{"id": "b", "estimator": "spiral", "num_search": 3, "sets": [[0, 1], [1, 2]], "aggregation_rewards": [[1], [0]]}"#,
            "\n"
        );
        run(args(&dir, input)).unwrap();
        let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], r#"{"id":"a","advantages":[0.5,-0.5]}"#);
        assert!(lines[1].starts_with(r#"{"id":"b","search_advantages":[0.5,0.0,-0.5]"#), "{out}");
    }

    #[test]
    fn bad_line_names_file_and_line_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = concat!(
            r#"{"id": "a", "estimator": "grpo", "rewards": [1, 0]}"#,
            "\n",
            r#"{"id": "b", "estimator": "spiral", "num_search": 2, "sets": [[0, 5]], "aggregation_rewards": [[1]]}"#,
            "\n"
        );
        let err = run(args(&dir, input)).unwrap_err().to_string();
        assert!(err.contains("groups.jsonl:2: set 0 contains trace 5"), "{err}");
        assert!(!dir.path().join("out.jsonl").exists());
    }
}
