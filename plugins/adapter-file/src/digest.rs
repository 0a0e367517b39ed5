//! sha256 digests as the daemon writes them: 64 lowercase hex digits.

use sha2::{Digest as _, Sha256};

/// The lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` reads as a digest.
pub fn is_digest(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks that a candidate's bytes are what its digest names, so a
/// corrupted call cannot place bytes under another configuration's name.
pub fn verify(digest: &str, bytes: &[u8]) -> Result<(), String> {
    let actual = sha256_hex(bytes);
    if actual == digest {
        Ok(())
    } else {
        Err(format!(
            "candidate {} does not match its bytes (sha256 {actual}); the call was corrupted, submit the candidate again",
            short(digest)
        ))
    }
}

/// The first 12 digits, for messages.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_digest(&sha256_hex(b"")));
        assert!(!is_digest("ABC"));
    }

    #[test]
    fn bytes_under_another_digest_are_refused() {
        assert_eq!(verify(&sha256_hex(b"a"), b"a"), Ok(()));
        let err = verify(&sha256_hex(b"a"), b"b").unwrap_err();
        assert!(err.contains("does not match its bytes"), "{err}");
    }
}
