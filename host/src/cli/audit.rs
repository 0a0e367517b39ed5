//! `audit export` and `audit verify`: through the daemon, or straight from a
//! stopped daemon's data directory or an exported file.

use super::render::event_json;
use super::{Ctx, EXIT_ERROR, EXIT_OK, rpc};
use anyhow::Context;
use gatehouse::proto;
use gatehouse::store::{Store, audit};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Write the audit log as JSON lines.
    Export {
        /// File to write; standard output if omitted.
        #[arg(long)]
        out: Option<PathBuf>,
        /// First event to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Check that no event was altered or removed; names the first bad one.
    Verify {
        /// Read a stopped daemon's data directory instead of asking the daemon.
        #[arg(long, conflicts_with = "file")]
        data_dir: Option<PathBuf>,
        /// Verify an exported JSON-lines file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Export { out, from } => export(ctx, out, from).await,
        AuditCommand::Verify {
            data_dir: Some(dir),
            ..
        } => {
            let store = Store::open_existing(&dir)?;
            Ok(report(store.verify_audit()?))
        }
        AuditCommand::Verify {
            file: Some(file), ..
        } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let mut rows = Vec::new();
            for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let Some(seq) = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(|s| s.as_u64()))
                else {
                    let checked = rows.len() as u64;
                    let problem = if rows.is_empty() {
                        format!(
                            "the first line of {} is not a whole event: the file was cut at its start; export the log again",
                            file.display()
                        )
                    } else {
                        format!(
                            "line {} of {} is not a whole event: the file was cut or edited there",
                            n + 1,
                            file.display()
                        )
                    };
                    return Ok(report(audit::Verification::Broken {
                        seq: checked + 1,
                        checked,
                        problem,
                    }));
                };
                rows.push((seq, line.into_bytes()));
            }
            if rows.is_empty() {
                anyhow::bail!(
                    "{} holds no audit events; export them with `gatehouse audit export --out FILE`",
                    file.display()
                );
            }
            Ok(report(audit::verify(rows, None)))
        }
        AuditCommand::Verify { .. } => {
            let mut client = ctx.connect().await?;
            let v = client
                .audit
                .verify_audit(proto::VerifyAuditRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            Ok(report(if v.ok {
                audit::Verification::Intact {
                    events: v.events_checked,
                    head_hash: v.head_hash,
                }
            } else {
                audit::Verification::Broken {
                    seq: v.bad_seq,
                    checked: v.events_checked,
                    problem: v.problem,
                }
            }))
        }
    }
}

fn report(v: audit::Verification) -> u8 {
    match v {
        audit::Verification::Intact { events, head_hash } => {
            println!("audit log intact: {events} events, head {head_hash}");
            EXIT_OK
        }
        audit::Verification::Broken {
            seq,
            checked,
            problem,
        } => {
            println!(
                "audit log BROKEN at event {seq} ({checked} events before it verified): {problem}"
            );
            EXIT_ERROR
        }
    }
}

async fn export(ctx: &Ctx, out: Option<PathBuf>, from: u64) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let mut stream = client
        .audit
        .export_audit(proto::ExportAuditRequest { from_seq: from })
        .await
        .map_err(rpc)?
        .into_inner();
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut n = 0u64;
    while let Some(e) = stream.message().await.map_err(rpc)? {
        writeln!(sink, "{}", stored_form(&e))?;
        n += 1;
    }
    sink.flush()?;
    if let Some(path) = out {
        eprintln!("exported {n} events to {}", path.display());
    }
    Ok(EXIT_OK)
}

/// An exported line in the stored form, so `audit verify --file` can recheck
/// every hash without the daemon.
fn stored_form(e: &proto::Event) -> serde_json::Value {
    let mut v = event_json(e);
    let phase = v.get("phase").and_then(|p| p.as_str()).map(snake);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "release".into(),
            if e.release_id == 0 {
                serde_json::Value::Null
            } else {
                e.release_id.into()
            },
        );
        obj.remove("release_id");
        obj.insert(
            "environment".into(),
            if e.environment.is_empty() {
                serde_json::Value::Null
            } else {
                e.environment.clone().into()
            },
        );
        obj.insert(
            "phase".into(),
            phase.map_or(serde_json::Value::Null, Into::into),
        );
    }
    v
}

/// `AwaitingApproval` → `awaiting_approval`; "Unknown" means no phase.
fn snake(s: &str) -> Option<String> {
    if s == "Unknown" {
        return None;
    }
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    Some(out)
}
