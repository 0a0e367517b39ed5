//! The adapter's params, checked before any request is sent.

use gatehouse_plugin_sdk::ParamError;
use serde::Deserialize;

/// Params from the pipeline, e.g.
/// `{"base_url": "https://triage.internal:9443/admin", "retries": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The service's admin API, `http://` or `https://`, without the
    /// `/config/...` part.
    pub base_url: String,
    /// Sent as the `authorization` header's value, e.g. "Bearer s3cret".
    #[serde(default)]
    pub token: Option<String>,
    /// Attempts after the first, on transport errors and 5xx answers.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry, doubling for each one after.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
}

fn default_retries() -> u32 {
    3
}

fn default_backoff_ms() -> u64 {
    100
}

/// Most retries allowed: their waits must fit in the adapter call's
/// deadline, and ten doublings of even 100 ms take almost two minutes.
pub const MAX_RETRIES: u32 = 10;

impl Params {
    /// Parses and checks params; the error names the param and the fix.
    pub fn parse(json: &str) -> Result<Self, String> {
        gatehouse_plugin_sdk::params::parse(json).map_err(String::from)
    }
}

impl gatehouse_plugin_sdk::Params for Params {
    fn check(&self) -> Result<(), ParamError> {
        let params = self;
        let scheme_ok =
            params.base_url.starts_with("http://") || params.base_url.starts_with("https://");
        if !scheme_ok {
            return Err(ParamError::new(
                "base_url",
                format!(
                    "{:?} is not an http:// or https:// URL; write the service's admin API, e.g. \"https://triage.internal:9443/admin\"",
                    params.base_url
                ),
            ));
        }
        if params.retries > MAX_RETRIES {
            return Err(ParamError::new(
                "retries",
                format!(
                    "{} is more than {MAX_RETRIES}; lower it, the waits must fit in the adapter call's deadline",
                    params.retries
                ),
            ));
        }
        if params
            .token
            .as_deref()
            .is_some_and(|t| t.contains(['\r', '\n']))
        {
            return Err(ParamError::new(
                "token",
                "it holds a line break; write the header value on one line",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_base_url_is_required() {
        let params = Params::parse(r#"{"base_url": "http://127.0.0.1:9000"}"#).expect("valid");
        assert_eq!(
            (params.retries, params.backoff_ms, params.token),
            (3, 100, None)
        );
        let err = Params::parse("{}").unwrap_err();
        assert!(err.contains("base_url"), "{err}");
    }

    #[test]
    fn bad_values_name_the_param() {
        let err = Params::parse(r#"{"base_url": "ftp://x"}"#).unwrap_err();
        assert!(err.contains("`base_url`"), "{err}");
        let err = Params::parse(r#"{"base_url": "http://x", "retries": 50}"#).unwrap_err();
        assert!(err.contains("`retries`"), "{err}");
        let err = Params::parse(r#"{"base_url": "http://x", "token": "a\nb"}"#).unwrap_err();
        assert!(err.contains("`token`"), "{err}");
        let err = Params::parse(r#"{"base_url": "http://x", "retry": 1}"#).unwrap_err();
        assert!(err.contains("`retry`"), "{err}");
    }
}
