//! `gatehouse`: the daemon and its command-line client in one binary.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Release control plane for model configurations: CI submits a candidate,
/// WebAssembly gates judge it, and the daemon promotes it dev → staging →
/// production, recording every step.
#[derive(Parser)]
#[command(name = "gatehouse", version, long_version = LONG_VERSION, after_help = cli::EXIT_CODES)]
struct Cli {
    /// Daemon address: HOST, HOST:PORT, http://HOST:PORT or
    /// https://HOST:PORT (TLS, never plaintext in its place); the port
    /// defaults to 7443. For daemons sharing a store, a comma-separated
    /// list: the one that leads is used.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_ADDR",
        default_value = "http://127.0.0.1:7443"
    )]
    addr: String,
    /// Bearer token (printed by the first `serve`, or from your admin).
    #[arg(long, global = true, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How long each call waits for the daemon's answer (a stream: until it
    /// starts), in seconds.
    #[arg(long, global = true, env = "GATEHOUSE_TIMEOUT_S", default_value_t = 30)]
    timeout_s: u64,
    /// PEM CA certificates that signed the daemon's TLS certificate (an
    /// https:// address); default: the system's roots.
    #[arg(long, global = true, env = "GATEHOUSE_CA")]
    ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for a daemon that asks for one (mutual TLS).
    #[arg(long, global = true, env = "GATEHOUSE_CERT", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, global = true, env = "GATEHOUSE_KEY", requires = "cert")]
    key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(cli::serve::ServeArgs),
    /// Start a throw-away daemon and release a good and a bad candidate.
    Demo,
    /// Submit a candidate for release.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse submit candidate.json --wait\n  gatehouse submit candidate.json --pipeline model-config --meta commit=$GIT_SHA \\\n      --attach outputs.jsonl=out/outputs.jsonl --wait -o json\n  jq '.temperature = 0.2' live.json | gatehouse submit - --idempotency-key ci-$RUN_ID"
    )]
    Submit(cli::release::SubmitArgs),
    /// Show one release, or list the latest.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse status\n  gatehouse status --pipeline model-config --limit 5\n  gatehouse status 42\n  gatehouse status 42 -o json | jq .stages"
    )]
    Status(cli::release::StatusArgs),
    /// Follow a release's events until it ends.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse watch 42\n  gatehouse watch 42 -o json | jq -c 'select(.kind == \"gate.verdict\")'"
    )]
    Watch(cli::release::WatchArgs),
    /// Approve the stage a release waits at.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse approve 42\n  gatehouse approve 42 --env production --comment \"eval report reviewed\""
    )]
    Approve(cli::release::ApproveArgs),
    /// Stop a release where it stands.
    Abort(cli::release::AbortArgs),
    /// Make an environment's previous candidate live again.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse rollback production --reason \"p99 latency up since 14:02\"\n  gatehouse config production   # what is live now"
    )]
    Rollback(cli::env::RollbackArgs),
    /// Show (or follow) what is live in an environment.
    Config(cli::env::ConfigArgs),
    /// Ask each environment's adapter what is live and compare it with what
    /// Gatehouse made live (configuration drift).
    Drift(cli::env::DriftArgs),
    /// Export or verify the audit log.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// DORA figures of an environment from the audit log: deployment
    /// frequency, lead time, change failure rate, recovery time.
    Dora(cli::dora::DoraArgs),
    /// Judge a canary offline from recorded samples, or show the live
    /// judgement of a release's canary.
    #[command(
        subcommand,
        after_help = "EXAMPLES:\n  gatehouse canary status 42 --watch\n  gatehouse canary judge --baseline baseline.csv --canary canary.csv\n  gatehouse canary judge --baseline b.jsonl --canary c.jsonl --config canary.toml -o json"
    )]
    Canary(cli::canary::CanaryCommand),
    /// Exercise the automatic rollback path in an environment and print how
    /// fast the restored configuration reached its watchers.
    Drill(cli::drill::DrillArgs),
    /// Check pipeline files offline, as `serve` does, or list those served.
    #[command(subcommand)]
    Pipeline(cli::pipeline::PipelineCommand),
    /// List the environments: what is live in each, and any canary.
    #[command(subcommand)]
    Env(cli::env::EnvCommand),
    /// Write, test, sign, push and manage gate and adapter plugins.
    #[command(
        subcommand,
        after_help = "EXAMPLES:\n  gatehouse plugin new max-tokens && cd max-tokens && cargo build --release --target wasm32-wasip2\n  gatehouse plugin test target/wasm32-wasip2/release/max_tokens.wasm --request request.json\n  gatehouse plugin push target/wasm32-wasip2/release/max_tokens.wasm\n  gatehouse plugin list\n  gatehouse plugin rollback max-tokens"
    )]
    Plugin(cli::plugin::PluginCommand),
    /// Create access tokens.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
    /// Move a single-node installation's state into etcd.
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
    /// The daemons sharing a store: members, leader, lease, etcd health.
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "EXAMPLES:\n  gatehouse completions bash > /etc/bash_completion.d/gatehouse\n  gatehouse completions zsh > \"${fpath[1]}/_gatehouse\"\n  gatehouse completions fish > ~/.config/fish/completions/gatehouse.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `--version`: the release, the commit it was built from, and the wasmtime
/// that runs the plugins.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GATEHOUSE_COMMIT"),
    ", wasmtime ",
    env!("GATEHOUSE_WASMTIME"),
    ")"
);

/// The verbs that talk to no daemon, by path; `--addr`, `--token`,
/// `--timeout-s`, `--ca`, `--cert` and `--key` mean nothing there.
const LOCAL_VERBS: &[&[&str]] = &[
    &["serve"],
    &["store", "migrate"],
    &["demo"],
    &["canary", "judge"],
    &["plugin", "new"],
    &["plugin", "test"],
    &["plugin", "keygen"],
    &["plugin", "sign"],
    &["plugin", "export"],
    &["pipeline", "check"],
    &["token", "new"],
    &["token", "list"],
    &["completions"],
];
const CLIENT_FLAGS: &[&str] = &["addr", "token", "timeout_s", "ca", "cert", "key"];

/// The command line. The verbs that talk to no daemon do not offer the
/// client's flags (not in their help, nor in completions) and refuse them
/// when given.
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Cli::command();
    for path in LOCAL_VERBS {
        command = hide_client_flags(command, path);
    }
    let matches = command.get_matches();
    let (mut path, mut leaf) = (Vec::new(), &matches);
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    if LOCAL_VERBS.contains(&path.as_slice()) {
        for flag in CLIENT_FLAGS {
            let given = |m: &clap::ArgMatches| {
                m.try_get_raw(flag).ok().flatten().is_some()
                    && m.value_source(flag) == Some(clap::parser::ValueSource::CommandLine)
            };
            if given(&matches) || given(leaf) {
                let mut e = Cli::command();
                e.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--{} means nothing to `gatehouse {}`: it talks to no daemon{}",
                        flag.replace('_', "-"),
                        path.join(" "),
                        if path == ["serve"] {
                            " (it listens where --listen or the config's listen says)"
                        } else {
                            ""
                        }
                    ),
                )
                .exit();
            }
        }
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Gives the verb at `path` hidden, local stand-ins for the client's global
/// flags, so they are not offered there (a global flag is not copied into a
/// subcommand that has an argument of its name) and no environment variable
/// fills them.
fn hide_client_flags(command: clap::Command, path: &[&str]) -> clap::Command {
    match path {
        [] => CLIENT_FLAGS.iter().fold(command, |c, flag| {
            let long = match *flag {
                "timeout_s" => "timeout-s",
                other => other,
            };
            c.arg(
                clap::Arg::new(*flag)
                    .long(long)
                    .hide(true)
                    .num_args(1)
                    .value_parser(clap::value_parser!(String)),
            )
        }),
        [first, rest @ ..] => command.mut_subcommand(*first, |sub| hide_client_flags(sub, rest)),
    }
}

fn main() -> ExitCode {
    let cli = parse();
    quiet_on_closed_stdout();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let ctx = cli::Ctx {
        addr: cli.addr,
        token: cli.token,
        deadline: std::time::Duration::from_secs(cli.timeout_s.max(1)),
        tls: gatehouse::client::Tls {
            ca: cli.ca,
            cert: cli.cert,
            key: cli.key,
        },
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => cli::serve::run(a).await,
            Command::Demo => cli::demo::run().await,
            Command::Submit(a) => cli::release::submit(&ctx, a).await,
            Command::Status(a) => cli::release::status(&ctx, a).await,
            Command::Watch(a) => cli::release::watch(&ctx, a).await,
            Command::Approve(a) => cli::release::approve(&ctx, a).await,
            Command::Abort(a) => cli::release::abort(&ctx, a).await,
            Command::Rollback(a) => cli::env::rollback(&ctx, a).await,
            Command::Config(a) => cli::env::config(&ctx, a).await,
            Command::Drift(a) => cli::env::drift(&ctx, a).await,
            Command::Audit(a) => cli::audit::run(&ctx, a).await,
            Command::Dora(a) => cli::dora::run(&ctx, a).await,
            Command::Canary(a) => cli::canary::run(&ctx, a).await,
            Command::Drill(a) => cli::drill::run(&ctx, a).await,
            Command::Pipeline(a) => cli::pipeline::run(&ctx, a).await,
            Command::Env(a) => cli::env::env(&ctx, a).await,
            Command::Plugin(a) => cli::plugin::run(&ctx, a).await,
            Command::Token(a) => cli::token::run(a),
            Command::Store(a) => tokio::task::block_in_place(|| cli::store::run(a)),
            Command::Cluster(a) => cli::cluster::run(&ctx, a).await,
            Command::Completions { shell } => {
                use clap::CommandFactory;
                use std::io::Write;
                // Into a buffer first: clap_complete panics on a closed pipe.
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "gatehouse", &mut script);
                std::io::stdout().write_all(&script)?;
                Ok(cli::EXIT_OK)
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if closed_pipe(&e) => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}

/// How a shell reports a program its reader left (128 + SIGPIPE).
const EXIT_CLOSED_PIPE: u8 = 141;

/// A client whose reader went away (`gatehouse status | head`) ends quietly,
/// as other command-line tools do. SIGPIPE stays ignored, as Rust sets it:
/// its default would also kill the client when the daemon closes a socket.
/// So the broken pipe is caught where it surfaces: `println!` panics on it.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(EXIT_CLOSED_PIPE));
        }
        default(info);
    }));
}

/// Whether `e` is standard output's reader having gone away.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
