//! Test-only: the policy loss as a plain per-token loop in f64, and random batches for it.
//!
//! The burn implementation in `policy.rs` is checked against this, value and gradient (by
//! finite differences of this loop), in every aggregation mode.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

use super::{
    CorrectionConfig, CorrectionKind, KlEstimator, Level, LossAggregation, PolicyLossConfig,
    PolicyLossInput, PolicyLossStats,
};

/// One batch as plain numbers: rows of `[T]` per sequence.
#[derive(Clone)]
pub(crate) struct Batch {
    pub(crate) logp: Vec<Vec<f64>>,
    pub(crate) old: Vec<Vec<f64>>,
    pub(crate) reference: Option<Vec<Vec<f64>>>,
    pub(crate) rollout: Option<Vec<Vec<f64>>>,
    pub(crate) adv: Vec<f64>,
    pub(crate) mask: Vec<Vec<f64>>,
    pub(crate) weights: Option<Vec<f64>>,
    pub(crate) entropy: Option<Vec<Vec<f64>>>,
    pub(crate) denominator: Option<f64>,
}

pub(crate) fn t2<B: Backend>(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), rows[0].len()]), &Default::default())
}

pub(crate) fn t1<B: Backend>(values: &[f64]) -> Tensor<B, 1> {
    let flat: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [values.len()]), &Default::default())
}

pub(crate) fn input<B: Backend>(b: &Batch) -> PolicyLossInput<B> {
    PolicyLossInput {
        logp: t2(&b.logp),
        old_logp: t2(&b.old),
        ref_logp: b.reference.as_deref().map(t2),
        rollout_logp: b.rollout.as_deref().map(t2),
        advantages: t1(&b.adv),
        mask: t2(&b.mask),
        weights: b.weights.as_deref().map(t1),
        entropy: b.entropy.as_deref().map(t2),
        denominator: b.denominator,
    }
}

/// The loss and its statistics as a straightforward loop over every token, in f64.
pub(crate) fn reference(cfg: &PolicyLossConfig, b: &Batch) -> PolicyLossStats {
    let (rows, cols) = (b.logp.len(), b.logp[0].len());
    let kl = |lp: f64, rf: f64| {
        let x = lp - rf;
        match cfg.kl_estimator {
            KlEstimator::K1 => x,
            KlEstimator::K2 => 0.5 * x * x,
            KlEstimator::K3 => {
                let d = (-x).clamp(-20.0, 20.0);
                d.exp() - d - 1.0
            }
        }
    };
    let (mut pg_num, mut kl_num, mut tokens, mut seqs) = (0.0, 0.0, 0.0, 0.0);
    let (mut clipped, mut dualled, mut approx, mut ratio_sum, mut ref_sum, mut ent_sum) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut corrected, mut mismatch_kl, mut mismatch_max) = (0.0, 0.0, 0.0f64);
    for i in 0..rows {
        let a = b.adv[i];
        let w = b.weights.as_ref().map_or(1.0, |w| w[i]);
        let (mut seq_pg, mut seq_kl, mut len) = (0.0, 0.0, 0.0);
        let real = || (0..cols).filter(|&t| b.mask[i][t] > 0.0);
        // GSPO: the mean log-ratio over the sequence's tokens.
        let n = real().count().max(1) as f64;
        let seq_lr = real().map(|t| b.logp[i][t] - b.old[i][t]).sum::<f64>() / n;
        // The sequence-level correction ratio: the product over its tokens.
        let seq_log_w: f64 =
            b.rollout.as_ref().map_or(0.0, |r| real().map(|t| b.old[i][t] - r[i][t]).sum());
        for t in 0..cols {
            let m = b.mask[i][t];
            let lr = match cfg.ratio_level {
                Level::Token => b.logp[i][t] - b.old[i][t],
                Level::Sequence => seq_lr,
            }
            .clamp(-20.0, 20.0);
            let rho = lr.exp();
            let unclipped = -rho * a;
            let clipped_loss = -rho.clamp(1.0 - cfg.clip_low, 1.0 + cfg.clip_high) * a;
            let mut pg = unclipped.max(clipped_loss);
            clipped += m * f64::from(u8::from(clipped_loss > unclipped));
            if let Some(c) = cfg.dual_clip
                && a < 0.0
            {
                dualled += m * f64::from(u8::from(pg > -c * a));
                pg = pg.min(-c * a);
            }
            if let Some(r) = &b.rollout {
                let log_w = match cfg.correction.level {
                    Level::Token => b.old[i][t] - r[i][t],
                    Level::Sequence => seq_log_w,
                };
                let iw = log_w.clamp(-20.0, 20.0).exp();
                let cap = cfg.correction.cap;
                let (weight, hit) = match cfg.correction.kind {
                    CorrectionKind::None => (1.0, false),
                    CorrectionKind::Tis => (iw.min(cap), iw > cap),
                    CorrectionKind::Mis => {
                        let keep = (1.0 / cap..=cap).contains(&iw);
                        (f64::from(u8::from(keep)), !keep)
                    }
                };
                pg *= weight;
                corrected += m * f64::from(u8::from(hit));
                let x = (b.logp[i][t] - r[i][t]).clamp(-20.0, 20.0);
                mismatch_kl += m * (x.exp() - x - 1.0);
                if m > 0.0 {
                    mismatch_max = mismatch_max.max(x.abs());
                }
            }
            let k = b.reference.as_ref().map_or(0.0, |r| kl(b.logp[i][t], r[i][t]));
            seq_pg += m * pg;
            seq_kl += m * k;
            len += m;
            approx += m * (rho - 1.0 - lr);
            ratio_sum += m * rho;
            ref_sum += m * k;
            ent_sum += m * b.entropy.as_ref().map_or(0.0, |e| e[i][t]);
        }
        let per_seq = |sum: f64| match cfg.aggregation {
            LossAggregation::TokenMean => sum,
            LossAggregation::SeqMeanTokenMean => sum / len.max(1.0),
            LossAggregation::SeqMeanTokenSumNorm { max_len } => sum / max_len as f64,
        };
        pg_num += w * per_seq(seq_pg);
        kl_num += w * per_seq(seq_kl);
        tokens += len;
        seqs += f64::from(u8::from(len > 0.0));
    }
    let denom = b.denominator.unwrap_or(match cfg.aggregation {
        LossAggregation::TokenMean => tokens,
        _ => seqs,
    });
    let denom = denom.max(1.0);
    let pg_loss = pg_num / denom;
    let kl_loss = if cfg.kl_beta > 0.0 { cfg.kl_beta * kl_num / denom } else { 0.0 };
    let per_token = |x: f64| x / tokens.max(1.0);
    PolicyLossStats {
        loss: pg_loss + kl_loss,
        pg_loss,
        clip_fraction: per_token(clipped),
        dual_clip_fraction: per_token(dualled),
        approx_kl: per_token(approx),
        ref_kl: b.reference.as_ref().map(|_| per_token(ref_sum)),
        mean_ratio: per_token(ratio_sum),
        entropy: b.entropy.as_ref().map(|_| per_token(ent_sum)),
        num_tokens: tokens,
        corrected_fraction: per_token(corrected),
        rollout_mismatch_kl: b.rollout.as_ref().map(|_| per_token(mismatch_kl)),
        rollout_mismatch_max_ratio: b.rollout.as_ref().map(|_| mismatch_max.exp()),
    }
}

/// A random batch; log-ratios drawn from bands that sit well away from the clip kinks
/// (ln 0.8, ln 1.2, ln 3) so finite differences are valid, yet cover every branch.
pub(crate) fn random_batch(rng: &mut StdRng, rows: usize, cols: usize) -> Batch {
    let bands = [(-0.6, -0.4), (-0.1, 0.1), (0.4, 0.6), (1.3, 1.5)];
    let mut mask = vec![vec![0.0; cols]; rows];
    for (i, row) in mask.iter_mut().enumerate() {
        // Row 1 is all padding; the others have random lengths.
        let len = if i == 1 { 0 } else { rng.random_range(1..=cols) };
        row[..len].fill(1.0);
    }
    let logp: Vec<Vec<f64>> =
        (0..rows).map(|_| (0..cols).map(|_| -rng.random_range(0.05..3.0)).collect()).collect();
    let old: Vec<Vec<f64>> = logp
        .iter()
        .map(|row| {
            row.iter()
                .map(|lp| {
                    let (lo, hi) = bands[rng.random_range(0..bands.len())];
                    lp - rng.random_range(lo..hi)
                })
                .collect()
        })
        .collect();
    let jitter = |rng: &mut StdRng| -> Vec<Vec<f64>> {
        logp.iter().map(|r| r.iter().map(|lp| lp + rng.random_range(-0.5..0.5)).collect()).collect()
    };
    let reference = Some(jitter(rng));
    // The rollout's log-probs: near the old policy's, some tokens (and so some sequences) far
    // enough off to be truncated or masked at a cap of 2.
    let rollout = Some(
        old.iter()
            .map(|row| {
                let (lo, hi) = bands[rng.random_range(0..bands.len())];
                row.iter().map(|lp| lp - rng.random_range(lo..hi) * 0.6).collect()
            })
            .collect(),
    );
    let entropy =
        Some((0..rows).map(|_| (0..cols).map(|_| rng.random_range(0.0..2.0)).collect()).collect());
    let mut adv: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.5..1.5)).collect();
    adv[0] = 0.0;
    let weights = Some((0..rows).map(|_| rng.random_range(0.25..2.0)).collect());
    Batch { logp, old, reference, rollout, adv, mask, weights, entropy, denominator: None }
}

pub(crate) fn configs() -> Vec<PolicyLossConfig> {
    let mut out = Vec::new();
    for aggregation in [
        LossAggregation::TokenMean,
        LossAggregation::SeqMeanTokenMean,
        LossAggregation::SeqMeanTokenSumNorm { max_len: 9 },
    ] {
        for dual_clip in [None, Some(3.0)] {
            for (kl_beta, kl_estimator) in [
                (0.0, KlEstimator::K3),
                (0.1, KlEstimator::K1),
                (0.1, KlEstimator::K2),
                (0.05, KlEstimator::K3),
            ] {
                out.push(PolicyLossConfig {
                    clip_low: 0.2,
                    clip_high: 0.28,
                    dual_clip,
                    kl_beta,
                    kl_estimator,
                    aggregation,
                    ..PolicyLossConfig::default()
                });
            }
        }
    }
    // Sequence-level ratios and each correction, over the aggregation modes.
    let base = out.clone();
    for cfg in base.iter().step_by(4) {
        out.push(PolicyLossConfig { ratio_level: Level::Sequence, ..*cfg });
        for kind in [CorrectionKind::Tis, CorrectionKind::Mis] {
            for level in [Level::Token, Level::Sequence] {
                out.push(PolicyLossConfig {
                    correction: CorrectionConfig { kind, level, cap: 2.0 },
                    recompute_old_logprobs: true,
                    ..*cfg
                });
            }
        }
    }
    out
}
