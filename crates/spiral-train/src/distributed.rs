//! Data parallelism across processes: each rank trains on its share of every batch, the ranks'
//! gradients are summed in one flattened bucket, and every rank then takes the same AdamW step,
//! as Horovod (Sergeev and Del Balso, 2018, arXiv:1802.05799) and DeepSpeed's data parallelism
//! do. The ranks are started and joined by an existing engine, MPI (`mpirun`, Slurm's `srun`;
//! [`mpi`], with the `mpi` feature), behind the [`Collectives`] the learner calls; without it
//! a process is a world of one ([`SingleProcess`]). On GPUs the gradient bucket is summed where
//! it is, by NCCL ([`nccl`], with the `cuda` feature), the ranks still meeting through MPI.
//!
//! Why the result does not depend on the number of ranks: the loss of every share is normalised
//! by the whole batch's counts (summed over ranks first), gradients are summed over ranks in a
//! fixed parameter order (the model's structure, never a random parameter id), and clipping and
//! AdamW run on the summed gradients, identical on every rank. Only float summation order
//! differs.

mod bucket;
#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "cuda")]
pub mod nccl;

use std::any::Any;
use std::sync::Arc;

pub(crate) use bucket::all_reduce_gradients;
pub use bucket::sum_gradients;

/// A float32 `burn::tensor::Tensor<B, 1>` of the learner's inner backend, boxed: the learner is
/// generic over the backend, and a trait object cannot have generic methods.
pub type DeviceBucket = Box<dyn Any + Send>;

/// What the learner needs of the ranks it trains with.
pub trait Collectives: Send + Sync {
    /// This process's rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// Replaces `values` on every rank by their element-wise sum over the ranks.
    fn sum_f32(&self, values: &mut [f32]);
    /// [`Collectives::sum_f32`] in float64 (counts and statistics).
    fn sum_f64(&self, values: &mut [f64]);
    /// Every rank's `bytes`, in rank order, on every rank.
    fn gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>>;

    /// Whether [`Collectives::sum_on_device`] takes gradient buckets (NCCL on GPUs); where it
    /// does not, the learner copies them to the host for [`Collectives::sum_f32`].
    fn sums_on_device(&self) -> bool {
        false
    }

    /// `bucket` summed over the ranks on their devices, without a copy to the host.
    fn sum_on_device(&self, bucket: DeviceBucket) -> Result<DeviceBucket, String> {
        let _ = bucket;
        Err("these collectives sum on the host".into())
    }

    /// Runs `work`, a collective outside these collectives (NCCL's), under the same timeout as
    /// theirs.
    fn within_timeout(&self, work: &mut dyn FnMut()) {
        work()
    }
}

/// The ranks a run trains with ([`crate::RunControl::world`]); a world of one by default.
#[derive(Clone)]
pub struct World(pub Arc<dyn Collectives>);

impl Default for World {
    fn default() -> Self {
        Self(Arc::new(SingleProcess))
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World {{ rank: {}, size: {} }}", self.0.rank(), self.0.world_size())
    }
}

impl World {
    /// Whether this is rank 0, the one that writes the run's files.
    pub fn is_root(&self) -> bool {
        self.0.rank() == 0
    }

    /// `[sum, max]` over ranks of each rank's `x`.
    pub fn sum_and_max(&self, x: f64) -> [f64; 2] {
        let all = self.gather(x);
        [all.iter().sum(), all.iter().copied().fold(f64::NEG_INFINITY, f64::max)]
    }

    /// Whether `flag` is true on any rank.
    pub fn any(&self, flag: bool) -> bool {
        let mut count = [f64::from(u8::from(flag))];
        self.0.sum_f64(&mut count);
        count[0] > 0.0
    }

    /// Every rank's `x`, in rank order, on every rank (one sum of one-hot slots).
    pub fn gather(&self, x: f64) -> Vec<f64> {
        let mut slots = vec![0.0; self.0.world_size()];
        slots[self.0.rank()] = x;
        self.0.sum_f64(&mut slots);
        slots
    }
}

/// A world of one process: every collective is the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Collectives for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _: &mut [f32]) {}

    fn sum_f64(&self, _: &mut [f64]) {}

    fn gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        vec![bytes.to_vec()]
    }
}

/// A checksum of `model`'s weights: the float64 sum of every value times a weight that depends
/// on its position, so that swapped or shifted values change it too. Equal weights give equal
/// checksums on every rank (the same operations in the same order).
pub fn weight_checksum<B: burn::tensor::backend::Backend>(
    model: &spiral_model::CausalLm<B>,
) -> f64 {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Sum(f64, u64);
    impl<B: burn::tensor::backend::Backend> ModuleVisitor<B> for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let values = param.val().into_data().convert::<f32>().into_vec::<f32>().expect("f32");
            for x in values {
                self.1 += 1;
                self.0 += x as f64 * (1.0 + (self.1 % 7919) as f64 / 7919.0);
            }
        }
    }
    let mut sum = Sum(0.0, 0);
    model.visit(&mut sum);
    sum.0
}

/// Rank `rank`'s share of `len` items among `world` ranks: contiguous, the first `len % world`
/// ranks one item more (8 items over 3 ranks: 3, 3, 2).
pub fn share(len: usize, rank: usize, world: usize) -> std::ops::Range<usize> {
    let (base, extra) = (len / world, len % world);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_item_once_and_differ_by_one_at_most() {
        for len in 0..20 {
            for world in 1..6 {
                let shares: Vec<_> = (0..world).map(|r| share(len, r, world)).collect();
                assert_eq!(shares[0].start, 0);
                assert_eq!(shares[world - 1].end, len);
                assert!(shares.windows(2).all(|w| w[0].end == w[1].start));
                let sizes: Vec<usize> = shares.iter().map(|s| s.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            }
        }
        assert_eq!(share(8, 2, 3), 6..8);
    }
}
