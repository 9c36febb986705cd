//! Peak GPU memory of a command, sampled with `nvidia-smi` every 50 ms: the same measurement
//! for our binary and for the PyTorch peer (whose caching allocator holds what it reserved), so
//! the two figures compare like for like.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

/// A running `nvidia-smi` sampler of one GPU's used memory.
pub struct GpuMemory {
    child: Child,
    reader: JoinHandle<Vec<f64>>,
    before: f64,
}

impl GpuMemory {
    /// Starts sampling GPU `index`; `None` where `nvidia-smi` is missing or fails.
    pub fn start(index: usize) -> Option<Self> {
        let query = |extra: &[&str]| {
            let mut cmd = Command::new("nvidia-smi");
            cmd.args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
                .args(["-i", &index.to_string()])
                .args(extra);
            cmd
        };
        let once = query(&[]).output().ok().filter(|o| o.status.success())?;
        let before = parse(&String::from_utf8_lossy(&once.stdout)).into_iter().next()?;
        let mut child = query(&["-lms", "50"]).stdout(Stdio::piped()).spawn().ok()?;
        let stdout = child.stdout.take()?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(Result::ok).flat_map(|l| parse(&l)).collect()
        });
        Some(Self { child, reader, before })
    }

    /// Stops sampling; the peak used memory above what was in use at the start, in MiB.
    pub fn peak_mib(mut self) -> f64 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let samples = self.reader.join().unwrap_or_default();
        samples.into_iter().fold(0.0, f64::max) - self.before
    }
}

/// The MiB figures in `nvidia-smi`'s CSV output.
fn parse(text: &str) -> Vec<f64> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_csv_lines() {
        assert_eq!(super::parse("81\n 1024 \nN/A\n"), vec![81.0, 1024.0]);
    }
}
