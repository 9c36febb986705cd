//! Running independent shards of a batch at once, one per core. burn's CPU backend runs
//! element-wise work and small matrix products on the calling thread, so the rollout engine and
//! the learner split their batches and run the pieces side by side.
//!
//! The pieces run on scoped threads of their own, not on rayon's pool: a rayon worker waiting
//! inside a nested parallel GEMM steals unrelated jobs, and a stolen job that needs a lock the
//! worker already holds (burn's autodiff graph is locked for a whole backward pass) deadlocks.
//! Threads outside the pool only hand GEMM work to it and wait.

use burn::tensor::backend::Backend;

use crate::device::is_cpu;

/// How many shards to run at once on backend `B`: `requested`, or for 0 the size of rayon's
/// pool on the CPU backend (one per core, or `RAYON_NUM_THREADS`; burn's GEMM uses the same
/// pool) and 1 on any other backend: a GPU already runs each operation in parallel, and
/// splitting its batch would only shrink its kernels.
pub fn shard_count<B: Backend>(requested: usize) -> usize {
    match requested {
        0 if is_cpu::<B>() => rayon::current_num_threads(),
        0 => 1,
        n => n,
    }
}

/// Applies `f` to every item, each on its own thread (the calling thread when there is only
/// one), and returns the results in the items' order. A panic in `f` is re-raised here.
pub fn map_concurrently<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.into_iter().map(|item| scope.spawn(move || f(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let out = map_concurrently((0..7).collect(), |i: u64| {
            std::thread::sleep(std::time::Duration::from_millis(7 - i));
            i * i
        });
        assert_eq!(out, vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(map_concurrently(vec![3], |i: i32| i + 1), vec![4]);
        assert!(map_concurrently(Vec::<i32>::new(), |i| i).is_empty());
    }

    #[test]
    fn one_shard_per_core_only_on_the_cpu() {
        use crate::device::Cpu;
        use burn::backend::Autodiff;
        assert_eq!(shard_count::<Cpu>(0), rayon::current_num_threads());
        assert_eq!(shard_count::<Autodiff<Cpu>>(0), rayon::current_num_threads());
        assert_eq!(shard_count::<Cpu>(3), 3);
        #[cfg(feature = "cuda")]
        assert_eq!(shard_count::<crate::device::Cuda>(0), 1);
    }

    #[test]
    #[should_panic(expected = "shard 2 failed")]
    fn a_panicking_shard_panics_the_caller() {
        map_concurrently(vec![1, 2, 3], |i| {
            if i == 2 {
                panic!("shard {i} failed");
            }
        });
    }
}
