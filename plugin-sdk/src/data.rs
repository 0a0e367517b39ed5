//! Reading a gate's data: a golden dataset, samples, a reference
//! distribution, named by a *source* in the gate's params.
//!
//! A source is either `attachment:NAME` (a file CI attached to the
//! candidate's submission), `incumbent-attachment:NAME` (one attached to the
//! incumbent's), or an absolute path inside a data directory the manifest
//! grants (capability `"files"`, e.g. `/golden/triage.jsonl`). Errors name
//! the source and say what to fix.

use crate::attachments::{self, Owner};
use serde::de::DeserializeOwned;

/// The bytes `source` names.
pub fn read(source: &str) -> Result<Vec<u8>, String> {
    let attached = |owner: Owner, name: &str| {
        attachments::get(owner, name).ok_or_else(|| {
            let present = attachments::names(owner);
            format!(
                "{source}: no file {name:?} is attached to the {} submission (attached: {}); attach it when submitting, or change the gate's params",
                match owner {
                    Owner::Candidate => "candidate's",
                    Owner::Incumbent => "incumbent's",
                },
                if present.is_empty() {
                    "none".to_string()
                } else {
                    present.join(", ")
                }
            )
        })
    };
    if let Some(name) = source.strip_prefix("attachment:") {
        attached(Owner::Candidate, name)
    } else if let Some(name) = source.strip_prefix("incumbent-attachment:") {
        attached(Owner::Incumbent, name)
    } else if source.starts_with('/') {
        std::fs::read(source).map_err(|e| {
            format!(
                "{source}: cannot read it ({e}); grant the plugin the directory holding it (manifest [[files]]) or attach the file instead"
            )
        })
    } else {
        Err(format!(
            "{source:?} is not a data source; write `attachment:NAME`, `incumbent-attachment:NAME` or an absolute path in a granted directory"
        ))
    }
}

/// Whether the file `source` names exists, without reading it.
pub fn exists(source: &str) -> bool {
    if let Some(name) = source.strip_prefix("attachment:") {
        attachments::names(Owner::Candidate)
            .iter()
            .any(|n| n == name)
    } else if let Some(name) = source.strip_prefix("incumbent-attachment:") {
        attachments::names(Owner::Incumbent)
            .iter()
            .any(|n| n == name)
    } else {
        std::path::Path::new(source).is_file()
    }
}

/// Parses JSON lines (blank lines skipped) into `T`; an error names the
/// source, the line and the field.
pub fn json_lines<T: DeserializeOwned>(source: &str, bytes: &[u8]) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{source}: not UTF-8 text ({e}); write it as JSON lines"))?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let row = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                String::new()
            } else {
                format!(" field `{path}`")
            };
            format!("{source}:{}:{at} {}", index + 1, e.inner())
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Reads `source` and parses it as JSON lines.
pub fn read_json_lines<T: DeserializeOwned>(source: &str) -> Result<Vec<T>, String> {
    json_lines(source, &read(source)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Row {
        id: String,
        value: f64,
    }

    #[test]
    fn attachment_sources_read_the_named_file() {
        testing::attach(
            Owner::Candidate,
            "rows.jsonl",
            "{\"id\":\"a\",\"value\":1}\n\n{\"id\":\"b\",\"value\":2.5}\n",
        );
        let rows: Vec<Row> = read_json_lines("attachment:rows.jsonl").expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1],
            Row {
                id: "b".into(),
                value: 2.5
            }
        );
        assert!(exists("attachment:rows.jsonl"));
        assert!(!exists("incumbent-attachment:rows.jsonl"));
    }

    #[test]
    fn a_missing_attachment_lists_what_is_attached() {
        testing::attach(Owner::Candidate, "outputs.jsonl", "");
        let err = read("attachment:golden.jsonl").unwrap_err();
        assert!(err.contains("\"golden.jsonl\""), "{err}");
        assert!(err.contains("attached: outputs.jsonl"), "{err}");
        let err = read("incumbent-attachment:outputs.jsonl").unwrap_err();
        assert!(err.contains("attached: none"), "{err}");
    }

    #[test]
    fn a_bad_line_is_named_with_its_field() {
        let err = json_lines::<Row>(
            "x.jsonl",
            b"{\"id\":\"a\",\"value\":1}\n{\"id\":\"b\",\"value\":\"high\"}",
        )
        .unwrap_err();
        assert!(err.starts_with("x.jsonl:2: field `value`"), "{err}");
    }

    #[test]
    fn relative_paths_and_unknown_schemes_are_refused() {
        let err = read("golden.jsonl").unwrap_err();
        assert!(err.contains("not a data source"), "{err}");
        let err = read("/no/such/golden.jsonl").unwrap_err();
        assert!(err.contains("grant the plugin the directory"), "{err}");
    }
}
