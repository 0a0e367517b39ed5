//! `dora`: deployment frequency, lead time, change failure rate and recovery
//! time of an environment, from the daemon or from an exported audit log.

use super::{Ctx, EXIT_OK, Output, rpc};
use anyhow::Context;
use gatehouse::proto;
use gatehouse::store::audit::AuditEvent;
use gatehouse::store::now_ms;
use gatehouse::telemetry::dora::{self, Window};
use serde_json::json;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DoraArgs {
    /// The environment whose deployments count.
    #[arg(long = "env", default_value = "production")]
    pub environment: String,
    /// The window: this many days before now.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// Compute from an exported audit log (`gatehouse audit export`)
    /// instead of asking the daemon.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

pub async fn run(ctx: &Ctx, a: DoraArgs) -> anyhow::Result<u8> {
    let f = match &a.file {
        Some(path) => from_file(path, &a.environment, a.days)?,
        None => ctx
            .connect()
            .await?
            .audit
            .get_dora(proto::GetDoraRequest {
                environment: a.environment.clone(),
                days: a.days,
            })
            .await
            .map_err(rpc)?
            .into_inner(),
    };
    match a.output {
        Output::Json => println!(
            "{}",
            json!({
                "environment": f.environment,
                "since_ms": f.since_ms,
                "until_ms": f.until_ms,
                "deployments": f.deployments,
                "deployments_per_day": f.deployments_per_day,
                "lead_time_median_ms": f.lead_time_median_ms,
                "lead_time_p90_ms": f.lead_time_p90_ms,
                "failed_deployments": f.failed_deployments,
                "change_failure_rate": f.change_failure_rate,
                "recovery_median_ms": f.recovery_median_ms,
                "canaries_rolled_back": f.canaries_rolled_back,
            })
        ),
        Output::Text => print!("{}", text(&f, a.days)),
    }
    Ok(EXIT_OK)
}

/// The figures of an exported log, as the daemon would compute them now.
fn from_file(path: &PathBuf, env: &str, days: u32) -> anyhow::Result<proto::DoraFigures> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: AuditEvent = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not an event of `gatehouse audit export`",
                path.display(),
                n + 1
            )
        })?;
        events.push(event);
    }
    let f = dora::figures(&events, &Window::last_days(env, days, now_ms()));
    Ok(gatehouse::api::convert::dora(&f))
}

fn text(f: &proto::DoraFigures, days: u32) -> String {
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".to_string());
    let lead = match (f.lead_time_median_ms, f.lead_time_p90_ms) {
        (Some(median), Some(p90)) => Some(format!(
            "median {}, p90 {} (submission to live)",
            span(median),
            span(p90)
        )),
        _ => None,
    };
    let failure = f.change_failure_rate.map(|rate| {
        format!(
            "{:.0}% ({} of {} deployments rolled back)",
            rate * 100.0,
            f.failed_deployments,
            f.deployments
        )
    });
    let recovery = f
        .recovery_median_ms
        .map(|ms| format!("median {} (live to rolled back)", span(ms)));
    format!(
        "DORA figures for {}, last {days} days:\n  deployment frequency  {:.2} a day ({} deployments)\n  lead time             {}\n  change failure rate   {}\n  recovery time         {}\n  canaries rolled back  {} (caught before deployment)\n",
        f.environment,
        f.deployments_per_day,
        f.deployments,
        or_none(lead),
        or_none(failure),
        or_none(recovery),
        f.canaries_rolled_back
    )
}

/// Milliseconds as people read them: 850 ms, 4.2 s, 12 min, 3.5 h, 2.0 d.
fn span(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{s:.1} s")
    } else if ms < 3_600_000 {
        format!("{:.0} min", s / 60.0)
    } else if ms < 86_400_000 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_in_the_largest_fitting_unit() {
        assert_eq!(span(850), "850 ms");
        assert_eq!(span(4_200), "4.2 s");
        assert_eq!(span(720_000), "12 min");
        assert_eq!(span(12_600_000), "3.5 h");
        assert_eq!(span(172_800_000), "2.0 d");
    }
}
