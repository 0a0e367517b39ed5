//! Builders for [`Description`], the answer to the host's `describe` call.

use crate::{Description, PluginKind};

impl Description {
    /// Describes a gate that accepts any JSON object as parameters and asks the
    /// host for nothing. Narrow it with [`Description::with_params_schema`].
    pub fn gate(
        name: impl Into<String>,
        version: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            kind: PluginKind::Gate,
            summary: summary.into(),
            params_schema: serde_json::json!({ "type": "object" }).to_string(),
            capabilities: Vec::new(),
        }
    }

    /// Describes an environment adapter that accepts any JSON object as
    /// parameters and asks the host for nothing.
    pub fn adapter(
        name: impl Into<String>,
        version: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            kind: PluginKind::Adapter,
            ..Self::gate(name, version, summary)
        }
    }

    /// Sets the JSON Schema the plugin's parameters must satisfy.
    pub fn with_params_schema(mut self, schema: serde_json::Value) -> Self {
        self.params_schema = schema.to_string();
        self
    }

    /// Asks the host for a capability: `"log"` ([`crate::log`]), `"http"`
    /// ([`crate::http`]), `"files"` (read-only data directories, through
    /// `std::fs`) or `"clock"` (the real time through `std::time`; without
    /// it clocks read a fixed instant). The admin must grant it too.
    pub fn with_capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_description_accepts_any_object_until_narrowed() {
        let description = Description::gate("g", "1.0.0", "judges things");
        assert_eq!(description.kind, PluginKind::Gate);
        assert_eq!(description.params_schema, r#"{"type":"object"}"#);
        assert!(description.capabilities.is_empty());

        let narrowed = description
            .with_params_schema(serde_json::json!({ "type": "object", "required": ["x"] }))
            .with_capability("log");
        assert!(narrowed.params_schema.contains("required"));
        assert_eq!(narrowed.capabilities, ["log"]);
    }
}
