//! The run report, rebuilt from `metrics.jsonl` alone (so a resumed run's report covers the whole
//! run): a table of the evaluations, plots of the evaluation metrics and of the training rewards
//! (PNG and SVG through `spiral-eval`'s figures), and the resolved config.

use std::path::Path;
use std::sync::OnceLock;

use spiral_eval::{Curve, Figure, Report, Scale, Section, Table, git_commit};

use crate::config::RunConfig;
use crate::metrics::{EvalRecord, Record, read_metrics};

/// The checkout this binary was built in, when it is one (as `spiral-eval rsa` and `scaling`
/// record theirs), read once per process. [`crate::run::run`] and `spiral_repro::reproduce` read
/// it as they start, so a report written hours later names the code that ran, even if the
/// checkout has moved on since.
pub fn checkout_commit() -> Option<String> {
    static COMMIT: OnceLock<Option<String>> = OnceLock::new();
    COMMIT.get_or_init(|| git_commit(Path::new(env!("CARGO_MANIFEST_DIR")))).clone()
}

/// One column of the evaluation table: a metric of an evaluation record, if it was measured.
type Column = fn(&EvalRecord) -> Option<f64>;

/// The mean model FLOPs utilisation of sampling and learning over the steps, as a sentence
/// (empty when none was measured).
fn utilisation(trains: &[&crate::TrainRecord]) -> String {
    let mean = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let rollout = mean(trains.iter().filter_map(|t| t.mfu_rollout).collect());
    let learn = mean(trains.iter().filter_map(|t| t.mfu_learn).collect());
    match (rollout, learn) {
        (Some(r), Some(l)) => format!(
            " Model FLOPs utilisation (mean over steps; `run.peak_flops`): sampling {:.1}%, \
             learning {:.1}%.",
            100.0 * r,
            100.0 * l
        ),
        _ => String::new(),
    }
}

/// Writes `report.md`, `eval.{png,svg}` and `rewards.{png,svg}` into `out`.
pub fn write_report(out: &Path, config: &RunConfig) -> anyhow::Result<()> {
    let records = read_metrics(&out.join("metrics.jsonl"))?;
    let evals: Vec<&EvalRecord> = records
        .iter()
        .filter_map(|r| if let Record::Eval(e) = r { Some(e) } else { None })
        .collect();
    let trains: Vec<_> = records
        .iter()
        .filter_map(|r| if let Record::Train(t) = r { Some(t) } else { None })
        .collect();

    let mut eval_columns: Vec<(&str, Column)> = vec![
        ("pass@1", |e| Some(e.pass_at_1)),
        ("maj@n", |e| Some(e.maj_at_n)),
        ("agg@1", |e| Some(e.agg_at_1)),
        ("agg@1|some_correct", |e| e.agg_given_correct),
    ];
    // Tasks of parts only (combination).
    let parts = evals.iter().any(|e| e.agg_part_given_solved.is_some());
    if parts {
        eval_columns.push(("agg@1|part_solved", |e| e.agg_part_given_solved));
    }
    // Table only: not accuracies, so not on the accuracy figure.
    let diversity_columns: [(&str, Column); 2] =
        [("search entropy", |e| e.search_entropy), ("distinct answers", |e| e.distinct_answers)];
    let ks: Vec<usize> =
        evals.first().map(|e| e.pass_at_k().iter().map(|&(k, _)| k).collect()).unwrap_or_default();
    let mut columns = vec!["step".to_string()];
    columns.extend(eval_columns.iter().map(|(name, _)| name.to_string()));
    columns.extend(ks.iter().map(|k| format!("pass@{k}")));
    columns.extend(diversity_columns.iter().map(|(name, _)| name.to_string()));
    let rows = evals
        .iter()
        .map(|e| {
            let label = if e.step == 0 { "warm start".to_string() } else { e.step.to_string() };
            let pass_at_k = e.pass_at_k();
            let cells = eval_columns
                .iter()
                .map(|(_, value)| value(e))
                .chain(ks.iter().map(|k| pass_at_k.iter().find(|(j, _)| j == k).map(|&(_, v)| v)))
                .chain(diversity_columns.iter().map(|(_, value)| value(e)));
            let cells = cells.map(|v| v.map_or("-".into(), |v| format!("{v:.3}")));
            std::iter::once(label).chain(cells).collect()
        })
        .collect();
    let eval_curve = |(name, value): &(&str, Column)| {
        let points = evals.iter().filter_map(|e| Some((e.step as f64, value(e)?)));
        Curve::new(*name, points.filter(|(_, y)| y.is_finite()))
    };
    let eval_figure = Figure {
        name: "eval".into(),
        title: "Held-out accuracy during training".into(),
        x_label: "RL step (0 = warm start)".into(),
        y_label: "accuracy".into(),
        x_scale: Scale::Linear,
        curves: eval_columns.iter().map(eval_curve).collect(),
    };
    let search =
        trains.iter().map(|t| (t.step as f64, t.search_reward)).filter(|(_, y)| y.is_finite());
    let mut reward_curves = vec![Curve::new("search traces", search)];
    let aggregation = trains.iter().filter_map(|t| Some((t.step as f64, t.aggregation_reward?)));
    let aggregation = Curve::new("aggregation traces", aggregation);
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
                    "{} held-out {} problems, {} search traces each. `pass@1`: mean \
                     accuracy of single search traces. `maj@n`: accuracy of the majority answer \
                     of the n traces. `agg@1`: accuracy of one aggregation trace that reads the \
                     same n traces (mean over the aggregation samples); `agg@1|some_correct`: the same on the \
                     problems where at least one trace is correct (how well the model picks). \
                     {}`pass@k`: unbiased estimate from the n traces. `search entropy`: the search \
                     policy's entropy in nats per token (the mean `-log p` of its sampled \
                     tokens); `distinct answers`: different answers among a problem's n traces, \
                     on average (how far apart the parallel traces search).",
                    e.problems,
                    config.task.kind.name(),
                    e.n,
                    if parts {
                        "`agg@1|part_solved`: the aggregation's accuracy on the parts that some \
                         trace answers correctly (an answer may take each part from another \
                         trace). "
                    } else {
                        ""
                    }
                ),
                table: Some(Table { columns, rows }),
                efficiencies: vec![],
                figures: vec![eval_figure],
            },
            Section {
                heading: "Aggregator gate (before RL)".into(),
                text: match evals.iter().find(|e| e.step == 0) {
                    Some(before) => {
                        let criteria = crate::gate::gate(before, None);
                        format!(
                            "Whether the model RL starts from aggregates well enough for set RL \
                             to have something to learn from (`spiral_train::gate`); RSA's \
                             rounds are measured by `cargo xtask repro`.\n\n{}\n{}\n\nagg@1 {} \
                             maj@n ({:.3} against {:.3}).",
                            crate::gate::markdown(&criteria),
                            crate::gate::diagnosis(before).unwrap_or_default(),
                            if before.agg_at_1 > before.maj_at_n {
                                "is above"
                            } else {
                                "is not above"
                            },
                            before.agg_at_1,
                            before.maj_at_n
                        )
                    }
                    None => "No evaluation before RL was recorded.".into(),
                },
                table: None,
                efficiencies: vec![],
                figures: vec![],
            },
            Section {
                heading: "Training".into(),
                text: format!(
                    "Mean reward of the traces sampled at each RL step (training problems); \
                     per-step losses, advantages, KL, entropy and timings are in \
                     `metrics.jsonl`.{}",
                    utilisation(&trains)
                ),
                table: None,
                efficiencies: vec![],
                figures: if !trains.is_empty() { vec![rewards_figure] } else { vec![] },
            },
        ],
    };
    report.write(out)?;
    Ok(())
}
