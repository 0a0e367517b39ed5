//! `gatehouse plugin ...`: push, list, describe, activate and roll back
//! plugins on a daemon; and, with no daemon, scaffold, test and sign them.

mod test;

use super::{Ctx, EXIT_OK, Output, rpc};
use anyhow::{Context, bail};
use gatehouse::digest::Digest;
use gatehouse::plugins::{DEFAULT_FUEL, signing};
use gatehouse::proto;
use serde_json::json;
use std::path::{Path, PathBuf};
use test::test;

#[derive(clap::Subcommand)]
pub enum PluginCommand {
    /// Scaffold a plugin crate that builds as it is.
    New(NewArgs),
    /// Run a plugin locally, with no daemon, and print its verdict.
    Test(TestArgs),
    /// Send a plugin to the daemon (checked, stored, and made active).
    Push(PushArgs),
    /// List the active plugins, or every version of one.
    List(ListArgs),
    /// Show one plugin version: what it asks for, what it was given.
    Describe(DescribeArgs),
    /// Make a stored version active.
    Activate(ActivateArgs),
    /// Make the previously active version active again.
    Rollback(RollbackArgs),
    /// Create an ed25519 key pair for signing plugins.
    Keygen(KeygenArgs),
    /// Sign a plugin file; prints the signature to pass to `push --signature`.
    Sign(SignArgs),
    /// Write an embedded plugin's `.wasm` and a manifest template, to push,
    /// to drop in a `--plugin-dir`, or to copy the grant into the config.
    Export(ExportArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Gate,
    Adapter,
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// The plugin's name: letters, digits and '-'.
    pub name: String,
    #[arg(long, value_enum, default_value = "gate")]
    pub kind: Kind,
    /// Where to create it; defaults to ./NAME.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Path of gatehouse-plugin-sdk to depend on; defaults to the SDK this
    /// binary was built with.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// A JSON request: for a gate `{"candidate": {...}, "incumbent": {...},
    /// "stage": "...", "params": {...}, "attachments": {"NAME": {"file":
    /// "PATH"}}, "incumbent_attachments": {...}}`; for an adapter `{"call":
    /// "apply|current|set-traffic|rollback", "environment": "...",
    /// "params": {...}, "candidate": {...}, "weight_percent": N}`. A
    /// candidate may be given as `"candidate_file": "PATH"` instead (and
    /// `"incumbent_file"`), read as it is; paths are relative to the request.
    #[arg(long)]
    pub request: PathBuf,
    /// The manifest granting capabilities; without one, the plugin gets the
    /// log and clock it asks for, nothing else.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    #[arg(long, default_value_t = DEFAULT_FUEL)]
    pub fuel: u64,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct PushArgs {
    pub plugin: PathBuf,
    /// The manifest granting capabilities (TOML); none grants nothing.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Signature in hex, from `gatehouse plugin sign`.
    #[arg(long, conflicts_with = "key")]
    pub signature: Option<String>,
    /// Sign with this secret key file (from `gatehouse plugin keygen`).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Store the version without making it active.
    #[arg(long)]
    pub no_activate: bool,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Show every stored version of this plugin.
    pub name: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct DescribeArgs {
    pub name: String,
    /// A version or digest prefix; defaults to the active one.
    #[arg(long, default_value = "")]
    pub version: String,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct ActivateArgs {
    pub name: String,
    /// A version or a digest prefix (8+ hex digits).
    pub version: String,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    pub name: String,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (kept private); the public key is printed.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args)]
#[command(
    after_help = "EXAMPLES:\n  gatehouse plugin export adapter-file --out plugins/\n  # edit plugins/adapter-file.toml, then: gatehouse serve --plugin-dir plugins/"
)]
pub struct ExportArgs {
    /// The embedded plugin: cost-estimator, config-lint, golden-eval, drift,
    /// latency, adapter-file or adapter-http.
    pub name: String,
    /// The directory to write NAME.wasm and NAME.toml into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Replace files that are already there.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args)]
pub struct SignArgs {
    pub plugin: PathBuf,
    /// The secret key file from `gatehouse plugin keygen`.
    #[arg(long)]
    pub key: PathBuf,
}

pub async fn run(ctx: &Ctx, command: PluginCommand) -> anyhow::Result<u8> {
    match command {
        PluginCommand::New(a) => super::scaffold::new(a),
        PluginCommand::Test(a) => tokio::task::spawn_blocking(move || test(a)).await?,
        PluginCommand::Push(a) => push(ctx, a).await,
        PluginCommand::List(a) => list(ctx, a).await,
        PluginCommand::Describe(a) => describe(ctx, a).await,
        PluginCommand::Activate(a) => {
            let mut c = ctx.connect().await?;
            let v = c
                .plugins
                .activate_plugin(proto::ActivatePluginRequest {
                    name: a.name,
                    version: a.version,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            println!("{} {} ({}) is active", v.name, v.version, short(&v.digest));
            Ok(EXIT_OK)
        }
        PluginCommand::Rollback(a) => {
            let mut c = ctx.connect().await?;
            let v = c
                .plugins
                .rollback_plugin(proto::RollbackPluginRequest { name: a.name })
                .await
                .map_err(rpc)?
                .into_inner();
            println!(
                "{} rolled back: {} ({}) is active",
                v.name,
                v.version,
                short(&v.digest)
            );
            Ok(EXIT_OK)
        }
        PluginCommand::Keygen(a) => {
            let (secret, public) = signing::generate().map_err(anyhow::Error::msg)?;
            write_private(&a.out, &secret)?;
            println!("secret key written to {}", a.out.display());
            println!("public key (add to [signing] trusted_keys): {public}");
            Ok(EXIT_OK)
        }
        PluginCommand::Export(a) => export(a),
        PluginCommand::Sign(a) => {
            let wasm = read(&a.plugin)?;
            let secret = std::fs::read_to_string(&a.key)
                .with_context(|| format!("cannot read the key {}", a.key.display()))?;
            let signature =
                signing::sign(&secret, &Digest::of(&wasm)).map_err(anyhow::Error::msg)?;
            println!("{signature}");
            Ok(EXIT_OK)
        }
    }
}

/// Writes an embedded plugin and its manifest template into `--out`.
fn export(a: ExportArgs) -> anyhow::Result<u8> {
    let Some(embedded) = gatehouse::plugins::builtin::find(&a.name) else {
        let known: Vec<_> = gatehouse::plugins::builtin::embedded()
            .iter()
            .map(|e| e.name)
            .collect();
        bail!(
            "no embedded plugin is called {:?}; the binary holds {}",
            a.name,
            known.join(", ")
        );
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let wasm = a.out.join(embedded.file_name());
    let manifest = a.out.join(format!("{}.toml", embedded.name));
    for path in [&wasm, &manifest] {
        if path.exists() && !a.force {
            bail!(
                "{} is already there; pass --force to replace it",
                path.display()
            );
        }
    }
    std::fs::write(&wasm, embedded.wasm)
        .with_context(|| format!("cannot write {}", wasm.display()))?;
    std::fs::write(&manifest, embedded.manifest_template)
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    println!(
        "{} ({}, sha256 {}) written to {}",
        embedded.name,
        human_bytes(embedded.wasm.len()),
        Digest::of(embedded.wasm).hex(),
        wasm.display()
    );
    println!("manifest template written to {}", manifest.display());
    if embedded.needs_grant {
        println!(
            "edit what it grants, then push both (`gatehouse plugin push {} --manifest {}`), drop them in a --plugin-dir, or copy the grant into the daemon's config under [grants.{}]",
            wasm.display(),
            manifest.display(),
            embedded.name
        );
    }
    Ok(EXIT_OK)
}

fn human_bytes(n: usize) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

async fn push(ctx: &Ctx, a: PushArgs) -> anyhow::Result<u8> {
    let wasm = read(&a.plugin)?;
    let manifest = match &a.manifest {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the manifest {}", p.display()))?,
        None => String::new(),
    };
    let signature = match (&a.signature, &a.key) {
        (Some(s), _) => s.clone(),
        (None, Some(key)) => {
            let secret = std::fs::read_to_string(key)
                .with_context(|| format!("cannot read the key {}", key.display()))?;
            signing::sign(&secret, &Digest::of(&wasm)).map_err(anyhow::Error::msg)?
        }
        (None, None) => String::new(),
    };
    let header = proto::PushPluginRequest {
        part: Some(proto::push_plugin_request::Part::Header(
            proto::PushHeader {
                manifest_toml: manifest,
                signature,
                activate: !a.no_activate,
                source_name: a
                    .plugin
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            },
        )),
    };
    let chunks = wasm.chunks(256 * 1024).map(|c| proto::PushPluginRequest {
        part: Some(proto::push_plugin_request::Part::Chunk(c.to_vec())),
    });
    let parts: Vec<_> = std::iter::once(header).chain(chunks).collect();
    let mut c = ctx.connect().await?;
    let r = c
        .plugins
        .push_plugin(tokio_stream::iter(parts))
        .await
        .map_err(rpc)?
        .into_inner();
    let v = r.plugin.unwrap_or_default();
    if a.output == Output::Json {
        println!("{}", version_json(&v));
        return Ok(EXIT_OK);
    }
    println!(
        "{} {} {} ({}) {}; granted [{}]{}",
        if r.already_known { "known" } else { "pushed" },
        v.name,
        v.version,
        short(&v.digest),
        if v.active {
            "is active"
        } else {
            "is stored, not active"
        },
        v.granted_capabilities.join(", "),
        if v.signed_by.is_empty() {
            String::new()
        } else {
            format!("; signed by {}", v.signed_by)
        }
    );
    Ok(EXIT_OK)
}

async fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<u8> {
    let mut c = ctx.connect().await?;
    let r = c
        .plugins
        .list_plugins(proto::ListPluginsRequest {
            name: a.name.unwrap_or_default(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if a.output == Output::Json {
        let all: Vec<_> = r.plugins.iter().map(version_json).collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(EXIT_OK);
    }
    println!(
        "{:<20} {:<10} {:<8} {:<13} {:<9} {:<8} granted",
        "NAME", "VERSION", "KIND", "DIGEST", "ORIGIN", "ACTIVE"
    );
    for v in &r.plugins {
        println!(
            "{:<20} {:<10} {:<8} {:<13} {:<9} {:<8} {}",
            v.name,
            v.version,
            kind_name(v.kind),
            short(&v.digest),
            v.origin,
            if v.active { "yes" } else { "" },
            v.granted_capabilities.join(",")
        );
    }
    Ok(EXIT_OK)
}

async fn describe(ctx: &Ctx, a: DescribeArgs) -> anyhow::Result<u8> {
    let mut c = ctx.connect().await?;
    let v = c
        .plugins
        .describe_plugin(proto::DescribePluginRequest {
            name: a.name,
            version: a.version,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if a.output == Output::Json {
        println!("{}", version_json(&v));
        return Ok(EXIT_OK);
    }
    println!("{} {} ({})", v.name, v.version, kind_name(v.kind));
    println!("  {}", v.summary);
    println!("  digest      {}", v.digest);
    println!("  active      {}", if v.active { "yes" } else { "no" });
    println!("  interface   gatehouse:plugin@{}", v.api_version);
    println!("  asks for    [{}]", v.requested_capabilities.join(", "));
    println!("  granted     [{}]", v.granted_capabilities.join(", "));
    println!(
        "  pushed by   {} ({}), {} bytes{}",
        v.pushed_by,
        v.origin,
        v.size_bytes,
        if v.signed_by.is_empty() {
            String::new()
        } else {
            format!(", signed by {}", v.signed_by)
        }
    );
    println!("  params      {}", v.params_schema);
    if !v.manifest_toml.trim().is_empty() {
        println!("  manifest:");
        for line in v.manifest_toml.lines() {
            println!("    {line}");
        }
    }
    Ok(EXIT_OK)
}

fn kind_name(kind: i32) -> &'static str {
    match proto::PluginKind::try_from(kind) {
        Ok(proto::PluginKind::Gate) => "gate",
        Ok(proto::PluginKind::Adapter) => "adapter",
        _ => "?",
    }
}

fn version_json(v: &proto::PluginVersion) -> serde_json::Value {
    json!({
        "name": v.name, "version": v.version, "kind": kind_name(v.kind), "digest": v.digest,
        "summary": v.summary, "requested_capabilities": v.requested_capabilities,
        "granted_capabilities": v.granted_capabilities, "api_version": v.api_version,
        "origin": v.origin, "pushed_by": v.pushed_by, "pushed_at_ms": v.pushed_at_ms,
        "signed_by": v.signed_by, "size_bytes": v.size_bytes, "active": v.active,
    })
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
