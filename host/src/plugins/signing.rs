//! Optional ed25519 signatures over a plugin's digest.
//!
//! A publisher signs `gatehouse-plugin-v1:` followed by the 32 bytes of the
//! plugin's sha256 (the prefix keeps these signatures from being mistaken
//! for any other use of the same key). The daemon's settings list trusted
//! public keys; with `require_signed = true` a push without a signature by
//! one of them is refused. A signature that does not verify is refused
//! whether or not signing is required.

use crate::digest::Digest;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;

const CONTEXT: &[u8] = b"gatehouse-plugin-v1:";

/// `[signing]` in the daemon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSettings {
    #[serde(default)]
    pub require_signed: bool,
    /// Hex-encoded ed25519 public keys (64 hex digits each).
    #[serde(default)]
    pub trusted_keys: Vec<String>,
}

/// The trusted keys, parsed.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    require_signed: bool,
    keys: Vec<VerifyingKey>,
}

impl Trust {
    pub fn new(settings: &SigningSettings) -> Result<Trust, String> {
        let keys = settings
            .trusted_keys
            .iter()
            .map(|k| public_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        if settings.require_signed && keys.is_empty() {
            return Err(
                "signing: require_signed = true but trusted_keys is empty; add the publishers' public keys"
                    .into(),
            );
        }
        Ok(Trust {
            require_signed: settings.require_signed,
            keys,
        })
    }

    /// Checks `signature` (hex) over `digest`. Returns the signer's key id
    /// when signed by a trusted key, `None` when unsigned and allowed.
    pub fn check(
        &self,
        digest: &Digest,
        signature: Option<&str>,
    ) -> Result<Option<String>, String> {
        let Some(signature) = signature.filter(|s| !s.trim().is_empty()) else {
            return if self.require_signed {
                Err("the daemon requires signed plugins; sign it with `gatehouse plugin sign` and push with --signature".into())
            } else {
                Ok(None)
            };
        };
        let bytes = hex::decode(signature.trim()).map_err(|_| {
            "the signature is not hex; pass what `gatehouse plugin sign` printed".to_string()
        })?;
        let signature = Signature::from_slice(&bytes).map_err(|_| {
            format!(
                "the signature is {} bytes; an ed25519 signature is 64",
                bytes.len()
            )
        })?;
        let message = message(digest);
        for key in &self.keys {
            if key.verify(&message, &signature).is_ok() {
                return Ok(Some(key_id(key)));
            }
        }
        Err(format!(
            "the signature over {} does not verify with any trusted key; sign the exact file pushed, with a key listed in [signing] trusted_keys",
            digest.short()
        ))
    }
}

/// A new key pair: (secret key hex, public key hex).
pub fn generate() -> Result<(String, String), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    Ok((
        hex::encode(seed),
        hex::encode(key.verifying_key().as_bytes()),
    ))
}

/// Signs `digest` with the secret key in hex; returns the signature in hex.
pub fn sign(secret_hex: &str, digest: &Digest) -> Result<String, String> {
    let seed: [u8; 32] = hex::decode(secret_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the secret key must be 64 hex digits, as `gatehouse plugin keygen` writes it")?;
    let key = SigningKey::from_bytes(&seed);
    Ok(hex::encode(key.sign(&message(digest)).to_bytes()))
}

fn public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("signing: trusted key {hex_key:?} is not 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| format!("signing: trusted key {hex_key:?} is not an ed25519 public key"))
}

fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&key.as_bytes()[..8])
}

fn message(digest: &Digest) -> Vec<u8> {
    let mut m = CONTEXT.to_vec();
    m.extend_from_slice(&digest.0);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(require: bool, keys: &[&str]) -> Trust {
        Trust::new(&SigningSettings {
            require_signed: require,
            trusted_keys: keys.iter().map(|k| k.to_string()).collect(),
        })
        .expect("valid settings")
    }

    // RFC 8032, section 7.1, TEST 1: a published key pair.
    const RFC_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn rfc_8032_key_pair_matches() {
        let seed: [u8; 32] = hex::decode(RFC_SECRET).unwrap().try_into().unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(hex::encode(key.verifying_key().as_bytes()), RFC_PUBLIC);
        // The RFC's signature of the empty message.
        assert_eq!(
            hex::encode(key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn signed_by_trusted_key_verifies_and_names_the_signer() {
        let digest = Digest::of(b"plugin bytes");
        let signature = sign(RFC_SECRET, &digest).expect("signs");
        let signer = trust(true, &[RFC_PUBLIC]).check(&digest, Some(&signature));
        assert_eq!(signer, Ok(Some(RFC_PUBLIC[..16].to_string())));
    }

    #[test]
    fn wrong_file_or_key_or_missing_signature_is_refused() {
        let digest = Digest::of(b"plugin bytes");
        let signature = sign(RFC_SECRET, &digest).expect("signs");
        let t = trust(true, &[RFC_PUBLIC]);
        let other = Digest::of(b"other bytes");
        assert!(
            t.check(&other, Some(&signature))
                .unwrap_err()
                .contains("does not verify")
        );
        assert!(
            t.check(&digest, None)
                .unwrap_err()
                .contains("requires signed")
        );
        assert!(
            t.check(&digest, Some("zz"))
                .unwrap_err()
                .contains("not hex")
        );
        let (_, stranger) = generate().expect("keygen");
        assert!(
            trust(true, &[&stranger])
                .check(&digest, Some(&signature))
                .is_err()
        );
    }

    #[test]
    fn unsigned_is_fine_unless_required() {
        let digest = Digest::of(b"x");
        assert_eq!(trust(false, &[]).check(&digest, None), Ok(None));
        assert!(
            Trust::new(&SigningSettings {
                require_signed: true,
                trusted_keys: vec![],
            })
            .is_err()
        );
    }
}
