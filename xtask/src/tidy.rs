//! `cargo xtask tidy`: the checks a reviewer would otherwise make by hand, each failing with the
//! file and line at fault (after rust-analyzer's `tidy` test):
//!
//! - `cargo fmt --check`, and clippy with `-D warnings` on the workspace, without and with the
//!   `cuda` feature (which needs no GPU or CUDA toolkit to build);
//! - every Rust file opens with a `//!` header that says what it is for;
//! - no source file over [`MAX_LINES`] lines unless [`LONG_FILES`] says why;
//! - the repository speaks of the software alone: no words about how it was developed
//!   ([`PROCESS_WORDS`], issue numbers) in code, comments, configs, docs or scripts;
//! - nothing reaches outside the checkout (a path into [`OUTSIDE`]) but the tests of
//!   [`OUTSIDE_ALLOWED`].
//!
//! The words and the path it looks for are spelled in pieces here, so that this file passes its
//! own check.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run_command, workspace_root};

/// Arguments of `cargo xtask tidy`.
#[derive(clap::Args)]
pub struct TidyArgs {
    /// Only the text checks and `cargo fmt --check`, without building anything for clippy.
    #[arg(long)]
    quick: bool,
}

/// Runs the command.
pub fn run(args: TidyArgs) -> anyhow::Result<()> {
    text_checks()?;
    run_command(Command::new(env!("CARGO")).args(["fmt", "--all", "--check"]))?;
    if !args.quick {
        clippy(crate::test::has_mpi())?;
    }
    Ok(())
}

/// clippy on every target of the workspace, then again with the CUDA backend compiled in (and
/// the `mpi` feature, with `mpi`).
pub fn clippy(mpi: bool) -> anyhow::Result<()> {
    let lints = ["--", "-D", "warnings"];
    run_command(
        Command::new(env!("CARGO")).args(["clippy", "--workspace", "--all-targets"]).args(lints),
    )?;
    let features = if mpi { "cuda,spiral-train/mpi,spiral-benches/mpi" } else { "cuda" };
    run_command(
        Command::new(env!("CARGO"))
            .args(["clippy", "--workspace", "--all-targets", "--features", features])
            .args(lints),
    )
}

/// Source files may be this long before they need a reason.
pub const MAX_LINES: usize = 600;

/// Source files allowed past [`MAX_LINES`], and why each reads better whole.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "crates/spiral-model/src/config.rs",
        "the two layers of the model config, config.json as Hugging Face writes it (in all its \
         spellings) and the validated config it becomes, read side by side; its tests are a sixth",
    ),
    (
        "crates/spiral-model/tests/fixtures/make_fixtures.py",
        "one script regenerates every parity fixture in one pass (`cargo xtask fixtures`): its \
         sections (tokenizer, checkpoints, expected numbers, adapters, chat templates, \
         verification) share the helpers at its top",
    ),
    (
        "crates/spiral-rewards/src/math/normalize.rs",
        "the answer normaliser's passes apply in one order, which one file keeps visible; its \
         tests are a sixth",
    ),
];

/// Words about the project's own development, which the repository does not speak of: the
/// history is in git. Matched as whole words, in any case.
const PROCESS_WORDS: &[&str] = &[
    concat!("ses", "sion"),
    concat!("ses", "sions"),
    concat!("lea", "se"),
    concat!("lea", "ses"),
    concat!("lea", "sed"),
    concat!("le", "nt"),
    concat!("work", "place"),
];

/// The folder beside the checkout that holds material the repository must not need.
const OUTSIDE: &str = concat!("..", "/shared");

/// The only files that may look outside the checkout: the tests that read the optional real
/// tokenizers, through `SPIRAL_TOKENIZERS_DIR`, defaulting to the folder beside the checkout.
const OUTSIDE_ALLOWED: &[&str] = &["crates/spiral-model/tests/common/mod.rs"];

/// The text checks over every tracked (or new, unignored) file; all problems are listed, then
/// the check fails.
pub fn text_checks() -> anyhow::Result<()> {
    let root = workspace_root();
    let listed = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(&root)
        .output()
        .context("running git ls-files")?;
    anyhow::ensure!(listed.status.success(), "git ls-files failed");
    let mut problems = Vec::new();
    for path in String::from_utf8(listed.stdout)?.lines() {
        let Ok(text) = std::fs::read_to_string(root.join(path)) else {
            continue; // deleted from the work tree, or not text (weights, images)
        };
        problems.extend(check_file(path, &text));
    }
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    bail!("tidy: {} problem(s) above", problems.len())
}

/// The problems of one file, each as `path:line: what`.
fn check_file(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if path == "Cargo.lock" {
        return problems;
    }
    let extension = Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("");
    if extension == "rs" && !text.starts_with("//!") {
        problems
            .push(format!("{path}:1: a Rust file opens with a `//!` header saying what it is for"));
    }
    let lines = text.lines().count();
    let source = matches!(extension, "rs" | "py" | "sh");
    if source && lines > MAX_LINES && !LONG_FILES.iter().any(|(long, _)| *long == path) {
        problems.push(format!(
            "{path}:{lines}: {lines} lines, over {MAX_LINES}: split it where a reader would pause, \
             or add it to LONG_FILES in xtask/src/tidy.rs with the reason"
        ));
    }
    for (number, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", number + 1);
        if let Some(word) = process_word(line) {
            problems.push(format!(
                "{at}: `{word}` speaks of how the project was developed; say what the software does \
                 (a measurement names its date and command)"
            ));
        }
        if line.contains(OUTSIDE) && !OUTSIDE_ALLOWED.contains(&path) {
            problems.push(format!(
                "{at}: `{OUTSIDE}` is outside the repository; everything a user needs is inside it"
            ));
        }
    }
    problems
}

/// The first development word of `line`: one of [`PROCESS_WORDS`], or "issue" before a number.
fn process_word(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    if let Some(word) = words.iter().find(|w| PROCESS_WORDS.contains(w)) {
        return Some((*word).to_string());
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("issue") {
        let after = rest[at + "issue".len()..].trim_start_matches([' ', '#', 's']);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            return Some("issue <number>".into());
        }
        rest = &rest[at + "issue".len()..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_words_are_found_as_whole_words_only() {
        let flagged = [
            concat!("measured in ses", "sion 5"),
            concat!("a LEA", "SE of the GPU"),
            concat!("as le", "nt"),
            concat!("Iss", "ue 24"),
            concat!("iss", "ue #9"),
        ];
        for line in flagged {
            assert!(process_word(line).is_some(), "{line}");
        }
        for line in
            ["silently", "release build", "an issue with padding", "sessionless", "issue of 3"]
        {
            assert_eq!(process_word(line), None, "{line}");
        }
    }

    #[test]
    fn each_problem_names_the_file_and_line() {
        let text = format!("fn main() {{}}\n// see {OUTSIDE}/x\n");
        let problems = check_file("crates/x/src/a.rs", &text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("crates/x/src/a.rs:1: "), "{problems:?}");
        assert!(problems[1].starts_with("crates/x/src/a.rs:2: "), "{problems:?}");
        let long = format!("//! A file.\n{}", "let x = 1;\n".repeat(MAX_LINES));
        let problems = check_file("crates/x/src/long.rs", &long);
        assert!(problems[0].contains("601 lines"), "{problems:?}");
        let allowed = format!("//! t\n{OUTSIDE}\n");
        assert!(check_file("crates/spiral-model/tests/common/mod.rs", &allowed).is_empty());
        assert!(check_file("README.md", "no header needed\n").is_empty());
    }
}
