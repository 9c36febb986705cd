//! Reports: a markdown file with tables, scaling-efficiency numbers (each followed by its
//! definition) and figures in PNG and SVG, headed by the run's commit and config so that every
//! number can be traced to what produced it.

mod plot;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

pub use plot::{Figure, Scale};

use crate::error::EvalError;
use crate::scaling::{Curve, Efficiency};

/// A table of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The curves' points side by side: one row per x (the union of the curves' x, ascending),
    /// one column per curve, accuracies with 4 decimals and `[lo, hi]` when known.
    pub fn from_curves(x_name: &str, curves: &[Curve]) -> Self {
        let mut xs: Vec<f64> = curves.iter().flat_map(|c| c.points.iter().map(|p| p.x)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let columns =
            std::iter::once(x_name.to_owned()).chain(curves.iter().map(|c| c.label.clone()));
        let rows = xs
            .iter()
            .map(|&x| {
                let cells = curves.iter().map(|c| match c.points.iter().find(|p| p.x == x) {
                    Some(p) => match p.ci {
                        Some(ci) => format!("{:.4} [{:.4}, {:.4}]", p.y, ci.lo, ci.hi),
                        None => format!("{:.4}", p.y),
                    },
                    None => String::new(),
                });
                std::iter::once(format!("{x}")).chain(cells).collect()
            })
            .collect();
        Self { columns: columns.collect(), rows }
    }

    fn markdown(&self, out: &mut String) {
        let row = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | ")
            )
        };
        out.push_str(&row(&self.columns));
        out.push_str(&format!("|{}\n", "---|".repeat(self.columns.len())));
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out.push('\n');
    }
}

/// One section of a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Heading.
    pub heading: String,
    /// Markdown text under the heading.
    pub text: String,
    /// An optional table.
    pub table: Option<Table>,
    /// Scaling-efficiency numbers, each with what it compares (e.g. `SPIRAL vs GRPO, maj@k`).
    pub efficiencies: Vec<(String, Efficiency)>,
    /// Figures, written as PNG and SVG beside the markdown.
    pub figures: Vec<Figure>,
}

/// A report: title, provenance and sections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// The commit the run was built from (see [`git_commit`]).
    pub commit: Option<String>,
    /// The command line that produced the run.
    pub command: Option<String>,
    /// The run's config, as text (TOML or JSON), shown verbatim.
    pub config: Option<String>,
    /// The sections.
    pub sections: Vec<Section>,
}

impl Report {
    /// The markdown text; figures are referenced as `<name>.png` with a link to `<name>.svg`.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        let unknown = "unknown".to_owned();
        let _ = writeln!(out, "- commit: `{}`", self.commit.as_ref().unwrap_or(&unknown));
        if let Some(command) = &self.command {
            let _ = writeln!(out, "- command: `{command}`");
        }
        out.push('\n');
        for s in &self.sections {
            let _ = write!(out, "## {}\n\n", s.heading);
            if !s.text.is_empty() {
                let _ = write!(out, "{}\n\n", s.text.trim_end());
            }
            if let Some(table) = &s.table {
                table.markdown(&mut out);
            }
            for (what, e) in &s.efficiencies {
                let _ = writeln!(out, "- **{what}**: {e}");
            }
            if !s.efficiencies.is_empty() {
                out.push('\n');
            }
            for f in &s.figures {
                let _ = write!(out, "![{}]({}.png)\n([SVG]({}.svg))\n\n", f.title, f.name, f.name);
            }
        }
        if let Some(config) = &self.config {
            let _ = write!(out, "## Config\n\n```\n{}\n```\n", config.trim_end());
        }
        out
    }

    /// Writes `<dir>/report.md` and every figure's PNG and SVG (creating `dir`); returns the
    /// markdown's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, EvalError> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::write(dir, e))?;
        let mut names = std::collections::HashSet::new();
        for f in self.sections.iter().flat_map(|s| &s.figures) {
            if !names.insert(f.name.as_str()) {
                return Err(EvalError::Curve(format!("two figures are named `{}`", f.name)));
            }
            f.write(dir)?;
        }
        let path = dir.join("report.md");
        std::fs::write(&path, self.markdown()).map_err(|e| EvalError::write(&path, e))?;
        Ok(path)
    }
}

/// The commit checked out at `dir` (`git rev-parse --short=12 HEAD`), with `-dirty` when the work
/// tree has changes; `None` outside a git checkout or without git.
pub fn git_commit(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{commit}-dirty") } else { commit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::scaling_efficiency;

    fn report() -> Report {
        let base = Curve::new("GRPO", [(1.0, 0.2), (4.0, 0.4), (16.0, 0.6)]);
        let model = Curve::new("SPIRAL", [(1.0, 0.4), (4.0, 0.6), (16.0, 0.7)]);
        let e = scaling_efficiency(&base, &model, 0.5, "samples").unwrap();
        let curves = vec![base, model];
        Report {
            title: "Scaling".into(),
            commit: Some("abc123".into()),
            command: Some("spiral-eval passk --input s.jsonl".into()),
            config: Some("[rsa]\nk = 4\n".into()),
            sections: vec![Section {
                heading: "Parallel scaling".into(),
                text: "Majority vote over N samples.".into(),
                table: Some(Table::from_curves("N", &curves)),
                efficiencies: vec![("SPIRAL vs GRPO".into(), e)],
                figures: vec![Figure {
                    name: "parallel".into(),
                    title: "Parallel scaling".into(),
                    x_label: "samples N".into(),
                    y_label: "accuracy".into(),
                    x_scale: Scale::Log2,
                    curves,
                }],
            }],
        }
    }

    #[test]
    fn markdown_holds_provenance_tables_definitions_and_figures() {
        let md = report().markdown();
        assert!(md.starts_with("# Scaling\n\n- commit: `abc123`\n- command: `spiral-eval passk"));
        assert!(md.contains("| N | GRPO | SPIRAL |\n|---|---|---|\n| 1 | 0.2000 | 0.4000 |\n"));
        assert!(md.contains("- **SPIRAL vs GRPO**: 4.00x at accuracy 0.500"));
        assert!(md.contains(crate::scaling::SCALING_EFFICIENCY_DEFINITION));
        assert!(md.contains("![Parallel scaling](parallel.png)\n([SVG](parallel.svg))"));
        assert!(md.ends_with("## Config\n\n```\n[rsa]\nk = 4\n```\n"));
    }

    #[test]
    fn write_puts_markdown_and_images_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/report");
        let path = report().write(&out).unwrap();
        assert_eq!(path, out.join("report.md"));
        for file in ["report.md", "parallel.png", "parallel.svg"] {
            assert!(out.join(file).is_file(), "{file}");
        }
        let mut twice = report();
        let figure = twice.sections[0].figures[0].clone();
        twice.sections[0].figures.push(figure);
        assert!(
            twice.write(&out).unwrap_err().to_string().contains("two figures are named `parallel`")
        );
    }

    #[test]
    fn table_from_curves_with_gaps_and_intervals() {
        let mut a = Curve::new("a", [(1.0, 0.5), (2.0, 0.75)]);
        a.points[1].ci = Some(crate::Interval { lo: 0.7, hi: 0.8 });
        let b = Curve::new("b|c", [(2.0, 0.25), (4.0, 1.0)]);
        let t = Table::from_curves("k", &[a, b]);
        assert_eq!(
            t.rows,
            [["1", "0.5000", ""], ["2", "0.7500 [0.7000, 0.8000]", "0.2500"], ["4", "", "1.0000"]]
        );
        let mut md = String::new();
        t.markdown(&mut md);
        assert!(md.starts_with("| k | a | b\\|c |"));
    }

    #[test]
    fn git_commit_outside_a_checkout_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_commit(dir.path()), None);
    }
}
