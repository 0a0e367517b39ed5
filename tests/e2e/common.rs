//! Shared by the end-to-end tests: a real `gatehouse serve` process on
//! 127.0.0.1 with its own data directory, and pipelines written for a test.

use gatehouse::client::{self, Client};
use gatehouse::proto;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A daemon process; killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    pub addr: String,
    /// The token printed on first start, if it printed one.
    pub generated_token: Option<String>,
    /// Where it serves `/metrics`, as it said.
    pub metrics: Option<String>,
}

impl Daemon {
    /// Starts `gatehouse serve` on a free loopback port with `args` added, and
    /// waits (at most 60 s) until it says where it listens.
    pub fn start(data_dir: &Path, args: &[&str]) -> Daemon {
        Daemon::start_with_env(data_dir, args, &[])
    }

    /// A bare channel with no token, for the services open to anyone.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.addr.clone())
            .expect("address")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn client(&self, token: Option<&str>) -> Client {
        client::connect(&self.addr, token).await.expect("connect")
    }

    /// The daemon's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the daemon ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// SIGKILL: no graceful shutdown, no flush beyond what was already durable.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory holding the test plugins the daemon should load.
pub fn test_plugin_dir(root: &Path) -> PathBuf {
    let dir = root.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        gatehouse::plugins::builtin::CHAOS_GATE_PATH,
        dir.join("chaos-gate.wasm"),
    )
    .expect("copy chaos-gate.wasm");
    // Its `slow` mode reads the clock, which must be granted.
    std::fs::write(dir.join("chaos-gate.toml"), "capabilities = [\"clock\"]\n")
        .expect("write chaos-gate.toml");
    dir
}

/// A manifest granting adapter-file `deploy`, writable, as `/deploy`.
pub fn file_adapter_manifest(deploy: &Path) -> String {
    format!(
        "capabilities = [\"files\"]\n[[files]]\nhost = {:?}\nguest = \"/deploy\"\nwritable = true\n",
        deploy.display().to_string()
    )
}

/// Puts adapter-file in the plugin directory `plugins` with a manifest
/// granting it `deploy`; creates both directories.
pub fn grant_file_adapter(plugins: &Path, deploy: &Path) {
    std::fs::create_dir_all(plugins).unwrap();
    std::fs::create_dir_all(deploy).unwrap();
    std::fs::copy(
        gatehouse::plugins::builtin::ADAPTER_FILE_PATH,
        plugins.join("adapter-file.wasm"),
    )
    .expect("copy adapter-file.wasm");
    std::fs::write(
        plugins.join("adapter-file.toml"),
        file_adapter_manifest(deploy),
    )
    .expect("write adapter-file.toml");
}

pub fn write(root: &Path, name: &str, text: &str) -> PathBuf {
    let p = root.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub const GOOD: &[u8] = include_bytes!("../../examples/candidates/triage-v2.json");
pub const EXPENSIVE: &[u8] = include_bytes!("../../examples/candidates/triage-v3-expensive.json");
pub const REGRESSED: &[u8] = include_bytes!("../../examples/candidates/triage-v4-regressed.json");
pub const GOLDEN: &[u8] = include_bytes!("../../examples/golden/triage.jsonl");
pub const GOOD_OUTPUTS: &[u8] = include_bytes!("../../examples/outputs/triage-v2.outputs.jsonl");
pub const REGRESSED_OUTPUTS: &[u8] =
    include_bytes!("../../examples/outputs/triage-v4-regressed.outputs.jsonl");

/// A distinct, valid candidate per `n`.
pub fn candidate(n: u32) -> Vec<u8> {
    format!(
        r#"{{"model":"gpt-4o-mini","prompt_template":"Label: {{{{input}}}}","parameters":{{"temperature":0.1,"max_tokens":16}},"pricing":{{"input_per_1k_tokens":0.00015,"output_per_1k_tokens":0.0006}},"revision":{n}}}"#
    )
    .into_bytes()
}

pub async fn submit(c: &mut Client, pipeline: &str, bytes: &[u8]) -> proto::SubmitReleaseResponse {
    c.releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: pipeline.into(),
            candidate: bytes.to_vec(),
            ..Default::default()
        })
        .await
        .expect("submit")
        .into_inner()
}

/// Submits as CI does down the bundled pipeline: with the golden dataset
/// and the candidate's `outputs` on it attached.
pub async fn submit_evaluated(
    c: &mut Client,
    pipeline: &str,
    bytes: &[u8],
    outputs: &[u8],
) -> proto::SubmitReleaseResponse {
    c.releases
        .submit_release(proto::SubmitReleaseRequest {
            pipeline: pipeline.into(),
            candidate: bytes.to_vec(),
            attachments: [
                ("golden.jsonl".to_string(), GOLDEN.to_vec()),
                ("outputs.jsonl".to_string(), outputs.to_vec()),
            ]
            .into(),
            ..Default::default()
        })
        .await
        .expect("submit")
        .into_inner()
}

/// What `env` serves now, as `GetConfig` tells it.
pub async fn live(c: &mut Client, env: &str) -> proto::ActiveConfig {
    c.environments
        .get_config(proto::GetConfigRequest {
            environment: env.into(),
        })
        .await
        .expect("get config")
        .into_inner()
}

pub async fn get(c: &mut Client, id: u64) -> proto::Release {
    c.releases
        .get_release(proto::GetReleaseRequest { id })
        .await
        .expect("get release")
        .into_inner()
}

/// Polls until the release satisfies `pred`, for at most `limit`.
pub async fn wait_for(
    c: &mut Client,
    id: u64,
    limit: Duration,
    pred: impl Fn(&proto::Release) -> bool,
) -> proto::Release {
    let deadline = Instant::now() + limit;
    loop {
        let r = get(c, id).await;
        if pred(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "release {id} did not reach the expected state within {limit:?}; last: phase {} at {:?}",
            r.phase,
            r.environment
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn finished(c: &mut Client, id: u64) -> proto::Release {
    wait_for(c, id, Duration::from_secs(60), |r| r.terminal).await
}

/// The daemon's `/metrics` exposition as `token`'s holder reads it now.
pub fn scrape(metrics: &str, token: &str) -> String {
    ureq::get(metrics)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .expect("scrape /metrics with the token")
        .body_mut()
        .read_to_string()
        .expect("the exposition")
}

pub fn phase(r: &proto::Release) -> proto::ReleasePhase {
    proto::ReleasePhase::try_from(r.phase).unwrap_or(proto::ReleasePhase::Unspecified)
}

/// Asserts that `gatehouse audit verify` passes against the daemon at
/// `addr` (one address or a comma-separated list).
pub fn assert_audit_verifies(addr: &str, token: &str) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--addr", addr, "--token", token])
        .output()
        .expect("run gatehouse audit verify");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn events(c: &mut Client) -> Vec<proto::Event> {
    let mut stream = c
        .audit
        .export_audit(proto::ExportAuditRequest { from_seq: 1 })
        .await
        .expect("export")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = stream.message().await.expect("event") {
        out.push(e);
    }
    out
}

impl Daemon {
    /// Like [`Daemon::start`], with `env` added to the daemon's environment
    /// (for tests that check a plugin cannot see it).
    pub fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(data_dir, args, env, Stdio::inherit())
    }

    /// Like [`Daemon::start_with_env`], with the daemon's log (stderr)
    /// written to `log`, for tests that read it.
    pub fn start_logged(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Daemon {
        let file = std::fs::File::create(log).expect("create the daemon's log file");
        Daemon::spawn(data_dir, args, env, Stdio::from(file))
    }

    fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Daemon {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("GATEHOUSE_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn gatehouse serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut token = None;
        let mut addr = None;
        let mut metrics = None;
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon did not report its address and readiness within 60 s");
            };
            if let Some(t) = line
                .strip_prefix("admin token")
                .and_then(|_| line.split("): ").nth(1))
            {
                token = Some(t.trim().to_string());
            }
            if let Some(m) = line.strip_prefix("gatehouse metrics on ") {
                metrics = Some(m.trim().to_string());
            }
            if let Some(a) = line.strip_prefix("gatehouse listening on ") {
                let a = a.trim();
                addr = Some(if a.contains("://") {
                    a.to_string()
                } else {
                    format!("http://{a}")
                });
            }
            // Tests start from a daemon whose plugins are in, so what they
            // count in the audit log is theirs alone.
            if line.starts_with("gatehouse ready")
                && let Some(addr) = addr.take()
            {
                return Daemon {
                    child,
                    addr,
                    generated_token: token,
                    metrics,
                };
            }
        }
    }
}

pub use crate::python_env::python;

/// Prometheus and promtool, from Debian's `prometheus` package (see
/// [`debian_binaries`]).
pub fn prometheus() -> (PathBuf, PathBuf) {
    match &debian_binaries(&["prometheus", "promtool"], &["prometheus"])[..] {
        [prometheus, promtool] => (prometheus.clone(), promtool.clone()),
        found => panic!("expected prometheus and promtool, found {found:?}"),
    }
}

/// Chromium and its WebDriver, from Debian's `chromium` and
/// `chromium-driver` packages (see [`debian_binaries`]).
pub fn chromium() -> (PathBuf, PathBuf) {
    match &debian_binaries(
        &["chromium", "chromedriver"],
        &["chromium", "chromium-driver"],
    )[..]
    {
        [chromium, driver] => (chromium.clone(), driver.clone()),
        found => panic!("expected chromium and chromedriver, found {found:?}"),
    }
}

/// The `binaries` on PATH; when one is missing, installs `packages` with
/// `apt-get install --no-install-recommends` (as root; one test at a time,
/// under a file lock) and finds them then. Panics with what to run when
/// that cannot be done: a test that needs them never skips.
pub fn debian_binaries(binaries: &[&str], packages: &[&str]) -> Vec<PathBuf> {
    let find = |name: &str| -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    let found = || binaries.iter().map(|b| find(b)).collect::<Option<Vec<_>>>();
    if let Some(all) = found() {
        return all;
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).expect("create the target's temporary directory");
    let lock = std::fs::File::create(root.join("apt.lock")).expect("create the apt lock file");
    lock.lock().expect("lock apt");
    if let Some(all) = found() {
        return all;
    }
    let wanted = packages.join(" ");
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert!(
        String::from_utf8_lossy(&uid.stdout).trim() == "0",
        "{wanted} is not installed and this user cannot install it; run `apt-get install --no-install-recommends {wanted}` as root"
    );
    let install = [
        &["install", "-y", "-qq", "--no-install-recommends"][..],
        packages,
    ]
    .concat();
    for args in [&["update", "-qq"][..], &install[..]] {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("run apt-get");
        assert!(
            out.status.success(),
            "apt-get {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    found().unwrap_or_else(|| {
        panic!(
            "apt-get installed {wanted}, yet one of {} is not on PATH",
            binaries.join(", ")
        )
    })
}
