//! `store migrate`: moves a stopped single-node installation (sled, in its
//! data directory) into etcd, so that more than one daemon can share it.

use gatehouse::store::{EtcdSettings, Store, StoreSettings};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Copy a stopped daemon's state from sled into an empty etcd prefix,
    /// checking that the audit chain verifies to the same head on both sides.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse store migrate --from sled:/var/lib/gatehouse --to etcd:http://10.0.0.1:2379,http://10.0.0.2:2379\n  gatehouse store migrate --from sled:./data --to etcd:http://127.0.0.1:2379 --prefix /staging-gatehouse/"
    )]
    Migrate {
        /// `sled:DIR`: the data directory of a stopped daemon.
        #[arg(long)]
        from: String,
        /// `etcd:URL[,URL...]`: the cluster's client URLs.
        #[arg(long)]
        to: String,
        /// Where in etcd; it must hold nothing yet.
        #[arg(long, default_value = "/gatehouse/")]
        prefix: String,
    },
}

pub fn run(cmd: StoreCommand) -> anyhow::Result<u8> {
    let StoreCommand::Migrate { from, to, prefix } = cmd;
    let Some(dir) = from.strip_prefix("sled:").map(PathBuf::from) else {
        anyhow::bail!(
            "--from {from:?}: name the source as sled:DIR (a stopped daemon's data directory)"
        );
    };
    let endpoints: Vec<String> = match to.strip_prefix("etcd:") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    if endpoints.is_empty() {
        anyhow::bail!(
            "--to {to:?}: name the destination as etcd:URL[,URL...], e.g. etcd:http://127.0.0.1:2379"
        );
    }
    let source = Store::open_existing(&dir)?;
    let settings = StoreSettings::Etcd(EtcdSettings {
        endpoints,
        prefix: prefix.clone(),
        lease_ttl_s: 5,
        advertise: None,
    });
    let me = gatehouse::store::Member {
        grpc: "gatehouse store migrate".into(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let destination = Store::open_in(&settings, &dir, me)?;
    if !destination.lead().borrow().leads() {
        anyhow::bail!(
            "a daemon serves etcd prefix {prefix:?} (it holds the lead); moving into a prefix in use would mix two histories: choose an empty prefix"
        );
    }
    let copied = source.copy_into(&destination)?;
    println!(
        "moved {} rows and {} plugins from {} to etcd {prefix}",
        copied.rows,
        copied.plugins,
        dir.display()
    );
    println!(
        "audit chain verified on both sides: {} events, head {}",
        copied.events, copied.head_hash
    );
    println!(
        "next: set store = {{ etcd = {{ endpoints = [...], prefix = {prefix:?} }} }} in the daemon's config"
    );
    Ok(super::EXIT_OK)
}
