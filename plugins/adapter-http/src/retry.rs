//! Sending a request until the service answers: retries with exponential
//! back-off on failures that may pass, none on those that will not.
//!
//! Transport errors and timeouts (the connection dropped, the service is
//! restarting) and 5xx answers are retried, waiting `backoff_ms`, then twice
//! that, and so on. Any other answer, 4xx included, is final: repeating a
//! refused request only repeats the refusal. A host that is not on the
//! allowlist, a malformed request or an answer over the size limit are final
//! too. The waits use `std::thread::sleep`, which sleeps for real in the
//! sandbox even without the "clock" capability (only reading the clock is
//! stopped there), and the call's deadline still ends a call asleep.

use std::time::Duration;

use gatehouse_plugin_sdk::http::{Error, Request, Response};

/// What the host's HTTP and a pause look like to the retry loop; the
/// daemon's in the plugin, a scripted one in tests.
pub trait Transport {
    fn send(&mut self, request: &Request) -> Result<Response, Error>;
    fn sleep(&mut self, pause: Duration);
}

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The service answered; the caller reads the answer.
    Answered(Response),
    /// Worth another attempt, for this reason.
    Retry(String),
    /// Another attempt would fail the same way.
    Give(String),
}

/// Sorts one attempt's result.
pub fn classify(result: Result<Response, Error>) -> Next {
    match result {
        Ok(response) if response.status >= 500 => {
            let body = String::from_utf8_lossy(&response.body);
            let body: String = body.trim().chars().take(200).collect();
            Next::Retry(if body.is_empty() {
                format!("HTTP {}", response.status)
            } else {
                format!("HTTP {}: {body}", response.status)
            })
        }
        Ok(response) => Next::Answered(response),
        Err(error @ (Error::Transport(_) | Error::Timeout)) => Next::Retry(error.message()),
        Err(error) => Next::Give(error.message()),
    }
}

/// The wait before retry number `retry` (0 for the first): `base_ms · 2^retry`.
pub fn backoff(base_ms: u64, retry: u32) -> Duration {
    Duration::from_millis(base_ms.saturating_mul(1u64 << retry.min(32)))
}

/// Sends `request` until it is answered, at most `retries + 1` times.
pub fn send(
    transport: &mut impl Transport,
    request: &Request,
    retries: u32,
    backoff_ms: u64,
) -> Result<Response, String> {
    let mut last = String::new();
    for attempt in 0..=retries {
        if attempt > 0 {
            transport.sleep(backoff(backoff_ms, attempt - 1));
        }
        match classify(transport.send(request)) {
            Next::Answered(response) => return Ok(response),
            Next::Retry(why) => last = why,
            Next::Give(why) => return Err(format!("{} {}: {why}", request.method, request.url)),
        }
    }
    Err(format!(
        "{} {} failed {} times, last with {last}; check that the service is up, or raise the adapter's `retries` or `backoff_ms`",
        request.method,
        request.url,
        retries + 1
    ))
}

#[cfg(test)]
pub mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Answers from a script and records the pauses it was asked for.
    #[derive(Default)]
    pub struct Scripted {
        pub answers: VecDeque<Result<Response, Error>>,
        pub sent: Vec<Request>,
        pub pauses: Vec<Duration>,
    }

    impl Transport for Scripted {
        fn send(&mut self, request: &Request) -> Result<Response, Error> {
            self.sent.push(request.clone());
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(Error::Transport("script ran out".to_string())))
        }

        fn sleep(&mut self, pause: Duration) {
            self.pauses.push(pause);
        }
    }

    pub fn status(code: u16) -> Result<Response, Error> {
        Ok(Response {
            status: code,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn request() -> Request {
        Request {
            method: "PUT".to_string(),
            url: "http://svc/config/prod/active".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn transport_errors_and_5xx_are_retried_with_doubling_waits() {
        let mut transport = Scripted {
            answers: [
                Err(Error::Transport("connection refused".into())),
                status(503),
                Err(Error::Timeout),
                status(204),
            ]
            .into(),
            ..Scripted::default()
        };
        let answer = send(&mut transport, &request(), 3, 100).expect("answered at last");
        assert_eq!(answer.status, 204);
        assert_eq!(transport.pauses, [100, 200, 400].map(Duration::from_millis));
    }

    #[test]
    fn client_errors_are_answers_and_not_retried() {
        let mut transport = Scripted {
            answers: [status(409), status(204)].into(),
            ..Scripted::default()
        };
        let answer = send(&mut transport, &request(), 3, 100).expect("answered");
        assert_eq!(answer.status, 409);
        assert_eq!(transport.sent.len(), 1);
        assert!(transport.pauses.is_empty());
    }

    #[test]
    fn refusals_by_the_host_are_final() {
        let mut transport = Scripted {
            answers: [Err(Error::NotAllowed("svc:80".into()))].into(),
            ..Scripted::default()
        };
        let err = send(&mut transport, &request(), 3, 100).unwrap_err();
        assert!(err.contains("allowlist"), "{err}");
        assert_eq!(transport.sent.len(), 1);
    }

    #[test]
    fn exhausted_retries_say_what_failed_last() {
        let mut transport = Scripted {
            answers: [status(500), status(502), status(503)].into(),
            ..Scripted::default()
        };
        let err = send(&mut transport, &request(), 2, 10).unwrap_err();
        assert!(err.contains("failed 3 times, last with HTTP 503"), "{err}");
        assert!(err.contains("`retries`"), "{err}");
        assert_eq!(transport.pauses, [10, 20].map(Duration::from_millis));
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        assert_eq!(backoff(100, 0), Duration::from_millis(100));
        assert_eq!(backoff(100, 3), Duration::from_millis(800));
        assert_eq!(backoff(u64::MAX, 5), Duration::from_millis(u64::MAX));
    }
}
