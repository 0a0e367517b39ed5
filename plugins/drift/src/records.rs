//! Reading one side's samples: the values of every compared feature, from a
//! data source, in a single pass.
//!
//! Two file formats, told apart by the first character:
//!
//! - JSON lines of objects, one record per request:
//!   `{"output_label": "billing", "output_length": 14, "confidence": 0.91}`.
//!   Keys that are no compared feature are skipped without being built, so
//!   wide records cost little more than narrow ones. A missing key or
//!   `null` leaves the record out of that feature.
//! - One JSON array of numbers, `[0.91, 0.87, ...]`: the values of the one
//!   numeric feature the gate compares (the cheapest format for large
//!   samples).
//!
//! Lines of the common flat shape are read by a fast scanner
//! ([`crate::scan`]), any other by `serde_json` ([`crate::record`]); both
//! read a line alike.
//!
//! Rules: numeric values must be JSON numbers; categorical values may be
//! strings, booleans or numbers (compared by their JSON text). A value of
//! the wrong type, a line that is no object, or a feature with no values at
//! all on this side is an error naming the source, the line and the
//! feature. Data directory paths are refused up front by a build that does
//! not ask for `files`.

use std::collections::HashMap;

use gatehouse_plugin_sdk::data;

use crate::params::{Feature, Kind};
use crate::record::parse_line;
use crate::scan;

/// One side's values of every compared feature, in the features' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Records (lines, or array elements) read.
    pub records: usize,
    pub columns: Vec<Column>,
}

/// One feature's values on one side.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Numeric(Vec<f64>),
    /// Count of each category.
    Categorical(HashMap<String, u64>),
}

impl Column {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Numeric => Column::Numeric(Vec::new()),
            Kind::Categorical => Column::Categorical(HashMap::new()),
        }
    }

    /// Values held, counting repeats.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(values) => values.len(),
            Column::Categorical(counts) => counts.values().sum::<u64>() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the sample `source` names (given as gate param `param`).
pub fn read(param: &str, source: &str, features: &[Feature]) -> Result<Sample, String> {
    let bytes = data::read(source)?;
    let sample = parse(source, &bytes, features)?;
    for (feature, column) in features.iter().zip(&sample.columns) {
        if column.is_empty() {
            return Err(if sample.records == 0 {
                format!(
                    "{source} (gate param `{param}`) holds no records; write one JSON object per request, e.g. {{\"{}\": ...}}",
                    feature.name
                )
            } else {
                format!(
                    "feature `{}` has no value in any of the {} records of {source} (gate param `{param}`); add it to the records, or remove it from the gate's `features`",
                    feature.name, sample.records
                )
            });
        }
    }
    Ok(sample)
}

/// Parses `bytes` in either format.
pub fn parse(source: &str, bytes: &[u8], features: &[Feature]) -> Result<Sample, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        array(source, bytes, features)
    } else {
        json_lines(source, bytes, features)
    }
}

fn array(source: &str, bytes: &[u8], features: &[Feature]) -> Result<Sample, String> {
    let single = match features {
        [only] if only.kind() == Kind::Numeric => only,
        _ => {
            let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
            return Err(format!(
                "{source} is one JSON array, which holds the values of a single numeric feature, but the gate compares {} ({}); write JSON lines of objects keyed by feature instead",
                plural(features.len(), "feature"),
                names.join(", ")
            ));
        }
    };
    let scanned = scan::numbers(bytes).map(Ok);
    let values = scanned.unwrap_or_else(|| serde_json::from_slice::<Vec<f64>>(bytes)).map_err(|e| {
        format!(
            "{source}: not a JSON array of numbers ({e}); write the values of `{}` as [0.91, 0.87, ...]",
            single.name
        )
    })?;
    Ok(Sample {
        records: values.len(),
        columns: vec![Column::Numeric(values)],
    })
}

fn json_lines(source: &str, bytes: &[u8], features: &[Feature]) -> Result<Sample, String> {
    let mut columns: Vec<Column> = features.iter().map(|f| Column::new(f.kind())).collect();
    let mut seen = vec![false; features.len()];
    let mut found = Vec::with_capacity(features.len());
    let mut records = 0;
    let (mut start, mut number) = (0, 1);
    while start < bytes.len() {
        match scan::line(bytes, start, features, &mut found) {
            scan::Line::Record { next } => {
                for &(index, value) in &found {
                    add(&mut columns[index], value);
                }
                records += 1;
                start = next;
            }
            scan::Line::Blank { next } => start = next,
            scan::Line::Unusual => {
                let end = bytes[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| start + i);
                let line = &bytes[start..end];
                if !line.iter().all(u8::is_ascii_whitespace) {
                    parse_line(line, features, &mut columns, &mut seen)
                        .map_err(|why| format!("{source}:{number}: {why}"))?;
                    records += 1;
                }
                start = end + 1;
            }
        }
        number += 1;
    }
    Ok(Sample { records, columns })
}

fn add(column: &mut Column, value: scan::Found) {
    match (column, value) {
        (Column::Numeric(values), scan::Found::Number(v)) => values.push(v),
        (Column::Categorical(counts), scan::Found::Label(label)) => match counts.get_mut(label) {
            Some(count) => *count += 1,
            None => {
                counts.insert(label.to_string(), 1);
            }
        },
        // The scanner reads a value only as its feature's kind.
        _ => {}
    }
}

/// "1 feature", "3 features".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_plugin_sdk::attachments::Owner;
    use gatehouse_plugin_sdk::testing;

    use super::*;
    use crate::params::Bars;

    fn numeric(name: &str) -> Feature {
        Feature {
            name: name.to_string(),
            blocking: true,
            bars: Bars::Numeric {
                psi_max: 0.2,
                ks_alpha: 0.01,
            },
        }
    }

    fn categorical(name: &str) -> Feature {
        Feature {
            name: name.to_string(),
            blocking: true,
            bars: Bars::Categorical {
                js_max: 0.1,
                chi2_alpha: 0.01,
            },
        }
    }

    #[test]
    fn json_lines_fill_only_the_compared_features() {
        let text = "{\"label\": \"billing\", \"len\": 14, \"other\": {\"deep\": [1, 2]}}\n\n{\"label\": \"billing\", \"len\": 3.5}\r\n{\"label\": null, \"len\": -2}\n";
        let sample = parse(
            "f.jsonl",
            text.as_bytes(),
            &[categorical("label"), numeric("len")],
        )
        .expect("parses");
        assert_eq!(sample.records, 3);
        assert_eq!(sample.columns[1], Column::Numeric(vec![14.0, 3.5, -2.0]));
        assert_eq!(
            sample.columns[0],
            Column::Categorical(HashMap::from([("billing".to_string(), 2)]))
        );
        assert_eq!(sample.columns[0].len(), 2);
    }

    #[test]
    fn categories_may_be_booleans_or_numbers() {
        let text = "{\"x\": true}\n{\"x\": 3}\n{\"x\": \"3\"}\n{\"x\": false}\n";
        let sample = parse("f.jsonl", text.as_bytes(), &[categorical("x")]).expect("parses");
        assert_eq!(
            sample.columns[0],
            Column::Categorical(HashMap::from([
                ("true".to_string(), 1),
                ("false".to_string(), 1),
                ("3".to_string(), 2),
            ]))
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_line_and_feature() {
        let text = "{\"len\": 1}\n{\"len\": \"long\"}\n";
        let err = parse("attachment:f.jsonl", text.as_bytes(), &[numeric("len")]).unwrap_err();
        assert!(
            err.starts_with(
                "attachment:f.jsonl:2: feature `len` is the string \"long\", not a number"
            ),
            "{err}"
        );
        let err = parse("f.jsonl", b"{\"x\": [1]}", &[categorical("x")]).unwrap_err();
        assert!(err.contains("feature `x` is an array"), "{err}");
    }

    #[test]
    fn a_line_that_is_no_object_is_named() {
        let err = parse("f.jsonl", b"{\"x\": 1}\n7\n", &[numeric("x")]).unwrap_err();
        assert!(err.starts_with("f.jsonl:2: invalid type"), "{err}");
        assert!(err.contains("one JSON object per line"), "{err}");
        let err = parse("f.jsonl", b"{\"x\": 1", &[numeric("x")]).unwrap_err();
        assert!(err.starts_with("f.jsonl:1: EOF"), "{err}");
        let err = parse("f.jsonl", b"{\"x\": 1, \"x\": 2}", &[numeric("x")]).unwrap_err();
        assert!(err.contains("key `x` appears twice"), "{err}");
    }

    /// Every line through `serde_json` alone, without the scanner.
    fn parsed_slowly(text: &str, features: &[Feature]) -> Result<Sample, String> {
        let mut columns: Vec<Column> = features.iter().map(|f| Column::new(f.kind())).collect();
        let mut seen = vec![false; features.len()];
        let mut records = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            parse_line(line.as_bytes(), features, &mut columns, &mut seen)?;
            records += 1;
        }
        Ok(Sample { records, columns })
    }

    #[test]
    fn scanned_and_parsed_lines_read_alike() {
        let features = [categorical("label"), numeric("x")];
        let lines = [
            "{\"label\": \"billing\", \"x\": 14}",
            "{\"x\": -0, \"label\": \"a\"}",
            "{\"x\": -0.0}",
            "{\"x\": 1e-320, \"other\": \"\\u00e9\"}",
            "{\"x\": 123456789012345678901234567890}",
            "{\"x\": 0.30000000000000004, \"deep\": {\"x\": 1}}",
            "{\"label\": 3, \"x\": 2.5E+1}",
            "{\"label\": 2.50}",
            "{\"label\": true}\r",
            "{\"label\": \"caf\u{e9}\"}",
            "{\"label\": \"a\\\"b\"}",
            "  {\"label\" : null , \"x\" : null }  ",
            "{}",
        ];
        let text = lines.join("\n");
        let fast = json_lines("f", text.as_bytes(), &features).expect("reads");
        let slow = parsed_slowly(&text, &features).expect("reads");
        assert_eq!(fast, slow);
        assert_eq!(fast.records, lines.len());
        match &fast.columns[1] {
            Column::Numeric(values) => assert_eq!(values.len(), 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_array_file_holds_one_numeric_feature() {
        let sample = parse("a.json", b" [1, 2.5, -3]", &[numeric("x")]).expect("parses");
        assert_eq!(sample.records, 3);
        assert_eq!(sample.columns[0], Column::Numeric(vec![1.0, 2.5, -3.0]));
        let err = parse("a.json", b"[1, 2]", &[numeric("x"), numeric("y")]).unwrap_err();
        assert!(err.contains("compares 2 features (x, y)"), "{err}");
        let err = parse("a.json", b"[1, 2]", &[categorical("x")]).unwrap_err();
        assert!(err.contains("single numeric feature"), "{err}");
        let err = parse("a.json", b"[1, \"2\"]", &[numeric("x")]).unwrap_err();
        assert!(err.contains("not a JSON array of numbers"), "{err}");
    }

    #[test]
    fn a_feature_absent_from_a_side_is_an_error_naming_it() {
        testing::attach(Owner::Incumbent, "features.jsonl", "{\"label\": \"a\"}\n");
        let err = read(
            "reference",
            "incumbent-attachment:features.jsonl",
            &[categorical("label"), numeric("confidence")],
        )
        .unwrap_err();
        assert!(
            err.starts_with("feature `confidence` has no value in any of the 1 records of incumbent-attachment:features.jsonl"),
            "{err}"
        );
        testing::attach(Owner::Candidate, "empty.jsonl", "\n");
        let err = read("candidate", "attachment:empty.jsonl", &[numeric("x")]).unwrap_err();
        assert!(err.contains("holds no records"), "{err}");
    }
}
