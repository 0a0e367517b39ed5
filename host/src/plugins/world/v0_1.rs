//! `gatehouse:plugin@0.1.0`, as the first plugins were built: the same
//! worlds as 0.2.0 without `check-params`. Its host functions delegate to the
//! newest version's, and its values convert to and from the newest
//! version's types here, in this one file.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit-0.1.0",
    world: "daemon",
    imports: { default: async | trappable },
    exports: { default: async },
});

use self::gatehouse::plugin::{attachments, http, log, types};
use super::latest::gatehouse::plugin as new;
use crate::plugins::sandbox::CallState;

impl types::Host for CallState {}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => new::log::Level::Trace,
            log::Level::Debug => new::log::Level::Debug,
            log::Level::Info => new::log::Level::Info,
            log::Level::Warn => new::log::Level::Warn,
            log::Level::Error => new::log::Level::Error,
        };
        new::log::Host::log(self, level, message).await
    }
}

impl attachments::Host for CallState {
    async fn names(&mut self, owner: attachments::Owner) -> wasmtime::Result<Vec<String>> {
        new::attachments::Host::names(self, owner.into()).await
    }

    async fn get(
        &mut self,
        owner: attachments::Owner,
        name: String,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        new::attachments::Host::get(self, owner.into(), name).await
    }
}

impl From<attachments::Owner> for new::attachments::Owner {
    fn from(owner: attachments::Owner) -> Self {
        match owner {
            attachments::Owner::Candidate => Self::Candidate,
            attachments::Owner::Incumbent => Self::Incumbent,
        }
    }
}

impl http::Host for CallState {
    async fn fetch(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        let answer = new::http::Host::fetch(self, request.into()).await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }

    async fn fetch_all(
        &mut self,
        requests: Vec<http::Request>,
        max_in_flight: u32,
    ) -> wasmtime::Result<Vec<Result<http::Response, http::Error>>> {
        let requests = requests.into_iter().map(Into::into).collect();
        let answers = new::http::Host::fetch_all(self, requests, max_in_flight).await?;
        Ok(answers
            .into_iter()
            .map(|a| a.map(Into::into).map_err(Into::into))
            .collect())
    }
}

impl From<http::Request> for new::http::Request {
    fn from(r: http::Request) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<new::http::Response> for http::Response {
    fn from(r: new::http::Response) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<new::http::Error> for http::Error {
    fn from(e: new::http::Error) -> Self {
        match e {
            new::http::Error::NotAllowed(m) => Self::NotAllowed(m),
            new::http::Error::InvalidRequest(m) => Self::InvalidRequest(m),
            new::http::Error::Timeout => Self::Timeout,
            new::http::Error::TooLarge(n) => Self::TooLarge(n),
            new::http::Error::Transport(m) => Self::Transport(m),
        }
    }
}

impl From<new::types::Candidate> for types::Candidate {
    fn from(c: new::types::Candidate) -> Self {
        Self {
            digest: c.digest,
            bytes: c.bytes,
            metadata: c.metadata,
        }
    }
}

impl From<new::types::GateRequest> for types::GateRequest {
    fn from(r: new::types::GateRequest) -> Self {
        Self {
            candidate: r.candidate.into(),
            incumbent: r.incumbent.map(Into::into),
            stage: r.stage,
            params: r.params,
        }
    }
}

impl From<new::types::Target> for types::Target {
    fn from(t: new::types::Target) -> Self {
        Self {
            environment: t.environment,
            params: t.params,
        }
    }
}

impl From<types::Verdict> for new::types::Verdict {
    fn from(v: types::Verdict) -> Self {
        Self {
            outcome: match v.outcome {
                types::Outcome::Pass => new::types::Outcome::Pass,
                types::Outcome::Warn => new::types::Outcome::Warn,
                types::Outcome::Fail => new::types::Outcome::Fail,
                types::Outcome::Inconclusive => new::types::Outcome::Inconclusive,
            },
            score: v.score,
            measurements: v
                .measurements
                .into_iter()
                .map(|m| new::types::Measurement {
                    name: m.name,
                    value: m.value,
                    unit: m.unit,
                })
                .collect(),
            reason: v.reason,
        }
    }
}

impl From<types::LiveState> for new::types::LiveState {
    fn from(s: types::LiveState) -> Self {
        Self {
            active: s.active,
            canary: s.canary,
            canary_weight_percent: s.canary_weight_percent,
            detail: s.detail,
        }
    }
}

impl From<types::Description> for new::types::Description {
    fn from(d: types::Description) -> Self {
        Self {
            name: d.name,
            version: d.version,
            kind: match d.kind {
                types::PluginKind::Gate => new::types::PluginKind::Gate,
                types::PluginKind::Adapter => new::types::PluginKind::Adapter,
            },
            summary: d.summary,
            params_schema: d.params_schema,
            capabilities: d.capabilities,
        }
    }
}
