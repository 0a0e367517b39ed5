//! The command-line client: each subcommand is a thin gRPC call plus output
//! for people (a terminal) or machines (`--output json`, plain lines).

pub mod audit;
pub mod canary;
pub mod cluster;
pub mod demo;
pub mod dora;
pub mod drill;
pub mod env;
pub mod pipeline;
pub mod plugin;
pub mod release;
pub mod render;
mod scaffold;
pub mod serve;
pub mod store;
pub mod token;

use gatehouse::client::{self, Client};

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_GATE_FAILED: u8 = 3;
pub const EXIT_ROLLED_BACK: u8 = 4;
pub const EXIT_ABORTED: u8 = 5;
pub const EXIT_DRIFTED: u8 = 6;
pub const EXIT_MISCONFIGURED: u8 = 7;

pub const EXIT_CODES: &str = "Exit codes: 0 success (for `submit --wait`: the release succeeded); \
1 error (bad input, daemon unreachable, refused, audit chain broken); 2 usage; \
3 a gate failed the release; 4 the release was rolled back; 5 the release was aborted; \
6 an environment has drifted from what Gatehouse made live (`drift`); \
7 the release failed because its pipeline is misconfigured, not its candidate.";

/// Where the daemon is and how to authenticate.
pub struct Ctx {
    pub addr: String,
    pub token: Option<String>,
    /// How long a call waits for the daemon's answer (`--timeout-s`).
    pub deadline: std::time::Duration,
    /// What `https://` addresses are reached with.
    pub tls: client::Tls,
}

impl Ctx {
    /// Connects to `--addr`; of a comma-separated list, to the daemon that
    /// leads.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let addrs = client::addresses(&self.addr);
        let connected = match &addrs[..] {
            [_, _, ..] => {
                client::connect_leader(
                    &addrs,
                    self.token.as_deref(),
                    Some(self.deadline),
                    &self.tls,
                    client::PATIENCE.min(self.deadline),
                )
                .await
            }
            _ => {
                client::connect_with(
                    &self.addr,
                    self.token.as_deref(),
                    Some(self.deadline),
                    &self.tls,
                )
                .await
            }
        };
        connected.map_err(|e| match e {
            client::Error::Connect { cause, .. } if cause.contains("timed out") => {
                anyhow::anyhow!("{}", past_deadline(self.deadline))
            }
            e => e.into(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Output {
    /// For people; colours and symbols on a terminal, plain lines otherwise.
    #[default]
    Text,
    /// One JSON document (or one per line for streams), for machines.
    Json,
}

/// What a call past its deadline says.
fn past_deadline(deadline: std::time::Duration) -> String {
    format!(
        "the daemon did not answer within {} s (--timeout-s); it may be overloaded, stopped or stopping: check its log",
        deadline.as_secs()
    )
}

/// Turns a gRPC status into an error a person can act on.
pub fn rpc(status: tonic::Status) -> anyhow::Error {
    if client::is_past_deadline(&status) {
        return anyhow::anyhow!(
            "the daemon did not answer within the call's deadline (--timeout-s); it may be overloaded, stopped or stopping: check its log ({})",
            status.message()
        );
    }
    // A TLS alert may come after the handshake seemed done (TLS 1.3 refuses
    // a client certificate that way), so it can surface on any call.
    if let Some(cause) = client::transport_cause(&status)
        && client::is_tls_failure(&cause)
    {
        return anyhow::anyhow!(
            "TLS with the daemon failed ({cause}); {}",
            client::tls_hint(&cause)
        );
    }
    // What a non-gRPC server answers reaches tonic as a protocol error.
    let message = status.message();
    if matches!(
        status.code(),
        tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Unavailable
    ) && (message.contains("h2 protocol error")
        || message.contains("invalid HTTP")
        || message.contains("protocol error"))
    {
        return anyhow::anyhow!(
            "that address does not answer gRPC ({message}); is it the daemon's port (7443 by default)?"
        );
    }
    anyhow::anyhow!("{message} ({:?})", status.code())
}
