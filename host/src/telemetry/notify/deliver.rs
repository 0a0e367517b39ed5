//! One attempt to deliver a message: a signed POST, bounded in time, whose
//! failure is named by a bounded reason (a metrics label) and described
//! (for the log and the give-up record).

use super::payload::Message;
use super::{Format, Receiver};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `connect`, `timeout`, `status_4xx`, `status_5xx`, `tls` or `other`.
    pub reason: &'static str,
    pub detail: String,
}

/// The signature header's value for `body`: `sha256=<hex HMAC-SHA256>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `m` to the receiver once; blocking, so run it off the reactor.
pub fn attempt(to: &Receiver, m: &Message) -> Result<(), Failure> {
    let t = &to.target;
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(t.timeout_ms)))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")));
    if to.loopback {
        // A proxy from the environment has no business with loopback.
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    let mut request = agent
        .post(&t.url)
        .header("Content-Type", "application/json")
        .header("X-Gatehouse-Event", m.kind.as_str());
    if t.format == Format::Json {
        request = request
            .header("Idempotency-Key", &m.key)
            .header("X-Gatehouse-Delivery", &m.key);
    }
    if let Some(secret) = &to.secret {
        request = request.header("X-Gatehouse-Signature-256", signature(secret, &m.body));
    }
    match request.send(&m.body[..]) {
        Ok(answer) => {
            let status = answer.status().as_u16();
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(Failure {
                    reason: if status >= 500 {
                        "status_5xx"
                    } else {
                        "status_4xx"
                    },
                    detail: format!("{} answered {status}", t.url),
                })
            }
        }
        Err(e) => Err(Failure {
            reason: match &e {
                ureq::Error::Timeout(_) => "timeout",
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => "connect",
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                    "connect"
                }
                ureq::Error::Rustls(_) => "tls",
                _ => "other",
            },
            detail: format!("{}: {e}", t.url),
        }),
    }
}

/// The wait before attempt `n + 1` (n ≥ 1 failures so far): the delay
/// doubles from `first` up to `max`, and half of it is random, so many
/// daemons retrying one receiver spread out.
pub fn backoff(failures: u32, first: Duration, max: Duration) -> Duration {
    let doubled = first.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let full = doubled.min(max);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_of_it_random() {
        let (first, max) = (Duration::from_millis(100), Duration::from_millis(1_000));
        for _ in 0..100 {
            let one = backoff(1, first, max);
            assert!(one >= Duration::from_millis(50) && one <= first, "{one:?}");
            let three = backoff(3, first, max);
            assert!(three >= Duration::from_millis(200) && three <= Duration::from_millis(400));
            let many = backoff(40, first, max);
            assert!(many >= max / 2 && many <= max, "{many:?}");
        }
    }
}
