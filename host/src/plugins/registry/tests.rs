//! The registry across restarts: compiled artefacts reused, damaged ones
//! recompiled, plugin bytes checked against their digest.

use super::*;
use crate::plugins::builtin::NOOP_GATE_PATH;
use crate::plugins::testing::{input, limits};
use std::path::Path;

/// A store holding noop-gate, pushed and active, with its engine.
async fn pushed_noop(dir: &Path) -> (Store, Arc<Plugins>, Digest) {
    let wasm = std::fs::read(NOOP_GATE_PATH).expect("noop-gate.wasm");
    let digest = Digest::of(&wasm);
    let store = Store::open(dir).expect("store");
    let plugins = Arc::new(Plugins::new().expect("engine"));
    let registry = Registry::new(store.clone(), plugins.clone(), Trust::default());
    registry
        .push(Push {
            wasm,
            manifest: String::new(),
            signature: None,
            activate: true,
            actor: "test".into(),
            origin: Origin::Pushed,
            source_name: "noop-gate.wasm".into(),
        })
        .await
        .expect("push");
    (store, plugins, digest)
}

/// What a restarted daemon loads from `store`: asserts noop-gate is active
/// again with `digest`, and returns the new engine.
fn restart(store: &Store, digest: Digest) -> Arc<Plugins> {
    let fresh = Arc::new(Plugins::new().expect("engine"));
    let restarted = Registry::new(store.clone(), fresh.clone(), Trust::default());
    assert_eq!(restarted.load_active().expect("load"), 1);
    assert_eq!(fresh.gate("noop-gate").expect("active").digest, digest);
    fresh
}

/// Asserts the active noop-gate of `plugins` judges a candidate.
async fn answers(plugins: &Plugins) {
    let gate = plugins.gate("noop-gate").expect("active");
    plugins
        .evaluate(&gate, &input(serde_json::json!({})), limits())
        .await
        .expect("a verdict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loads_the_compiled_artefact_without_recompiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, plugins, digest) = pushed_noop(dir.path()).await;
    assert!(
        store
            .plugin_compiled(&plugins.engine_key(), &digest)
            .expect("read")
            .is_some(),
        "the push keeps the compiled artefact"
    );

    // Without the component's bytes, only the compiled artefact can load it.
    store.remove_plugin_blob(&digest).expect("remove");
    let fresh = restart(&store, digest);
    assert_eq!(fresh.engine_key(), plugins.engine_key());
    answers(&fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artefact_that_does_not_load_falls_back_to_compiling_the_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, plugins, digest) = pushed_noop(dir.path()).await;
    store
        .put_plugin_compiled(&plugins.engine_key(), &digest, b"not machine code")
        .expect("overwrite");
    assert!(
        store
            .plugin_compiled(&plugins.engine_key(), &digest)
            .expect("read")
            .is_some()
    );
    // The file has the size its record says but is no artefact: wasmtime
    // refuses it, and the registry falls back to compiling the bytes.
    restart(&store, digest);
}

/// Damages noop-gate's artefact file with `damage`, restarts, and asserts
/// the plugin was compiled again, answers, and its artefact was written
/// anew: a second restart loads it without the plugin's bytes.
async fn falls_back_to_compiling_after(damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, plugins, digest) = pushed_noop(dir.path()).await;
    let path = store.plugin_compiled_path(&plugins.engine_key(), &digest);
    let intact = std::fs::read(&path).expect("the push wrote the artefact");
    damage(&path);

    let fresh = restart(&store, digest);
    answers(&fresh).await;
    assert_eq!(
        std::fs::read(&path).expect("rewritten").len(),
        intact.len(),
        "the artefact is written anew"
    );
    store.remove_plugin_blob(&digest).expect("remove");
    answers(&restart(&store, digest)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
    falls_back_to_compiling_after(|path| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open");
        let len = file.metadata().expect("metadata").len();
        file.set_len(len / 2).expect("truncate");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
    // Same size, so only wasmtime's own header check can tell.
    falls_back_to_compiling_after(|path| {
        let mut bytes = std::fs::read(path).expect("read");
        for b in bytes.iter_mut().take(4096) {
            *b = !*b;
        }
        std::fs::write(path, bytes).expect("write");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_artefact_file_falls_back_to_compiling_and_the_plugin_answers() {
    falls_back_to_compiling_after(|path| std::fs::remove_file(path).expect("remove")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_bytes_that_do_not_match_their_digest_are_refused_not_compiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, plugins, digest) = pushed_noop(dir.path()).await;
    std::fs::remove_file(store.plugin_compiled_path(&plugins.engine_key(), &digest))
        .expect("remove artefact");
    let wasm_path = dir
        .path()
        .join("plugins/wasm")
        .join(format!("{}.wasm", digest.hex()));
    let mut wasm = std::fs::read(&wasm_path).expect("read");
    wasm.extend_from_slice(b"tampered");
    std::fs::write(&wasm_path, wasm).expect("write");

    assert!(matches!(
        store.plugin_blob(&digest),
        Err(store::Error::Corrupt { .. })
    ));
    // The daemon still starts; the plugin is not installed.
    let fresh = Arc::new(Plugins::new().expect("engine"));
    let restarted = Registry::new(store.clone(), fresh.clone(), Trust::default());
    assert_eq!(restarted.load_active().expect("load"), 0);
    assert!(fresh.gate("noop-gate").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_with_plugin_bytes_in_sled_moves_them_to_files_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, plugins, digest) = pushed_noop(dir.path()).await;
    let engine = plugins.engine_key();
    let wasm = store.plugin_blob(&digest).expect("read").expect("bytes");
    let compiled_path = store.plugin_compiled_path(&engine, &digest);
    let compiled = std::fs::read(&compiled_path).expect("artefact");
    store
        .keep_plugin_bytes_in_sled(&engine, &digest, &wasm, &compiled)
        .expect("older layout");
    assert!(store.plugin_blob(&digest).expect("read").is_none());
    assert!(!compiled_path.exists());
    store.close().expect("close");

    // Opening moves both out of sled.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.plugin_blob(&digest).expect("read").as_deref(),
        Some(&wasm[..])
    );
    assert_eq!(std::fs::read(&compiled_path).expect("artefact"), compiled);
    // The artefact moved too: without the bytes, it alone loads the plugin.
    store.remove_plugin_blob(&digest).expect("remove");
    answers(&restart(&store, digest)).await;
    store.close().expect("close");

    // The old trees are gone: a later open has nothing to move.
    let store = Store::open(dir.path()).expect("reopen again");
    assert!(store.plugin_blob(&digest).expect("read").is_none());
    answers(&restart(&store, digest)).await;
}
