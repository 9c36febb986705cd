//! Drawing `count` distinct problems from a seeded generator, shared by the task generators:
//! bounded up-front allocation and a stop once new problems have stopped coming, so an absurd
//! count is an error naming the config, not an allocation failure or an endless loop.

use std::collections::HashSet;
use std::hash::Hash;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::RewardError;

/// The most problems reserved up front (more are still produced when asked).
const MAX_RESERVED: usize = 1 << 16;

/// Consecutive duplicate draws after which drawing stops: the ranges hold no more problems.
const MAX_STALE_DRAWS: usize = 10_000;

/// Draws with `sample` from a generator seeded with `seed` until `count` problems with distinct
/// `key`s are found, in draw order. `what` names the config in the error.
pub(crate) fn draw_distinct<P, K: Hash + Eq>(
    count: usize,
    seed: u64,
    what: &'static str,
    mut sample: impl FnMut(&mut StdRng) -> Result<P, RewardError>,
    key: impl Fn(&P) -> K,
) -> Result<Vec<P>, RewardError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(count.min(MAX_RESERVED));
    let attempts = count.saturating_mul(20).saturating_add(1000);
    let (mut draws, mut stale) = (0usize, 0usize);
    while out.len() < count && draws < attempts && stale < MAX_STALE_DRAWS {
        draws += 1;
        let p = sample(&mut rng)?;
        if seen.insert(key(&p)) {
            out.push(p);
            stale = 0;
        } else {
            stale += 1;
        }
    }
    if out.len() < count {
        return Err(RewardError::config(
            what,
            format!(
                "only {} distinct problems found in {draws} draws, {count} asked; widen the ranges",
                out.len()
            ),
        ));
    }
    Ok(out)
}
