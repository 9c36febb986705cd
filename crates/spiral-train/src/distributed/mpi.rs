//! [`Collectives`] over MPI (the `mpi` crate on Open MPI or MPICH): the ranks `mpirun` or
//! Slurm's `srun` started, found through the MPI environment. A binary started without a
//! launcher is a world of one.

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::Communicator;

use super::Collectives;

/// The MPI world of this process; MPI is finalised when it is dropped.
pub struct MpiWorld {
    universe: Universe,
}

impl std::fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiWorld {{ rank: {}, size: {} }}", self.rank(), self.world_size())
    }
}

impl MpiWorld {
    /// Initialises MPI; `None` if it was already initialised in this process.
    pub fn init() -> Option<Self> {
        mpi::initialize().map(|universe| Self { universe })
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
        self.universe.world().all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.universe.world().all_reduce_into(&send[..], values, SystemOperation::sum());
    }
}
