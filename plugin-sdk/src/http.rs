//! Outbound HTTP from a plugin: `http::get(url)`, `http::post_json(url, &body)`.
//!
//! Only hosts an admin put on the plugin's allowlist answer; the plugin must
//! also ask for `"http"` in its description. The host bounds each request by
//! the manifest's time and size limits and by the call's own deadline. Off
//! WebAssembly there is no host, so every request fails with
//! [`Error::Transport`]; test HTTP plugins as `.wasm` with the daemon's
//! `gatehouse plugin test`.

pub use crate::bindings::gate::gatehouse::plugin::http::{Error, Request, Response};

/// Sends `request` and waits for the whole response.
pub fn fetch(request: &Request) -> Result<Response, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::gate::gatehouse::plugin::http::fetch(request);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = request;
        Err(Error::Transport(
            "no host to send HTTP through off WebAssembly".to_string(),
        ))
    }
}

/// Sends every request, at most `max_in_flight` at a time, and waits for
/// all; answers come in the order of `requests`. For calling a model on each
/// case of a golden dataset without waiting on each in turn.
pub fn fetch_all(requests: &[Request], max_in_flight: u32) -> Vec<Result<Response, Error>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::gate::gatehouse::plugin::http::fetch_all(requests, max_in_flight);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = max_in_flight;
        requests.iter().map(fetch).collect()
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, Error> {
    fetch(&Request {
        method: "GET".to_string(),
        url: url.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// `POST url` with `body` as JSON.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, Error> {
    fetch(&Request {
        method: "POST".to_string(),
        url: url.to_string(),
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: body.to_string().into_bytes(),
    })
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("HTTP {} answer is not valid JSON ({e})", self.status))
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Error {
    /// A sentence for a verdict's reason or an error message.
    pub fn message(&self) -> String {
        match self {
            Error::NotAllowed(host) => format!(
                "host {host} is not on the plugin's HTTP allowlist; an admin grants it in the manifest"
            ),
            Error::InvalidRequest(why) => format!("invalid HTTP request: {why}"),
            Error::Timeout => "HTTP request timed out".to_string(),
            Error::TooLarge(limit) => {
                format!("HTTP response is larger than the {limit}-byte limit")
            }
            Error::Transport(why) => format!("HTTP request failed: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_wasm_requests_fail_with_a_transport_error() {
        let err = get("http://127.0.0.1:1/").unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{err}");
        assert!(err.message().contains("off WebAssembly"), "{err}");
    }

    #[test]
    fn refused_host_reads_as_an_instruction() {
        let text = Error::NotAllowed("evil.example:443".into()).message();
        assert!(text.contains("evil.example:443"), "{text}");
        assert!(text.contains("manifest"), "{text}");
    }
}
