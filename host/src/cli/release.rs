//! `submit`, `status`, `watch`, `approve`, `abort`.

use super::render::{self, Style};
use super::{Ctx, EXIT_ERROR, EXIT_OK, Output, rpc};
use anyhow::Context;
use gatehouse::client::Client;
use gatehouse::proto;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The candidate: a model configuration as JSON (`-` reads standard input).
    pub candidate: PathBuf,
    /// Pipeline to run it down.
    #[arg(long, default_value = "model-config")]
    pub pipeline: String,
    /// Facts to record with it, e.g. --meta commit=3f2a1c --meta author=ana.
    #[arg(long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Files for gates to read, e.g. --attach outputs.jsonl=out/outputs.jsonl
    /// (or just --attach out/outputs.jsonl, named by its file name).
    #[arg(long = "attach", value_parser = parse_attach)]
    pub attach: Vec<(String, PathBuf)>,
    /// Follow the release until it ends; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Makes retries of this submission safe: the same key always returns
    /// the same release. Without it, one is made for this invocation and
    /// reused when the daemon does not answer and the submit is retried.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// How long `submit` keeps retrying while the daemon does not answer.
const SUBMIT_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

fn parse_meta(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn parse_attach(s: &str) -> Result<(String, PathBuf), String> {
    if let Some((name, path)) = s.split_once('=') {
        return Ok((name.to_string(), PathBuf::from(path)));
    }
    let path = PathBuf::from(s);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{s:?} names no file; write NAME=PATH"))?;
    Ok((name.to_string(), path))
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// A release id; without it, the latest releases as a table.
    pub id: Option<u64>,
    /// Only releases of this pipeline (one the daemon serves).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// How many releases to list, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The release to follow.
    pub id: u64,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    /// The release to approve.
    pub id: u64,
    /// The environment being approved; default: the one the release waits
    /// at.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Why, recorded in the audit log with your name.
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(clap::Args)]
pub struct AbortArgs {
    /// The release to stop.
    pub id: u64,
    /// Why, recorded in the audit log.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Reads the files to attach, refusing a repeated name, and checking the
/// daemon's limits as it goes: by each file's size before it is read, then
/// while reading in bounded chunks (a file may grow meanwhile), so a huge
/// file is refused at once instead of filling memory.
fn read_attachments(attach: Vec<(String, PathBuf)>) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    use gatehouse::pipeline::attachment::{MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS};
    use std::io::Read;
    if attach.len() > MAX_ATTACHMENTS {
        anyhow::bail!(
            "{} attachments, over the limit of {MAX_ATTACHMENTS}; attach fewer files",
            attach.len()
        );
    }
    let mut attachments = HashMap::new();
    let mut total = 0usize;
    let over = |path: &std::path::Path| {
        anyhow::anyhow!(
            "attaching {} takes the attachments over the {MAX_ATTACHMENT_BYTES}-byte limit; attach samples, not whole datasets",
            path.display()
        )
    };
    for (name, path) in attach {
        if attachments.contains_key(&name) {
            anyhow::bail!(
                "two attachments are named {name:?}; name each once (--attach NAME=PATH)"
            );
        }
        let file =
            std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if total as u64 + size > MAX_ATTACHMENT_BYTES as u64 {
            return Err(over(&path));
        }
        let room = MAX_ATTACHMENT_BYTES - total;
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(room as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() > room {
            return Err(over(&path));
        }
        total += bytes.len();
        attachments.insert(name, bytes);
    }
    Ok(attachments)
}

pub async fn submit(ctx: &Ctx, a: SubmitArgs) -> anyhow::Result<u8> {
    let bytes = if a.candidate.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("reading the candidate from standard input")?;
        buf
    } else {
        std::fs::read(&a.candidate).with_context(|| format!("reading {}", a.candidate.display()))?
    };
    let attachments = read_attachments(a.attach)?;
    let request = proto::SubmitReleaseRequest {
        pipeline: a.pipeline,
        candidate: bytes,
        metadata: a.meta.into_iter().collect::<HashMap<_, _>>(),
        attachments,
        idempotency_key: a
            .idempotency_key
            .unwrap_or_else(|| format!("cli-{:032x}", fastrand::u128(..))),
    };
    let (mut client, resp) = submit_with_retries(ctx, request).await?;
    let release = resp
        .release
        .context("the daemon answered without a release")?;
    let style = Style::detect();
    if a.output == Output::Text {
        let note = if resp.deduplicated {
            " (already submitted: following that release)"
        } else if resp.candidate_known {
            " (these bytes were submitted before)"
        } else {
            ""
        };
        println!(
            "release {} submitted: candidate {}{note}",
            release.id,
            &release.candidate_digest[..12]
        );
    }
    if !a.wait {
        if a.output == Output::Json {
            println!("{}", render::release_json(&release));
        }
        return Ok(EXIT_OK);
    }
    let done = follow(&mut client, release.id, a.output, style).await?;
    Ok(render::exit_code(&done))
}

/// Submits, retrying with the same idempotency key while the daemon cannot
/// be reached or does not answer (a restart, a lost reply), for up to
/// [`SUBMIT_RETRY_FOR`]; the key makes a retry return the release the
/// first attempt started, never a second one.
async fn submit_with_retries(
    ctx: &Ctx,
    request: proto::SubmitReleaseRequest,
) -> anyhow::Result<(Client, proto::SubmitReleaseResponse)> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        let attempt = async {
            let mut client = ctx.connect().await?;
            let resp = client.releases.submit_release(request.clone()).await;
            Ok::<_, anyhow::Error>((client, resp))
        };
        let failure = match attempt.await {
            Ok((client, Ok(resp))) => return Ok((client, resp.into_inner())),
            Ok((_, Err(status)))
                if !matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown
                ) =>
            {
                return Err(rpc(status));
            }
            Ok((_, Err(status))) => rpc(status),
            Err(e) => e,
        };
        if started.elapsed() + pause > SUBMIT_RETRY_FOR {
            return Err(failure.context(format!(
                "the daemon did not answer for {} s",
                SUBMIT_RETRY_FOR.as_secs()
            )));
        }
        eprintln!(
            "the daemon did not answer ({failure:#}); retrying with idempotency key {}",
            request.idempotency_key
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}

/// Streams a release's events as text lines and returns the release as it
/// ended; for JSON, prints only that release (one document).
pub async fn follow(
    client: &mut Client,
    id: u64,
    output: Output,
    style: Style,
) -> anyhow::Result<proto::Release> {
    follow_with(client, id, output, style, false).await
}

/// [`follow`]; with `json_events`, JSON output streams each event as a line
/// before the release (`watch -o json`).
async fn follow_with(
    client: &mut Client,
    id: u64,
    output: Output,
    style: Style,
    json_events: bool,
) -> anyhow::Result<proto::Release> {
    let mut stream = client
        .releases
        .watch_release(proto::WatchReleaseRequest { id })
        .await
        .map_err(rpc)?
        .into_inner();
    // On a terminal, a canary step gets a live line under the events,
    // redrawn with each judgement and every second.
    let live = output == Output::Text && style.is_tty();
    let mut judgements: Option<tonic::Streaming<proto::Judgement>> = None;
    let mut latest: Option<proto::Judgement> = None;
    let mut step_ends_ms: Option<i64> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let redraw = |j: &proto::Judgement, ends: Option<i64>| {
        use std::io::Write;
        print!(
            "\r\x1b[2K{}",
            render::canary_line(j, ends, render::now_ms())
        );
        let _ = std::io::stdout().flush();
    };
    loop {
        tokio::select! {
            event = stream.message() => {
                let Some(event) = event.map_err(rpc)? else { break };
                if latest.is_some() {
                    print!("\r\x1b[2K");
                }
                match output {
                    Output::Text => println!("{}", style.event(&event)),
                    Output::Json if json_events => println!("{}", render::event_json(&event)),
                    Output::Json => {}
                }
                let detail: serde_json::Value =
                    serde_json::from_str(&event.detail_json).unwrap_or_default();
                if live && event.kind == "env.applied" && detail.get("step").is_some() {
                    step_ends_ms = detail["step_ms"].as_i64().map(|ms| event.at_ms + ms);
                    if judgements.is_none() {
                        judgements = client
                            .canaries
                            .watch_judgement(proto::GetJudgementRequest { release_id: id })
                            .await
                            .ok()
                            .map(tonic::Response::into_inner);
                    }
                } else if event.phase != proto::ReleasePhase::Canary as i32 && event.phase != 0 {
                    judgements = None;
                    latest = None;
                }
                if let Some(j) = &latest {
                    redraw(j, step_ends_ms);
                }
            }
            Some(j) = next_judgement(&mut judgements) => {
                if j.r#final {
                    print!("\r\x1b[2K");
                    latest = None;
                } else {
                    redraw(&j, step_ends_ms);
                    latest = Some(j);
                }
            }
            _ = tick.tick(), if latest.is_some() => {
                if let Some(j) = &latest {
                    redraw(j, step_ends_ms);
                }
            }
        }
    }
    if latest.is_some() {
        print!("\r\x1b[2K");
    }
    let release = client
        .releases
        .get_release(proto::GetReleaseRequest { id })
        .await
        .map_err(rpc)?
        .into_inner();
    match output {
        Output::Text => println!("{}", style.release(&release)),
        Output::Json => println!("{}", render::release_json(&release)),
    }
    Ok(release)
}

/// The next judgement of a canary being followed; pending while none is.
async fn next_judgement(
    judgements: &mut Option<tonic::Streaming<proto::Judgement>>,
) -> Option<proto::Judgement> {
    let Some(stream) = judgements else {
        return std::future::pending().await;
    };
    match stream.message().await {
        Ok(Some(j)) => Some(j),
        _ => {
            *judgements = None;
            None
        }
    }
}

pub async fn status(ctx: &Ctx, a: StatusArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let style = Style::detect();
    match a.id {
        Some(id) => {
            let r = client
                .releases
                .get_release(proto::GetReleaseRequest { id })
                .await
                .map_err(rpc)?
                .into_inner();
            match a.output {
                Output::Text => println!("{}", style.release(&r)),
                Output::Json => println!("{}", render::release_json(&r)),
            }
        }
        None => {
            let list = client
                .releases
                .list_releases(proto::ListReleasesRequest {
                    pipeline: a.pipeline.unwrap_or_default(),
                    limit: a.limit,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            match a.output {
                Output::Json => {
                    let all: Vec<_> = list.releases.iter().map(render::release_json).collect();
                    println!("{}", serde_json::Value::Array(all));
                }
                Output::Text => {
                    let now = render::now_ms();
                    println!(
                        "{:>6}  {:<18} {:<12} {:<12} {:>5}  REASON",
                        "ID", "PHASE", "ENVIRONMENT", "CANDIDATE", "AGE"
                    );
                    for r in &list.releases {
                        let reason = if r.waiting.is_empty() {
                            &r.reason
                        } else {
                            &r.waiting
                        };
                        println!(
                            "{:>6}  {:<18} {:<12} {:<12} {:>5}  {}",
                            r.id,
                            render::phase_name(r.phase),
                            r.environment,
                            &r.candidate_digest[..12.min(r.candidate_digest.len())],
                            render::age(now, r.updated_at_ms),
                            render::truncate(reason, 60)
                        );
                    }
                    if list.releases.is_empty() {
                        println!("(no releases yet)");
                    } else {
                        println!("full reasons: gatehouse status ID");
                    }
                }
            }
        }
    }
    Ok(EXIT_OK)
}

pub async fn watch(ctx: &Ctx, a: WatchArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let r = follow_with(&mut client, a.id, a.output, Style::detect(), true).await?;
    Ok(if r.terminal {
        render::exit_code(&r)
    } else {
        EXIT_ERROR
    })
}

pub async fn approve(ctx: &Ctx, a: ApproveArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let environment = match a.environment {
        Some(env) => env,
        None => {
            let r = client
                .releases
                .get_release(proto::GetReleaseRequest { id: a.id })
                .await
                .map_err(rpc)?
                .into_inner();
            if r.terminal || r.environment.is_empty() {
                anyhow::bail!(
                    "release {} waits at no stage (it is {}); nothing to approve",
                    a.id,
                    render::phase_name(r.phase)
                );
            }
            r.environment
        }
    };
    let r = client
        .releases
        .approve_stage(proto::ApproveStageRequest {
            id: a.id,
            environment,
            comment: a.comment,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    println!("{}", Style::detect().release(&r));
    Ok(EXIT_OK)
}

pub async fn abort(ctx: &Ctx, a: AbortArgs) -> anyhow::Result<u8> {
    let mut client = ctx.connect().await?;
    let r = client
        .releases
        .abort_release(proto::AbortReleaseRequest {
            id: a.id,
            reason: a.reason,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    println!("{}", Style::detect().release(&r));
    Ok(EXIT_OK)
}
