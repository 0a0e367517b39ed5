//! Reading latency samples, in milliseconds, from a data source.
//!
//! Formats, told apart by the first character:
//!
//! - JSON lines, each an object with `latency_ms` (other keys are ignored,
//!   so the golden outputs CI attaches, `{"id", "output", "latency_ms"}`,
//!   serve as they are) or a bare number;
//! - one JSON array of numbers, `[412.0, 388.5, ...]`.
//!
//! Rules: every line must carry a latency: a line without one (or with
//! `null`) is an error naming it, never skipped, since the requests that
//! went unmeasured are often the slow ones. Values must be finite and not
//! negative (JSON has no NaN or infinity). Data directory paths are refused up front by a build that
//! does not ask for `files`.

use std::fmt;

use gatehouse_plugin_sdk::data;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The samples `source` names, in file order.
pub fn read(source: &str) -> Result<Vec<f64>, String> {
    parse(source, &data::read(source)?)
}

/// Parses `bytes` in either format.
pub fn parse(source: &str, bytes: &[u8]) -> Result<Vec<f64>, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return json_lines(source, bytes);
    }
    let values = serde_json::from_slice::<Vec<f64>>(bytes).map_err(|e| {
        format!("{source}: not a JSON array of numbers ({e}); write latencies in milliseconds as [412.0, 388.5, ...]")
    })?;
    if let Some((index, value)) = values.iter().enumerate().find(|(_, v)| **v < 0.0) {
        return Err(format!(
            "{source}: value {} is {value} ms, below 0; a latency is 0 or more milliseconds, fix the file",
            index + 1
        ));
    }
    Ok(values)
}

fn json_lines(source: &str, bytes: &[u8]) -> Result<Vec<f64>, String> {
    let mut values = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = |why: String| format!("{source}:{}: {why}", index + 1);
        let sample: Line = serde_json::from_slice(line).map_err(|e| {
            at(format!("{e}; write one JSON object with `latency_ms` per line, e.g. {{\"latency_ms\": 412.0}}"))
        })?;
        match sample.0 {
            Some(ms) if ms < 0.0 => {
                return Err(at(format!(
                    "latency {ms} ms is below 0; a latency is 0 or more milliseconds, fix the file"
                )));
            }
            Some(ms) => values.push(ms),
            None => {
                return Err(at(
                    "no `latency_ms`; every line needs the request's latency in milliseconds (leave out lines of requests that were not sent)".to_string(),
                ));
            }
        }
    }
    Ok(values)
}

/// One line's latency: a bare number, or an object's `latency_ms`.
struct Line(Option<f64>);

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LineVisitor)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `latency_ms`, or a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Line, E> {
        Ok(Line(Some(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Line, E> {
        Ok(Line(Some(v as f64)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Line, E> {
        Ok(Line(Some(v as f64)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        let mut latency = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "latency_ms" {
                if latency.is_some() {
                    return Err(de::Error::duplicate_field("latency_ms"));
                }
                latency = Some(map.next_value::<Option<f64>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Line(latency.flatten()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_outputs_and_bare_numbers_are_read() {
        let text = "{\"id\": \"t-1\", \"output\": \"billing\", \"latency_ms\": 412.0, \"input_tokens\": 5}\n\n412.5\r\n{\"latency_ms\": 3}\n";
        assert_eq!(
            parse("l.jsonl", text.as_bytes()),
            Ok(vec![412.0, 412.5, 3.0])
        );
    }

    #[test]
    fn an_array_of_numbers_is_read() {
        assert_eq!(parse("l.json", b" [1, 2.5]"), Ok(vec![1.0, 2.5]));
        let err = parse("l.json", b"[1, \"2\"]").unwrap_err();
        assert!(
            err.starts_with("l.json: not a JSON array of numbers"),
            "{err}"
        );
    }

    #[test]
    fn a_line_without_latency_is_an_error_naming_it() {
        let err = parse(
            "attachment:l.jsonl",
            b"{\"latency_ms\": 1}\n{\"id\": \"t-2\", \"output\": \"x\"}\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("attachment:l.jsonl:2: no `latency_ms`"),
            "{err}"
        );
        let err = parse("l.jsonl", b"{\"latency_ms\": null}").unwrap_err();
        assert!(err.starts_with("l.jsonl:1: no `latency_ms`"), "{err}");
    }

    #[test]
    fn malformed_and_negative_samples_are_named() {
        let err = parse("l.jsonl", b"{\"latency_ms\": \"fast\"}").unwrap_err();
        assert!(err.starts_with("l.jsonl:1: invalid type: string"), "{err}");
        let err = parse("l.jsonl", b"{\"latency_ms\": 1, \"latency_ms\": 2}").unwrap_err();
        assert!(err.contains("duplicate field `latency_ms`"), "{err}");
        let err = parse("l.jsonl", b"\"412\"").unwrap_err();
        assert!(
            err.contains("an object with `latency_ms`, or a number"),
            "{err}"
        );
        let err = parse("l.jsonl", b"1\n\n-3\n").unwrap_err();
        assert!(
            err.starts_with("l.jsonl:3: latency -3 ms is below 0"),
            "{err}"
        );
        let err = parse("l.json", b"[1, -3]").unwrap_err();
        assert!(err.starts_with("l.json: value 2 is -3 ms"), "{err}");
    }
}
