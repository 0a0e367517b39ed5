//! Prints figures for the plugin host:
//!
//! - per-call overhead of a trivial gate (`noop-gate`): fresh store,
//!   instantiate from `InstancePre`, call, verdict checks, drop; on the
//!   plugin threads, and awaited from another runtime as the daemon does;
//! - daemon start with 50 cached plugins to serving gRPC (the `gatehouse`
//!   binary, until it prints its address);
//! - first start on a new data directory, with the compile cache empty (the
//!   first start on a machine) and filled (any later data dir): to serving
//!   gRPC, and to the embedded plugins installed (compiled meanwhile);
//! - Cranelift compile time of each embedded plugin, one after another
//!   (each compile uses every core);
//! - hot swap under load: 10,000 concurrent evaluations, with a new version
//!   activated half-way; every call must produce a verdict.
//!
//! Run: `cargo bench -p gatehouse --bench plugins`. Medians over the
//! iterations below; the machine is shared, so compare runs side by side.

use gatehouse::digest::Digest;
use gatehouse::plugins::builtin::NOOP_GATE_PATH;
use gatehouse::plugins::manifest::Manifest;
use gatehouse::plugins::registry::{ActiveRecord, Origin, PluginRecord, PluginWrites};
use gatehouse::plugins::sandbox::Limits;
use gatehouse::plugins::{
    CALL_MEMORY_LIMIT, CandidateView, DEFAULT_FUEL, GateInput, Plugin, Plugins,
};
use gatehouse::store::Store;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CALL_BATCHES: usize = 20;
const CALLS_PER_BATCH: usize = 2_000;
const CACHED_PLUGINS: usize = 50;
const STARTS: usize = 10;
const SWAP_CALLS: usize = 10_000;

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        fuel: DEFAULT_FUEL,
        memory: CALL_MEMORY_LIMIT,
    }
}

fn input() -> GateInput {
    let bytes = br#"{"model":"m","parameters":{"max_tokens":16}}"#.to_vec();
    GateInput {
        candidate: CandidateView {
            digest: Digest::of(&bytes),
            bytes: Arc::new(bytes),
            metadata: Vec::new(),
        },
        incumbent: None,
        stage: "staging".into(),
        params: serde_json::json!({}),
        attachments: Arc::default(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The same component with a custom section appended: another digest.
fn rebuilt(wasm: &[u8], tag: usize) -> Vec<u8> {
    let name = b"gatehouse-bench";
    let payload = tag.to_string().into_bytes();
    let mut out = wasm.to_vec();
    out.push(0);
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn per_call(plugins: &Plugins, plugin: &Plugin) {
    let input = input();
    let mut per_batch_us = Vec::new();
    let mut single_us = Vec::new();
    for _ in 0..CALLS_PER_BATCH {
        plugins
            .evaluate_blocking(plugin, &input, limits())
            .expect("warm-up");
    }
    for _ in 0..CALL_BATCHES {
        let started = Instant::now();
        for _ in 0..CALLS_PER_BATCH {
            let t = Instant::now();
            plugins
                .evaluate_blocking(plugin, &input, limits())
                .expect("verdict");
            single_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        per_batch_us.push(started.elapsed().as_secs_f64() * 1e6 / CALLS_PER_BATCH as f64);
    }
    println!(
        "per-call overhead (noop-gate, fresh store each call): median {:.1} µs, p90 {:.1} µs, batch-mean median {:.1} µs ({} calls)",
        median(&mut single_us),
        percentile(&mut single_us, 0.9),
        median(&mut per_batch_us),
        CALL_BATCHES * CALLS_PER_BATCH
    );
}

/// The same call awaited from the daemon's own runtime, as the executor
/// makes it: one hop to the plugin threads and back.
fn per_call_from_daemon(plugins: &Plugins, plugin: &Plugin) {
    let input = input();
    let daemon = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut single_us = daemon.block_on(async {
        let mut single_us = Vec::new();
        for n in 0..(CALL_BATCHES + 1) * CALLS_PER_BATCH {
            let t = Instant::now();
            plugins
                .evaluate(plugin, &input, limits())
                .await
                .expect("verdict");
            if n >= CALLS_PER_BATCH {
                single_us.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        single_us
    });
    println!(
        "per-call from the daemon's runtime (hop to the plugin threads): median {:.1} µs, p90 {:.1} µs ({} calls)",
        median(&mut single_us),
        percentile(&mut single_us, 0.9),
        single_us.len()
    );
}

/// Fills a data directory with `CACHED_PLUGINS` active plugins, each with
/// its compiled artefact cached, as a daemon that had them pushed would.
fn populate(data: &std::path::Path, plugins: &Plugins, noop: &[u8]) {
    let store = Store::open(data).expect("store");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let template = plugins
        .install("noop", noop, Manifest::default())
        .expect("noop");
    for i in 0..CACHED_PLUGINS {
        let wasm = rebuilt(noop, i);
        let digest = Digest::of(&wasm);
        let component = plugins.compile("bench", &wasm).expect("compile");
        store.put_plugin_blob(&digest, &wasm).expect("blob");
        let compiled = plugins.precompiled(&component).expect("serialize");
        store
            .put_plugin_compiled(&plugins.engine_key(), &digest, &compiled)
            .expect("compiled");
        let mut description = template.description.clone();
        description.name = format!("noop-{i}");
        let record = PluginRecord {
            digest,
            description,
            manifest: Manifest::default(),
            api_version: "0.1.0".into(),
            granted: Vec::new(),
            size_bytes: wasm.len() as u64,
            pushed_at_ms: 0,
            pushed_by: "bench".into(),
            origin: Origin::Pushed,
            signed_by: None,
        };
        rt.block_on(store.commit(|tx| {
            tx.put_plugin_version(&record)?;
            tx.put_plugin_active(
                &record.description.name,
                &ActiveRecord {
                    digest,
                    previous: Vec::new(),
                },
            )
        }))
        .expect("commit");
    }
}

fn start_to_serving(data: &std::path::Path, cache: &std::path::Path) -> f64 {
    start(data, cache).0
}

/// Starts the daemon on `data`; returns the milliseconds until it serves
/// gRPC (it prints its address) and until its plugins are installed (it
/// logs so, and submits go ahead).
fn start(data: &std::path::Path, cache: &std::path::Path) -> (f64, f64) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("GATEHOUSE_LOG", "gatehouse::daemon=info,error")
        .env("GATEHOUSE_COMPILE_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse serve");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let installed = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            match line {
                Ok(line) if line.contains("plugins installed") => return started.elapsed(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("the daemon exited before installing its plugins")
    });
    let mut lines = BufReader::new(stdout).lines();
    let serving = loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("gatehouse listening on") => {
                break started.elapsed();
            }
            Some(_) => {}
            None => panic!("the daemon exited before serving"),
        }
    };
    let installed = installed.join().expect("stderr reader");
    let _ = child.kill();
    let _ = child.wait();
    (serving.as_secs_f64() * 1e3, installed.as_secs_f64() * 1e3)
}

/// What the first start on a machine pays per embedded plugin.
fn compile_each(plugins: &Plugins) {
    let mut total = 0.0;
    for e in gatehouse::plugins::builtin::embedded() {
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            plugins.compile(e.name, e.wasm).expect("compile");
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let m = median(&mut times);
        total += m;
        println!(
            "compile {:<16} {:>6} KiB: median {m:.0} ms (3 compiles)",
            e.name,
            e.wasm.len() / 1024
        );
    }
    println!("compile all embedded plugins one after another: {total:.0} ms");
}

/// A new data directory each time: the embedded plugins are installed, the
/// admin token generated, and the daemon serves.
fn first_start() {
    const RUNS: usize = 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let warm = dir.path().join("warm-cache");
    let (mut cold, mut cold_installed) = (Vec::new(), Vec::new());
    let (mut cached, mut cached_installed) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let empty = dir.path().join(format!("cold-cache-{i}"));
        let (serving, installed) = start(&dir.path().join(format!("cold-{i}")), &empty);
        cold.push(serving);
        cold_installed.push(installed);
        if i == 0 {
            start(&dir.path().join("fill"), &warm);
        }
        let (serving, installed) = start(&dir.path().join(format!("warm-{i}")), &warm);
        cached.push(serving);
        cached_installed.push(installed);
    }
    for (what, serving, installed) in [
        ("compile cache empty", &mut cold, &mut cold_installed),
        ("compile cache filled", &mut cached, &mut cached_installed),
    ] {
        println!(
            "first start on a new data dir, {what}: serving in median {:.1} ms (max {:.1}); plugins installed, submits go ahead, in median {:.1} ms (max {:.1}) ({RUNS} starts)",
            median(serving),
            percentile(serving, 1.0),
            median(installed),
            percentile(installed, 1.0)
        );
    }
}

fn hot_swap_under_load(plugins: Arc<Plugins>, noop: &[u8]) {
    let v1 = plugins
        .install("v1", noop, Manifest::default())
        .expect("v1");
    let v2_wasm = rebuilt(noop, 999);
    let component = plugins.compile("v2", &v2_wasm).expect("compile v2");
    let v2 = Arc::new(
        plugins
            .prepare(
                "v2",
                Digest::of(&v2_wasm),
                &component,
                Manifest::default(),
                None,
            )
            .expect("v2"),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(256)
        .enable_all()
        .build()
        .expect("runtime");
    let done = Arc::new(AtomicU64::new(0));
    let (ok, failed, on_v1, on_v2, swapped_at) = rt.block_on(async {
        let input = Arc::new(input());
        let mut calls = Vec::with_capacity(SWAP_CALLS);
        for _ in 0..SWAP_CALLS {
            let plugins = plugins.clone();
            let input = input.clone();
            let done = done.clone();
            calls.push(tokio::spawn(async move {
                // As the executor does: take the active version, then call it.
                let plugin = plugins.gate("noop-gate").expect("active");
                let r = plugins.evaluate(&plugin, &input, limits()).await;
                done.fetch_add(1, Ordering::Relaxed);
                (r.is_ok(), plugin.digest)
            }));
        }
        // Activate v2 once about half the calls are done.
        while done.load(Ordering::Relaxed) < (SWAP_CALLS / 2) as u64 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let swapped_at = done.load(Ordering::Relaxed);
        plugins.activate(v2.clone());
        let (mut ok, mut failed, mut on_v1, mut on_v2) = (0, 0, 0, 0);
        for c in calls {
            match c.await {
                Ok((true, digest)) => {
                    ok += 1;
                    if digest == v1.digest {
                        on_v1 += 1;
                    } else {
                        on_v2 += 1;
                    }
                }
                _ => failed += 1,
            }
        }
        (ok, failed, on_v1, on_v2, swapped_at)
    });
    println!(
        "hot swap under load: {SWAP_CALLS} concurrent evaluations, v2 activated after {swapped_at}: {ok} verdicts, {failed} failed; {on_v1} on v1, {on_v2} on v2"
    );
    assert_eq!(failed, 0, "no call may fail across a swap");
}

fn main() {
    // `cargo bench --bench plugins -- per-call` runs only the parts named.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let noop = std::fs::read(NOOP_GATE_PATH).expect("noop-gate.wasm");
    let plugins = Arc::new(Plugins::new().expect("engine"));
    let noop_plugin = plugins
        .install("noop-gate.wasm", &noop, Manifest::default())
        .expect("install noop-gate");
    if runs("per-call") {
        per_call(&plugins, &noop_plugin);
        per_call_from_daemon(&plugins, &noop_plugin);
    }
    if runs("compile") {
        compile_each(&plugins);
    }
    if runs("first-start") {
        first_start();
    }
    if !runs("start") && !runs("hot-swap") {
        return;
    }

    if runs("start") {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        populate(&data, &plugins, &noop);
        let cache = dir.path().join("cache");
        // The first start adds the embedded plugins and a token; time the rest.
        start_to_serving(&data, &cache);
        let mut starts: Vec<f64> = (0..STARTS)
            .map(|_| start_to_serving(&data, &cache))
            .collect();
        println!(
            "daemon start with {CACHED_PLUGINS} cached plugins (+ embedded) to serving: median {:.1} ms, max {:.1} ms ({STARTS} starts, process spawn included)",
            median(&mut starts),
            percentile(&mut starts, 1.0)
        );
    }
    if runs("hot-swap") {
        hot_swap_under_load(plugins, &noop);
    }
}
