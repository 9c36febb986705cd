//! The summary `spiral-eval passk` prints: pass@k for each k, maj@k when the samples carry
//! answers, each averaged over problems with a bootstrap interval.

use std::fmt;

use serde_json::{Map, Value};
use spiral_set_rl::mean;

use crate::error::EvalError;
use crate::metrics::bootstrap::{BootstrapOptions, Interval, bootstrap_mean_ci};
use crate::metrics::majority::{MajorityOptions, maj_at_k_per_problem};
use crate::metrics::passk::pass_at_k_per_problem;
use crate::metrics::samples::SampleSet;

/// What to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct PasskOptions {
    /// The k of pass@k and maj@k, in the order to report them.
    pub ks: Vec<usize>,
    /// Confidence intervals.
    pub bootstrap: BootstrapOptions,
    /// maj@k estimation.
    pub majority: MajorityOptions,
}

impl Default for PasskOptions {
    fn default() -> Self {
        Self {
            ks: vec![1, 2, 4, 8],
            bootstrap: BootstrapOptions::default(),
            majority: MajorityOptions::default(),
        }
    }
}

/// One metric averaged over problems.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// `pass@k` or `maj@k`.
    pub name: String,
    /// The mean over problems.
    pub value: f64,
    /// Its bootstrap interval over problems.
    pub ci: Interval,
}

/// pass@k and maj@k of a samples file.
#[derive(Clone, Debug, PartialEq)]
pub struct PasskSummary {
    /// Problems.
    pub problems: usize,
    /// Samples over all problems.
    pub samples: usize,
    /// Fewest and most samples of a problem.
    pub samples_per_problem: (usize, usize),
    /// pass@k for each k, then maj@k for each k when there are answers.
    pub metrics: Vec<Metric>,
    /// The options used (printed with the intervals).
    pub options: PasskOptions,
}

/// Computes the summary. Errors when there are no samples, or some problem has fewer samples
/// than a k.
///
/// ```
/// use spiral_eval::{PasskOptions, read_samples, summarize_samples};
///
/// let text = "{\"problem_id\": \"a\", \"reward\": 1}\n{\"problem_id\": \"a\", \"reward\": 0}\n";
/// let set = read_samples(text.as_bytes(), "inline").unwrap();
/// let options = PasskOptions { ks: vec![1, 2], ..PasskOptions::default() };
/// let summary = summarize_samples(&set, &options).unwrap();
/// assert_eq!(summary.to_json()["pass@1"], 0.5);
/// assert_eq!(summary.to_json()["pass@2"], 1.0);
/// ```
pub fn summarize_samples(
    set: &SampleSet,
    options: &PasskOptions,
) -> Result<PasskSummary, EvalError> {
    let problems = &set.problems;
    if problems.is_empty() {
        return Err(EvalError::Metric("no samples to evaluate".into()));
    }
    let metric = |name: String, values: Vec<f64>| Metric {
        name,
        value: mean(&values),
        ci: bootstrap_mean_ci(&values, &options.bootstrap),
    };
    let mut metrics = Vec::new();
    for &k in &options.ks {
        metrics.push(metric(format!("pass@{k}"), pass_at_k_per_problem(problems, k)?));
    }
    if set.has_answers {
        for &k in &options.ks {
            let values = maj_at_k_per_problem(problems, k, &options.majority)?;
            metrics.push(metric(format!("maj@{k}"), values));
        }
    }
    let sizes = problems.iter().map(|p| p.n());
    Ok(PasskSummary {
        problems: problems.len(),
        samples: set.num_samples(),
        samples_per_problem: (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0)),
        metrics,
        options: options.clone(),
    })
}

impl PasskSummary {
    /// `{"pass@1": ..., "pass@2": ..., "maj@1": ..., "problems": P, "samples": S}`: the point
    /// estimates (means over problems) in the order computed, then the counts.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for m in &self.metrics {
            object.insert(m.name.clone(), Value::from(m.value));
        }
        object.insert("problems".into(), self.problems.into());
        object.insert("samples".into(), self.samples.into());
        Value::Object(object)
    }
}

impl fmt::Display for PasskSummary {
    /// A table of the metrics with their intervals, and how both were computed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.samples_per_problem;
        let per = if lo == hi { lo.to_string() } else { format!("{lo} to {hi}") };
        writeln!(f, "{} problems, {} samples ({per} per problem)", self.problems, self.samples)?;
        let b = &self.options.bootstrap;
        let confidence = format!("{}% CI", b.confidence * 100.0);
        writeln!(f, "{:<8} {:>8}   {confidence}", "metric", "value")?;
        for m in &self.metrics {
            writeln!(f, "{:<8} {:>8.4}   [{:.4}, {:.4}]", m.name, m.value, m.ci.lo, m.ci.hi)?;
        }
        write!(
            f,
            "pass@k: unbiased 1 - C(n-c,k)/C(n,k) per problem, averaged over problems.\n\
             CI: percentile bootstrap over problems ({} resamples, seed {}).",
            b.resamples, b.seed
        )?;
        if self.metrics.iter().any(|m| m.name.starts_with("maj@")) {
            let m = &self.options.majority;
            write!(
                f,
                "\nmaj@k: majority vote of k samples drawn without replacement; equivalent answers \
                 vote together,\n  a tie counts as the mean correctness of the tied answers; exact \
                 over all k-subsets\n  up to {} of them, else the mean of {} seeded draws.",
                m.exact_limit, m.draws
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::samples::read_samples;

    const FILE: &str = r#"{"problem_id": "p1", "reward": 1, "answer": "4"}
{"problem_id": "p2", "reward": 0, "answer": "3"}
{"problem_id": "p1", "reward": 0, "answer": "5"}
{"problem_id": "p2", "reward": 1, "answer": "7"}
{"problem_id": "p1", "reward": 1, "answer": "4.0"}
{"problem_id": "p2", "reward": 0, "answer": "3"}
"#;

    #[test]
    fn by_hand() {
        let set = read_samples(FILE.as_bytes(), "f").unwrap();
        let options = PasskOptions { ks: vec![1, 3], ..PasskOptions::default() };
        let s = summarize_samples(&set, &options).unwrap();
        let json = s.to_json();
        // p1: 2 of 3 correct, p2: 1 of 3. pass@1 = (2/3 + 1/3) / 2; pass@3 = 1.
        assert!((json["pass@1"].as_f64().unwrap() - 0.5).abs() < 1e-15);
        assert_eq!(json["pass@3"], 1.0);
        // maj@3: p1 votes 4 (correct), p2 votes 3 (wrong).
        assert_eq!(json["maj@3"], 0.5);
        assert_eq!((json["problems"].clone(), json["samples"].clone()), (2.into(), 6.into()));
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["pass@1", "pass@3", "maj@1", "maj@3", "problems", "samples"]);
        let text = s.to_string();
        assert!(text.starts_with("2 problems, 6 samples (3 per problem)\n"), "{text}");
        assert!(text.contains("maj@3      0.5000   [0.0000, 1.0000]"), "{text}");
        assert!(text.contains("1000 resamples, seed 0"));
    }

    #[test]
    fn no_answers_no_maj_and_errors() {
        let text = "{\"problem_id\": 1, \"reward\": 1}\n{\"problem_id\": 1, \"reward\": 1}\n{\"problem_id\": 2, \"reward\": 0}";
        let set = read_samples(text.as_bytes(), "f").unwrap();
        let options = PasskOptions { ks: vec![1], ..PasskOptions::default() };
        let s = summarize_samples(&set, &options).unwrap();
        assert_eq!(s.metrics.len(), 1);
        assert!(s.to_string().contains("(1 to 2 per problem)"));
        assert!(!s.to_string().contains("maj@k"));
        let options = PasskOptions { ks: vec![2], ..PasskOptions::default() };
        let err = summarize_samples(&set, &options).unwrap_err().to_string();
        assert_eq!(err, "pass@2 needs at least 2 samples per problem, but problem `2` has 1");
        let empty = SampleSet::default();
        assert!(summarize_samples(&empty, &PasskOptions::default()).is_err());
    }
}
