//! Reading a [`GateRequest`]: typed parameters and JSON candidates.
//!
//! Every failure is a message a pipeline author can act on: it names the
//! parameter or the document that is wrong and says what to change.

use serde::de::DeserializeOwned;

use crate::{Candidate, GateRequest, ParamError};

impl GateRequest {
    /// Parses the gate's parameters into `T`; see [`parse_params`].
    pub fn params_json<T: DeserializeOwned>(&self) -> Result<T, String> {
        parse_params(&self.params).map_err(String::from)
    }
}

impl Candidate {
    /// Parses the candidate's bytes as a JSON document.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.bytes).map_err(|e| {
            format!(
                "candidate {} is not valid JSON ({e}); submit the configuration as a JSON document",
                short_digest(&self.digest)
            )
        })
    }

    /// The value of a metadata entry attached at submission, if present.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses parameters (a JSON object) into `T`, without [`crate::Params`]'s
/// check; most plugins want [`crate::params::parse`].
///
/// Empty parameters and `null` read as `{}`, so a plugin whose parameters
/// are all optional works without any. The error's path names the offending
/// parameter, e.g. `expected_input_tokens` with "invalid type: string
/// \"lots\", expected u64".
pub fn parse_params<T: DeserializeOwned>(params: &str) -> Result<T, ParamError> {
    let value = if params.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(params).map_err(|e| {
            ParamError::new(
                "",
                format!("they are not valid JSON ({e}); write them as a JSON object"),
            )
        })?
    };
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
        object @ serde_json::Value::Object(_) => object,
        other => {
            return Err(ParamError::new(
                "",
                format!(
                    "they must be a JSON object, found {}; write them as {{\"name\": value, ...}}",
                    json_kind(&other)
                ),
            ));
        }
    };
    // Deserialising from a `Value` (not text) keeps serde_json from appending
    // "at line 1 column 27": the parameter's path says more.
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        // The path ends at the key that is wrong. An unknown key may be
        // reported by the object holding it instead: point at the key
        // itself, which is where the typo is.
        let path = match unknown_field(&inner) {
            Some(key) if path == "." => key.to_string(),
            Some(key) if path != key && !path.ends_with(&format!(".{key}")) => {
                format!("{path}.{key}")
            }
            _ if path == "." => String::new(),
            _ => path,
        };
        ParamError::new(path, inner)
    })
}

/// The key serde's "unknown field `KEY`, expected …" names.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key)
}

/// The JSON name of a value's type, for messages.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Params {
        budget: f64,
        #[serde(default)]
        tokens: Option<u64>,
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Optional {
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn wrong_type_names_the_parameter() {
        let err = parse_params::<Params>(r#"{"budget": 1, "tokens": "lots"}"#).unwrap_err();
        assert_eq!(err.path, "tokens");
        assert!(err.message.contains("expected u64"), "{err}");
        assert!(!err.message.contains("line 1"), "{err}");
    }

    #[test]
    fn unknown_parameter_is_named() {
        let err = parse_params::<Params>(r#"{"budget": 1, "budgett": 2}"#).unwrap_err();
        assert_eq!(err.path, "budgett", "{err}");
        assert!(err.message.contains("unknown field `budgett`"), "{err}");
    }

    #[test]
    fn an_unknown_nested_parameter_is_pointed_at_by_its_full_path() {
        #[derive(Debug, Deserialize)]
        struct Outer {
            #[allow(dead_code)]
            live: Params,
        }
        let err = parse_params::<Outer>(r#"{"live": {"budget": 1, "tokns": 2}}"#).unwrap_err();
        assert_eq!(err.path, "live.tokns", "{err}");
        let err = parse_params::<Outer>(r#"{"live": {"budget": "x"}}"#).unwrap_err();
        assert_eq!(err.path, "live.budget", "{err}");
    }

    #[test]
    fn missing_parameter_is_named() {
        let err = parse_params::<Params>("{}").unwrap_err();
        assert_eq!(err.path, "");
        assert!(err.message.contains("missing field `budget`"), "{err}");
    }

    #[test]
    fn malformed_json_says_to_write_an_object() {
        let err = parse_params::<Params>(r#"{"budget": "#).unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{err}");
        let err = parse_params::<Params>(r#"[{"budget": 1}]"#).unwrap_err();
        assert!(
            err.message
                .contains("must be a JSON object, found an array"),
            "{err}"
        );
    }

    #[test]
    fn empty_params_read_as_empty_object() {
        assert!(!parse_params::<Optional>("").map(|p| p.flag).unwrap_or(true));
        assert!(
            !parse_params::<Optional>(" null ")
                .map(|p| p.flag)
                .unwrap_or(true)
        );
    }

    #[test]
    fn request_params_and_candidate_json_parse() {
        let request = GateRequest {
            candidate: Candidate {
                digest: "ab".repeat(32),
                bytes: br#"{"model": "m"}"#.to_vec(),
                metadata: vec![("author".into(), "ada".into())],
            },
            incumbent: None,
            stage: "staging".into(),
            params: r#"{"budget": 0.5}"#.into(),
        };
        let params: Params = request.params_json().expect("valid params");
        assert_eq!(params.budget, 0.5);
        assert_eq!(params.tokens, None);
        let json = request.candidate.json().expect("valid candidate");
        assert_eq!(json["model"], "m");
        assert_eq!(request.candidate.metadata("author"), Some("ada"));
        assert_eq!(request.candidate.metadata("commit"), None);
    }

    #[test]
    fn unreadable_candidate_names_its_digest() {
        let candidate = Candidate {
            digest: "0123456789abcdef".repeat(4),
            bytes: b"model: m".to_vec(),
            metadata: Vec::new(),
        };
        let err = candidate.json().unwrap_err();
        assert!(
            err.contains("candidate 0123456789ab is not valid JSON"),
            "{err}"
        );
    }
}
