//! Notifications that arrive: each `[[notify]]` entry of the daemon config
//! is a receiver (a URL, the events it wants, a format) that is told of
//! release outcomes, approvals awaited, canaries paused or inconclusive,
//! drift and a broken audit chain.
//!
//! Rules:
//! - **The audit log is the outbox.** An event is committed in the same
//!   transaction as the change it records, so a notification is never
//!   promised for a change that did not happen, nor lost for one that did.
//!   Each receiver keeps a cursor in the store (the last audit sequence
//!   number it was told of, or gave up on) and reads the log from there:
//!   a restart resumes where the cursor stands, so delivery is
//!   at-least-once and in log order, hence in order per release.
//! - **Every delivery names itself.** A JSON delivery carries an
//!   idempotency key (`Idempotency-Key`, also in the body) that is the same
//!   for every retry of one event to one receiver, and, with a secret, an
//!   HMAC-SHA256 signature of the body (`X-Gatehouse-Signature-256:
//!   sha256=<hex>`), as GitHub's webhooks do.
//! - **Retries back off.** A failed attempt (no connection, a timeout, a
//!   status other than 2xx) is retried after a delay that doubles from
//!   `retry_first_ms` up to `retry_max_ms`, with jitter. Once the event is
//!   older than `give_up_after_s` and one more attempt failed, the
//!   receiver gives up on it: that is an audit event
//!   (`notify.gave_up`), a log line and a count in `/metrics`, and the
//!   cursor moves on.
//! - **Nothing waits for a receiver.** Each receiver has its own task that
//!   only reads the log; releases and rollbacks never wait for it, and a
//!   slow receiver holds back only its own notifications.
//! - A broken audit chain is told when the periodic chain check
//!   (`telemetry::chain`) finds it; that one is retried in memory, since
//!   the log it would be recorded in is the thing that broke.

mod deliver;
mod payload;
mod worker;

pub use payload::Kind;
pub use worker::spawn;

use serde::Deserialize;

/// Why the receivers could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("notifications: {0}")]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Metrics(#[from] crate::telemetry::metrics::Error),
}

/// One `[[notify]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Names the receiver in logs, metrics and the audit log, and keys its
    /// place in the outbox: renaming it starts it afresh from now.
    pub name: String,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// The events to send; by default all of them.
    #[serde(default = "Kind::all")]
    pub events: Vec<Kind>,
    /// `json` (default) or `slack` (an incoming-webhook message).
    #[serde(default)]
    pub format: Format,
    /// The HMAC-SHA256 key for the signature header.
    pub secret: Option<String>,
    /// The name of an environment variable holding the secret instead.
    pub secret_env: Option<String>,
    /// How long one attempt may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The delay before the first retry; it doubles after each failure.
    #[serde(default = "default_retry_first_ms")]
    pub retry_first_ms: u64,
    /// The longest delay between two attempts.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// How old an event may grow before a failing receiver gives up on it.
    #[serde(default = "default_give_up_after_s")]
    pub give_up_after_s: u64,
}

/// Debug output never shows the secret (settings may be logged).
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("format", &self.format)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry_first_ms", &self.retry_first_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("give_up_after_s", &self.give_up_after_s)
            .finish()
    }
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_retry_first_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    60_000
}
fn default_give_up_after_s() -> u64 {
    3_600
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
    Slack,
}

/// A target checked and ready: its secret read, its URL parsed.
#[derive(Clone)]
pub struct Receiver {
    pub target: Target,
    secret: Option<Vec<u8>>,
    loopback: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("target", &self.target)
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

/// Where the dashboard is, for links in what is sent.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The dashboard's base URL, e.g. `http://127.0.0.1:7444`; none: no link.
    pub dashboard: Option<String>,
}

impl Links {
    pub fn release(&self, id: u64) -> Option<String> {
        self.dashboard
            .as_ref()
            .map(|d| format!("{}/#/releases/{id}", d.trim_end_matches('/')))
    }

    /// The environments view (it shows every environment).
    pub fn environments(&self) -> Option<String> {
        self.dashboard
            .as_ref()
            .map(|d| format!("{}/#/environments", d.trim_end_matches('/')))
    }

    pub fn audit(&self) -> Option<String> {
        self.dashboard
            .as_ref()
            .map(|d| format!("{}/#/audit", d.trim_end_matches('/')))
    }
}

/// Checks every `[[notify]]` entry, saying which one is wrong and how.
pub fn check(targets: &[Target]) -> Result<Vec<Receiver>, String> {
    let mut seen = std::collections::BTreeSet::new();
    targets
        .iter()
        .map(|t| {
            let wrong = |m: String| format!("[[notify]] {:?}: {m}", t.name);
            if t.name.is_empty()
                || !t
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(wrong(
                    "`name` must be letters, digits, '-' or '_' (it labels metrics and keys the outbox)"
                        .into(),
                ));
            }
            if !seen.insert(t.name.clone()) {
                return Err(wrong("two entries have this name; names must be unique".into()));
            }
            let uri: axum::http::Uri = t
                .url
                .parse()
                .map_err(|e| wrong(format!("`url` {:?} is not a URL: {e}", t.url)))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(wrong(format!(
                    "`url` {:?} must be an http:// or https:// URL with a host",
                    t.url
                )));
            }
            if t.events.is_empty() {
                return Err(wrong(format!(
                    "`events` is empty; leave it out for all, or pick from {}",
                    Kind::names()
                )));
            }
            if t.timeout_ms == 0 || t.retry_first_ms == 0 || t.retry_max_ms < t.retry_first_ms {
                return Err(wrong(
                    "`timeout_ms` and `retry_first_ms` must be above 0, and `retry_max_ms` at least `retry_first_ms`"
                        .into(),
                ));
            }
            let secret = match (&t.secret, &t.secret_env) {
                (Some(_), Some(_)) => {
                    return Err(wrong("set `secret` or `secret_env`, not both".into()));
                }
                (Some(s), None) => Some(s.clone().into_bytes()),
                (None, Some(var)) => Some(
                    std::env::var(var)
                        .map_err(|_| {
                            wrong(format!(
                                "`secret_env` names {var:?}, which is not set in the daemon's environment"
                            ))
                        })?
                        .into_bytes(),
                ),
                (None, None) => None,
            };
            if secret.as_ref().is_some_and(|s| s.is_empty()) {
                return Err(wrong("the secret is empty".into()));
            }
            let loopback = uri
                .host()
                .map(|h| h.trim_matches(['[', ']']))
                .is_some_and(|h| {
                    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
                });
            Ok(Receiver {
                target: t.clone(),
                secret,
                loopback,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(toml_text: &str) -> Target {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn an_entry_needs_a_name_a_url_and_one_kind_of_secret() {
        let ok = target("name = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"");
        assert_eq!(ok.events, Kind::all());
        let checked = check(std::slice::from_ref(&ok)).unwrap();
        assert!(checked[0].loopback);

        for (text, says) in [
            ("name = \"a b\"\nurl = \"http://x/\"", "`name` must be"),
            (
                "name = \"a\"\nurl = \"ftp://x/\"",
                "must be an http:// or https://",
            ),
            (
                "name = \"a\"\nurl = \"http://x/\"\nevents = []",
                "release.succeeded",
            ),
            (
                "name = \"a\"\nurl = \"http://x/\"\nsecret = \"s\"\nsecret_env = \"S\"",
                "not both",
            ),
            (
                "name = \"a\"\nurl = \"http://x/\"\nsecret_env = \"GATEHOUSE_NO_SUCH_VARIABLE\"",
                "not set",
            ),
        ] {
            let e = check(&[target(text)]).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let signed = target("name = \"a\"\nurl = \"http://x/\"\nsecret = \"hunter2\"");
        let shown = format!(
            "{signed:?} {:?}",
            check(std::slice::from_ref(&signed)).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let e = check(&[ok.clone(), ok]).unwrap_err();
        assert!(e.contains("unique"), "{e}");
        let e = toml::from_str::<Target>(
            "name = \"a\"\nurl = \"http://x/\"\nevents = [\"release.won\"]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("release.succeeded"), "{e}");
    }
}
