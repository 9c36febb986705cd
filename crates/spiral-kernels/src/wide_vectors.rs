//! Hot loops compiled twice: once for the baseline x86-64 the binaries target (4-wide SSE2
//! vectors, so that they run on any x86-64 machine) and once for AVX2 (8-wide), chosen at run
//! time by what the CPU reports. This is function multiversioning as `std::arch`'s
//! documentation describes it ("Dynamic CPU feature detection"), written out by
//! [`wide_vectors!`] so that a kernel's body is written once.
//!
//! The AVX2 copy gives the same results as the baseline one: the arithmetic is the same
//! operations in the same order, only more lanes at a time (`fma` is enabled but no multiply
//! and add is fused, as Rust never contracts `a * b + c` on its own).

/// Whether the CPU runs the AVX2 copies (checked once, then cached by `std`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Defines `fn name(args) -> ret { body }` that runs `body` compiled for AVX2 where the CPU has
/// it and for the baseline otherwise. The body's helpers must be `#[inline(always)]` (or
/// inlined), or they run at the baseline width in both copies.
#[macro_export]
macro_rules! wide_vectors {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn baseline($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                baseline($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            if $crate::wide_vectors::has_avx2() {
                // SAFETY: `avx2` is the same safe code compiled for AVX2 and FMA, and the CPU
                // has both (checked just above), which is the one requirement of calling a
                // `target_feature` function.
                #[allow(unsafe_code)]
                return unsafe { avx2($($arg),*) };
            }
            baseline($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    crate::wide_vectors! {
        /// A dot product, the shape of the loops this is for.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(a, b)| a * b).sum()
        }
    }

    #[test]
    fn the_copy_the_cpu_runs_computes_what_the_serial_loop_does() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos()).collect();
        let serial: f32 = a.iter().zip(&b).map(|(a, b)| a * b).sum();
        assert_eq!(dot(&a, &b), serial);
    }
}
