//! `canary judge`: judges recorded baseline and canary samples with the
//! daemon's own judge, offline — no daemon, no network. `canary status`:
//! the live judgement of a release's canary, from the daemon.

pub mod scene;

use super::{Ctx, EXIT_OK, EXIT_ROLLED_BACK, Output, rpc};
use anyhow::Context;
use gatehouse::canary::judgement::{effect_text, num};
use gatehouse::canary::{CanaryConfig, Decision, Judgement, MetricResult, recorded};
use gatehouse::proto;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Exit code when the judge cannot decide yet, or would keep the canary
/// running.
pub const EXIT_INCONCLUSIVE: u8 = 6;

const CANARY_EXIT_CODES: &str = "Exit codes: 0 promote; 4 roll back; \
6 inconclusive or continue (more data needed); 1 error (unreadable file or config).";

#[derive(clap::Subcommand)]
pub enum CanaryCommand {
    /// Judge recorded samples of a baseline and a canary: per-metric tests
    /// and a promote / roll back / inconclusive decision.
    ///
    /// Files are CSV with a header row, or JSON lines, with the columns
    /// (keys) request_key, latency_ms, error, cost, output, prediction;
    /// only latency_ms is required. Rows sharing a request_key across the
    /// two files are mirrored requests, whose outputs are compared.
    #[command(after_help = CANARY_EXIT_CODES)]
    Judge(JudgeArgs),
    /// Show the live judgement of a release's canary: per-metric comparison
    /// of the arms, the test behind each, and the decision with its reason.
    /// Once the canary has ended, shows the judgement it ended with.
    #[command(after_help = CANARY_EXIT_CODES)]
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The release whose canary to show.
    pub release: u64,
    /// Keep printing each new judgement until the canary ends.
    #[arg(long)]
    pub watch: bool,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct JudgeArgs {
    /// Samples served by the live configuration.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Samples served by the candidate.
    #[arg(long)]
    pub canary: PathBuf,
    /// Canary config (TOML); the defaults judge typical serving traffic.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(ctx: &Ctx, cmd: CanaryCommand) -> anyhow::Result<u8> {
    match cmd {
        CanaryCommand::Judge(args) => {
            let (text, code) = judge(&args)?;
            print(&text)?;
            Ok(code)
        }
        CanaryCommand::Status(args) => status(ctx, args).await,
    }
}

fn print(text: &str) -> anyhow::Result<()> {
    match writeln!(std::io::stdout().lock(), "{text}") {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

async fn status(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<u8> {
    let mut c = ctx.connect().await?;
    let request = proto::GetJudgementRequest {
        release_id: args.release,
    };
    if !args.watch {
        let j = c
            .canaries
            .get_judgement(request)
            .await
            .map_err(rpc)?
            .into_inner();
        let (text, code) = shown(&j, args.output)?;
        print(&text)?;
        return Ok(code);
    }
    let mut stream = c
        .canaries
        .watch_judgement(request)
        .await
        .map_err(rpc)?
        .into_inner();
    let mut code = EXIT_INCONCLUSIVE;
    while let Some(j) = stream.message().await.map_err(rpc)? {
        let (text, c) = shown(&j, args.output)?;
        code = c;
        print(&text)?;
    }
    Ok(code)
}

/// A judgement from the daemon as text or JSON, and the exit code its
/// decision calls for.
pub fn shown(j: &proto::Judgement, output: Output) -> anyhow::Result<(String, u8)> {
    let evidence: Judgement =
        serde_json::from_str(&j.evidence_json).context("reading the judgement's evidence")?;
    let code = exit_code(evidence.decision);
    let text = match output {
        Output::Json => serde_json::to_string(&serde_json::json!({
            "release_id": j.release_id,
            "environment": j.environment,
            "step": j.step,
            "weight_percent": j.weight_percent,
            "watch": j.watch,
            "final": j.r#final,
            "judged_at_ms": j.judged_at_ms,
            "judgement": evidence,
        }))?,
        Output::Text => {
            let what = if j.watch {
                "watch after promotion".to_string()
            } else {
                format!("canary step {} at {}%", j.step + 1, j.weight_percent)
            };
            let look = if j.interim {
                "interim look"
            } else {
                "final look"
            };
            let ended = if j.r#final { " (ended)" } else { "" };
            format!(
                "release {} in {}: {what}, {look}{ended}, {} baseline / {} canary samples\n{}",
                j.release_id,
                j.environment,
                j.baseline_samples,
                j.canary_samples,
                table(&evidence)
            )
        }
    };
    Ok((text, code))
}

/// Judges the files named in `args`; returns what to print and the exit
/// code.
pub fn judge(args: &JudgeArgs) -> anyhow::Result<(String, u8)> {
    let config = match &args.config {
        Some(path) => CanaryConfig::load(path)?,
        None => CanaryConfig::default(),
    };
    let judgement = recorded::judge_files(config, &args.baseline, &args.canary)?;
    let text = match args.output {
        Output::Json => {
            serde_json::to_string_pretty(&judgement).context("writing the judgement")?
        }
        Output::Text => table(&judgement),
    };
    Ok((text, exit_code(judgement.decision)))
}

pub fn exit_code(decision: Decision) -> u8 {
    match decision {
        Decision::Promote => EXIT_OK,
        Decision::RollBack => EXIT_ROLLED_BACK,
        Decision::Continue | Decision::Inconclusive { .. } => EXIT_INCONCLUSIVE,
    }
}

const HEADERS: [&str; 10] = [
    "metric",
    "baseline",
    "canary",
    "n (b/c)",
    "test",
    "statistic",
    "p / e",
    "alpha",
    "effect",
    "outcome",
];

/// A table with one row per metric, then the decision and its reason.
pub fn table(j: &Judgement) -> String {
    let rows: Vec<[String; 10]> = j.metrics.iter().map(row).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&HEADERS.map(String::from));
    rows.iter().for_each(|r| line(r));
    let decision = match j.decision {
        Decision::Promote => "PROMOTE".to_string(),
        Decision::Continue => "CONTINUE".to_string(),
        Decision::RollBack => "ROLL BACK".to_string(),
        Decision::Inconclusive { needed } => format!("INCONCLUSIVE (needs {needed} more per arm)"),
    };
    let _ = writeln!(out);
    if let Some(score) = j.score {
        let _ = writeln!(
            out,
            "score {score:.1} (pass ≥ {}, marginal ≥ {})",
            j.bands.pass, j.bands.marginal
        );
    }
    let _ = write!(out, "decision: {decision} — {}", j.reason);
    out
}

fn row(m: &MetricResult) -> [String; 10] {
    let opt = |x: Option<f64>| x.map_or_else(|| "-".to_string(), num);
    let evidence = match (m.p_value, m.e_value) {
        (Some(p), Some(e)) => format!("p={} e={}", num(p), num(e)),
        (Some(p), None) => format!("p={}", num(p)),
        (None, Some(e)) => format!("e={}", num(e)),
        (None, None) => "-".to_string(),
    };
    [
        format!("{}{}", m.metric, if m.critical { " *" } else { "" }),
        opt(m.baseline),
        opt(m.canary),
        format!("{}/{}", m.baseline_n, m.canary_n),
        m.test.name().to_string(),
        opt(m.statistic),
        evidence,
        num(m.threshold),
        m.effect
            .map_or_else(|| "-".to_string(), |e| effect_text(m.metric, e)),
        m.outcome.name().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn judge_prints_a_table_and_exits_with_the_decision() {
        let dir = tempfile::tempdir().unwrap();
        let (b, c) = (dir.path().join("b.csv"), dir.path().join("c.jsonl"));
        let (mut bt, mut ct) = ("latency_ms,error\n".to_string(), String::new());
        for i in 0..120 {
            let latency = 20.0 + (i * 7 % 30) as f64;
            writeln!(bt, "{latency},false").unwrap();
            writeln!(
                ct,
                "{{\"latency_ms\": {}, \"error\": {}}}",
                latency * 2.0,
                i % 3 == 0
            )
            .unwrap();
        }
        std::fs::write(&b, bt).unwrap();
        std::fs::write(&c, ct).unwrap();
        let args = |output| JudgeArgs {
            baseline: b.clone(),
            canary: c.clone(),
            config: None,
            output,
        };
        let (text, code) = judge(&args(Output::Text)).unwrap();
        assert_eq!(code, EXIT_ROLLED_BACK, "{text}");
        assert!(text.lines().next().unwrap().starts_with("metric"), "{text}");
        assert!(text.contains("error_rate *"), "{text}");
        assert!(text.contains("decision: ROLL BACK"), "{text}");
        let (json, _) = judge(&args(Output::Json)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["decision"]["kind"], "roll_back");
    }

    #[test]
    fn too_few_samples_exit_as_inconclusive() {
        assert_eq!(
            exit_code(Decision::Inconclusive { needed: 3 }),
            EXIT_INCONCLUSIVE
        );
        assert_eq!(exit_code(Decision::Continue), EXIT_INCONCLUSIVE);
        assert_eq!(exit_code(Decision::Promote), EXIT_OK);
    }
}
