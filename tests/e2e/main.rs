//! The end-to-end tests, as one test binary: a real `gatehouse` daemon, its
//! CLI and real plugins, driven from outside. Each module below is one area
//! (`release_flow`, `crash_recovery`, ...), and a test is named by its
//! module: `cargo test --release -p gatehouse --test e2e release_flow::`
//! runs one area. One binary because every test links wasmtime, tonic and
//! sled: as one binary they are linked once, and the shared modules built
//! once, instead of once per area. Its tests run side by side on the
//! harness's threads (one per core unless `--test-threads` says otherwise),
//! so each keeps to its own temporary directory, data directory and
//! loopback ports, and changes nothing process-wide (environment, current
//! directory, signal handlers). Only the README walk-through's daemon
//! listens on the default port, as the README's lines say.
//!
//! Shared by the areas: `common` (a daemon process, pipelines, candidates),
//! `etcd_cluster` (a real etcd cluster on loopback),
//! `canary_service` (a serving service simulated on loopback),
//! `loopback` (small HTTP services on 127.0.0.1 that plugins call),
//! `python_env` (PyPI's clients in a virtual environment) and
//! `webdriver` (a headless Chromium driven through chromedriver).

mod canary_service;
mod common;
#[cfg(feature = "etcd")]
mod etcd_cluster;
mod loopback;
mod python_env;
mod webdriver;

/// The tests of the etcd store need the `etcd` feature; built without it,
/// this binary says so rather than skip them.
#[cfg(not(feature = "etcd"))]
#[test]
fn built_with_the_etcd_feature() {
    panic!(
        "the end-to-end tests include etcd's: run `cargo test --workspace --release --features gatehouse/etcd` (its client's build needs protoc: apt-get install protobuf-compiler libprotobuf-dev)"
    );
}

mod access_control;
mod audit_tamper;
mod canary_operations;
mod canary_rollback;
mod config_drift;
mod crash_recovery;
mod dashboard;
mod dora_figures;
#[cfg(feature = "etcd")]
mod etcd_store;
mod example_requests;
#[cfg(feature = "etcd")]
mod failover;
mod gate_faults;
mod hostile_plugins;
mod metrics;
mod notify;
mod openfeature;
mod plugin_registry;
mod plugin_walkthrough;
mod prometheus_canary;
mod prometheus_source;
mod release_flow;
mod shutdown;
mod standard_plugins;
