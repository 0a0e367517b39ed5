//! Reading one record line with `serde_json`: any JSON at all, and the
//! messages for lines the gate refuses.
//!
//! Rules: values go straight into their feature's column as they are
//! parsed (keys that are no compared feature are skipped unbuilt). A value
//! of the wrong type, a feature given twice or a line that is no object is
//! refused with a sentence naming the feature and what to write instead;
//! `null` leaves the record out of that feature. The caller adds the
//! source and line number.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::params::Feature;
use crate::records::Column;

/// Reads one line the scanner left, with `serde_json`: any JSON, and the
/// error messages.
pub fn parse_line(
    line: &[u8],
    features: &[Feature],
    columns: &mut [Column],
    seen: &mut [bool],
) -> Result<(), String> {
    let mut problem = None;
    seen.fill(false);
    let mut de = serde_json::Deserializer::from_slice(line);
    let record = Record {
        features,
        columns,
        seen,
        problem: &mut problem,
    };
    record.deserialize(&mut de).and_then(|()| de.end()).map_err(|e| {
        problem.unwrap_or_else(|| {
            format!("{e}; write one JSON object per line, e.g. {{\"output_label\": \"billing\", \"confidence\": 0.91}}")
        })
    })
}

/// One line: a JSON object whose compared keys feed the columns.
struct Record<'s> {
    features: &'s [Feature],
    columns: &'s mut [Column],
    seen: &'s mut [bool],
    /// Why the line was refused, in words better than serde's.
    problem: &'s mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Record<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Record<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of features")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key(self.features))? {
            let Some(index) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let name = &self.features[index].name;
            if std::mem::replace(&mut self.seen[index], true) {
                *self.problem = Some(format!(
                    "key `{name}` appears twice in the record; give each feature once"
                ));
                return Err(de::Error::custom("duplicate feature"));
            }
            let value = map.next_value_seed(Value {
                name,
                column: &mut self.columns[index],
                problem: self.problem,
            });
            value?;
        }
        Ok(())
    }
}

/// A record's key: the index of the feature it names, if any.
struct Key<'s>(&'s [Feature]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a feature name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|f| f.name == key))
    }
}

/// A compared feature's value, added straight to its column.
struct Value<'s> {
    name: &'s str,
    column: &'s mut Column,
    problem: &'s mut Option<String>,
}

impl Value<'_> {
    fn refuse<E: de::Error>(self, found: String) -> Result<(), E> {
        let wanted = match self.column {
            Column::Numeric(_) => "a number, since the feature is numeric",
            Column::Categorical(_) => {
                "a string, boolean or number, since the feature is categorical"
            }
        };
        *self.problem = Some(format!(
            "feature `{}` is {found}, not {wanted}; fix the record or the feature's `kind`",
            self.name
        ));
        Err(E::custom("wrong type"))
    }

    fn number<E: de::Error>(self, value: f64, text: impl FnOnce() -> String) -> Result<(), E> {
        match self.column {
            Column::Numeric(values) => values.push(value),
            Column::Categorical(counts) => *counts.entry(text()).or_default() += 1,
        }
        Ok(())
    }

    fn label<E: de::Error>(self, label: &str) -> Result<(), E> {
        match self.column {
            Column::Categorical(counts) => {
                match counts.get_mut(label) {
                    Some(count) => *count += 1,
                    None => {
                        counts.insert(label.to_string(), 1);
                    }
                }
                Ok(())
            }
            Column::Numeric(_) => self.refuse(format!("the string {label:?}")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a feature value")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v, || v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64, || v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64, || v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.label(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.column {
            Column::Categorical(_) => self.label(if v { "true" } else { "false" }),
            Column::Numeric(_) => self.refuse(format!("the boolean {v}")),
        }
    }

    /// `null`: the record has no value for this feature.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.refuse("an array".to_string())
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.refuse("an object".to_string())
    }
}
