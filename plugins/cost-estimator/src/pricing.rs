//! What a configuration's tokens cost: an admin's pricing table, or the
//! configuration's own `pricing`.
//!
//! The table is a data source (param `pricing_table`) holding JSON:
//!
//! ```json
//! {
//!   "_note": "keys starting with _ are notes",
//!   "gpt-4o-mini": { "input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.60 },
//!   "claude-3-5-haiku*": { "input_per_1m_tokens": 0.80, "output_per_1m_tokens": 4.00 }
//! }
//! ```
//!
//! Prices are USD per million tokens, as providers list them. A key matches
//! the configuration's `model` exactly, or, ending in `*`, as a prefix
//! (`claude-3-5-haiku*` prices `claude-3-5-haiku-20241022`); an exact key
//! wins, then the longest prefix. The table wins over the configuration's
//! own `pricing` (USD per 1,000 tokens) when it knows the model: the
//! admin's table is the reference, and a configuration must not be able to
//! price itself under a budget. Its own `pricing` prices models the table
//! lacks, and a disagreement is reported in the verdict.

use gatehouse_plugin_sdk::{data, json_kind};
use serde::Deserialize;
use serde_json::Value;

/// USD per 1,000 tokens, and where the figures came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    /// Set when the pricing table gave the price: its matching key.
    pub table_key: Option<String>,
    /// Set when the table gave the price and the configuration's own
    /// `pricing` says otherwise: a sentence for the verdict.
    pub disagreement: Option<String>,
}

/// An admin's price list, by model.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingTable {
    /// The data source it was read from, for messages.
    pub source: String,
    entries: Vec<(String, Entry)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    input_per_1m_tokens: f64,
    output_per_1m_tokens: f64,
}

const ENTRY_SHAPE: &str = r#"{"input_per_1m_tokens": USD, "output_per_1m_tokens": USD}"#;

impl PricingTable {
    /// Reads and checks the table `source` names (see [`data`]).
    pub fn read(source: &str) -> Result<Self, String> {
        Self::parse(source, &data::read(source)?)
    }

    /// Parses a table; the error names the source and the entry to fix.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Self, String> {
        let map: serde_json::Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "pricing table {source} is not a JSON object ({e}); write {{\"MODEL\": {ENTRY_SHAPE}, ...}}"
            )
        })?;
        let mut entries = Vec::new();
        for (key, value) in map {
            if key.starts_with('_') {
                continue;
            }
            if key.trim_end_matches('*').contains('*') || key == "*" {
                return Err(format!(
                    "pricing table {source}: key {key:?} may hold `*` only at its end, after a model name prefix"
                ));
            }
            let entry: Entry = serde_json::from_value(value).map_err(|e| {
                format!("pricing table {source}: entry {key:?}: {e}; write {ENTRY_SHAPE}")
            })?;
            for (field, price) in [
                ("input_per_1m_tokens", entry.input_per_1m_tokens),
                ("output_per_1m_tokens", entry.output_per_1m_tokens),
            ] {
                if !(price.is_finite() && price >= 0.0) {
                    return Err(format!(
                        "pricing table {source}: `{field}` of {key:?} is {price}; set the price in USD per million tokens (0 or more)"
                    ));
                }
            }
            entries.push((key, entry));
        }
        Ok(Self {
            source: source.to_string(),
            entries,
        })
    }

    /// The key and price for `model`: an exact key, else the longest
    /// `prefix*` key the model starts with.
    pub fn lookup(&self, model: &str) -> Option<(&str, Price)> {
        let exact = self.entries.iter().find(|(key, _)| key == model);
        let prefix = || {
            self.entries
                .iter()
                .filter_map(|(key, entry)| {
                    let stem = key.strip_suffix('*')?;
                    model.starts_with(stem).then_some((key, entry, stem.len()))
                })
                .max_by_key(|(_, _, len)| *len)
                .map(|(key, entry, _)| (key, entry))
        };
        let (key, entry) = exact.map(|(k, e)| (k, e)).or_else(prefix)?;
        Some((
            key.as_str(),
            Price {
                input_per_1k: entry.input_per_1m_tokens / 1000.0,
                output_per_1k: entry.output_per_1m_tokens / 1000.0,
                table_key: Some(key.clone()),
                disagreement: None,
            },
        ))
    }
}

/// The price of `config`'s tokens: the table's entry for its `model`, else
/// its own `pricing`. `role` ("candidate", "incumbent") names it in messages.
pub fn price(config: &Value, table: Option<&PricingTable>, role: &str) -> Result<Price, String> {
    let model = config.get("model").and_then(Value::as_str).unwrap_or("");
    let from_table = table.and_then(|t| t.lookup(model).map(|(_, price)| price));
    // A broken `pricing` matters only when it is the price used.
    let own = own_pricing(config, role);
    match (from_table, own, table) {
        (Some(mut listed), Ok(Some(own)), _) => {
            if !same(listed.input_per_1k, own.input_per_1k)
                || !same(listed.output_per_1k, own.output_per_1k)
            {
                listed.disagreement = Some(format!(
                    "the {role}'s own pricing ({}/1k in, {}/1k out) differs from the pricing table's {:?} ({}/1k in, {}/1k out), which was used",
                    crate::estimate::usd(own.input_per_1k),
                    crate::estimate::usd(own.output_per_1k),
                    listed.table_key.as_deref().unwrap_or(""),
                    crate::estimate::usd(listed.input_per_1k),
                    crate::estimate::usd(listed.output_per_1k),
                ));
            }
            Ok(listed)
        }
        (Some(listed), _, _) => Ok(listed),
        (None, Ok(Some(own)), _) => Ok(own),
        (None, Err(problem), _) => Err(problem),
        (None, Ok(None), Some(table)) => Err(format!(
            "the {role}'s model {model:?} is not in the pricing table {} and the {role} has no `pricing`; add the model to the table, or `pricing.input_per_1k_tokens` and `pricing.output_per_1k_tokens` to the configuration",
            table.source
        )),
        (None, Ok(None), None) => Err(format!(
            "the {role} has no `pricing`; add `pricing.input_per_1k_tokens` and `pricing.output_per_1k_tokens` (USD per 1,000 tokens)"
        )),
    }
}

/// The configuration's own `pricing`, USD per 1,000 tokens, if it has one.
fn own_pricing(config: &Value, role: &str) -> Result<Option<Price>, String> {
    match config.get("pricing") {
        None => Ok(None),
        Some(Value::Object(pricing)) => Ok(Some(Price {
            input_per_1k: per_1k(pricing.get("input_per_1k_tokens"), "input", role)?,
            output_per_1k: per_1k(pricing.get("output_per_1k_tokens"), "output", role)?,
            table_key: None,
            disagreement: None,
        })),
        Some(other) => Err(format!(
            "`pricing` in the {role} must be an object with `input_per_1k_tokens` and `output_per_1k_tokens`, found {}",
            json_kind(other)
        )),
    }
}

/// Equal to a millionth of a cent per 1k tokens: tables and configurations
/// write the same price with different rounding.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-8
}

fn per_1k(value: Option<&Value>, direction: &str, role: &str) -> Result<f64, String> {
    let field = format!("pricing.{direction}_per_1k_tokens");
    match value {
        None => Err(format!(
            "the {role} has no `{field}`; add the model's price in USD per 1,000 {direction} tokens"
        )),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(price) if price.is_finite() && price >= 0.0 => Ok(price),
            _ => Err(format!(
                "`{field}` in the {role} is {n}; set it to the model's price in USD per 1,000 {direction} tokens (0 or more)"
            )),
        },
        Some(other) => Err(format!(
            "`{field}` in the {role} must be a number, found {}; set it to the model's price in USD per 1,000 {direction} tokens",
            json_kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TABLE: &str = r#"{
        "_note": "example prices",
        "gpt-4o-mini": { "input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.6 },
        "gpt-4o*": { "input_per_1m_tokens": 2.5, "output_per_1m_tokens": 10 },
        "gpt-4o-mini*": { "input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.6 },
        "claude-3-5-haiku*": { "input_per_1m_tokens": 0.8, "output_per_1m_tokens": 4 }
    }"#;

    fn table() -> PricingTable {
        PricingTable::parse("attachment:pricing.json", TABLE.as_bytes()).expect("valid table")
    }

    #[test]
    fn exact_key_wins_then_longest_prefix() {
        let table = table();
        let (key, price) = table.lookup("gpt-4o-mini").expect("listed");
        assert_eq!(key, "gpt-4o-mini");
        assert!((price.input_per_1k - 0.00015).abs() < 1e-15);
        let (key, _) = table.lookup("gpt-4o-mini-2024-07-18").expect("listed");
        assert_eq!(key, "gpt-4o-mini*");
        let (key, price) = table.lookup("gpt-4o-2024-08-06").expect("listed");
        assert_eq!(key, "gpt-4o*");
        assert!((price.output_per_1k - 0.01).abs() < 1e-15);
        assert!(table.lookup("claude-3-5-haiku-20241022").is_some());
        assert!(table.lookup("gpt-4").is_none(), "no key covers gpt-4");
        assert!(table.lookup("_note").is_none(), "notes are not models");
    }

    #[test]
    fn table_price_wins_over_the_configurations_own_and_says_so() {
        let config = json!({
            "model": "gpt-4o-2024-08-06",
            "pricing": { "input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001 }
        });
        let price = price(&config, Some(&table()), "candidate").expect("priced");
        assert_eq!(price.table_key.as_deref(), Some("gpt-4o*"));
        let note = price.disagreement.expect("disagreement reported");
        assert!(
            note.contains("differs from the pricing table's \"gpt-4o*\""),
            "{note}"
        );
    }

    #[test]
    fn own_pricing_prices_models_the_table_lacks() {
        let config = json!({
            "model": "mistral-large-latest",
            "pricing": { "input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.006 }
        });
        let price = price(&config, Some(&table()), "candidate").expect("priced");
        assert_eq!(price.table_key, None);
        assert_eq!(price.output_per_1k, 0.006);
    }

    #[test]
    fn unpriced_model_names_both_fixes() {
        let err = price(&json!({ "model": "gpt-4" }), Some(&table()), "incumbent").unwrap_err();
        assert!(
            err.contains("not in the pricing table attachment:pricing.json"),
            "{err}"
        );
        assert!(err.contains("`pricing.input_per_1k_tokens`"), "{err}");
    }

    #[test]
    fn malformed_tables_name_the_entry() {
        let err =
            PricingTable::parse("t.json", br#"{"m": {"input_per_1m_tokens": 1}}"#).unwrap_err();
        assert!(err.contains("entry \"m\""), "{err}");
        assert!(err.contains("output_per_1m_tokens"), "{err}");
        let err = PricingTable::parse(
            "t.json",
            br#"{"m": {"input_per_1m_tokens": -1, "output_per_1m_tokens": 1}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("`input_per_1m_tokens` of \"m\" is -1"),
            "{err}"
        );
        let err = PricingTable::parse("t.json", b"[1]").unwrap_err();
        assert!(err.contains("not a JSON object"), "{err}");
        let err = PricingTable::parse(
            "t.json",
            br#"{"gpt-*-mini": {"input_per_1m_tokens": 1, "output_per_1m_tokens": 1}}"#,
        )
        .unwrap_err();
        assert!(err.contains("only at its end"), "{err}");
    }

    #[test]
    fn example_pricing_file_parses() {
        let text = include_str!("../../../examples/pricing.json");
        let table = PricingTable::parse("examples/pricing.json", text.as_bytes()).expect("valid");
        assert!(table.lookup("gpt-4o-mini-2024-07-18").is_some());
        assert!(table.lookup("claude-3-5-sonnet-20241022").is_some());
    }
}
