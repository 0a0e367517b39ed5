//! An environment's live configuration as one flag in flagd's
//! flag-definition format: variants `active` and, during a canary,
//! `canary`, split by `fractional` at the canary's weight, bucketed by the
//! canary's digest and the request's targeting key (the rule of
//! `canary::routing`), with the digests and release ids as metadata.

use crate::configstore::LiveConfig;
use serde_json::{Map, Value, json};

/// The flag set for `envs`, each as (flag key, live configuration).
pub fn flag_set<'a>(envs: impl IntoIterator<Item = (&'a str, &'a LiveConfig)>) -> Value {
    let mut flags = Map::new();
    for (key, live) in envs {
        if let Some(flag) = flag(live) {
            flags.insert(key.to_string(), flag);
        }
    }
    json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": flags,
        "metadata": { "flagSetId": "gatehouse" },
    })
}

/// A candidate's bytes as the variant's value: its JSON when it is JSON
/// (model configurations are), else its text.
fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// One environment's flag; none while nothing was ever deployed there.
fn flag(live: &LiveConfig) -> Option<Value> {
    let s = &live.state;
    let mut metadata = Map::new();
    metadata.insert("environment".into(), json!(s.name));
    metadata.insert("generation".into(), json!(s.generation));
    let mut variants = Map::new();
    if let (Some(d), Some(bytes)) = (&s.active, &live.active_bytes) {
        variants.insert("active".into(), value(bytes));
        metadata.insert("digest".into(), json!(d.digest.hex()));
        metadata.insert("release_id".into(), json!(d.release.0));
    }
    let mut targeting = None;
    let mut default = "active";
    if let (Some(c), Some(bytes)) = (&s.canary, &live.canary_bytes) {
        variants.insert("canary".into(), value(bytes));
        let salt = c.digest.hex();
        let weight = s.canary_weight_percent.min(100);
        metadata.insert("canary_digest".into(), json!(salt));
        metadata.insert("canary_release_id".into(), json!(c.release.0));
        metadata.insert("canary_weight_percent".into(), json!(weight));
        if variants.contains_key("active") {
            targeting = Some(json!({
                "fractional": [
                    { "cat": [salt, { "var": "targetingKey" }] },
                    ["canary", weight],
                    ["active", 100 - weight],
                ]
            }));
        } else {
            // Nothing to split against: the canary is all there is.
            default = "canary";
        }
    }
    if variants.is_empty() {
        return None;
    }
    let mut flag = json!({
        "state": "ENABLED",
        "variants": variants,
        "defaultVariant": default,
        "metadata": metadata,
    });
    if let Some(t) = targeting {
        flag["targeting"] = t;
    }
    Some(flag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configstore::{Deployment, EnvState};
    use crate::digest::Digest;
    use crate::ids::ReleaseId;
    use std::sync::Arc;

    fn live(canary: bool) -> LiveConfig {
        let active = br#"{"model":"m-1","temperature":0.1}"#.to_vec();
        let next = br#"{"model":"m-2","temperature":0.1}"#.to_vec();
        let deployment = |bytes: &[u8], id| Deployment {
            digest: Digest::of(bytes),
            release: ReleaseId(id),
            deployed_at_ms: 1,
        };
        let mut state = EnvState::empty("production");
        state.generation = 4;
        state.active = Some(deployment(&active, 3));
        if canary {
            state.canary = Some(deployment(&next, 4));
            state.canary_weight_percent = 10;
        }
        LiveConfig {
            state,
            active_bytes: Some(Arc::new(active)),
            canary_bytes: canary.then(|| Arc::new(next)),
        }
    }

    #[test]
    fn a_canary_is_a_fractional_split_bucketed_by_its_digest() {
        let l = live(true);
        let set = flag_set([("triage", &l)]);
        let f = &set["flags"]["triage"];
        assert_eq!(f["state"], "ENABLED");
        assert_eq!(f["defaultVariant"], "active");
        assert_eq!(f["variants"]["active"]["model"], "m-1");
        assert_eq!(f["variants"]["canary"]["model"], "m-2");
        let salt = l.state.canary.as_ref().unwrap().digest.hex();
        assert_eq!(
            f["targeting"],
            json!({ "fractional": [
                { "cat": [salt, { "var": "targetingKey" }] }, ["canary", 10], ["active", 90]
            ] })
        );
        assert_eq!(f["metadata"]["canary_release_id"], 4);
        assert_eq!(f["metadata"]["release_id"], 3);
        assert_eq!(f["metadata"]["generation"], 4);
    }

    #[test]
    fn without_a_canary_there_is_one_variant_and_no_targeting() {
        let l = live(false);
        let set = flag_set([("production", &l)]);
        let f = &set["flags"]["production"];
        assert!(f.get("targeting").is_none(), "{f}");
        assert_eq!(f["variants"].as_object().unwrap().len(), 1);
        let empty = LiveConfig {
            state: EnvState::empty("dev"),
            active_bytes: None,
            canary_bytes: None,
        };
        assert_eq!(flag_set([("dev", &empty)])["flags"], json!({}));
    }
}
