//! Compiling a schema document into [`Rules`]: each keyword checked for its
//! type, patterns compiled once, and any keyword outside the subset refused
//! with its place (e.g. `/properties/label/oneOf`), never ignored.

use regex::Regex;
use serde_json::Value;

use super::{Rules, Schema, Type};

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
];

const SUPPORTED: &str = "type, required, properties, additionalProperties, enum, const, items, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern";

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "object" => Type::Object,
            "array" => Type::Array,
            "number" => Type::Number,
            "integer" => Type::Integer,
            "string" => Type::String,
            _ => return None,
        })
    }
}

pub(super) fn compile_at(schema: &Value, place: &str) -> Result<Schema, String> {
    let object = match schema {
        Value::Bool(b) => return Ok(Schema::Bool(*b)),
        Value::Object(object) => object,
        other => {
            return Err(format!(
                "schema{}: expected an object or a boolean, found {}",
                at(place),
                gatehouse_plugin_sdk::json_kind(other)
            ));
        }
    };
    let mut rules = Rules::default();
    for (keyword, value) in object {
        let here = format!("{place}/{keyword}");
        let bad = |expected: &str| {
            format!(
                "schema{}: expected {expected}, found {}",
                at(&here),
                gatehouse_plugin_sdk::json_kind(value)
            )
        };
        match keyword.as_str() {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(names) => names.iter().collect(),
                    single => vec![single],
                };
                let mut types = Vec::new();
                for name in names {
                    let t = name.as_str().and_then(Type::parse).ok_or_else(|| {
                        format!(
                            "schema{}: {name} is not a JSON type; use null, boolean, object, array, number, integer or string",
                            at(&here)
                        )
                    })?;
                    types.push(t);
                }
                rules.types = Some(types);
            }
            "required" => {
                let names = value.as_array().ok_or_else(|| bad("an array of names"))?;
                for name in names {
                    let name = name.as_str().ok_or_else(|| bad("an array of names"))?;
                    rules.required.push(name.to_string());
                }
            }
            "properties" => {
                let properties = value.as_object().ok_or_else(|| bad("an object"))?;
                for (name, schema) in properties {
                    let compiled = compile_at(schema, &format!("{here}/{name}"))?;
                    rules.properties.push((name.clone(), compiled));
                }
            }
            "additionalProperties" => rules.additional = Some(compile_at(value, &here)?),
            "items" => rules.items = Some(compile_at(value, &here)?),
            "enum" => {
                rules.one_of_values = Some(value.as_array().ok_or_else(|| bad("an array"))?.clone())
            }
            "const" => rules.constant = Some(value.clone()),
            "minimum" => rules.minimum = Some(value.as_f64().ok_or_else(|| bad("a number"))?),
            "maximum" => rules.maximum = Some(value.as_f64().ok_or_else(|| bad("a number"))?),
            "exclusiveMinimum" => {
                rules.exclusive_minimum = Some(value.as_f64().ok_or_else(|| bad("a number"))?)
            }
            "exclusiveMaximum" => {
                rules.exclusive_maximum = Some(value.as_f64().ok_or_else(|| bad("a number"))?)
            }
            "minLength" => {
                rules.min_length = Some(value.as_u64().ok_or_else(|| bad("a whole number"))?)
            }
            "maxLength" => {
                rules.max_length = Some(value.as_u64().ok_or_else(|| bad("a whole number"))?)
            }
            "pattern" => {
                let pattern = value.as_str().ok_or_else(|| bad("a string"))?;
                let compiled = Regex::new(pattern).map_err(|e| {
                    format!("schema{}: invalid pattern {pattern:?}: {e}", at(&here))
                })?;
                rules.pattern = Some(compiled);
            }
            annotation if ANNOTATIONS.contains(&annotation) => {}
            unsupported => {
                return Err(format!(
                    "schema{}: keyword {unsupported:?} is not supported by golden-eval's JSON Schema subset ({SUPPORTED}); rewrite the schema with these",
                    at(place)
                ));
            }
        }
    }
    Ok(Schema::Rules(Box::new(rules)))
}
fn at(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" at {place}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unsupported_keywords_are_refused_not_ignored() {
        let err = Schema::compile(&json!({"properties": {"a": {"oneOf": []}}})).unwrap_err();
        assert!(err.contains("at /properties/a"), "{err}");
        assert!(err.contains("\"oneOf\" is not supported"), "{err}");
        assert!(Schema::compile(&json!({"title": "t", "$schema": "x"})).is_ok());
        let err = Schema::compile(&json!({"type": "text"})).unwrap_err();
        assert!(err.contains("\"text\" is not a JSON type"), "{err}");
        let err = Schema::compile(&json!({"pattern": "("})).unwrap_err();
        assert!(err.contains("invalid pattern"), "{err}");
        let err = Schema::compile(&json!("string")).unwrap_err();
        assert!(err.contains("expected an object or a boolean"), "{err}");
    }
}
