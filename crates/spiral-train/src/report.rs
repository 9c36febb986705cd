//! The run report, rebuilt from `metrics.jsonl` alone (so a resumed run's report covers the whole
//! run): a table of the evaluations, plots of the evaluation metrics and of the training rewards
//! (PNG and SVG through `spiral-eval`'s figures), and the resolved config.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use serde_json::Value;
use spiral_eval::{Curve, Figure, Report, Scale, Section, Table, git_commit};

use crate::config::RunConfig;

/// The checkout this binary was built in, when it is one (as `spiral-eval rsa` and `scaling`
/// record theirs), read once per process. [`crate::run::run`] and [`crate::repro::reproduce`] read
/// it as they start, so a report written hours later names the code that ran, even if the
/// checkout has moved on since.
pub fn checkout_commit() -> Option<String> {
    static COMMIT: OnceLock<Option<String>> = OnceLock::new();
    COMMIT.get_or_init(|| git_commit(Path::new(env!("CARGO_MANIFEST_DIR")))).clone()
}

/// Reads every line of a `metrics.jsonl`; the error names the line that is not JSON.
pub fn read_metrics(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON object", path.display(), i + 1))
        })
        .collect()
}

/// Writes `report.md`, `eval.{png,svg}` and `rewards.{png,svg}` into `out`.
pub fn write_report(out: &Path, config: &RunConfig) -> anyhow::Result<()> {
    let lines = read_metrics(&out.join("metrics.jsonl"))?;
    let of_kind = |kind: &'static str| lines.iter().filter(move |l| l["kind"] == kind);
    let number = |l: &Value, key: &str| l[key].as_f64();
    let step = |l: &Value| l["step"].as_f64().unwrap_or(0.0);

    let eval_keys = ["pass@1", "maj@n", "agg@1", "agg@1|some_correct"];
    let mut columns = vec!["step".to_string()];
    columns.extend(eval_keys.iter().map(|k| k.to_string()));
    let pass_k_keys: Vec<String> = of_kind("eval")
        .next()
        .and_then(|l| l.as_object())
        .map(|o| {
            let mut keys: Vec<String> =
                o.keys().filter(|k| k.starts_with("pass@") && *k != "pass@1").cloned().collect();
            keys.sort_by_key(|k| k[5..].parse::<usize>().unwrap_or(usize::MAX));
            keys
        })
        .unwrap_or_default();
    columns.extend(pass_k_keys.iter().cloned());
    let rows = of_kind("eval")
        .map(|l| {
            let label = if step(l) == 0.0 { "warm start".to_string() } else { step(l).to_string() };
            let mut row = vec![label];
            for key in eval_keys.iter().copied().chain(pass_k_keys.iter().map(String::as_str)) {
                row.push(number(l, key).map_or("-".into(), |v| format!("{v:.3}")));
            }
            row
        })
        .collect();
    let curve = |kind: &'static str, key: &str, label: &str| {
        Curve::new(label, of_kind(kind).filter_map(|l| Some((step(l), number(l, key)?))))
    };
    let eval_figure = Figure {
        name: "eval".into(),
        title: "Held-out accuracy during training".into(),
        x_label: "RL step (0 = warm start)".into(),
        y_label: "accuracy".into(),
        x_scale: Scale::Linear,
        curves: eval_keys.iter().map(|k| curve("eval", k, k)).collect(),
    };
    let mut reward_curves = vec![curve("train", "search_reward", "search traces")];
    let aggregation = curve("train", "aggregation_reward", "aggregation traces");
    if !aggregation.points.is_empty() {
        reward_curves.push(aggregation);
    }
    let rewards_figure = Figure {
        name: "rewards".into(),
        title: "Training rewards (mean per step)".into(),
        x_label: "RL step".into(),
        y_label: "reward".into(),
        x_scale: Scale::Linear,
        curves: reward_curves,
    };
    let e = &config.eval;
    let report = Report {
        title: format!("{} ({})", config.run.name, config.algorithm.name.as_str()),
        commit: checkout_commit(),
        command: None,
        config: Some(config.to_toml()),
        sections: vec![
            Section {
                heading: "Evaluation".into(),
                text: format!(
                    "{} held-out Countdown problems, {} search traces each. `pass@1`: mean \
                     accuracy of single search traces. `maj@n`: accuracy of the majority answer \
                     of the n traces. `agg@1`: accuracy of one aggregation trace that reads the \
                     same n traces (mean over the aggregation samples); `agg@1|some_correct`: the same on the \
                     problems where at least one trace is correct (how well the model picks). \
                     `pass@k`: unbiased estimate from the n traces.",
                    e.problems, e.n
                ),
                table: Some(Table { columns, rows }),
                efficiencies: vec![],
                figures: vec![eval_figure],
            },
            Section {
                heading: "Training".into(),
                text: "Mean reward of the traces sampled at each RL step (training problems); \
                       per-step losses, advantages, KL, entropy and timings are in \
                       `metrics.jsonl`."
                    .into(),
                table: None,
                efficiencies: vec![],
                figures: if of_kind("train").next().is_some() {
                    vec![rewards_figure]
                } else {
                    vec![]
                },
            },
        ],
    };
    report.write(out)?;
    Ok(())
}
