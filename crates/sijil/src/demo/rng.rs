//! The demo's deterministic random numbers and ids: SplitMix64, written here rather than taken
//! from a crate so the same seed gives the same log on every build, whatever a dependency's
//! next release does to its algorithms or its range sampling.

use uuid::Uuid;

/// A SplitMix64 generator (Steele, Lea and Flood, 2014): tiny, fast, and good enough for
/// simulated data. Not for secrets.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// An independent generator for the part of the world named by `tag` and `index`
    /// (a customer, an agent, ...), so each part's randomness does not depend on the others.
    pub fn fork(&self, tag: u64, index: u64) -> Rng {
        Rng::new(
            self.state
                ^ mix(tag.wrapping_mul(GOLDEN))
                ^ mix(index.wrapping_add(1).wrapping_mul(0xd1b5_4a32_d192_ed03)),
        )
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-shift (bias below 2^-32 here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo).saturating_add(1);
        lo.saturating_add_unsigned(self.below(span))
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice (the first for an empty one is impossible: callers
    /// pass constant tables).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.below(items.len() as u64) as usize;
        &items[index.min(items.len().saturating_sub(1))]
    }

    /// An index into a table of `weights`, chosen in proportion to them.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (index, weight) in weights.iter().enumerate() {
            let weight = u64::from(*weight);
            if roll < weight {
                return index;
            }
            roll -= weight;
        }
        weights.len().saturating_sub(1)
    }

    /// A UUID v7 for the instant `ms` (unix milliseconds, clamped at 0) with random bits from
    /// this generator: ids sort by the simulated time they were minted at.
    pub fn uuid_v7(&mut self, ms: i64) -> Uuid {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_be_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(u64::try_from(ms).unwrap_or(0), &bytes)
            .into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_seed_when_drawn_twice_then_the_sequences_match() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..32).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn given_forks_when_drawn_then_they_differ_by_tag_and_index() {
        let root = Rng::new(1);
        let a = root.fork(1, 0).next_u64();
        assert_ne!(a, root.fork(1, 1).next_u64());
        assert_ne!(a, root.fork(2, 0).next_u64());
        assert_eq!(a, root.fork(1, 0).next_u64());
    }

    #[test]
    fn given_bounds_when_sampled_then_values_stay_inside() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            let x = rng.between(-5, 5);
            assert!((-5..=5).contains(&x));
            assert!(rng.weighted(&[0, 3, 0, 1]) % 2 == 1);
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.between(4, 4), 4);
    }

    #[test]
    fn given_a_time_when_an_id_is_minted_then_it_is_a_v7_of_that_millisecond() {
        let mut rng = Rng::new(9);
        let id = rng.uuid_v7(1_735_689_600_123);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos / 1_000_000),
            1_735_689_600_123
        );
    }
}
