//! [`Collectives`] whose gradient sums run on the GPUs with NCCL
//! ([`spiral_kernels::cuda_nccl`]), every other collective (counts, statistics, the NCCL id
//! itself) going through the host collectives underneath (MPI): the Horovod pattern.
//!
//! The NCCL group is formed at the first gradient sum, which every rank reaches together: rank 0
//! makes the group's id and the host collectives carry it to the others.

use std::sync::{Arc, OnceLock};

use burn::tensor::Tensor;
use spiral_kernels::cuda_nccl::{NcclGroup, unique_id};
use spiral_kernels::device::Cuda;

use super::{Collectives, DeviceBucket};

/// Host collectives with gradient sums on the GPUs.
pub struct NcclOnGpus {
    host: Arc<dyn Collectives>,
    group: OnceLock<Result<NcclGroup, String>>,
}

impl NcclOnGpus {
    /// Sums gradient buckets of the CUDA backend with NCCL among the ranks of `host`.
    pub fn new(host: Arc<dyn Collectives>) -> Self {
        Self { host, group: OnceLock::new() }
    }

    /// This rank's member of the group, on GPU `ordinal`, formed on first use.
    fn group(&self, ordinal: usize) -> Result<&NcclGroup, String> {
        self.group.get_or_init(|| self.form(ordinal)).as_ref().map_err(Clone::clone)
    }

    fn form(&self, ordinal: usize) -> Result<NcclGroup, String> {
        let (rank, size) = (self.host.rank(), self.host.world_size());
        // Every rank takes part in the gather, rank 0 with the id (or nothing if it has none,
        // so that no rank waits for an id that will not come).
        let made = if rank == 0 { unique_id() } else { Ok(Vec::new()) };
        let sent = made.as_ref().map_or(&[][..], Vec::as_slice);
        let id = self.host.gather_bytes(sent).swap_remove(0);
        made?;
        if id.is_empty() {
            return Err("rank 0 could not make an NCCL id (see its error)".into());
        }
        let mut joined = Err(String::new());
        self.host.within_timeout(&mut || joined = NcclGroup::join(ordinal, rank, size, &id));
        joined
    }
}

impl Collectives for NcclOnGpus {
    fn rank(&self) -> usize {
        self.host.rank()
    }

    fn world_size(&self) -> usize {
        self.host.world_size()
    }

    fn sum_f32(&self, values: &mut [f32]) {
        self.host.sum_f32(values)
    }

    fn sum_f64(&self, values: &mut [f64]) {
        self.host.sum_f64(values)
    }

    fn gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.host.gather_bytes(bytes)
    }

    fn sums_on_device(&self) -> bool {
        true
    }

    fn sum_on_device(&self, bucket: DeviceBucket) -> Result<DeviceBucket, String> {
        let bucket = *bucket.downcast::<Tensor<Cuda, 1>>().map_err(|_| {
            "NCCL sums gradients on GPUs: train with --device cuda, or sum on the host \
             (--gradient-sum host)"
                .to_string()
        })?;
        let group = self.group(bucket.device().index)?;
        let mut bucket = Some(bucket);
        let mut summed = Err(String::new());
        self.host.within_timeout(&mut || {
            summed = group.sum(bucket.take().expect("the work runs once"));
        });
        Ok(Box::new(summed?))
    }

    fn within_timeout(&self, work: &mut dyn FnMut()) {
        self.host.within_timeout(work)
    }
}
