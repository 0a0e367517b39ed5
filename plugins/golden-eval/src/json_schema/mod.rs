//! A subset of JSON Schema for the `json_schema` scorer: `type`, `required`,
//! `properties`, `additionalProperties`, `enum`, `const`, `items`,
//! `minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`,
//! `minLength`/`maxLength` and `pattern`.
//!
//! Why not the `jsonschema` crate: built for `wasm32-wasip2` with default
//! features off it alone is about 3.3 MB of component (16 MB with line
//! tables), and golden answers need only the structural keywords above.
//! Rules of this subset: a keyword outside it is refused when the schema is
//! compiled, never ignored, since skipping `oneOf`, say, would pass answers
//! the author meant to fail; annotations (`$schema`, `$id`, `title`,
//! `description`, `default`, `examples`, `$comment`) are allowed and ignored.
//! `pattern` searches (it is not anchored) as JSON Schema says; lengths
//! count Unicode scalar values; numbers compare by value, so `1` equals `1.0`.

mod compile;

use regex::Regex;
use serde_json::{Map, Value};

/// A compiled schema.
#[derive(Debug, Clone)]
pub enum Schema {
    /// `true` accepts anything, `false` nothing.
    Bool(bool),
    Rules(Box<Rules>),
}

/// The keywords of one schema object.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    types: Option<Vec<Type>>,
    required: Vec<String>,
    properties: Vec<(String, Schema)>,
    additional: Option<Schema>,
    one_of_values: Option<Vec<Value>>,
    constant: Option<Value>,
    items: Option<Schema>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Type {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    Integer,
    String,
}

impl Schema {
    /// Compiles `schema`; the error names the keyword's place, e.g.
    /// `/properties/label/type`.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        compile::compile_at(schema, "")
    }

    /// Checks `value`; the error is the first violation with its place,
    /// e.g. `at /label: expected a string, found a number`.
    pub fn validate(&self, value: &Value) -> Result<(), String> {
        let mut place = String::new();
        self.check(value, &mut place)
    }

    fn check(&self, value: &Value, place: &mut String) -> Result<(), String> {
        match self {
            Schema::Bool(true) => Ok(()),
            Schema::Bool(false) => Err(violation(place, "no value is allowed here")),
            Schema::Rules(rules) => rules.check(value, place),
        }
    }
}

impl Rules {
    fn check(&self, value: &Value, place: &mut String) -> Result<(), String> {
        if let Some(types) = &self.types
            && !types.iter().any(|t| t.admits(value))
        {
            let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
            return Err(violation(
                place,
                &format!(
                    "expected {}, found {}",
                    names.join(" or "),
                    gatehouse_plugin_sdk::json_kind(value)
                ),
            ));
        }
        if let Some(allowed) = &self.one_of_values
            && !allowed.iter().any(|a| same_json(a, value))
        {
            return Err(violation(
                place,
                &format!("{} is not in the enum", clip(value)),
            ));
        }
        if let Some(constant) = &self.constant
            && !same_json(constant, value)
        {
            return Err(violation(
                place,
                &format!("{} is not {constant}", clip(value)),
            ));
        }
        match value {
            Value::Number(n) => self.check_number(n.as_f64().unwrap_or(f64::NAN), place),
            Value::String(s) => self.check_string(s, place),
            Value::Array(items) => self.check_items(items, place),
            Value::Object(object) => self.check_object(object, place),
            Value::Null | Value::Bool(_) => Ok(()),
        }
    }

    fn check_number(&self, n: f64, place: &str) -> Result<(), String> {
        let bounds = [
            (
                self.minimum,
                "at least",
                n >= self.minimum.unwrap_or(f64::MIN),
            ),
            (
                self.maximum,
                "at most",
                n <= self.maximum.unwrap_or(f64::MAX),
            ),
            (
                self.exclusive_minimum,
                "above",
                n > self.exclusive_minimum.unwrap_or(f64::NEG_INFINITY),
            ),
            (
                self.exclusive_maximum,
                "below",
                n < self.exclusive_maximum.unwrap_or(f64::INFINITY),
            ),
        ];
        for (bound, words, holds) in bounds {
            if let Some(bound) = bound
                && !holds
            {
                return Err(violation(place, &format!("{n} is not {words} {bound}")));
            }
        }
        Ok(())
    }

    fn check_string(&self, s: &str, place: &str) -> Result<(), String> {
        if self.min_length.is_some() || self.max_length.is_some() {
            let length = s.chars().count() as u64;
            if let Some(min) = self.min_length.filter(|min| length < *min) {
                return Err(violation(
                    place,
                    &format!("length {length} is under minLength {min}"),
                ));
            }
            if let Some(max) = self.max_length.filter(|max| length > *max) {
                return Err(violation(
                    place,
                    &format!("length {length} is over maxLength {max}"),
                ));
            }
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(s)
        {
            return Err(violation(
                place,
                &format!(
                    "{} does not match pattern {:?}",
                    clip_str(s),
                    pattern.as_str()
                ),
            ));
        }
        Ok(())
    }

    fn check_items(&self, items: &[Value], place: &mut String) -> Result<(), String> {
        let Some(schema) = &self.items else {
            return Ok(());
        };
        for (index, item) in items.iter().enumerate() {
            let len = place.len();
            place.push_str(&format!("/{index}"));
            schema.check(item, place)?;
            place.truncate(len);
        }
        Ok(())
    }

    fn check_object(&self, object: &Map<String, Value>, place: &mut String) -> Result<(), String> {
        for name in &self.required {
            if !object.contains_key(name) {
                return Err(violation(
                    place,
                    &format!("missing required property {name:?}"),
                ));
            }
        }
        for (name, value) in object {
            let schema = match self.properties.iter().find(|(n, _)| n == name) {
                Some((_, schema)) => schema,
                None => match &self.additional {
                    Some(Schema::Bool(false)) => {
                        return Err(violation(
                            place,
                            &format!(
                                "property {name:?} is not allowed (additionalProperties is false)"
                            ),
                        ));
                    }
                    Some(schema) => schema,
                    None => continue,
                },
            };
            let len = place.len();
            place.push('/');
            place.push_str(&name.replace('~', "~0").replace('/', "~1"));
            schema.check(value, place)?;
            place.truncate(len);
        }
        Ok(())
    }
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Boolean => "a boolean",
            Type::Object => "an object",
            Type::Array => "an array",
            Type::Number => "a number",
            Type::Integer => "an integer",
            Type::String => "a string",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Type::Null, Value::Null)
            | (Type::Boolean, Value::Bool(_))
            | (Type::Object, Value::Object(_))
            | (Type::Array, Value::Array(_))
            | (Type::Number, Value::Number(_))
            | (Type::String, Value::String(_)) => true,
            // JSON Schema counts 1.0 as an integer: a number without fraction.
            (Type::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}
fn violation(place: &str, what: &str) -> String {
    if place.is_empty() {
        what.to_string()
    } else {
        format!("at {place}: {what}")
    }
}

/// JSON equality with numbers compared by value.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn clip(value: &Value) -> String {
    clip_str(&value.to_string())
}

fn clip_str(s: &str) -> String {
    crate::report::clip(s, 40)
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> Schema {
        Schema::compile(&value).expect("schema compiles")
    }

    #[test]
    fn types_required_and_properties_are_checked() {
        let s = schema(json!({
            "type": "object",
            "required": ["label", "confidence"],
            "properties": {
                "label": {"type": "string", "enum": ["billing", "outage"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}
            }
        }));
        assert!(
            s.validate(&json!({"label": "billing", "confidence": 0.9}))
                .is_ok()
        );
        let err = s.validate(&json!({"label": "billing"})).unwrap_err();
        assert!(
            err.contains("missing required property \"confidence\""),
            "{err}"
        );
        let err = s
            .validate(&json!({"label": 3, "confidence": 0.5}))
            .unwrap_err();
        assert_eq!(err, "at /label: expected a string, found a number");
        let err = s
            .validate(&json!({"label": "other", "confidence": 0.5}))
            .unwrap_err();
        assert!(err.contains("not in the enum"), "{err}");
        let err = s
            .validate(&json!({"label": "outage", "confidence": 1.5}))
            .unwrap_err();
        assert_eq!(err, "at /confidence: 1.5 is not at most 1");
        let err = s.validate(&json!([1])).unwrap_err();
        assert_eq!(err, "expected an object, found an array");
    }

    #[test]
    fn additional_properties_false_refuses_unknown_ones() {
        let s = schema(json!({"properties": {"a": {}}, "additionalProperties": false}));
        assert!(s.validate(&json!({"a": 1})).is_ok());
        let err = s.validate(&json!({"a": 1, "b": 2})).unwrap_err();
        assert!(err.contains("property \"b\" is not allowed"), "{err}");
        let typed = schema(json!({"additionalProperties": {"type": "integer"}}));
        assert!(typed.validate(&json!({"x": 2.0})).is_ok());
        assert!(typed.validate(&json!({"x": 2.5})).is_err());
    }

    #[test]
    fn items_lengths_and_patterns_are_checked() {
        let s = schema(json!({
            "type": "array",
            "items": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-zé]+$"}
        }));
        assert!(s.validate(&json!(["ab", "café"])).is_ok());
        let err = s.validate(&json!(["ab", "x"])).unwrap_err();
        assert_eq!(err, "at /1: length 1 is under minLength 2");
        let err = s.validate(&json!(["ab", "abcde"])).unwrap_err();
        assert!(err.contains("over maxLength 4"), "{err}");
        let err = s.validate(&json!(["AB"])).unwrap_err();
        assert!(err.contains("does not match pattern"), "{err}");
    }

    #[test]
    fn pattern_searches_rather_than_anchors() {
        let s = schema(json!({"pattern": "\\d{3}"}));
        assert!(s.validate(&json!("order 123 late")).is_ok());
        assert!(s.validate(&json!("order 12")).is_err());
    }

    #[test]
    fn numbers_compare_by_value_in_enum_and_const() {
        assert!(
            schema(json!({"enum": [1, "x"]}))
                .validate(&json!(1.0))
                .is_ok()
        );
        assert!(
            schema(json!({"const": {"n": 2}}))
                .validate(&json!({"n": 2.0}))
                .is_ok()
        );
        assert!(schema(json!({"const": 2})).validate(&json!(3)).is_err());
        assert!(
            schema(json!({"exclusiveMinimum": 0}))
                .validate(&json!(0))
                .is_err()
        );
    }

    #[test]
    fn boolean_schemas_accept_all_or_nothing() {
        assert!(schema(json!(true)).validate(&json!({"any": 1})).is_ok());
        assert!(schema(json!({"items": false})).validate(&json!([])).is_ok());
        assert!(
            schema(json!({"items": false}))
                .validate(&json!([1]))
                .is_err()
        );
    }
}
