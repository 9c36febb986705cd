//! [`Collectives`] over MPI (the `mpi` crate on Open MPI or MPICH): the ranks `mpirun` or
//! Slurm's `srun` started, found through the MPI environment. A binary started without a
//! launcher is a world of one.
//!
//! MPI's collectives wait for every rank without a limit; a rank that hangs (a stuck device, a
//! deadlocked library) would hold the others forever. A watchdog thread therefore ends this
//! process when one collective has waited longer than the configured timeout, and the launcher
//! then ends the other ranks, as it does for any rank that exits with an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpi::Count;
use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::Communicator;

use super::Collectives;

/// The MPI world of this process; MPI is finalised when it is dropped.
pub struct MpiWorld {
    universe: Universe,
    /// Milliseconds since `epoch` by which the running collective must return; 0: none runs.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    timeout: Duration,
}

impl std::fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiWorld {{ rank: {}, size: {} }}", self.rank(), self.world_size())
    }
}

impl MpiWorld {
    /// Initialises MPI, with collectives that may wait at most `timeout` for the other ranks;
    /// `None` if MPI was already initialised in this process.
    pub fn init(timeout: Duration) -> Option<Self> {
        let universe = mpi::initialize()?;
        let world = Self {
            universe,
            deadline: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            timeout,
        };
        if world.world_size() > 1 {
            world.start_watchdog();
        }
        Some(world)
    }

    /// Ends the process when a collective outlives its deadline.
    fn start_watchdog(&self) {
        let (deadline, epoch, timeout) = (self.deadline.clone(), self.epoch, self.timeout);
        let rank = self.rank();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200).min(timeout));
                let due = deadline.load(Ordering::SeqCst);
                if due != 0 && epoch.elapsed().as_millis() as u64 > due {
                    eprintln!(
                        "error on rank {rank}: a collective waited more than {timeout:?} for the \
                         other ranks (--collective-timeout); ending every rank"
                    );
                    std::process::exit(3);
                }
            }
        });
    }

    /// Runs one collective under the watchdog.
    fn guarded(&self, collective: impl FnOnce()) {
        let due = (self.epoch.elapsed() + self.timeout).as_millis() as u64;
        self.deadline.store(due.max(1), Ordering::SeqCst);
        collective();
        self.deadline.store(0, Ordering::SeqCst);
    }

    /// Ends every rank: for an error on one rank, after printing it there, so that the others
    /// do not wait forever in their next collective.
    pub fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }
}

impl Collectives for MpiWorld {
    fn rank(&self) -> usize {
        self.universe.world().rank() as usize
    }

    fn world_size(&self) -> usize {
        self.universe.world().size() as usize
    }

    fn sum_f32(&self, values: &mut [f32]) {
        let send = values.to_vec();
        self.guarded(|| {
            self.universe.world().all_reduce_into(&send[..], values, SystemOperation::sum())
        });
    }

    fn gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let world = self.universe.world();
        let mut lengths = vec![0 as Count; self.world_size()];
        let mine = Count::try_from(bytes.len()).expect("a rank's bytes fit an MPI count");
        self.guarded(|| world.all_gather_into(&mine, &mut lengths[..]));
        let starts: Vec<Count> = lengths
            .iter()
            .scan(0, |at, &n| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        let mut all = vec![0u8; lengths.iter().map(|&n| n as usize).sum()];
        {
            let mut parts = PartitionMut::new(&mut all[..], &lengths[..], &starts[..]);
            self.guarded(|| world.all_gather_varcount_into(bytes, &mut parts));
        }
        lengths
            .iter()
            .zip(&starts)
            .map(|(&n, &start)| all[start as usize..(start + n) as usize].to_vec())
            .collect()
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.guarded(|| {
            self.universe.world().all_reduce_into(&send[..], values, SystemOperation::sum())
        });
    }

    fn within_timeout(&self, work: &mut dyn FnMut()) {
        self.guarded(work)
    }
}
