//! `cluster status`: the daemons sharing a store, which one leads, how long
//! its lease holds, and the health of each etcd endpoint.

use super::{Ctx, EXIT_OK, Output, rpc};
use gatehouse::proto;
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Members, the leader, its lease time left and the etcd endpoints'
    /// health, as the daemon at `--addr` (any of them) sees it.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse cluster status --addr http://10.0.0.1:7443,http://10.0.0.2:7443\n  gatehouse cluster status -o json | jq .leader"
    )]
    Status {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

pub async fn run(ctx: &Ctx, cmd: ClusterCommand) -> anyhow::Result<u8> {
    let ClusterCommand::Status { output } = cmd;
    let c = ctx
        .connect()
        .await?
        .cluster
        .get_cluster(proto::GetClusterRequest {})
        .await
        .map_err(rpc)?
        .into_inner();
    match output {
        Output::Json => println!("{}", to_json(&c)),
        Output::Text => print!("{}", text(&c)),
    }
    Ok(EXIT_OK)
}

fn to_json(c: &proto::Cluster) -> serde_json::Value {
    json!({
        "store": c.store,
        "prefix": c.prefix,
        "leader": (!c.leader.is_empty()).then_some(&c.leader),
        "lease_left_s": c.lease_left_s,
        "lease_ttl_s": c.lease_ttl_s,
        "answered_by": c.answered_by,
        "answered_by_leader": c.answered_by_leader,
        "members": c.members.iter().map(|m| json!({
            "id": m.id,
            "grpc": m.grpc,
            "http": (!m.http.is_empty()).then_some(&m.http),
            "host": m.host,
            "pid": m.pid,
            "version": m.version,
            "since_ms": m.since_ms,
            "leader": m.id == c.leader,
        })).collect::<Vec<_>>(),
        "endpoints": c.endpoints.iter().map(|e| json!({
            "endpoint": e.endpoint,
            "healthy": e.healthy,
            "version": e.version,
            "raft_leader": e.raft_leader,
            "took_ms": e.took_ms,
            "error": (!e.error.is_empty()).then_some(&e.error),
        })).collect::<Vec<_>>(),
    })
}

fn text(c: &proto::Cluster) -> String {
    let mut out = String::new();
    let lease = match (c.lease_left_s, c.lease_ttl_s) {
        (Some(left), Some(ttl)) => format!(", lease {left} s left of {ttl} s"),
        _ => String::new(),
    };
    let leader = c
        .members
        .iter()
        .find(|m| m.id == c.leader)
        .map(|m| format!("{} ({})", m.grpc, short(&m.id)))
        .unwrap_or_else(|| match c.leader.as_str() {
            "" => "none (an election is under way)".into(),
            id => short(id).into(),
        });
    out += &format!(
        "store    {}{}\n",
        c.store,
        match c.prefix.as_str() {
            "" => String::new(),
            p => format!(" {p}"),
        }
    );
    out += &format!("leader   {leader}{lease}\n");
    out += &format!("members  {}\n", c.members.len());
    for m in &c.members {
        let role = if m.id == c.leader {
            "leader  "
        } else {
            "follower"
        };
        out += &format!(
            "  {role} {:<28} {} host {} pid {} v{}\n",
            m.grpc,
            short(&m.id),
            m.host,
            m.pid,
            m.version
        );
    }
    if !c.endpoints.is_empty() {
        out += "etcd\n";
        for e in &c.endpoints {
            let state = match (e.healthy, e.raft_leader) {
                (true, true) => format!("healthy, raft leader, v{}", e.version),
                (true, false) => format!("healthy, v{}", e.version),
                (false, _) => format!("UNHEALTHY: {}", e.error),
            };
            out += &format!("  {:<28} {state} ({} ms)\n", e.endpoint, e.took_ms);
        }
    }
    out
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}
