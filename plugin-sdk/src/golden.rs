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
//!
//! [`read_cases`] and [`read_outputs`] read owned rows. A gate scoring
//! thousands of cases reads the file once and parses it into [`borrowed`]
//! rows instead ([`parse_cases`], [`parse_outputs_unchecked`]), which
//! allocate nothing for text without escapes; both forms accept the same
//! files and refuse bad ones in the same words.

pub mod borrowed;

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
    let cases: Vec<Case> = crate::data::json_lines(source, &crate::data::read(source)?)?;
    check_cases(source, cases.iter().map(|case| case.id.as_str()))?;
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
    let rows: Vec<Output> = crate::data::json_lines(source, &crate::data::read(source)?)?;
    check_outputs(source, rows.iter().map(|row| row.id.as_str()))?;
    Ok(rows)
}

/// [`read_cases`] of `bytes`, read from `source`, each case borrowing its
/// text from them.
pub fn parse_cases<'a>(source: &str, bytes: &'a [u8]) -> Result<Vec<borrowed::Case<'a>>, String> {
    let cases = crate::data::json_lines_with_plain(source, bytes, borrowed::Case::plain)?;
    check_cases(source, cases.iter().map(|case| &*case.id))?;
    Ok(cases)
}

/// [`read_outputs_in_order`] of `bytes`, read from `source`, each output
/// borrowing its text from them, but without the check that ids are
/// unique: a gate that pairs outputs with cases by position knows them
/// unique when each sits at its case's position, and needs
/// [`check_outputs`] only when some do not.
pub fn parse_outputs_unchecked<'a>(
    source: &str,
    bytes: &'a [u8],
) -> Result<Vec<borrowed::Output<'a>>, String> {
    crate::data::json_lines_with_plain(source, bytes, borrowed::Output::plain)
}

/// Refuses a dataset without cases or with an id given twice.
fn check_cases<'a>(
    source: &str,
    ids: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), String> {
    if ids.len() == 0 {
        return Err(format!(
            "{source}: the golden dataset has no cases; add some"
        ));
    }
    match first_repeated(ids) {
        Some(id) => Err(format!(
            "{source}: case id {id:?} appears twice; ids must be unique"
        )),
        None => Ok(()),
    }
}

/// Refuses outputs read from `source` (their ids, in the file's order) that
/// answer a case twice.
pub fn check_outputs<'a>(
    source: &str,
    ids: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), String> {
    match first_repeated(ids) {
        Some(id) => Err(format!("{source}: output for case {id:?} appears twice")),
        None => Ok(()),
    }
}

/// The first id that was already seen.
fn first_repeated<'a>(mut ids: impl ExactSizeIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.find(|&id| !seen.insert(id))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::borrowed::Expected;
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
    fn borrowed_cases_are_the_owned_ones_without_copies_of_plain_text() {
        let text = concat!(
            "{\"id\":\"1\",\"input\":\"charged twice\",\"expected\":\"billing\",\"tags\":[\"billing\",\"long\"]}\n",
            "\n",
            "{\"id\":\"q\\\"2\",\"input\":\"caf\\u00e9\",\"expected\":[\"a\",2],\"tags\":[\"t\\n\"],\"scorer\":\"token_f1\"}\n",
            "{\"id\":\"3\",\"input\":\"\",\"expected\":{\"type\":\"object\"},\"scorer\":\"json_schema\"}\n",
            "{\"id\":\"4\",\"input\":\"\",\"expected\":-1.5e3}\n",
        );
        testing::attach(Owner::Candidate, "golden.jsonl", text);
        let owned = read_cases("attachment:golden.jsonl").expect("owned cases");
        let borrowed = parse_cases("attachment:golden.jsonl", text.as_bytes()).expect("cases");
        let from_owned: Vec<borrowed::Case> = owned.iter().map(borrowed::Case::from).collect();
        assert_eq!(borrowed, from_owned);
        assert!(matches!(borrowed[0].id, Cow::Borrowed("1")));
        assert!(matches!(
            &borrowed[0].expected,
            Expected::Text(Cow::Borrowed("billing"))
        ));
        assert!(matches!(borrowed[0].tags[1], Cow::Borrowed("long")));
        assert_eq!(borrowed[1].id, "q\"2");
        assert_eq!(borrowed[1].input, "café");
        assert_eq!(borrowed[1].tags, ["t\n"]);
        assert_eq!(borrowed[1].scorer.as_deref(), Some("token_f1"));
        for (case, borrowed) in owned.iter().zip(&borrowed) {
            assert_eq!(borrowed.expected.to_value(), case.expected);
            assert_eq!(borrowed.expected.to_string(), case.expected.to_string());
            assert_eq!(borrowed.expected.kind(), crate::json_kind(&case.expected));
        }

        let outputs = "{\"id\":\"1\",\"output\":\"billing\",\"latency_ms\":310.5,\"input_tokens\":12}\n{\"id\":\"2\",\"output\":\"\\toutage\"}\n";
        testing::attach(Owner::Candidate, "outputs.jsonl", outputs);
        let owned = read_outputs_in_order("attachment:outputs.jsonl").expect("owned outputs");
        let borrowed = parse_outputs_unchecked("attachment:outputs.jsonl", outputs.as_bytes())
            .expect("outputs");
        let from_owned: Vec<borrowed::Output> = owned.iter().map(borrowed::Output::from).collect();
        assert_eq!(borrowed, from_owned);
        assert!(matches!(borrowed[0].output, Cow::Borrowed("billing")));
    }

    #[test]
    fn borrowed_readers_refuse_what_the_owned_ones_refuse_in_the_same_words() {
        let bad_cases: &[&[u8]] = &[
            b"{\"id\":\"1\",\"input\":7,\"expected\":\"x\"}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\",\"tags\":\"billing\"}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\",\"tags\":[\"a\",3]}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\",\"scorer\":1}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\",\"weight\":1}",
            b"{\"id\":\"1\",\"input\":\"a\"}",
            b"{\"id\":\"1\",\"id\":\"2\",\"input\":\"a\",\"expected\":\"x\"}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":{\"a\":[1,tru]}}",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"x\"",
            b"[1]",
            b"\"x\"",
            b"[\"1\",\"a\"]",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":\"\\q\"}",
            b"{\"id\":\"1\",\"input\":\"\xff\",\"expected\":\"x\"}",
            b"\n \n",
            b"{\"id\":\"1\",\"input\":\"a\",\"expected\":1}\n{\"id\":\"1\",\"input\":\"b\",\"expected\":2}",
        ];
        for bytes in bad_cases {
            let good = b"{\"id\":\"0\",\"input\":\"i\",\"expected\":\"x\"}\n";
            // A blank file has no cases; any other is read after a good line.
            let file = if bytes.trim_ascii().is_empty() {
                bytes.to_vec()
            } else {
                [&good[..], bytes].concat()
            };
            testing::attach(Owner::Candidate, "bad.jsonl", file.clone());
            let owned = read_cases("attachment:bad.jsonl").expect_err("refused");
            let borrowed = parse_cases("attachment:bad.jsonl", &file).expect_err("refused");
            assert_eq!(borrowed, owned);
        }
        let bad_outputs: &[&[u8]] = &[
            b"{\"id\":\"1\",\"output\":\"x\",\"extra\":1}",
            b"{\"id\":\"1\",\"output\":\"x\",\"latency_ms\":\"fast\"}",
            b"{\"id\":\"1\",\"output\":\"x\",\"input_tokens\":-3}",
            b"{\"id\":\"1\"}",
            b"\"x\"",
        ];
        for bytes in bad_outputs {
            testing::attach(Owner::Candidate, "bad.jsonl", bytes.to_vec());
            let owned = read_outputs_in_order("attachment:bad.jsonl").expect_err("refused");
            let borrowed =
                parse_outputs_unchecked("attachment:bad.jsonl", bytes).expect_err("refused");
            assert_eq!(borrowed, owned);
        }
        let repeated = ["2", "1", "3", "1", "2"];
        let err = check_outputs("o.jsonl", repeated.into_iter()).unwrap_err();
        assert_eq!(err, "o.jsonl: output for case \"1\" appears twice");
    }

    /// Lines of every shape near the plain one: each field absent, plain,
    /// escaped, of another type, repeated; odd spacing and trailing text.
    fn lines_near_plain(keys: &[&str]) -> Vec<String> {
        let values = [
            r#""x""#,
            r#""caf\u00e9 \"q\"""#,
            r#""tab\there""#,
            "\"déjà vu\"",
            "7",
            "null",
            "[]",
            r#"["a", "b"]"#,
            r#"["a",1]"#,
            r#"{"a":"b"}"#,
            r#""unterminated"#,
        ];
        let mut lines = Vec::new();
        for (n, spacing) in ["", " ", "\t", "\r"].iter().enumerate() {
            for mask in 0..(1u32 << keys.len()) {
                for (v, value) in values.iter().enumerate() {
                    let fields: Vec<String> = keys
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| mask & (1 << k) != 0)
                        .map(|(k, key)| {
                            // One field takes the value under test; the others
                            // a plain string (a list of them for tags).
                            let value = if (k + v) % keys.len() == 0 {
                                value
                            } else if *key == "tags" {
                                r#"["t"]"#
                            } else {
                                r#""v""#
                            };
                            format!("{spacing}\"{key}\"{spacing}:{spacing}{value}")
                        })
                        .collect();
                    let body = fields.join(",");
                    lines.push(format!("{spacing}{{{body}}}{spacing}"));
                    match (n + v) % 4 {
                        0 => lines.push(format!("{{{body},}}")),
                        1 => lines.push(format!("{{{body}}} x")),
                        2 => lines.push(format!("{{{body},{body}}}")),
                        _ => lines.push(format!("{{{body},\"i\\u0064\":\"x\"}}")),
                    }
                }
            }
        }
        lines
    }

    #[test]
    fn plain_lines_are_read_as_serde_reads_them_and_others_left_to_it() {
        let keys = ["id", "input", "expected", "tags", "scorer", "extra"];
        let mut plain = 0;
        for line in lines_near_plain(&keys) {
            let by_serde: Result<borrowed::Case, _> = serde_json::from_str(&line);
            if let Some(case) = borrowed::Case::plain(&line) {
                assert_eq!(by_serde.ok(), Some(case), "{line}");
                plain += 1;
            }
        }
        assert!(plain >= 80, "only {plain} plain lines");
        let keys = ["id", "output", "latency_ms", "extra"];
        let mut plain = 0;
        for line in lines_near_plain(&keys) {
            let by_serde: Result<borrowed::Output, _> = serde_json::from_str(&line);
            if let Some(output) = borrowed::Output::plain(&line) {
                assert_eq!(by_serde.ok(), Some(output), "{line}");
                plain += 1;
            }
        }
        assert!(plain >= 32, "only {plain} plain lines");
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
