//! The plugins the daemon ships with, built from `plugins/` by the build
//! script and embedded in the binary; later pushes may replace them.
//!
//! Rules: the gates need nothing granted and are installed on every start.
//! The adapters reach out (adapter-file writes a directory, adapter-http
//! calls a URL), so each is installed only once the daemon's config grants
//! it what it reaches (`[grants.NAME]`, a manifest), and is otherwise left
//! out without being compiled.

include!(concat!(env!("OUT_DIR"), "/plugin_paths.rs"));

/// One plugin embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// The plugin's name, as pipelines and grants name it.
    pub name: &'static str,
    pub wasm: &'static [u8],
    pub kind: super::PluginKind,
    /// Installed only with a grant in the daemon's config.
    pub needs_grant: bool,
    /// A manifest to start from, for `gatehouse plugin export`.
    pub manifest_template: &'static str,
}

impl Embedded {
    /// The file name it is installed and exported as.
    pub fn file_name(&self) -> String {
        format!("{}.wasm", self.name)
    }
}

const GATE_MANIFEST: &str =
    "# Embedded gates ask for nothing a manifest must grant.\ncapabilities = [\"log\"]\n";

/// Every embedded plugin, gates first.
pub fn embedded() -> [Embedded; 7] {
    let gate = |name, wasm| Embedded {
        name,
        wasm,
        kind: super::PluginKind::Gate,
        needs_grant: false,
        manifest_template: GATE_MANIFEST,
    };
    [
        gate("cost-estimator", COST_ESTIMATOR_WASM),
        gate("config-lint", CONFIG_LINT_WASM),
        gate("golden-eval", GOLDEN_EVAL_WASM),
        gate("drift", DRIFT_WASM),
        gate("latency", LATENCY_WASM),
        Embedded {
            name: "adapter-file",
            wasm: ADAPTER_FILE_WASM,
            kind: super::PluginKind::Adapter,
            needs_grant: true,
            manifest_template: "# adapter-file writes each environment's configuration under the directory\n\
# the pipeline's adapter_params name (`dir`, as the plugin sees it). Grant it\n\
# that directory: `host` is on the daemon's machine, `guest` is the `dir`.\n\
capabilities = [\"log\", \"files\"]\n\n\
[[files]]\n\
host = \"/srv/model-config\"\n\
guest = \"/deploy\"\n\
writable = true\n",
        },
        Embedded {
            name: "adapter-http",
            wasm: ADAPTER_HTTP_WASM,
            kind: super::PluginKind::Adapter,
            needs_grant: true,
            manifest_template: "# adapter-http calls the serving platform's HTTP API the pipeline's\n\
# adapter_params name. Grant it that host (and port), nothing more.\n\
capabilities = [\"log\", \"http\"]\n\n\
[http]\n\
allow_hosts = [\"127.0.0.1:8080\"]\n\
timeout_ms = 10000\n",
        },
    ]
}

/// The embedded plugin called `name`.
pub fn find(name: &str) -> Option<Embedded> {
    embedded().into_iter().find(|e| e.name == name)
}
