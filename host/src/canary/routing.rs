//! The sticky traffic split: which arm serves a request, decided by hashing
//! its key, so one user stays on one arm for the whole canary and every
//! replica of a service splits traffic the same way without talking to the
//! others.
//!
//! The rule (also written in `environments.proto`, where services read it):
//! with `salt` the canary's digest as `ActiveConfig.canary.digest` gives it
//! (lowercase hex), a request with key `key` goes to the canary iff
//!
//! ```text
//! fnv1a64(salt ++ key) % 10000 < canary_weight_percent * 100
//! ```
//!
//! FNV-1a 64 is chosen because every language has it in a few lines. As the
//! weight rises from step to step, the keys already on the canary stay there
//! (their bucket stays below a threshold that only grows); a new candidate
//! brings a new digest, so it draws a fresh sample of keys.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Buckets the weight is counted in: a weight of 1% is 100 buckets.
pub const BUCKETS: u64 = 10_000;

/// FNV-1a, 64 bits, over the concatenation of `parts`.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash = FNV_OFFSET;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
    hash
}

/// The bucket of a request key, in `0..BUCKETS`.
pub fn bucket(salt: &str, key: &[u8]) -> u64 {
    fnv1a64(&[salt.as_bytes(), key]) % BUCKETS
}

/// Whether a request with `key` goes to the canary.
pub fn routes_to_canary(salt: &str, key: &[u8], weight_percent: u32) -> bool {
    bucket(salt, key) < u64::from(weight_percent.min(100)) * 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        // Parts hash as their concatenation.
        assert_eq!(fnv1a64(&[b"foo", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn share_of_keys_on_the_canary_follows_the_weight() {
        let salt = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for weight in [0, 5, 25, 50, 100] {
            let on = (0..20_000)
                .filter(|i| routes_to_canary(salt, format!("user-{i}").as_bytes(), weight))
                .count();
            let share = on as f64 / 20_000.0 * 100.0;
            assert!(
                (share - f64::from(weight)).abs() < 1.5,
                "weight {weight}%: {share:.2}% of keys"
            );
        }
    }

    #[test]
    fn a_key_on_the_canary_stays_there_as_the_weight_rises() {
        let salt = "abc";
        for i in 0..5_000 {
            let key = format!("k{i}");
            let mut was = false;
            for weight in [5, 25, 50, 100] {
                let now = routes_to_canary(salt, key.as_bytes(), weight);
                assert!(now || !was, "{key} left the canary at {weight}%");
                was = now;
            }
        }
    }
}
