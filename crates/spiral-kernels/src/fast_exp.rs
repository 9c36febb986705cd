//! `e^x` without a call into the C library, for loops the compiler should vectorise: the
//! weights of a block of attention scores ([`crate::flash_attention`]). Range reduction to
//! `x = k ln 2 + r` (Cody and Waite's two-part `ln 2`), a polynomial for `e^r`, and `2^k` built in
//! the exponent bits, as vector math libraries do.

/// `e^x` for `x <= 0`, to about 2 ulp, and exactly 0 below -87 (and for `-inf`, a hidden key):
/// `x = k ln 2 + r` with `|r| <= ln 2 / 2`, `e^r` by its degree-6 Taylor polynomial (error under
/// `r^7 / 7! < 2^-23`), `2^k` written into the exponent bits. Branch-free, so a loop of it
/// vectorises, where the C library's `expf` is a call per element.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that `k * LN2_HI` is exact for the k that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer without a call.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.max(-87.0);
    let k = (clamped * LOG2_E + ROUND) - ROUND;
    let r = clamped - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    if x < -87.0 { 0.0 } else { p * scale }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_polynomial_exp_is_within_a_few_ulp_of_the_library_one() {
        let mut worst = 0.0f32;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max((ours - libm).abs() / libm);
        }
        assert!(worst < 4.0 * f32::EPSILON, "worst relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }
}
