//! Reading a gate's data: a golden dataset, samples, a reference
//! distribution, named by a *source* in the gate's params.
//!
//! A source is either `attachment:NAME` (a file CI attached to the
//! candidate's submission), `incumbent-attachment:NAME` (one attached to the
//! incumbent's), or an absolute path inside a data directory the manifest
//! grants (capability `"files"`, e.g. `/golden/triage.jsonl`). Errors name
//! the source and say what to fix.

use crate::attachments::{self, Owner};
use serde::Deserialize;
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

/// Checks a source a parameter names, before anything is read: its form,
/// and that a path is one this build can open. `reads_files` is whether the
/// plugin asks for `"files"` (the standard gates do only when built with
/// their `files` feature); `plugin` names it in the message.
pub fn check_source(source: &str, reads_files: bool, plugin: &str) -> Result<(), String> {
    if source.starts_with("attachment:") || source.starts_with("incumbent-attachment:") {
        Ok(())
    } else if source.starts_with('/') {
        if reads_files {
            Ok(())
        } else {
            Err(format!(
                "{source:?} is a path in a data directory, but this build of {plugin} does not ask for `files`; attach the file and write \"attachment:NAME\", or push the build with `--features files` and a manifest granting the directory"
            ))
        }
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
    borrowed_json_lines(source, bytes)
}

/// [`json_lines`] into rows that may borrow their text from `bytes` (fields
/// such as `Cow<'a, str>` with `#[serde(borrow)]`), with the same results
/// and errors. Files run to thousands of lines, and tracking every field's
/// path costs more than parsing, so lines are parsed directly and only a
/// line that fails is parsed again with paths, to name its field.
pub fn borrowed_json_lines<'a, T: Deserialize<'a>>(
    source: &str,
    bytes: &'a [u8],
) -> Result<Vec<T>, String> {
    json_lines_with_plain(source, bytes, |_| None)
}

/// [`borrowed_json_lines`] that first offers each line to `plain`, a reader
/// of the shape nearly every line of a format has (see [`PlainJson`]),
/// which returns `None` for any other line; serde reads those. `plain` must
/// read a line exactly as serde would, or not at all.
pub fn json_lines_with_plain<'a, T: Deserialize<'a>>(
    source: &str,
    bytes: &'a [u8],
    plain: impl Fn(&'a str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{source}: not UTF-8 text ({e}); write it as JSON lines"))?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        // As blank as `trim().is_empty()`, scanning from one end only.
        if line.trim_start().is_empty() {
            continue;
        }
        let row = match plain(line) {
            Some(row) => row,
            None => match serde_json::from_str(line) {
                Ok(row) => row,
                Err(_) => with_path(source, index, line)?,
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Line `index` (from 0) parsed while tracking the path, so an error names
/// the field. It reads the first value of the line and ignores what
/// follows it, as the readers always have; only the direct parse refuses
/// trailing characters, which is why a line it refused may still parse.
fn with_path<'a, T: Deserialize<'a>>(
    source: &str,
    index: usize,
    line: &'a str,
) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" field `{path}`")
        };
        format!("{source}:{}:{at} {}", index + 1, e.inner())
    })
}

/// Reads `source` and parses it as JSON lines.
pub fn read_json_lines<T: DeserializeOwned>(source: &str) -> Result<Vec<T>, String> {
    json_lines(source, &read(source)?)
}

/// A reader of the plainest JSON, for the fast path of
/// [`json_lines_with_plain`]: an object on one line whose values are strings
/// without escapes, or arrays of them. Serde's general parser costs several
/// times more per line than such a scan, and golden datasets are thousands
/// of lines of exactly that shape. Every method returns `None` on anything
/// else (a number, an escape, a syntax error), and the line then goes to
/// serde, which reads it in full or names what is wrong.
#[derive(Debug)]
pub struct PlainJson<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> PlainJson<'a> {
    /// Reads `text` as one object and nothing after it but whitespace,
    /// handing each key to `field`, which reads the value (with
    /// [`PlainJson::string`] or [`PlainJson::array`]) or returns `None` to
    /// give the line up.
    pub fn object(
        text: &'a str,
        mut field: impl FnMut(&'a str, &mut PlainJson<'a>) -> Option<()>,
    ) -> Option<()> {
        let mut json = PlainJson { text, at: 0 };
        json.skip_whitespace();
        json.eat(b'{')?;
        json.skip_whitespace();
        if json.peek() != Some(b'}') {
            loop {
                let key = json.string()?;
                json.skip_whitespace();
                json.eat(b':')?;
                field(key, &mut json)?;
                json.skip_whitespace();
                if json.peek() != Some(b',') {
                    break;
                }
                json.at += 1;
            }
        }
        json.eat(b'}')?;
        json.skip_whitespace();
        (json.at == text.len()).then_some(())
    }

    /// A string without escapes or control characters, as it is written.
    pub fn string(&mut self) -> Option<&'a str> {
        self.skip_whitespace();
        self.eat(b'"')?;
        let rest = self.text.as_bytes().get(self.at..)?;
        let len = string_end(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        let text = self.text.get(self.at..self.at + len)?;
        self.at += len + 1;
        Some(text)
    }

    /// An array, each item read by `item`.
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.skip_whitespace();
        self.eat(b'[')?;
        self.skip_whitespace();
        if self.peek() != Some(b']') {
            loop {
                item(self)?;
                self.skip_whitespace();
                if self.peek() != Some(b',') {
                    break;
                }
                self.at += 1;
            }
        }
        self.eat(b']')
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }
}

/// Where serde would stop reading a string's text: the first closing
/// quote, escape, or control character (which JSON refuses inside a
/// string). Eight bytes at a time, as serde_json looks for them: strings
/// are most of a golden file's bytes.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `word ^ repeated(b)` is 0 where `word` holds `b`.
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut start = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = zero_byte(word ^ (ONES * u64::from(b'"')))
            | zero_byte(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if found != 0 {
            // The lowest flag is exact; flags above it may be borrows.
            return Some(start + found.trailing_zeros() as usize / 8);
        }
        start += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| start + i)
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
    fn borrowed_rows_read_like_owned_ones() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct BorrowedRow<'a> {
            #[serde(borrow)]
            id: std::borrow::Cow<'a, str>,
            value: f64,
        }
        let text = b"{\"id\":\"a\",\"value\":1}\n\n{\"id\":\"b\\u00e9\",\"value\":2.5}\n";
        let rows: Vec<BorrowedRow> = borrowed_json_lines("x.jsonl", text).expect("parses");
        assert!(matches!(rows[0].id, std::borrow::Cow::Borrowed("a")));
        assert_eq!(rows[1].id, "bé");
        let owned: Vec<Row> = json_lines("x.jsonl", text).expect("parses");
        assert_eq!(owned[1].id, "bé");
        let bad = b"{\"id\":\"a\",\"value\":1}\n{\"id\":\"b\",\"value\":\"high\"}";
        let err = borrowed_json_lines::<BorrowedRow>("x.jsonl", bad).unwrap_err();
        assert!(err.starts_with("x.jsonl:2: field `value`"), "{err}");
        let err = borrowed_json_lines::<BorrowedRow>("x.jsonl", b"\xff").unwrap_err();
        assert!(err.starts_with("x.jsonl: not UTF-8 text"), "{err}");
    }

    #[test]
    fn a_line_is_read_up_to_the_end_of_its_first_value() {
        // What follows a line's value has never been checked; kept so that
        // files read before are read the same.
        let rows: Vec<Row> = json_lines(
            "x.jsonl",
            b"{\"id\":\"a\",\"value\":1} {\"id\":\"b\",\"value\":2}",
        )
        .expect("parses");
        assert_eq!(
            rows,
            [Row {
                id: "a".into(),
                value: 1.0
            }]
        );
    }

    #[test]
    fn string_ends_where_a_byte_by_byte_scan_ends() {
        let naive = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        };
        let stops: [&[u8]; 7] = [b"\"", b"\\", b"\n", b"\x00", b"\x1f", "é".as_bytes(), b" "];
        for len in 0..20 {
            for stop in stops {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    bytes.splice(at..at, stop.iter().copied());
                    // Bytes that are near the stops but are not stops.
                    bytes.extend_from_slice("\u{7f}!#[]\u{a0}ÿ".as_bytes());
                    assert_eq!(string_end(&bytes), naive(&bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn plain_json_reads_flat_objects_of_plain_strings_only() {
        fn read(line: &str) -> Option<Vec<(&str, String)>> {
            let mut fields = Vec::new();
            PlainJson::object(line, |key, json| {
                if key == "list" {
                    let mut items = Vec::new();
                    json.array(|json| {
                        items.push(json.string()?);
                        Some(())
                    })?;
                    fields.push((key, items.join("+")));
                } else {
                    fields.push((key, json.string()?.to_string()));
                }
                Some(())
            })
            .map(|()| fields)
        }
        assert_eq!(
            read(" {\"a\" : \"x y\",\t\"list\":[ \"1\" ,\"2\"],\"b\":\"déjà\"}\r"),
            Some(vec![
                ("a", "x y".to_string()),
                ("list", "1+2".to_string()),
                ("b", "déjà".to_string())
            ])
        );
        assert_eq!(read("{}"), Some(vec![]));
        assert_eq!(read(r#"{"list":[]}"#), Some(vec![("list", String::new())]));
        for other in [
            r#"{"a":"x\"y"}"#,
            "{\"a\":\"x\ty\"}",
            r#"{"a":1}"#,
            r#"{"a":"x",}"#,
            r#"{"a":"x"} {}"#,
            r#"{"a":"x""#,
            r#"{"a" "x"}"#,
            r#"{"list":["1",]}"#,
            r#"{"list":["1" "2"]}"#,
            r#"["a"]"#,
            "",
        ] {
            assert_eq!(read(other), None, "{other}");
        }
    }

    #[test]
    fn relative_paths_and_unknown_schemes_are_refused() {
        let err = read("golden.jsonl").unwrap_err();
        assert!(err.contains("not a data source"), "{err}");
        let err = read("/no/such/golden.jsonl").unwrap_err();
        assert!(err.contains("grant the plugin the directory"), "{err}");
    }
}
