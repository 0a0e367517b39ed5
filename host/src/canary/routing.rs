//! The sticky traffic split: which arm serves a request, decided by hashing
//! its key, so one user stays on one arm for the whole canary and every
//! replica of a service splits traffic the same way without talking to the
//! others.
//!
//! The rule is flagd's `fractional` operation, so a service reading its
//! configuration through OpenFeature (`api::flagd`) and one reading
//! `WatchConfig` split alike. With `salt` the canary's digest as
//! `ActiveConfig.canary.digest` gives it (lowercase hex), a request with key
//! `key` goes to the canary iff
//!
//! ```text
//! (murmur3_x86_32(cbor(salt ++ key), seed 0) * 100) >> 32 < canary_weight_percent
//! ```
//!
//! where `cbor(s)` is the string's CBOR encoding (major type 3: a length
//! header, then its UTF-8 bytes), as flagd hashes the value it buckets by;
//! the flag Gatehouse serves says `{"fractional": [{"cat": [salt, {"var":
//! "targetingKey"}]}, ["canary", w], ["active", 100 - w]]}`. As the weight
//! rises from step to step, the keys already on the canary stay there
//! (their bucket stays below a threshold that only grows); a new candidate
//! brings a new digest, so it draws a fresh sample of keys.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Buckets the weight is counted in, as flagd's weights sum to 100.
pub const BUCKETS: u64 = 100;

/// FNV-1a, 64 bits, over the concatenation of `parts`: a cheap stable hash
/// for spreading keys (tests and simulations use it).
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

/// MurmurHash3, x86 32-bit variant.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The CBOR encoding of a text string of `parts` concatenated.
fn cbor_text(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 9);
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=0xff => out.extend([0x78, len as u8]),
        0x100..=0xffff => {
            out.push(0x79);
            out.extend((len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x7a);
            out.extend((len as u32).to_be_bytes());
        }
        _ => {
            out.push(0x7b);
            out.extend((len as u64).to_be_bytes());
        }
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// The bucket of a request key, in `0..BUCKETS`.
pub fn bucket(salt: &str, key: &[u8]) -> u64 {
    let hash = murmur3_32(&cbor_text(&[salt.as_bytes(), key]), 0);
    (u64::from(hash) * BUCKETS) >> 32
}

/// Whether a request with `key` goes to the canary.
pub fn routes_to_canary(salt: &str, key: &[u8], weight_percent: u32) -> bool {
    bucket(salt, key) < u64::from(weight_percent.min(100))
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
    fn murmur3_matches_the_published_test_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn the_split_is_flagds_fractional_as_its_python_provider_computes_it() {
        // Made by tests/fixtures/flagd_fractional.py with openfeature-flagd-core
        // from PyPI: salt, key, weight, and the variant flagd chose.
        let fixture = include_str!("../../../tests/fixtures/flagd_fractional.tsv");
        let mut checked = 0;
        for line in fixture.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            let weight: u32 = f[2].parse().unwrap();
            let canary = routes_to_canary(f[0], f[1].as_bytes(), weight);
            assert_eq!(canary, f[3] == "canary", "{line}");
            checked += 1;
        }
        assert!(checked >= 1_000, "{checked} rows");
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
