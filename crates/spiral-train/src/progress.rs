//! Progress of a long phase (the warm start, the RL steps): a bar on a terminal, and plain lines
//! where stderr is not one. A run under `nohup`, `srun` or a batch scheduler writes its stderr to
//! a file, where indicatif draws nothing, so without the lines such a log would stay silent for
//! hours: no step time, no estimate of the end, not even the evaluations' headline numbers.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is written at most; the first step and the last always get one.
const LINE_EVERY: Duration = Duration::from_secs(60);

/// A phase's progress over `len` steps.
pub struct Progress {
    bar: ProgressBar,
    lines: Option<Lines>,
}

/// The state of plain-line progress.
struct Lines {
    what: String,
    len: usize,
    /// Steps done when this process started the phase (a resumed run starts part-way).
    first: usize,
    done: usize,
    started: Instant,
    last_line: Option<Instant>,
    /// The last step's headline.
    status: String,
}

impl Lines {
    /// The line for now, with the last step's headline. Its seconds per step are wall time
    /// over the steps this process has done, evaluations and checkpoints included, which is
    /// what the estimate of the end needs (and more than the step time in `metrics.jsonl`).
    fn line(&self, now: Instant) -> String {
        let per_step = (now - self.started).as_secs_f64() / (self.done - self.first).max(1) as f64;
        line(&self.what, self.done, self.len, &self.status, per_step)
    }
}

impl Progress {
    /// Progress over `len` steps, `done` of them already done: a bar when stderr is a terminal,
    /// plain lines otherwise.
    pub fn new(len: usize, done: usize, what: &str) -> Self {
        if std::io::stderr().is_terminal() {
            return Self { bar: bar(len, done, what), lines: None };
        }
        let lines = Lines {
            what: what.to_string(),
            len,
            first: done,
            done,
            started: Instant::now(),
            last_line: None,
            status: String::new(),
        };
        Self { bar: ProgressBar::hidden(), lines: Some(lines) }
    }

    /// Progress that shows nothing (every rank but the first).
    pub fn hidden() -> Self {
        Self { bar: ProgressBar::hidden(), lines: None }
    }

    /// One more step done; `status` is the step's headline (`loss 1.234`).
    pub fn step(&mut self, status: String) {
        if let Some(lines) = &mut self.lines {
            lines.done += 1;
            lines.status.clone_from(&status);
            let now = Instant::now();
            let due = lines.done == lines.first + 1
                || lines.done == lines.len
                || lines.last_line.is_none_or(|at| now - at >= LINE_EVERY);
            if due {
                eprintln!("{}", lines.line(now));
                lines.last_line = Some(now);
            }
        }
        self.bar.set_prefix(status);
        self.bar.inc(1);
    }

    /// A line above the bar, or in the log without one.
    pub fn println(&self, text: String) {
        if self.lines.is_some() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    /// The phase ended.
    pub fn finish(self) {
        self.bar.finish();
    }

    /// The phase stopped before its end; the bar stays where it was, and a log gets where.
    pub fn abandon(self) {
        if let Some(lines) = &self.lines
            && lines.done > lines.first
        {
            eprintln!("{} (stopped)", lines.line(Instant::now()));
        }
        self.bar.abandon();
    }
}

/// A progress bar over `len` steps, `done` of them already done.
fn bar(len: usize, done: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {prefix}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.set_position(done as u64);
    bar
}

/// `RL 60/300  search 0.15 agg 0.57  34.2 s/step  eta 2h16m`.
fn line(what: &str, done: usize, len: usize, status: &str, seconds_per_step: f64) -> String {
    let left = seconds_per_step * len.saturating_sub(done) as f64;
    format!("{what} {done}/{len}  {status}  {seconds_per_step:.1} s/step  eta {}", duration(left))
}

/// Seconds as `2h16m`, `4m05s` or `12s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_gives_the_step_its_time_and_what_is_left() {
        assert_eq!(
            line("RL", 60, 300, "search 0.15 agg 0.57", 34.2),
            "RL 60/300  search 0.15 agg 0.57  34.2 s/step  eta 2h16m"
        );
        assert_eq!(
            line("warm start", 5, 5, "loss 1.000", 0.5),
            "warm start 5/5  loss 1.000  0.5 s/step  eta 0s"
        );
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(duration(12.4), "12s");
        assert_eq!(duration(-3.0), "0s");
    }

    #[test]
    fn progress_in_a_log_counts_from_where_the_phase_resumed() {
        let mut progress = Progress {
            bar: ProgressBar::hidden(),
            lines: Some(Lines {
                what: "RL".into(),
                len: 10,
                first: 4,
                done: 4,
                started: Instant::now(),
                last_line: None,
                status: String::new(),
            }),
        };
        progress.step("loss 1.0".into());
        let lines = progress.lines.as_ref().unwrap();
        assert_eq!(lines.done, 5);
        assert!(lines.last_line.is_some(), "the first step of a phase gets a line");
        progress.step("loss 0.9".into());
        let first_line = progress.lines.as_ref().unwrap().last_line;
        progress.step("loss 0.8".into());
        let lines = progress.lines.as_ref().unwrap();
        assert_eq!(lines.last_line, first_line, "at most a line a minute");
        progress.finish();
    }
}
