//! The adapter's four calls against one service, over any [`Transport`].
//!
//! Each call reads the live state first and sends nothing when the service
//! already serves what the call asks for, so a call the daemon repeats
//! after a crash is a no-op; a service should still treat a repeated `PUT`
//! of the same digest as one.

use gatehouse_plugin_sdk::{Candidate, LiveState};

use crate::api::{Api, expect_success, parse_live};
use crate::params::Params;
use crate::retry::{self, Transport};

/// One service, reached through `transport`.
pub struct Client<'a, T: Transport> {
    api: Api,
    params: Params,
    transport: &'a mut T,
}

impl<'a, T: Transport> Client<'a, T> {
    pub fn new(params: Params, transport: &'a mut T) -> Self {
        Self {
            api: Api::new(&params),
            params,
            transport,
        }
    }

    /// What the service serves in `environment`.
    pub fn current(&mut self, environment: &str) -> Result<LiveState, String> {
        let request = self.api.live(environment);
        let response = self.send(&request)?;
        parse_live(&request, &response)
    }

    /// Makes `candidate` active, unless it already is.
    pub fn apply(&mut self, environment: &str, candidate: &Candidate) -> Result<(), String> {
        if self.current(environment)?.active.as_deref() == Some(&candidate.digest) {
            return Ok(());
        }
        let request = self.api.put_active(environment, candidate);
        let response = self.send(&request)?;
        expect_success(&request, &response)
    }

    /// Gives `canary` `weight` percent of traffic, unless it already has it.
    pub fn set_traffic(
        &mut self,
        environment: &str,
        canary: &Candidate,
        weight: u8,
    ) -> Result<(), String> {
        if weight > 100 {
            return Err(format!(
                "canary weight {weight}% is over 100%; the daemon sends 0 to 100"
            ));
        }
        let live = self.current(environment)?;
        if live.canary.as_deref() == Some(&canary.digest) && live.canary_weight_percent == weight {
            return Ok(());
        }
        let request = self.api.put_canary(environment, canary, weight);
        let response = self.send(&request)?;
        expect_success(&request, &response)
    }

    /// Takes the canary out and restores `restore`, unless that is done.
    pub fn rollback(
        &mut self,
        environment: &str,
        restore: Option<&Candidate>,
    ) -> Result<(), String> {
        let live = self.current(environment)?;
        let restored = restore.is_none_or(|r| live.active.as_deref() == Some(&r.digest));
        if live.canary.is_none() && live.canary_weight_percent == 0 && restored {
            return Ok(());
        }
        let request = self.api.rollback(environment, restore);
        let response = self.send(&request)?;
        expect_success(&request, &response)
    }

    fn send(
        &mut self,
        request: &gatehouse_plugin_sdk::http::Request,
    ) -> Result<gatehouse_plugin_sdk::http::Response, String> {
        retry::send(
            self.transport,
            request,
            self.params.retries,
            self.params.backoff_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gatehouse_plugin_sdk::http::{Error, Request, Response};

    use super::*;
    use crate::api::DIGEST_HEADER;

    /// A service keeping the contract, in memory; `outages` answers 503 to
    /// that many requests first.
    #[derive(Default)]
    struct Service {
        active: Option<String>,
        canary: Option<String>,
        weight: u8,
        outages: usize,
        writes: Vec<String>,
        pauses: Vec<Duration>,
    }

    impl Transport for Service {
        fn send(&mut self, request: &Request) -> Result<Response, Error> {
            if self.outages > 0 {
                self.outages -= 1;
                return Ok(answer(503, ""));
            }
            let digest = request
                .headers
                .iter()
                .find(|(n, _)| n == DIGEST_HEADER)
                .map(|(_, v)| v.clone());
            let path = request.url.trim_start_matches("http://svc/config/prod");
            match (request.method.as_str(), path) {
                ("GET", "") => {
                    let body = serde_json::json!({
                        "active": self.active, "canary": self.canary,
                        "canary_weight_percent": self.weight,
                    });
                    return Ok(answer(200, &body.to_string()));
                }
                ("PUT", "/active") => self.active = digest,
                ("PUT", tail) if tail.starts_with("/canary?weight=") => {
                    self.canary = digest;
                    self.weight = tail["/canary?weight=".len()..].parse().unwrap_or(0);
                }
                ("POST", "/rollback") => {
                    self.canary = None;
                    self.weight = 0;
                    if digest.is_some() {
                        self.active = digest;
                    }
                }
                _ => return Ok(answer(404, "no such route")),
            }
            self.writes.push(format!("{} {path}", request.method));
            Ok(answer(204, ""))
        }

        fn sleep(&mut self, pause: Duration) {
            self.pauses.push(pause);
        }
    }

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn candidate(n: u8) -> Candidate {
        Candidate {
            digest: format!("{n:02x}").repeat(32),
            bytes: format!("{{\"v\": {n}}}").into_bytes(),
            metadata: Vec::new(),
        }
    }

    fn params() -> Params {
        Params::parse(r#"{"base_url": "http://svc/", "backoff_ms": 50}"#).expect("valid")
    }

    #[test]
    fn apply_puts_once_and_skips_when_already_active() {
        let mut service = Service::default();
        let mut client = Client::new(params(), &mut service);
        client.apply("prod", &candidate(1)).expect("applied");
        client.apply("prod", &candidate(1)).expect("repeated");
        assert_eq!(service.writes, ["PUT /active"]);
        assert_eq!(service.active, Some(candidate(1).digest));
    }

    #[test]
    fn canary_and_rollback_are_idempotent() {
        let mut service = Service {
            active: Some(candidate(1).digest),
            ..Service::default()
        };
        let mut client = Client::new(params(), &mut service);
        client
            .set_traffic("prod", &candidate(2), 10)
            .expect("canary");
        client
            .set_traffic("prod", &candidate(2), 10)
            .expect("repeated");
        client
            .set_traffic("prod", &candidate(2), 50)
            .expect("raised");
        let live = client.current("prod").expect("read");
        assert_eq!(
            (live.canary, live.canary_weight_percent),
            (Some(candidate(2).digest), 50)
        );
        client
            .rollback("prod", Some(&candidate(1)))
            .expect("rolled back");
        client
            .rollback("prod", Some(&candidate(1)))
            .expect("repeated");
        client.rollback("prod", None).expect("nothing left to undo");
        assert_eq!(
            service.writes,
            [
                "PUT /canary?weight=10",
                "PUT /canary?weight=50",
                "POST /rollback"
            ]
        );
        assert_eq!((service.canary, service.weight), (None, 0));
    }

    #[test]
    fn a_restarting_service_is_retried_with_back_off() {
        let mut service = Service {
            outages: 2,
            ..Service::default()
        };
        let mut client = Client::new(params(), &mut service);
        client
            .apply("prod", &candidate(3))
            .expect("applied after retries");
        assert_eq!(service.pauses, [50, 100].map(Duration::from_millis));
        assert_eq!(service.active, Some(candidate(3).digest));
    }

    #[test]
    fn a_refused_apply_says_what_the_service_answered() {
        struct Refusing;
        impl Transport for Refusing {
            fn send(&mut self, request: &Request) -> Result<Response, Error> {
                Ok(match request.method.as_str() {
                    "GET" => answer(404, ""),
                    _ => answer(422, "unknown field `temprature`"),
                })
            }
            fn sleep(&mut self, _: Duration) {}
        }
        let err = Client::new(params(), &mut Refusing)
            .apply("prod", &candidate(1))
            .unwrap_err();
        assert!(
            err.contains("HTTP 422: unknown field `temprature`"),
            "{err}"
        );
    }
}
