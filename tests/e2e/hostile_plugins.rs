//! A plugin that attacks its sandbox — spins, hoards memory, recurses, traps,
//! answers nonsense, reaches for files, hosts and environment variables it
//! was not given — fails its gate closed with a reason naming the attack,
//! while what it *was* granted works and a healthy release beside it
//! succeeds. Every hostile release runs at the same time, in one daemon.
//!
//! The plugin is `tests/plugins/hostile-gate`; it asks for every
//! capability, so each refusal here is the host's sandbox at work, not the
//! plugin's restraint. Network traffic stays on loopback, and every loop in
//! this file is bounded.
//!
//! The second test blocks in host calls everywhere a plugin is called (a
//! gate's evaluate and start, describe on push and from the plugin
//! directory, an adapter's apply, `plugin test`): each ends at its deadline,
//! and a flood of sleepers holds up neither a healthy release nor the audit.

use crate::common::*;
use gatehouse::proto::{self, ReleasePhase};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PLUGIN: &str = "hostile-gate";
const SECRET_VAR: &str = "GATEHOUSE_HOSTILE_SECRET";
const SECRET_VALUE: &str = "leak-7f3a9c2e";
/// Text of a file outside the granted directory; must never reach a reason.
const OUTSIDE_TEXT: &str = "outside-the-sandbox-b41d";
/// How long one release may take to finish before the test gives up.
const RELEASE_LIMIT: Duration = Duration::from_secs(90);
/// How long one gRPC call may take.
const RPC_LIMIT: Duration = Duration::from_secs(20);

/// A loopback HTTP server answering `200 ok` to each connection, counting
/// them. It stops after `max_connections`, after two minutes, or when
/// dropped, whichever comes first.
struct TinyServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TinyServer {
    fn start(max_connections: usize) -> TinyServer {
        TinyServer::start_with_body(max_connections, b"ok".to_vec())
    }

    /// A server answering `body` to each connection.
    fn start_with_body(max_connections: usize, body: Vec<u8>) -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let connections = connections.clone();
            let stop = stop.clone();
            move || serve(listener, &connections, &stop, max_connections, &body)
        });
        TinyServer {
            port,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    connections: &AtomicUsize,
    stop: &AtomicBool,
    max: usize,
    body: &[u8],
) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::SeqCst)
        && connections.load(Ordering::SeqCst) < max
        && Instant::now() < give_up
    {
        match listener.accept() {
            Ok((mut stream, _)) => {
                connections.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                // Read the request head (bounded), then answer and close.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
}

/// One pipeline, one environment, one hostile-gate gate.
struct Case {
    name: &'static str,
    params: String,
    timeout_ms: u64,
    fuel: Option<u64>,
    expect: Expect,
}

enum Expect {
    /// The release fails at the gate, and its reason contains each of these.
    Fails(Vec<String>),
    /// The release succeeds, and the gate's own reason contains this.
    Passes(String),
}

fn case(name: &'static str, params: &str, timeout_ms: u64, expect: Expect) -> Case {
    Case {
        name,
        params: params.to_string(),
        timeout_ms,
        fuel: None,
        expect,
    }
}

fn fails(words: &[&str]) -> Expect {
    Expect::Fails(words.iter().map(|w| w.to_string()).collect())
}

fn pipeline_text(c: &Case) -> String {
    let fuel = c.fuel.map(|f| format!("fuel = {f}\n")).unwrap_or_default();
    format!(
        "name = \"{name}\"\n[[environment]]\nname = \"dev-{name}\"\n[[environment.gate]]\nplugin = \"{PLUGIN}\"\ntimeout_ms = {timeout}\n{fuel}params = {params}\n",
        name = c.name,
        timeout = c.timeout_ms,
        params = c.params,
    )
}

/// hostile-gate with every capability granted: `files` is `granted` as
/// `/data`, `http` only the ports `allowed_ports` on loopback.
fn install_hostile_gate(plugins: &Path, granted: &Path, allowed_ports: &[u16]) {
    std::fs::copy(
        gatehouse::plugins::builtin::HOSTILE_GATE_PATH,
        plugins.join("hostile-gate.wasm"),
    )
    .expect("copy hostile-gate.wasm");
    let hosts: Vec<String> = allowed_ports
        .iter()
        .map(|port| format!("\"127.0.0.1:{port}\""))
        .collect();
    let manifest = format!(
        "capabilities = [\"log\", \"clock\", \"files\", \"http\"]\n\n[[files]]\nhost = {host:?}\nguest = \"/data\"\n\n[http]\nallow_hosts = [{hosts}]\ntimeout_ms = 5000\n",
        host = granted.display().to_string(),
        hosts = hosts.join(", "),
    );
    std::fs::write(plugins.join("hostile-gate.toml"), manifest).expect("write hostile-gate.toml");
}

fn gate_reason(r: &proto::Release) -> String {
    r.stages
        .iter()
        .flat_map(|s| &s.gates)
        .find(|g| g.plugin == PLUGIN)
        .map(|g| g.reason.clone())
        .unwrap_or_default()
}

/// The release's reason, or the gate's when the release has none, cut
/// short for the test's log.
fn clip(release_reason: &str, gate_reason: &str) -> String {
    let text = if release_reason.is_empty() {
        gate_reason
    } else {
        release_reason
    };
    text.chars().take(400).collect()
}

/// `call`, or a panic saying the daemon stopped answering: a hung daemon
/// must fail the test, not hang it.
async fn answered<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(RPC_LIMIT, call).await {
        Ok(v) => v,
        Err(_) => {
            panic!("the daemon did not answer {what} within {RPC_LIMIT:?}: it has stopped serving")
        }
    }
}

/// Polls release `id` until it is terminal, every call bounded.
async fn settled(c: &mut gatehouse::client::Client, id: u64) -> proto::Release {
    let deadline = Instant::now() + RELEASE_LIMIT;
    loop {
        let r = answered(&format!("GetRelease {id}"), get(c, id)).await;
        if r.terminal {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "release {id} ({}) did not finish within {RELEASE_LIMIT:?}; last: phase {:?} at {:?}",
            r.pipeline,
            phase(&r),
            r.environment
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_closed_with_precise_reasons_beside_a_healthy_release() {
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();

    // What the plugin may read, and what sits just outside it.
    let granted = root.path().join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(granted.join("ok.txt"), "ok, granted\n").unwrap();
    let outside = root.path().join("outside.txt");
    std::fs::write(&outside, OUTSIDE_TEXT).unwrap();
    std::os::unix::fs::symlink(&outside, granted.join("link-out")).unwrap();

    // The allowlisted server, and one just as real that is not allowlisted:
    // a leak would connect to it, and its plugin would then pass.
    let allowed = TinyServer::start(8);
    let forbidden = TinyServer::start(8);
    // 4 MiB answers: 256 of them held at once are far over a call's budget.
    let big = TinyServer::start_with_body(256, vec![b'x'; 4 << 20]);
    install_hostile_gate(&plugins, &granted, &[allowed.port, big.port]);

    let forbidden_url = format!("http://127.0.0.1:{}/", forbidden.port);
    let forbidden_host = format!("host 127.0.0.1:{}", forbidden.port);
    let cases = vec![
        case(
            "loop",
            "{ mode = \"loop\" }",
            300,
            fails(&["timed out after 300 ms"]),
        ),
        Case {
            fuel: Some(1_000_000),
            ..case(
                "fuel",
                "{ mode = \"loop\" }",
                60_000,
                fails(&["ran out of fuel after 1000000 instructions"]),
            )
        },
        case(
            "alloc",
            "{ mode = \"alloc\" }",
            20_000,
            fails(&["ran out of memory (limit 64 MiB"]),
        ),
        case(
            "recurse",
            "{ mode = \"recurse\" }",
            20_000,
            fails(&["overflowed its stack"]),
        ),
        case(
            "trap",
            "{ mode = \"trap\" }",
            20_000,
            fails(&["trapped: ", "wasm `unreachable` instruction executed"]),
        ),
        case(
            "garbage",
            "{ mode = \"garbage\" }",
            20_000,
            fails(&["returned a malformed verdict", "score NaN"]),
        ),
        case(
            "huge-reason",
            "{ mode = \"huge\", reason_bytes = 1048576 }",
            20_000,
            fails(&[
                "returned a malformed verdict",
                "reason is 1048576 bytes, over the 4096-byte limit",
            ]),
        ),
        case(
            "huge-measurements",
            "{ mode = \"huge\", reason_bytes = 16, measurements = 10000 }",
            20_000,
            fails(&[
                "returned a malformed verdict",
                "10000 measurements, over the limit",
            ]),
        ),
        case(
            "read-etc-passwd",
            "{ mode = \"read_file\", path = \"/etc/passwd\" }",
            20_000,
            fails(&["could not judge: cannot read /etc/passwd: "]),
        ),
        case(
            "read-dotdot",
            "{ mode = \"read_file\", path = \"/data/../outside.txt\" }",
            20_000,
            fails(&["could not judge: cannot read /data/../outside.txt: "]),
        ),
        case(
            "read-symlink",
            "{ mode = \"read_file\", path = \"/data/link-out\" }",
            20_000,
            fails(&["could not judge: cannot read /data/link-out: "]),
        ),
        case(
            "http-forbidden",
            &format!("{{ mode = \"http\", url = \"{forbidden_url}\" }}"),
            20_000,
            fails(&[
                "host call `http` failed",
                &forbidden_host,
                "not on the plugin's allowlist",
            ]),
        ),
        case(
            "env",
            &format!("{{ mode = \"env\", var = \"{SECRET_VAR}\" }}"),
            20_000,
            fails(&[&format!(
                "could not judge: environment variable {SECRET_VAR} is not visible"
            )]),
        ),
        // What is granted works: the refusals above are not blanket ones.
        case(
            "read-granted",
            "{ mode = \"read_granted\", path = \"/data/ok.txt\" }",
            20_000,
            Expect::Passes("read 12 bytes from /data/ok.txt".into()),
        ),
        case(
            "http-allowed",
            &format!(
                "{{ mode = \"http\", url = \"http://127.0.0.1:{}/\" }}",
                allowed.port
            ),
            20_000,
            Expect::Passes("answered HTTP 200".into()),
        ),
        case(
            "clock",
            "{ mode = \"clock\" }",
            20_000,
            Expect::Passes("s since the Unix epoch".into()),
        ),
        // A blocking host call (WASI poll) ends at the deadline too.
        case(
            "sleep",
            "{ mode = \"sleep\", ms = 3600000 }",
            1_000,
            fails(&["timed out after 1000 ms"]),
        ),
        // Refused in a bounded sentence, never escaped whole (6 MiB).
        case(
            "nan-name",
            "{ mode = \"nan_name\" }",
            20_000,
            fails(&["returned a malformed verdict", "name of 1048576 bytes"]),
        ),
        // What the host buffers counts against the call's memory budget.
        case(
            "fetch-flood",
            &format!(
                "{{ mode = \"fetch_flood\", url = \"http://127.0.0.1:{}/\", count = 256 }}",
                big.port
            ),
            20_000,
            fails(&["ran out of memory (limit 64 MiB"]),
        ),
        case(
            "log-inject",
            &format!("{{ mode = \"log_inject\", line = {FORGED_LINE:?} }}"),
            20_000,
            Expect::Passes("logged as asked: ok\\n2026-01-01T00:00:00Z".into()),
        ),
    ];

    let mut args = vec!["--plugin-dir".to_string(), plugins.display().to_string()];
    for c in &cases {
        let p = write(root.path(), &format!("{}.toml", c.name), &pipeline_text(c));
        args.extend(["--pipeline".to_string(), p.display().to_string()]);
    }
    let healthy_pipeline = write(
        root.path(),
        "healthy.toml",
        "name = \"healthy\"\n[[environment]]\nname = \"dev-healthy\"\n[[environment.gate]]\nplugin = \"config-lint\"\ntimeout_ms = 20000\nparams = { max_temperature = 1.0, max_tokens_limit = 4096 }\n",
    );
    args.extend([
        "--pipeline".to_string(),
        healthy_pipeline.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = root.path().join("daemon.log");
    let daemon = Daemon::start_logged(
        &root.path().join("data"),
        &args,
        &[(SECRET_VAR, SECRET_VALUE), ("GATEHOUSE_LOG", "info")],
        &log,
    );
    let token = daemon
        .generated_token
        .clone()
        .expect("first start prints a token");
    let c = daemon.client(Some(&token)).await;

    // Every release at once, the healthy one among them.
    let mut submissions = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let mut c = c.clone();
        let pipeline = case.name;
        submissions.push(tokio::spawn(async move {
            answered(
                &format!("SubmitRelease to {pipeline}"),
                submit(&mut c, pipeline, &candidate(n as u32)),
            )
            .await
        }));
    }
    let healthy_submission = {
        let mut c = c.clone();
        tokio::spawn(async move {
            answered("SubmitRelease to healthy", submit(&mut c, "healthy", GOOD)).await
        })
    };
    let mut ids = Vec::new();
    for s in submissions {
        ids.push(s.await.expect("submit task").release.expect("release").id);
    }
    let healthy = healthy_submission
        .await
        .expect("submit task")
        .release
        .expect("release")
        .id;

    let mut c = c;
    let mut problems = Vec::new();
    for (id, case) in ids.iter().zip(&cases) {
        let r = settled(&mut c, *id).await;
        let gate = gate_reason(&r);
        // Whatever the plugin said, what is kept of it is short.
        if r.reason.len() > 8 * 1024 || gate.len() > 8 * 1024 {
            problems.push(format!(
                "{}: reason of {} bytes, gate reason of {} kept",
                case.name,
                r.reason.len(),
                gate.len()
            ));
        }
        eprintln!("{}: {:?}: {}", case.name, phase(&r), clip(&r.reason, &gate));
        match &case.expect {
            Expect::Fails(words) => {
                if phase(&r) != ReleasePhase::Failed || r.failed_gate != PLUGIN {
                    problems.push(format!(
                        "{}: expected Failed at {PLUGIN}, got {:?} at {:?}: {}",
                        case.name,
                        phase(&r),
                        r.failed_gate,
                        r.reason
                    ));
                }
                for w in words {
                    if !r.reason.contains(w.as_str()) {
                        problems.push(format!("{}: reason lacks {w:?}: {}", case.name, r.reason));
                    }
                }
                if !r.reason.contains(&format!("plugin {PLUGIN} ")) {
                    problems.push(format!(
                        "{}: reason does not name the plugin: {}",
                        case.name, r.reason
                    ));
                }
                // Nothing from behind the sandbox may surface in a reason.
                for leak in [SECRET_VALUE, OUTSIDE_TEXT, "root:"] {
                    if r.reason.contains(leak) || gate.contains(leak) {
                        problems.push(format!("{}: {leak:?} leaked: {}", case.name, r.reason));
                    }
                }
                if r.reason.contains(" bytes from ") {
                    problems.push(format!(
                        "{}: the plugin read a file: {}",
                        case.name, r.reason
                    ));
                }
            }
            Expect::Passes(words) => {
                if phase(&r) != ReleasePhase::Succeeded {
                    problems.push(format!(
                        "{}: expected Succeeded, got {:?}: {}",
                        case.name,
                        phase(&r),
                        r.reason
                    ));
                }
                if !gate.contains(words.as_str()) {
                    problems.push(format!(
                        "{}: gate reason lacks {words:?}: {gate:?}",
                        case.name
                    ));
                }
            }
        }
    }

    // The granted clock is the real one.
    let clock = ids
        .iter()
        .zip(&cases)
        .find(|(_, c)| c.name == "clock")
        .map(|(id, _)| *id)
        .unwrap();
    let clock_reason = gate_reason(&answered("GetRelease", get(&mut c, clock)).await);
    let plugin_seconds: u64 = clock_reason
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if plugin_seconds.abs_diff(now) > 600 {
        problems.push(format!(
            "clock: plugin saw {plugin_seconds} s, the test {now} s: {clock_reason:?}"
        ));
    }

    let r = settled(&mut c, healthy).await;
    if phase(&r) != ReleasePhase::Succeeded {
        problems.push(format!(
            "healthy: expected Succeeded, got {:?}: {}",
            phase(&r),
            r.reason
        ));
    }

    if forbidden.connections() != 0 {
        problems.push(format!(
            "the non-allowlisted server was reached {} time(s)",
            forbidden.connections()
        ));
    }
    if allowed.connections() != 1 {
        problems.push(format!(
            "the allowlisted server saw {} connection(s), expected 1",
            allowed.connections()
        ));
    }

    // The daemon is still serving: it lists every release and runs a new one.
    let listed = answered(
        "ListReleases",
        c.releases.list_releases(proto::ListReleasesRequest {
            pipeline: String::new(),
            limit: 100,
        }),
    )
    .await
    .expect("list releases")
    .into_inner()
    .releases;
    if listed.len() != cases.len() + 1 {
        problems.push(format!(
            "list releases: expected {} releases, got {}",
            cases.len() + 1,
            listed.len()
        ));
    }
    let again = submitted(&mut c, "healthy", 1000).await;
    let r = settled(&mut c, again).await;
    if phase(&r) != ReleasePhase::Succeeded {
        problems.push(format!(
            "healthy after the storm: expected Succeeded, got {:?}: {}",
            phase(&r),
            r.reason
        ));
    }

    // The plugin's line stayed inside one line of the daemon's log.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    if !logged.contains("ok\\n2026-01-01T00:00:00Z") {
        problems.push("log-inject: the plugin's line was not logged, escaped".into());
    }
    if logged
        .lines()
        .any(|l| l.starts_with("2026-01-01T00:00:00Z"))
    {
        problems.push("log-inject: the plugin forged a line of the daemon's log".into());
    }
    // Nor of a terminal: `plugin test` prints the reason and the log line.
    let request = write(
        root.path(),
        "inject-request.json",
        &serde_json::json!({
            "candidate": {"model": "m"},
            "params": {"mode": "log_inject", "line": FORGED_LINE},
        })
        .to_string(),
    );
    let output = std::process::Command::new(BIN)
        .args([
            "plugin",
            "test",
            gatehouse::plugins::builtin::HOSTILE_GATE_PATH,
        ])
        .arg("--request")
        .arg(&request)
        .arg("--manifest")
        .arg(plugins.join("hostile-gate.toml"))
        .output()
        .expect("run plugin test");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !printed.contains("ok\\n2026-01-01T00:00:00Z")
        || printed
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z"))
    {
        problems.push(format!(
            "log-inject: `plugin test` printed the plugin's line unescaped: {printed}"
        ));
    }
    problems.extend(audit_holds(&mut c).await);

    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("hostile plugin suite took {:?}", started.elapsed());
}

/// A plugin's log line that, unescaped, would read as the daemon's own.
const FORGED_LINE: &str =
    "ok\n2026-01-01T00:00:00Z  INFO gatehouse::pipeline: release 1 approved by admin";

/// What is wrong with the audit log as the daemon serves it: it must verify,
/// export whole, and hold no event bloated by plugin text.
async fn audit_holds(c: &mut gatehouse::client::Client) -> Vec<String> {
    let mut problems = Vec::new();
    let verified = answered(
        "VerifyAudit",
        c.audit.verify_audit(proto::VerifyAuditRequest {}),
    )
    .await
    .expect("verify audit")
    .into_inner();
    if !verified.ok {
        problems.push(format!("audit verify: {}", verified.problem));
    }
    let mut stream = answered(
        "ExportAudit",
        c.audit
            .export_audit(proto::ExportAuditRequest { from_seq: 0 }),
    )
    .await
    .expect("export audit")
    .into_inner();
    let mut exported = 0u64;
    loop {
        match answered("the next exported event", stream.message()).await {
            Ok(Some(event)) => {
                exported += 1;
                let size = prost::Message::encoded_len(&event);
                if size > 64 * 1024 {
                    problems.push(format!("audit event {} is {size} bytes", event.seq));
                }
            }
            Ok(None) => break,
            Err(e) => {
                problems.push(format!("audit export broke after {exported} events: {e}"));
                break;
            }
        }
    }
    if exported != verified.events_checked {
        problems.push(format!(
            "audit export gave {exported} events, verify checked {}",
            verified.events_checked
        ));
    }
    problems
}

/// How long past its deadline a blocked call may take to end, on a busy
/// machine: scheduling, not the plugin.
const MARGIN: Duration = Duration::from_secs(5);

/// Copies a test plugin into the plugin directory.
fn drop_in(plugins: &Path, path: &str, file: &str) {
    std::fs::copy(path, plugins.join(file)).unwrap_or_else(|e| panic!("copy {file}: {e}"));
}

/// Submits `candidate(n)` to `pipeline`; the new release's id.
async fn submitted(c: &mut gatehouse::client::Client, pipeline: &str, n: u32) -> u64 {
    answered(
        &format!("SubmitRelease to {pipeline}"),
        submit(c, pipeline, &candidate(n)),
    )
    .await
    .release
    .expect("release")
    .id
}

/// Pushes `wasm` through the daemon; the error's message if refused, and
/// how long the answer took.
async fn push_plugin(
    c: &mut gatehouse::client::Client,
    wasm: Vec<u8>,
) -> (Result<(), String>, Duration) {
    let parts = vec![
        proto::PushPluginRequest {
            part: Some(proto::push_plugin_request::Part::Header(
                proto::PushHeader {
                    manifest_toml: String::new(),
                    signature: String::new(),
                    activate: true,
                    source_name: "pushed.wasm".into(),
                },
            )),
        },
        proto::PushPluginRequest {
            part: Some(proto::push_plugin_request::Part::Chunk(wasm)),
        },
    ];
    let started = Instant::now();
    let answer = answered(
        "PushPlugin",
        c.plugins.push_plugin(tokio_stream::iter(parts)),
    )
    .await;
    (
        answer
            .map(drop)
            .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_plugins_end_at_their_deadlines_and_hold_up_nothing_else() {
    use gatehouse::plugins::builtin::*;
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let granted = root.path().join("granted");
    std::fs::create_dir_all(&granted).unwrap();
    install_hostile_gate(&plugins, &granted, &[9]);
    drop_in(&plugins, STALL_ADAPTER_PATH, "stall-adapter.wasm");
    // Its describe() sleeps: the daemon must start anyway, without it.
    drop_in(&plugins, SLEEPY_DESCRIBE_PATH, "sleepy-describe.wasm");

    const SLEEPERS: usize = 64;
    let sleepers: String = (0..SLEEPERS)
        .map(|n| format!("[[environment.gate]]\nname = \"sleeper-{n}\"\nplugin = \"hostile-gate\"\ntimeout_ms = 3000\nparams = {{ mode = \"sleep\", ms = 3600000 }}\n"))
        .collect();
    let flood = format!("name = \"flood\"\n[[environment]]\nname = \"dev-flood\"\n{sleepers}");
    let stall = "name = \"stall\"\n[[environment]]\nname = \"dev-stall\"\nadapter = \"stall-adapter\"\nadapter_timeout_ms = 500\nadapter_params = { sleep_ms = 3600000, sleep_in = [\"apply\"] }\n";
    let huge = "name = \"huge\"\n[[environment]]\nname = \"dev-huge\"\nadapter = \"stall-adapter\"\nadapter_params = { digest_bytes = 1048576 }\n";
    let quick = "name = \"quick\"\n[[environment]]\nname = \"dev-quick\"\nadapter = \"stall-adapter\"\nadapter_timeout_ms = 2000\n";
    let healthy = "name = \"healthy\"\n[[environment]]\nname = \"dev-healthy\"\n[[environment.gate]]\nplugin = \"config-lint\"\ntimeout_ms = 20000\nparams = { max_temperature = 1.0, max_tokens_limit = 4096 }\n";
    let mut args = vec!["--plugin-dir".to_string(), plugins.display().to_string()];
    for (name, text) in [
        ("flood", flood.as_str()),
        ("stall", stall),
        ("huge", huge),
        ("quick", quick),
        ("healthy", healthy),
    ] {
        let p = write(root.path(), &format!("{name}.toml"), text);
        args.extend(["--pipeline".to_string(), p.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let daemon = Daemon::start(&root.path().join("data"), &args);
    let token = daemon
        .generated_token
        .clone()
        .expect("first start prints a token");
    let mut c = daemon.client(Some(&token)).await;
    let mut problems = Vec::new();

    let listed = answered(
        "ListPlugins",
        c.plugins.list_plugins(proto::ListPluginsRequest::default()),
    )
    .await
    .expect("list plugins")
    .into_inner()
    .plugins;
    if listed.iter().any(|p| p.name == "sleepy-describe") {
        problems.push("sleepy-describe is active though its describe() never answered".into());
    }

    // An idle healthy release, then the same beside two stages of sleepers.
    let timed = |c: &mut gatehouse::client::Client, n: u32| {
        let mut c = c.clone();
        async move {
            let started = Instant::now();
            let id = submitted(&mut c, "healthy", n).await;
            let r = settled(&mut c, id).await;
            (r, started.elapsed())
        }
    };
    let (idle, idle_took) = timed(&mut c, 1).await;
    let flood_started = Instant::now();
    let mut floods = Vec::new();
    for n in 0..2 {
        floods.push(submitted(&mut c, "flood", 100 + n).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (busy, busy_took) = timed(&mut c, 2).await;
    let verify_started = Instant::now();
    let verified = answered(
        "VerifyAudit during the flood",
        c.audit.verify_audit(proto::VerifyAuditRequest {}),
    )
    .await
    .expect("verify")
    .into_inner();
    let verify_took = verify_started.elapsed();
    eprintln!(
        "healthy release: idle {idle_took:?}, beside {} sleepers {busy_took:?}; audit verify {verify_took:?}",
        2 * SLEEPERS
    );
    for (what, r) in [("idle", &idle), ("beside the flood", &busy)] {
        if phase(r) != ReleasePhase::Succeeded {
            problems.push(format!(
                "healthy release {what}: {:?}: {}",
                phase(r),
                r.reason
            ));
        }
    }
    if !verified.ok {
        problems.push(format!(
            "audit verify during the flood: {}",
            verified.problem
        ));
    }
    if busy_took > Duration::from_secs(3) {
        problems.push(format!(
            "the healthy release waited behind the sleepers: {busy_took:?}"
        ));
    }
    for id in floods {
        let r = settled(&mut c, id).await;
        let timed_out = r
            .stages
            .iter()
            .flat_map(|s| &s.gates)
            .filter(|g| g.reason.contains("timed out after 3000 ms"))
            .count();
        if phase(&r) != ReleasePhase::Failed || timed_out != SLEEPERS {
            problems.push(format!(
                "flood {id}: {:?} with {timed_out} of {SLEEPERS} gates timed out: {}",
                phase(&r),
                r.reason
            ));
        }
    }
    let flood_took = flood_started.elapsed();
    if flood_took > Duration::from_secs(3) + MARGIN {
        problems.push(format!(
            "the sleepers took {flood_took:?} to fail, past their 3 s deadline"
        ));
    }

    // More sleepers than the daemon has gate call slots (448): the calls
    // past them wait their turn, and the release that waits says so.
    let started = Instant::now();
    let mut over = Vec::new();
    for n in 0..9 {
        over.push(submitted(&mut c, "flood", 200 + n).await);
    }
    // While every gate slot is taken, a push is refused at once rather than
    // queued, and an adapter's call (as a rollback's would) does not wait
    // behind the gates.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (pushed, push_took) = push_plugin(
        &mut c,
        std::fs::read(HOSTILE_GATE_PATH).expect("built hostile-gate"),
    )
    .await;
    match pushed {
        Err(message)
            if message.starts_with("ResourceExhausted")
                && message.contains("gate call slots are busy") => {}
        other => problems.push(format!(
            "a push while every gate slot is busy: expected RESOURCE_EXHAUSTED, got {other:?}"
        )),
    }
    if push_took > Duration::from_secs(1) {
        problems.push(format!("the refused push took {push_took:?} to answer"));
    }
    let adapter_started = Instant::now();
    let applied = submitted(&mut c, "quick", 300).await;
    let r = settled(&mut c, applied).await;
    let adapter_took = adapter_started.elapsed();
    if phase(&r) != ReleasePhase::Succeeded || adapter_took > Duration::from_millis(1500) {
        problems.push(format!(
            "an adapter-only release beside 448 busy gates: {:?} after {adapter_took:?}: {}",
            phase(&r),
            r.reason
        ));
    }
    eprintln!(
        "beside 448 busy gates: push refused in {push_took:?}, adapter-only release in {adapter_took:?}"
    );
    for id in &over {
        let r = settled(&mut c, *id).await;
        if phase(&r) != ReleasePhase::Failed {
            problems.push(format!(
                "flood {id} past the slots: {:?}: {}",
                phase(&r),
                r.reason
            ));
        }
    }
    let took = started.elapsed();
    if took > Duration::from_secs(6) + MARGIN {
        problems.push(format!("576 sleepers in two turns of 3 s took {took:?}"));
    }
    let waited: Vec<u64> = events(&mut c)
        .await
        .into_iter()
        .filter(|e| e.kind == "release.waiting")
        .map(|e| e.release_id)
        .collect();
    if waited.is_empty() || !waited.iter().all(|id| over.contains(id)) {
        problems.push(format!(
            "expected a release.waiting event for one of the floods {over:?}, got {waited:?}"
        ));
    }

    // An adapter asleep in apply: each attempt ends at 500 ms.
    let started = Instant::now();
    let id = submitted(&mut c, "stall", 3).await;
    let r = settled(&mut c, id).await;
    let took = started.elapsed();
    if phase(&r) != ReleasePhase::Failed || !r.reason.contains("timed out after 500 ms") {
        problems.push(format!("stall: {:?}: {}", phase(&r), r.reason));
    }
    if took > Duration::from_secs(3) + MARGIN {
        problems.push(format!("stall: three 500 ms attempts took {took:?}"));
    }

    // Pushes whose describe() or start sleeps answer at the describe deadline,
    // one that says too much is refused shortly, and the registry still works.
    for (name, path, words) in [
        (
            "sleepy-describe",
            SLEEPY_DESCRIBE_PATH,
            "did not answer within 2000 ms",
        ),
        (
            "sleepy-start",
            SLEEPY_START_PATH,
            "did not answer within 2000 ms",
        ),
        ("huge-describe", HUGE_DESCRIBE_PATH, "at most"),
    ] {
        let (answer, took) = push_plugin(&mut c, std::fs::read(path).expect("wasm")).await;
        eprintln!("push {name}: {took:?}: {answer:?}");
        match answer {
            Ok(()) => problems.push(format!("push {name} was accepted")),
            Err(m) if !m.contains(words) || m.len() > 2048 => problems.push(format!(
                "push {name}: message lacks {words:?} or is long: {m}"
            )),
            Err(_) => {}
        }
        if took > Duration::from_secs(2) + MARGIN {
            problems.push(format!("push {name} took {took:?}"));
        }
    }
    let (answer, _) = push_plugin(&mut c, std::fs::read(NOOP_GATE_PATH).expect("wasm")).await;
    if let Err(m) = answer {
        problems.push(format!("push noop-gate after the sleepers: {m}"));
    }

    // An adapter reading back a 1 MiB "digest" is told it is malformed.
    let drift = answered(
        "CheckDrift",
        c.environments.check_drift(proto::CheckDriftRequest {
            environment: "dev-huge".into(),
        }),
    )
    .await
    .expect("check drift")
    .into_inner();
    let report = format!("{:?}", drift.reports);
    if report.len() > 8 * 1024 || !report.contains("not 64 hex characters") {
        problems.push(format!(
            "drift of dev-huge: {} bytes: {}",
            report.len(),
            report.chars().take(400).collect::<String>()
        ));
    }

    // `plugin test` of a sleeper returns at its deadline.
    let request = write(
        root.path(),
        "sleep-request.json",
        r#"{"candidate": {"model": "m"}, "params": {"mode": "sleep", "ms": 3600000}}"#,
    );
    let started = Instant::now();
    let mut test = std::process::Command::new(BIN)
        .args([
            "plugin",
            "test",
            HOSTILE_GATE_PATH,
            "--timeout-ms",
            "1000",
            "--request",
        ])
        .arg(&request)
        .arg("--manifest")
        .arg(plugins.join("hostile-gate.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run plugin test");
    let ended = loop {
        if let Some(status) = test.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(1) + MARGIN {
            let _ = test.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = test.wait_with_output().expect("output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if ended.is_none() || !said.contains("timed out after 1000 ms") {
        problems.push(format!("plugin test of a sleeper: ended {ended:?}: {said}"));
    }

    problems.extend(audit_holds(&mut c).await);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
