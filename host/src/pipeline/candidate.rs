//! What a candidate must look like before a release may start: a JSON object
//! naming its model. Everything else in it is the team's own business; gates
//! judge the rest.

use crate::digest::Digest;

/// Candidates are model configurations, not models: a few KiB in practice.
pub const MAX_CANDIDATE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CandidateError {
    #[error("candidate is empty; send the bytes of the model configuration (a JSON object)")]
    Empty,
    #[error(
        "candidate is {size} bytes, over the {MAX_CANDIDATE_BYTES}-byte limit; a candidate is a configuration, keep weights and datasets out of it"
    )]
    TooLarge { size: usize },
    #[error(
        "candidate is not valid JSON: {detail}; a candidate is a JSON object such as {{\"model\": \"...\", \"parameters\": {{...}}}}"
    )]
    NotJson { detail: String },
    #[error("candidate is a JSON {found}, not an object; wrap the configuration in {{ ... }}")]
    NotObject { found: &'static str },
    #[error(
        "candidate has no \"model\" string; name the model it configures, e.g. \"model\": \"gpt-4o-mini\""
    )]
    NoModel,
}

/// A candidate that passed [`validate`]: its bytes and their digest.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// Checks the shape every pipeline needs; returns the candidate with its digest.
pub fn validate(bytes: Vec<u8>) -> Result<Candidate, CandidateError> {
    if bytes.is_empty() {
        return Err(CandidateError::Empty);
    }
    if bytes.len() > MAX_CANDIDATE_BYTES {
        return Err(CandidateError::TooLarge { size: bytes.len() });
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CandidateError::NotJson {
            detail: e.to_string(),
        })?;
    let object = match &value {
        serde_json::Value::Object(map) => map,
        other => return Err(CandidateError::NotObject { found: kind(other) }),
    };
    match object.get("model") {
        Some(serde_json::Value::String(m)) if !m.trim().is_empty() => {}
        _ => return Err(CandidateError::NoModel),
    }
    Ok(Candidate {
        digest: Digest::of(&bytes),
        bytes,
    })
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_candidate_is_named_by_its_sha256() {
        let bytes = br#"{"model":"m","parameters":{"temperature":0.1}}"#.to_vec();
        let c = validate(bytes.clone()).unwrap();
        assert_eq!(c.digest, Digest::of(&bytes));
    }

    #[test]
    fn malformed_candidates_are_refused_with_what_to_fix() {
        assert_eq!(validate(vec![]).unwrap_err(), CandidateError::Empty);
        let e = validate(b"{\"model\": ".to_vec()).unwrap_err();
        assert!(matches!(e, CandidateError::NotJson { .. }), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");
        assert_eq!(
            validate(b"[1,2]".to_vec()).unwrap_err(),
            CandidateError::NotObject { found: "array" }
        );
        assert_eq!(
            validate(b"{\"model\": \"  \"}".to_vec()).unwrap_err(),
            CandidateError::NoModel
        );
        let big = vec![b' '; MAX_CANDIDATE_BYTES + 1];
        assert!(matches!(
            validate(big).unwrap_err(),
            CandidateError::TooLarge { .. }
        ));
    }
}
