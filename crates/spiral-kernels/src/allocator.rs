//! The memory allocator the project's binaries install, and how they configure it.
//!
//! burn-flex allocates a fresh buffer for the output of nearly every tensor operation. glibc's
//! malloc serves buffers of this size (hundreds of KiB to tens of MiB) with `mmap` and returns
//! them with `munmap`, so each operation pays page faults on first touch, the kernel zeroing
//! those pages, and cross-core TLB shootdowns: 650k page faults in one `train-cpu` benchmark
//! run. [mimalloc](https://github.com/microsoft/mimalloc) keeps freed pages for reuse; with
//! purging disabled ([`keep_freed_memory`]) the same run takes 1.4k page faults, and
//! `rollout-cpu` is about 15% faster (both measured with `spiral-bench`). The cost is that the
//! process holds on to its peak memory, as PyTorch's caching allocator does.
//!
//! A binary opts in with:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: spiral_model::allocator::MiMalloc = spiral_model::allocator::MiMalloc;
//!
//! fn main() {
//!     spiral_model::allocator::keep_freed_memory();
//!     // ...
//! }
//! ```

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same index in its v2 and v3
/// headers; the Rust bindings do not name it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable through which mimalloc reads the same option; when it is set, the
/// user's value is kept.
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Tells mimalloc never to return freed pages to the operating system (`purge_delay = -1`),
/// unless `MIMALLOC_PURGE_DELAY` says otherwise. Call it first thing in `main`; it has no effect
/// on a binary that does not install [`MiMalloc`].
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    if std::env::var_os(PURGE_DELAY_VAR).is_none() {
        // SAFETY: sets one integer option; mimalloc's options are safe to set at any time.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // Guards the hard-coded index: mimalloc reads back what was set, and the option next to
        // it (`use_numa_nodes`, which the bindings do name) is a different one.
        assert_eq!(PURGE_DELAY + 1, libmimalloc_sys::mi_option_use_numa_nodes);
        keep_freed_memory();
        if std::env::var_os(PURGE_DELAY_VAR).is_none() {
            #[allow(unsafe_code)]
            // SAFETY: reads one integer option.
            let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
            assert_eq!(value, -1);
        }
    }
}
