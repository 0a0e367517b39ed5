//! Reading a case's `expected` into what its scorer compares an output
//! with, once per case while the scorers are prepared, so a case its
//! scorer cannot read is refused before any output is read.
//!
//! Rules: a text scorer takes a string, a number or boolean (its JSON
//! text), or a non-empty array of those, any one of them right; anything
//! else is an error saying what was found. Answers borrow the dataset's
//! text wherever they can, so preparing a case with one plain answer
//! allocates nothing.

use std::borrow::Cow;

use gatehouse_plugin_sdk::golden::borrowed::Expected;
use gatehouse_plugin_sdk::json_kind;
use serde_json::Value;

/// The right answers of a text scorer. Nearly every case has one, held
/// without a `Vec` so that preparing a case allocates nothing.
#[derive(Debug)]
pub(super) struct RightAnswers<'a> {
    pub(super) first: Cow<'a, str>,
    pub(super) others: Vec<Cow<'a, str>>,
}

impl<'a> RightAnswers<'a> {
    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.first).chain(self.others.iter().map(|a| &**a))
    }

    /// Each answer trimmed, as `exact` compares them; done once here
    /// rather than once per score.
    pub(super) fn trimmed(self) -> Self {
        let trim = |answer: Cow<'a, str>| match answer {
            Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
            Cow::Owned(text) if text.trim().len() == text.len() => Cow::Owned(text),
            Cow::Owned(text) => Cow::Owned(text.trim().to_string()),
        };
        RightAnswers {
            first: trim(self.first),
            others: self.others.into_iter().map(trim).collect(),
        }
    }
}

/// The acceptable answers in a text scorer's `expected`.
pub(super) fn texts<'a>(expected: &'a Expected) -> Result<RightAnswers<'a>, String> {
    let single = match expected {
        Expected::Text(answer) => answer,
        Expected::Json(Value::Array(answers)) => {
            let Some((first, others)) = answers.split_first() else {
                return Err(
                    "`expected` is an empty array; list at least one right answer".to_string(),
                );
            };
            return Ok(RightAnswers {
                first: text(first)?,
                others: others.iter().map(text).collect::<Result<_, _>>()?,
            });
        }
        Expected::Json(single) => {
            return Ok(RightAnswers {
                first: text(single)?,
                others: Vec::new(),
            });
        }
    };
    Ok(RightAnswers {
        first: Cow::Borrowed(single),
        others: Vec::new(),
    })
}

fn text(value: &Value) -> Result<Cow<'_, str>, String> {
    match value {
        Value::String(s) => Ok(Cow::Borrowed(s.as_str())),
        Value::Number(_) | Value::Bool(_) => Ok(Cow::Owned(value.to_string())),
        other => Err(format!(
            "`expected` holds {}; a text scorer needs a string, a number, a boolean or an array of those",
            json_kind(other)
        )),
    }
}

pub(super) fn expected_number(expected: &Expected) -> Option<f64> {
    match expected {
        Expected::Json(Value::Number(n)) => n.as_f64(),
        Expected::Text(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        Expected::Json(_) => None,
    }
}
