//! Gatehouse: a release control plane for model configurations.
//!
//! A candidate flows down a pipeline; at each stage, WebAssembly gates judge
//! it and an adapter places it; the store remembers every step.

pub mod api;
pub mod canary;
pub mod client;
pub mod configstore;
pub mod daemon;
pub mod digest;
pub mod http;
pub mod ids;
#[cfg(test)]
mod layers;
pub mod pipeline;
pub mod plugins;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod verdict;

/// flagd's flag sync protocol, generated from `proto/flagd/sync/v1`: the
/// door OpenFeature's flagd providers come through (see `api::flagd`).
pub mod flagd {
    tonic::include_proto!("flagd.sync.v1");
}

/// The public gRPC API, generated from `proto/gatehouse/v1`.
pub mod proto {
    tonic::include_proto!("gatehouse.v1");

    /// Encoded descriptors of the API, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/gatehouse_descriptor.bin"));
}
