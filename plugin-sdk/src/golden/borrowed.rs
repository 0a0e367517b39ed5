//! Cases and outputs that borrow their text from the file they were
//! read from, for gates that score thousands of cases: a string without
//! escapes costs no allocation, and `expected` is most often one string.
//!
//! Rules: the types have the owned types' names and fields, so that a
//! file is accepted or refused, in the same words, whichever form it is
//! parsed into.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::data::PlainJson;

/// A [`super::Case`] borrowing its text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub input: Cow<'a, str>,
    #[serde(borrow)]
    pub expected: Expected<'a>,
    #[serde(default, borrow, deserialize_with = "texts")]
    pub tags: Vec<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "optional_text")]
    pub scorer: Option<Cow<'a, str>>,
}

/// A [`super::Output`] borrowing its text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub output: Cow<'a, str>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

impl<'a> Case<'a> {
    /// The case on `line` when every value is a plain string (see
    /// [`PlainJson`]), as in nearly every golden line; `None` for any
    /// other line, including every line serde refuses.
    pub fn plain(line: &'a str) -> Option<Self> {
        let (mut id, mut input, mut expected, mut scorer) = (None, None, None, None);
        let mut tags: Option<Vec<Cow<'a, str>>> = None;
        PlainJson::object(line, |key, json| {
            let slot = match key {
                "id" => &mut id,
                "input" => &mut input,
                "expected" => &mut expected,
                "scorer" => &mut scorer,
                "tags" if tags.is_none() => {
                    let list = tags.insert(Vec::new());
                    return json.array(|json| {
                        list.push(Cow::Borrowed(json.string()?));
                        Some(())
                    });
                }
                // Serde names an unknown or repeated field.
                _ => return None,
            };
            match slot {
                Some(_) => None,
                None => {
                    *slot = Some(json.string()?);
                    Some(())
                }
            }
        })?;
        Some(Case {
            id: Cow::Borrowed(id?),
            input: Cow::Borrowed(input?),
            expected: Expected::Text(Cow::Borrowed(expected?)),
            tags: tags.unwrap_or_default(),
            scorer: scorer.map(Cow::Borrowed),
        })
    }
}

impl<'a> Output<'a> {
    /// The output on `line` when it has only `id` and `output`, plain
    /// strings (see [`PlainJson`]); `None` for any other line.
    pub fn plain(line: &'a str) -> Option<Self> {
        let (mut id, mut output) = (None, None);
        PlainJson::object(line, |key, json| {
            let slot = match key {
                "id" => &mut id,
                "output" => &mut output,
                // Numbers and unknown fields are serde's to read.
                _ => return None,
            };
            match slot {
                Some(_) => None,
                None => {
                    *slot = Some(json.string()?);
                    Some(())
                }
            }
        })?;
        Some(Output {
            id: Cow::Borrowed(id?),
            output: Cow::Borrowed(output?),
            latency_ms: None,
            input_tokens: None,
            output_tokens: None,
        })
    }
}

impl<'a> From<&'a super::Case> for Case<'a> {
    fn from(case: &'a super::Case) -> Self {
        Case {
            id: Cow::Borrowed(&case.id),
            input: Cow::Borrowed(&case.input),
            expected: Expected::from(&case.expected),
            tags: case
                .tags
                .iter()
                .map(|t| Cow::Borrowed(t.as_str()))
                .collect(),
            scorer: case.scorer.as_deref().map(Cow::Borrowed),
        }
    }
}

impl<'a> From<&'a super::Output> for Output<'a> {
    fn from(output: &'a super::Output) -> Self {
        Output {
            id: Cow::Borrowed(&output.id),
            output: Cow::Borrowed(&output.output),
            latency_ms: output.latency_ms,
            input_tokens: output.input_tokens,
            output_tokens: output.output_tokens,
        }
    }
}

/// A case's `expected`: a string (a label, a short answer, a pattern)
/// kept as text, anything else parsed into a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected<'a> {
    /// A JSON string.
    Text(Cow<'a, str>),
    /// Any other JSON value; never a string.
    Json(serde_json::Value),
}

impl Expected<'_> {
    /// What kind of JSON value it is ("a string", "an array"), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Expected::Text(_) => "a string",
            Expected::Json(value) => crate::json_kind(value),
        }
    }

    /// As a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Expected::Text(text) => serde_json::Value::String(text.to_string()),
            Expected::Json(value) => value.clone(),
        }
    }
}

impl<'a> From<&'a serde_json::Value> for Expected<'a> {
    fn from(value: &'a serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(text) => Expected::Text(Cow::Borrowed(text)),
            other => Expected::Json(other.clone()),
        }
    }
}

impl From<serde_json::Value> for Expected<'static> {
    fn from(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(text) => Expected::Text(Cow::Owned(text)),
            other => Expected::Json(other),
        }
    }
}

/// The JSON text, as `serde_json::Value` writes it.
impl std::fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Text(text) => {
                let quoted = serde_json::to_string(&**text).map_err(|_| std::fmt::Error)?;
                f.write_str(&quoted)
            }
            Expected::Json(value) => value.fmt(f),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Expected<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExpectedVisitor)
    }
}

/// Keeps a string as text and builds any other value as
/// `serde_json::Value` does, so both forms of a case read one value.
struct ExpectedVisitor;

impl<'de> Visitor<'de> for ExpectedVisitor {
    type Value = Expected<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Expected::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Expected::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Expected::Text(Cow::Owned(text)))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Expected::Json(b.into()))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Expected::Json(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Expected::Json(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Expected::Json(n.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Expected::Json(serde_json::Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Expected::Json(serde_json::Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        Expected::deserialize(inner)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(Expected::Json)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(Expected::Json)
    }
}

/// A string, borrowed when it has no escapes: `Cow<str>`'s own
/// `Deserialize` always copies.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // As `String` says it.
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Cow<'de, str>>, D::Error> {
    let texts = Vec::<Text<'de>>::deserialize(deserializer)?;
    Ok(texts.into_iter().map(|Text(text)| text).collect())
}

fn optional_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.map(|Text(text)| text))
}
