//! A real etcd cluster on loopback ports, started (and killed) by a test or
//! a benchmark: `n` members, each with its data under the caller's
//! directory. A file of its own so that a benchmark can include it
//! (`#[path]`) without the rest of the tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address").port()
}

/// A member's process, killed when dropped.
struct Member {
    child: Option<Child>,
    args: Vec<String>,
}

/// An etcd cluster of `n` members on loopback ports, each with its data
/// under the test's directory.
pub struct Cluster {
    binary: PathBuf,
    members: Vec<Member>,
    pub endpoints: Vec<String>,
}

impl Cluster {
    pub fn start(binary: &Path, root: &Path, n: usize) -> Cluster {
        let binary = binary.to_path_buf();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            binary,
            members: Vec::new(),
            endpoints: ports
                .iter()
                .map(|(client, _)| format!("http://127.0.0.1:{client}"))
                .collect(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let args = vec![
                format!("--name=m{i}"),
                format!("--data-dir={}", root.join(format!("etcd-{i}")).display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster={initial}"),
                "--initial-cluster-token=gatehouse-test".into(),
                "--initial-cluster-state=new".into(),
            ];
            cluster.members.push(Member { child: None, args });
            cluster.restart(i);
        }
        for i in 0..n {
            cluster.healthy(i);
        }
        cluster
    }

    /// Starts member `i` again, on its data.
    pub fn restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        m.child = Some(
            Command::new(&self.binary)
                .args(&m.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start etcd"),
        );
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (at most 60 s) until member `i` says it is healthy.
    pub fn healthy(&self, i: usize) {
        let url = format!("{}/health", self.endpoints[i]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let body = ureq::get(&url)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok());
            if body.is_some_and(|b| b.contains("\"health\":\"true\"")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {i} not healthy within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Revokes the lease `key` is held under, as its expiry would.
    pub fn revoke_lease_of(&self, key: &str) {
        let v = self.gateway(
            "kv/range",
            serde_json::json!({ "key": Self::b64(key.as_bytes()) }),
        );
        let lease = v["kvs"][0]["lease"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} has no lease: {v}"))
            .to_string();
        self.gateway("lease/revoke", serde_json::json!({ "ID": lease }));
    }

    /// A key's `create_revision` and `mod_revision`, if it exists, read
    /// through etcd's own JSON gateway.
    pub fn revisions(&self, key: &str) -> Option<(i64, i64)> {
        let v = self.gateway(
            "kv/range",
            serde_json::json!({ "key": Self::b64(key.as_bytes()) }),
        );
        let kv = &v["kvs"][0];
        let number = |f: &str| kv[f].as_str().and_then(|n| n.parse().ok());
        Some((number("create_revision")?, number("mod_revision")?))
    }

    fn b64(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// A call to etcd's own JSON gateway, not through our client, on the
    /// first member that answers.
    fn gateway(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            if self.members[i].child.is_none() {
                continue;
            }
            if let Ok(mut reply) = ureq::post(format!("{endpoint}/v3/{path}"))
                .header("Content-Type", "application/json")
                .send(body.to_string())
            {
                return serde_json::from_str(&reply.body_mut().read_to_string().unwrap()).unwrap();
            }
        }
        panic!("no etcd member's JSON gateway answers");
    }

    /// How many keys there are under `prefix`, read through etcd's own JSON
    /// gateway rather than our client.
    pub fn keys_under(&self, prefix: &str) -> u64 {
        let mut end = prefix.as_bytes().to_vec();
        *end.last_mut().unwrap() += 1;
        let v = self.gateway(
            "kv/range",
            serde_json::json!({
                "key": Self::b64(prefix.as_bytes()),
                "range_end": Self::b64(&end),
                "count_only": true,
            }),
        );
        v["count"].as_str().map_or(0, |c| c.parse().unwrap())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
