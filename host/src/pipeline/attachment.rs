//! Files CI attaches to a submission for gates to read: the candidate's
//! outputs on a golden dataset, latency samples, a reference distribution.
//!
//! Rules: an attachment is named (a plain file name) and stored by its
//! sha256 like a candidate, so the same file attached to many releases is
//! kept once; the release records names and digests. Limits keep a
//! submission a submission, not a data lake.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Files one submission may carry.
pub const MAX_ATTACHMENTS: usize = 32;
/// Bytes of all of a submission's files together.
pub const MAX_ATTACHMENT_BYTES: usize = 32 * 1024 * 1024;

/// An attachment as a release records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub name: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AttachmentError {
    #[error(
        "attachment name {name:?} is not a plain file name; use 1 to 128 letters, digits, '.', '-' or '_', not starting with '.'"
    )]
    BadName { name: String },
    #[error("{count} attachments, over the limit of {MAX_ATTACHMENTS}; attach fewer files")]
    TooMany { count: usize },
    #[error(
        "attachments total {size} bytes, over the {MAX_ATTACHMENT_BYTES}-byte limit; attach samples, not whole datasets"
    )]
    TooLarge { size: usize },
}

/// Checks a submission's attachments; returns each with its reference.
pub fn validate(
    files: BTreeMap<String, Vec<u8>>,
) -> Result<Vec<(AttachmentRef, Vec<u8>)>, AttachmentError> {
    if files.len() > MAX_ATTACHMENTS {
        return Err(AttachmentError::TooMany { count: files.len() });
    }
    let size: usize = files.values().map(Vec::len).sum();
    if size > MAX_ATTACHMENT_BYTES {
        return Err(AttachmentError::TooLarge { size });
    }
    files
        .into_iter()
        .map(|(name, bytes)| {
            let plain = !name.is_empty()
                && name.len() <= 128
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !plain {
                return Err(AttachmentError::BadName { name });
            }
            let reference = AttachmentRef {
                digest: Digest::of(&bytes),
                size: bytes.len() as u64,
                name,
            };
            Ok((reference, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_named_by_their_digest() {
        let files = BTreeMap::from([("outputs.jsonl".to_string(), b"{}\n".to_vec())]);
        let checked = validate(files).expect("valid");
        assert_eq!(checked[0].0.name, "outputs.jsonl");
        assert_eq!(checked[0].0.digest, Digest::of(b"{}\n"));
        assert_eq!(checked[0].0.size, 3);
    }

    #[test]
    fn paths_and_hidden_names_are_refused() {
        for name in ["../etc/passwd", "a/b.jsonl", ".env", "", "ok name"] {
            let files = BTreeMap::from([(name.to_string(), Vec::new())]);
            let err = validate(files).unwrap_err();
            assert!(err.to_string().contains("plain file name"), "{name}: {err}");
        }
    }

    #[test]
    fn too_many_or_too_large_is_refused() {
        let many = (0..=MAX_ATTACHMENTS)
            .map(|i| (format!("f{i}"), Vec::new()))
            .collect();
        assert!(matches!(
            validate(many),
            Err(AttachmentError::TooMany { .. })
        ));
        let big = BTreeMap::from([("big".to_string(), vec![0; MAX_ATTACHMENT_BYTES + 1])]);
        assert!(matches!(
            validate(big),
            Err(AttachmentError::TooLarge { .. })
        ));
    }
}
