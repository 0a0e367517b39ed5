//! The golden dataset format gates share: JSON lines of cases, and JSON lines
//! of a configuration's outputs on them.
//!
//! ```text
//! {"id": "t-0001", "input": "I was charged twice", "expected": "billing", "tags": ["billing"]}
//! {"id": "t-0001", "output": "billing", "latency_ms": 412.0}
//! ```
//!
//! `expected` is any JSON value: a label, a number (for numeric tolerance),
//! a pattern (for regex scoring). Outputs are matched to cases by `id`.

use serde::{Deserialize, Serialize};

/// One case of a golden dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique within the dataset.
    pub id: String,
    /// What the model is asked (fills `{{input}}` in the prompt template).
    pub input: String,
    /// The right answer, as the case's scorer reads it.
    pub expected: serde_json::Value,
    /// Slices to report on, e.g. `["billing", "long"]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Scorer for this case alone, overriding the gate's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<String>,
}

/// What a configuration answered to one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The case's `id`.
    pub id: String,
    /// The model's answer, as text.
    pub output: String,
    /// How long the answer took, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Tokens the request and the answer used, when the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
}

/// Reads the cases `source` names (see [`crate::data`]) and checks that ids
/// are unique.
pub fn read_cases(source: &str) -> Result<Vec<Case>, String> {
    let cases: Vec<Case> = json_lines(source, &crate::data::read(source)?)?;
    if cases.is_empty() {
        return Err(format!(
            "{source}: the golden dataset has no cases; add some"
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(cases.len());
    for case in &cases {
        if !seen.insert(case.id.as_str()) {
            return Err(format!(
                "{source}: case id {:?} appears twice; ids must be unique",
                case.id
            ));
        }
    }
    Ok(cases)
}

/// Reads the outputs `source` names, by case id; an id given twice is an error.
pub fn read_outputs(source: &str) -> Result<std::collections::BTreeMap<String, Output>, String> {
    let rows = read_outputs_in_order(source)?;
    Ok(rows.into_iter().map(|row| (row.id.clone(), row)).collect())
}

/// Reads the outputs `source` names, in the file's order; an id given twice
/// is an error. Cheaper than [`read_outputs`] on large files: CI usually
/// writes outputs in the dataset's order, so a gate can pair them with
/// cases by position and look up only the ones out of place.
pub fn read_outputs_in_order(source: &str) -> Result<Vec<Output>, String> {
    let rows: Vec<Output> = json_lines(source, &crate::data::read(source)?)?;
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    for row in &rows {
        if !seen.insert(row.id.as_str()) {
            return Err(format!(
                "{source}: output for case {:?} appears twice",
                row.id
            ));
        }
    }
    Ok(rows)
}

/// [`crate::data::json_lines`] with the same results and errors, several
/// times faster on good files: golden sets run to thousands of lines, and
/// tracking every field's path costs more than parsing. Lines are parsed
/// directly; only a file with a bad line is parsed again with paths, to name
/// the line and field.
fn json_lines<T: serde::de::DeserializeOwned>(
    source: &str,
    bytes: &[u8],
) -> Result<Vec<T>, String> {
    let direct = std::str::from_utf8(bytes).ok().and_then(|text| {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).ok())
            .collect::<Option<Vec<T>>>()
    });
    match direct {
        Some(rows) => Ok(rows),
        None => crate::data::json_lines(source, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::Owner;
    use crate::testing;

    #[test]
    fn cases_and_outputs_read_from_attachments() {
        testing::attach(
            Owner::Candidate,
            "golden.jsonl",
            "{\"id\":\"1\",\"input\":\"charged twice\",\"expected\":\"billing\",\"tags\":[\"billing\"]}\n{\"id\":\"2\",\"input\":\"down\",\"expected\":\"outage\"}\n",
        );
        testing::attach(
            Owner::Candidate,
            "outputs.jsonl",
            "{\"id\":\"2\",\"output\":\"outage\",\"latency_ms\":310.5}\n",
        );
        let cases = read_cases("attachment:golden.jsonl").expect("cases");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].tags, ["billing"]);
        assert!(cases[1].tags.is_empty());
        let outputs = read_outputs("attachment:outputs.jsonl").expect("outputs");
        assert_eq!(outputs["2"].latency_ms, Some(310.5));
        let in_order = read_outputs_in_order("attachment:outputs.jsonl").expect("outputs");
        assert_eq!(in_order, [outputs["2"].clone()]);
    }

    #[test]
    fn a_bad_line_is_named_with_its_line_and_field() {
        testing::attach(
            Owner::Candidate,
            "bad.jsonl",
            "{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\"}\n{\"id\":\"2\",\"input\":7,\"expected\":\"y\"}\n",
        );
        let err = read_cases("attachment:bad.jsonl").unwrap_err();
        assert!(
            err.starts_with("attachment:bad.jsonl:2: field `input`"),
            "{err}"
        );
        testing::attach(
            Owner::Candidate,
            "out.jsonl",
            "{\"id\":\"1\",\"output\":\"x\",\"extra\":1}\n",
        );
        let err = read_outputs("attachment:out.jsonl").unwrap_err();
        assert!(err.contains(":1:") && err.contains("extra"), "{err}");
        testing::attach(
            Owner::Candidate,
            "dup.jsonl",
            "{\"id\":\"1\",\"output\":\"x\"}\n{\"id\":\"1\",\"output\":\"y\"}\n",
        );
        let err = read_outputs("attachment:dup.jsonl").unwrap_err();
        assert!(err.contains("output for case \"1\" appears twice"), "{err}");
        let err = read_outputs_in_order("attachment:dup.jsonl").unwrap_err();
        assert!(err.contains("output for case \"1\" appears twice"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        testing::attach(
            Owner::Candidate,
            "dup.jsonl",
            "{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\"}\n{\"id\":\"1\",\"input\":\"b\",\"expected\":\"y\"}\n",
        );
        let err = read_cases("attachment:dup.jsonl").unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }
}
