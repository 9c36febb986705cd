//! Advisory file locks (`flock`) that let several study invocations share one work folder and
//! one report folder, so that settings and seeds can be trained by separate processes at once
//! on a machine with the cores for it.
//!
//! - An RL run folder is trained by one process at a time: [`claim_run`] takes
//!   `<work>/<run>.lock` without waiting, and a second process asking for the same run gets an
//!   error naming it.
//! - The shared warm start is trained and measured by one process while the others wait for it
//!   ([`wait_for_run`]) and then find it done.
//! - The report folder is written by one process at a time: [`ReportLock`] waits for the
//!   folder's lock, and the holder reads `results.json` again before writing it, so that no
//!   process drops the models another one measured meanwhile.
//!
//! The kernel releases a lock when its file closes, also when the process dies, so a crash
//! leaves nothing to clean up.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// The lock file of the run folder `dir`, beside it (`<dir>.lock`), opened.
fn run_lock_file(dir: &Path) -> anyhow::Result<(File, PathBuf)> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    let path = dir.with_file_name(format!("{name}.lock"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok((file, path))
}

/// Takes `file`'s lock if it is free: `false` while another holder has it.
fn try_take(file: &File, path: &Path) -> anyhow::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Takes the lock of the run folder `dir`, held until the returned file is dropped; an error
/// if another process holds it.
pub fn claim_run(dir: &Path) -> anyhow::Result<File> {
    let (file, path) = run_lock_file(dir)?;
    if !try_take(&file, &path)? {
        bail!(
            "{} is being trained by another process (it holds {}); give each process other \
             --algorithms or --seeds",
            dir.display(),
            path.display()
        );
    }
    Ok(file)
}

/// Takes the lock of the run folder `dir`, waiting while another process holds it; an error
/// once `stop` is set (Ctrl-C) while waiting.
pub fn wait_for_run(dir: &Path, stop: &AtomicBool) -> anyhow::Result<File> {
    let (file, path) = run_lock_file(dir)?;
    let mut said = false;
    while !try_take(&file, &path)? {
        if !said {
            eprintln!("waiting for another process to finish {}", dir.display());
            said = true;
        }
        if stop.load(Ordering::Relaxed) {
            bail!("stopped while waiting for another process to finish {}", dir.display());
        }
        // Polled rather than blocked on, so that Ctrl-C is noticed.
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(file)
}

/// The exclusive lock of a report folder, held while it lives.
pub struct ReportLock {
    _folder: File,
}

impl ReportLock {
    /// Waits for the lock of the folder `out` (created if missing).
    pub fn acquire(out: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        // The folder itself is locked: a lock file inside it would show up beside the report.
        let folder = File::open(out).with_context(|| format!("opening {}", out.display()))?;
        folder.lock().with_context(|| format!("locking {}", out.display()))?;
        Ok(Self { _folder: folder })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_claimed_by_one_holder_is_refused_to_another_until_released() {
        let work = tempfile::tempdir().unwrap();
        let run = work.path().join("grpo-seed1");
        let first = claim_run(&run).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts as
        // another process's would.
        let err = claim_run(&run).unwrap_err().to_string();
        assert!(err.contains("grpo-seed1 is being trained by another process"), "{err}");
        assert!(claim_run(&work.path().join("grpo-seed2")).is_ok(), "other runs stay free");
        drop(first);
        assert!(claim_run(&run).is_ok(), "free again once released");
    }

    #[test]
    fn waiting_for_a_run_ends_when_stopped() {
        let work = tempfile::tempdir().unwrap();
        let run = work.path().join("warm-start");
        let _held = claim_run(&run).unwrap();
        let err = wait_for_run(&run, &AtomicBool::new(true)).unwrap_err().to_string();
        assert!(err.contains("stopped while waiting"), "{err}");
    }

    #[test]
    fn a_report_folder_lock_waits_for_its_holder() {
        let out = tempfile::tempdir().unwrap();
        let held = ReportLock::acquire(out.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = out.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let _lock = ReportLock::acquire(&path).unwrap();
            tx.send(()).unwrap();
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "acquired while another holder had it");
        drop(held);
        rx.recv_timeout(Duration::from_secs(10)).expect("never acquired");
        waiter.join().unwrap();
    }
}
