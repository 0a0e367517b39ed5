//! Who leads the daemons that share a store, as the store sees it.
//!
//! Rules: a store of one daemon (sled) always leads. Daemons sharing an
//! etcd prefix each register as a member under their lease; one of them
//! holds the leader key and writes, the others follow: they serve reads and
//! send writers to the leader. A daemon whose lease is gone is `Lost`: it
//! must stop, as its writes are refused from then on.

use serde::{Deserialize, Serialize};

/// One daemon sharing the store, as it registered itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Random, per process.
    pub id: String,
    /// Where clients reach its gRPC API, e.g. `http://10.0.0.5:7443`.
    pub grpc: String,
    /// Its HTTP surface (metrics, dashboard), if it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    pub host: String,
    pub pid: u32,
    pub version: String,
    /// When it joined, in ms since the epoch.
    pub since_ms: i64,
}

/// This daemon's place among those sharing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lead {
    /// It leads: it runs releases and writes.
    Leading,
    /// Another daemon leads (`None`: nobody holds the lead right now).
    Following { leader: Option<Member> },
    /// Its lease is gone: it no longer leads and must stop.
    Lost(String),
}

impl Lead {
    pub fn leads(&self) -> bool {
        matches!(self, Lead::Leading)
    }
}

/// What `gatehouse cluster status` shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    /// `sled` or `etcd`.
    pub store: String,
    pub prefix: String,
    pub members: Vec<Member>,
    /// The leader's member id, if one leads.
    pub leader: Option<String>,
    /// How long the leader's lease lasts without a keep-alive (etcd counts
    /// whole seconds), and its full length.
    pub lease_left_s: Option<i64>,
    pub lease_ttl_s: Option<i64>,
    pub endpoints: Vec<EndpointHealth>,
}

/// One etcd endpoint, as asked just now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub healthy: bool,
    /// The member's version, and whether it is the etcd cluster's leader.
    pub version: String,
    pub raft_leader: bool,
    pub took_ms: u64,
    pub error: Option<String>,
}
