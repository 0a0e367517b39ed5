//! The admin API a service implements for this adapter (see the crate
//! docs): the requests it is sent and how its answers read. Pure functions,
//! so they are tested natively.

use gatehouse_plugin_sdk::http::{Request, Response};
use gatehouse_plugin_sdk::{Candidate, LiveState, json_kind};
use serde_json::Value;

use crate::params::Params;

/// The header naming the digest of the configuration in the body.
pub const DIGEST_HEADER: &str = "x-gatehouse-digest";

/// Builds the requests for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(params: &Params) -> Self {
        Self {
            base: params.base_url.trim_end_matches('/').to_string(),
            token: params.token.clone(),
        }
    }

    /// `GET {base}/config/{environment}`.
    pub fn live(&self, environment: &str) -> Request {
        self.request("GET", self.url(environment, ""), None, Vec::new())
    }

    /// `PUT {base}/config/{environment}/active` with the candidate's bytes.
    pub fn put_active(&self, environment: &str, candidate: &Candidate) -> Request {
        self.request(
            "PUT",
            self.url(environment, "/active"),
            Some(&candidate.digest),
            candidate.bytes.clone(),
        )
    }

    /// `PUT {base}/config/{environment}/canary?weight=N` with the canary's bytes.
    pub fn put_canary(&self, environment: &str, canary: &Candidate, weight: u8) -> Request {
        self.request(
            "PUT",
            self.url(environment, &format!("/canary?weight={weight}")),
            Some(&canary.digest),
            canary.bytes.clone(),
        )
    }

    /// `POST {base}/config/{environment}/rollback` with the configuration to
    /// restore, or an empty body and no digest header when there is none.
    pub fn rollback(&self, environment: &str, restore: Option<&Candidate>) -> Request {
        self.request(
            "POST",
            self.url(environment, "/rollback"),
            restore.map(|c| c.digest.as_str()),
            restore.map(|c| c.bytes.clone()).unwrap_or_default(),
        )
    }

    fn url(&self, environment: &str, tail: &str) -> String {
        format!("{}/config/{}{tail}", self.base, path_segment(environment))
    }

    fn request(&self, method: &str, url: String, digest: Option<&str>, body: Vec<u8>) -> Request {
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if let Some(token) = &self.token {
            headers.push(("authorization".to_string(), token.clone()));
        }
        if let Some(digest) = digest {
            headers.push((DIGEST_HEADER.to_string(), digest.to_string()));
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        Request {
            method: method.to_string(),
            url,
            headers,
            body,
        }
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters, so an
/// environment name stays one path segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Reads the answer to [`Api::live`]: `{"active": DIGEST|null, "canary":
/// DIGEST|null, "canary_weight_percent": 0..100}`; 404 means the service
/// holds nothing for the environment yet.
pub fn parse_live(request: &Request, response: &Response) -> Result<LiveState, String> {
    if response.status == 404 {
        return Ok(LiveState {
            active: None,
            canary: None,
            canary_weight_percent: 0,
            detail: format!("{} holds no configuration yet (404)", request.url),
        });
    }
    expect_success(request, response)?;
    let live: Value = serde_json::from_slice(&response.body).map_err(|e| {
        format!(
            "{} answered with invalid JSON ({e}); the service must answer {{\"active\": DIGEST, \"canary\": DIGEST, \"canary_weight_percent\": N}}",
            request.url
        )
    })?;
    let digest = |field: &str| match live.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(digest)) => Ok(Some(digest.clone())),
        Some(other) => Err(format!(
            "{} answered `{field}` as {}; the service must send a digest string or null",
            request.url,
            json_kind(other)
        )),
    };
    let weight = match live.get("canary_weight_percent") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .filter(|w| *w <= 100)
            .and_then(|w| u8::try_from(w).ok())
            .ok_or_else(|| {
                format!(
                    "{} answered `canary_weight_percent` as {value}; the service must send a whole number from 0 to 100",
                    request.url
                )
            })?,
    };
    Ok(LiveState {
        active: digest("active")?,
        canary: digest("canary")?,
        canary_weight_percent: weight,
        detail: format!("read from {}", request.url),
    })
}

/// `Ok` for a 2xx answer; otherwise an error saying what the service
/// answered and what to check.
pub fn expect_success(request: &Request, response: &Response) -> Result<(), String> {
    if response.is_success() {
        return Ok(());
    }
    let hint = match response.status {
        300..=399 => "redirects are not followed; point `base_url` at the final address",
        401 | 403 => "check the adapter's `token`",
        404 => "check `base_url` and that the service implements the Gatehouse adapter API",
        409 | 422 => "the service refused the configuration; see its answer",
        413 => "the configuration is larger than the service accepts",
        _ => "see the service's answer",
    };
    let body = String::from_utf8_lossy(&response.body);
    let body = body.trim();
    let shown: String = body.chars().take(300).collect();
    let ellipsis = if shown.len() < body.len() { "…" } else { "" };
    Err(format!(
        "{} {} answered HTTP {}{}; {hint}",
        request.method,
        request.url,
        response.status,
        if shown.is_empty() {
            String::new()
        } else {
            format!(": {shown}{ellipsis}")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(token: Option<&str>) -> Api {
        Api::new(&Params {
            base_url: "https://svc.internal/admin/".to_string(),
            token: token.map(str::to_string),
            retries: 3,
            backoff_ms: 100,
        })
    }

    fn candidate() -> Candidate {
        Candidate {
            digest: "ab".repeat(32),
            bytes: br#"{"model": "m"}"#.to_vec(),
            metadata: Vec::new(),
        }
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn requests_follow_the_contract() {
        let with_token = api(Some("Bearer s3cret"));
        let c = candidate();
        let live = with_token.live("production");
        assert_eq!(
            (live.method.as_str(), live.url.as_str()),
            ("GET", "https://svc.internal/admin/config/production")
        );
        assert!(live.body.is_empty());
        assert_eq!(header(&live, DIGEST_HEADER), None);

        let put = with_token.put_active("production", &c);
        assert_eq!(
            put.url,
            "https://svc.internal/admin/config/production/active"
        );
        assert_eq!(
            (put.method.as_str(), put.body.as_slice()),
            ("PUT", c.bytes.as_slice())
        );
        assert_eq!(header(&put, DIGEST_HEADER), Some(c.digest.as_str()));
        assert_eq!(header(&put, "authorization"), Some("Bearer s3cret"));

        let canary = with_token.put_canary("production", &c, 25);
        assert_eq!(
            canary.url,
            "https://svc.internal/admin/config/production/canary?weight=25"
        );

        let rollback = with_token.rollback("production", Some(&c));
        assert_eq!(
            (rollback.method.as_str(), rollback.body.as_slice()),
            ("POST", c.bytes.as_slice())
        );
        assert_eq!(header(&rollback, DIGEST_HEADER), Some(c.digest.as_str()));
        let empty = with_token.rollback("production", None);
        assert!(empty.body.is_empty());
        assert_eq!(header(&empty, DIGEST_HEADER), None);
        assert_eq!(header(&api(None).live("p"), "authorization"), None);
    }

    #[test]
    fn environment_names_stay_one_path_segment() {
        let url = api(None).live("eu west/../prod").url;
        assert_eq!(
            url,
            "https://svc.internal/admin/config/eu%20west%2F..%2Fprod"
        );
    }

    #[test]
    fn live_state_is_read_from_the_answer() {
        let request = api(None).live("prod");
        let body = format!(
            r#"{{"active": "{}", "canary": null, "canary_weight_percent": 0}}"#,
            "cd".repeat(32)
        );
        let live = parse_live(&request, &answer(200, &body)).expect("parsed");
        assert_eq!(live.active, Some("cd".repeat(32)));
        assert_eq!((live.canary, live.canary_weight_percent), (None, 0));

        let live = parse_live(&request, &answer(404, "")).expect("nothing yet");
        assert_eq!(live.active, None);
        assert!(live.detail.contains("404"), "{}", live.detail);
    }

    #[test]
    fn malformed_live_state_names_the_field() {
        let request = api(None).live("prod");
        let err = parse_live(&request, &answer(200, r#"{"active": 3}"#)).unwrap_err();
        assert!(err.contains("`active` as a number"), "{err}");
        let err =
            parse_live(&request, &answer(200, r#"{"canary_weight_percent": 250}"#)).unwrap_err();
        assert!(err.contains("from 0 to 100"), "{err}");
        let err = parse_live(&request, &answer(200, "<html>")).unwrap_err();
        assert!(err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn refusals_say_what_the_service_answered() {
        let request = api(None).put_active("prod", &candidate());
        let err = expect_success(
            &request,
            &answer(409, "schema version 3 is not supported\n"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "PUT https://svc.internal/admin/config/prod/active answered HTTP 409: schema version 3 is not supported; the service refused the configuration; see its answer"
        );
        let err = expect_success(&request, &answer(401, "")).unwrap_err();
        assert!(
            err.ends_with("HTTP 401; check the adapter's `token`"),
            "{err}"
        );
        let long = "x".repeat(1000);
        let err = expect_success(&request, &answer(400, &long)).unwrap_err();
        assert!(err.contains("…"), "{err}");
        assert!(err.len() < 500, "{err}");
    }
}
