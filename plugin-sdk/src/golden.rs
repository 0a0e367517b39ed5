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
    let cases: Vec<Case> = crate::data::read_json_lines(source)?;
    if cases.is_empty() {
        return Err(format!(
            "{source}: the golden dataset has no cases; add some"
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
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
    let rows: Vec<Output> = crate::data::read_json_lines(source)?;
    let mut by_id = std::collections::BTreeMap::new();
    for row in rows {
        let id = row.id.clone();
        if by_id.insert(id.clone(), row).is_some() {
            return Err(format!("{source}: output for case {id:?} appears twice"));
        }
    }
    Ok(by_id)
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
