//! Extism's side: the equivalent guest compiled once, called two ways. A
//! fresh `Plugin` per call from the `CompiledPlugin` is what Gatehouse does
//! (a new sandbox each call); a warm `Plugin` reuses its instance, the way
//! Extism is usually run. Extism keeps its default limits (none) and no WASI,
//! which the guest does not need; its compile cache is disabled.

use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};

use crate::{CANDIDATE, REASON, STAGE};

/// The guest's export.
const FUNCTION: &str = "evaluate";

/// The compiled guest, a warm plugin, and the request to send.
pub struct Theirs {
    compiled: CompiledPlugin,
    warm: Plugin,
    input: Vec<u8>,
}

impl Theirs {
    /// Compiles `wasm` (the Extism noop guest) and warms one plugin.
    pub fn new(wasm: &[u8]) -> Theirs {
        let compiled = PluginBuilder::new(Manifest::new([Wasm::data(wasm.to_vec())]))
            .with_wasi(false)
            .with_cache_disabled()
            .compile()
            .expect("the Extism guest compiles");
        let warm = Plugin::new_from_compiled(&compiled).expect("the Extism guest instantiates");
        // The same request as Gatehouse's, as JSON; encoded once, so the
        // calls below only copy it in.
        let input = serde_json::to_vec(&serde_json::json!({
            "candidate": {
                "digest": gatehouse::digest::Digest::of(CANDIDATE).hex(),
                "bytes": String::from_utf8_lossy(CANDIDATE),
                "metadata": [],
            },
            "incumbent": null,
            "stage": STAGE,
            "params": "{}",
        }))
        .expect("the request encodes");
        let mut theirs = Theirs {
            compiled,
            warm,
            input,
        };
        theirs.check();
        theirs
    }

    /// A new plugin from the compiled guest, one call, drop.
    pub fn call_fresh(&self) {
        let mut plugin =
            Plugin::new_from_compiled(&self.compiled).expect("the Extism guest instantiates");
        let output: &[u8] = plugin
            .call(FUNCTION, self.input.as_slice())
            .expect("the Extism guest answers");
        std::hint::black_box(output);
    }

    /// One call into the warm plugin.
    pub fn call_warm(&mut self) {
        let output: &[u8] = self
            .warm
            .call(FUNCTION, self.input.as_slice())
            .expect("the Extism guest answers");
        std::hint::black_box(output);
    }

    /// Panics unless the guest answers as the noop gate does.
    fn check(&mut self) {
        let output: &str = self
            .warm
            .call(FUNCTION, self.input.as_slice())
            .expect("the Extism guest answers");
        let verdict: serde_json::Value =
            serde_json::from_str(output).expect("the Extism guest answers JSON");
        assert_eq!(verdict["outcome"], "pass", "{output}");
        assert_eq!(verdict["reason"], REASON, "{output}");
    }
}
