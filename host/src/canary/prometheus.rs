//! Reading a canary's metrics from Prometheus: one range query per metric
//! and arm, its template filled in for the arm, returning the interval
//! series `canary::intervals` compares.
//!
//! Rules (what peers' users were burned by):
//! - **Empty is no data, never a pass.** A query that matches no series
//!   returns an empty series; a point Prometheus reports as NaN or ±Inf is
//!   dropped, never read as 0.
//! - **One series per query.** A query returning several series is refused
//!   with what to do (aggregate it, e.g. with `sum()`), rather than one of
//!   them being picked silently.
//! - **Transient failures are retried** with backoff and jitter: no
//!   connection, a timeout, a 5xx, a 429 (after its `Retry-After`, within
//!   reason). A 4xx other than 429 (a malformed query) is not: it will not
//!   get better. Every attempt is counted in what is returned, so the
//!   judgement's evidence can say what happened.

use serde::Deserialize;
use std::time::Duration;

/// The template variables of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Vars<'a> {
    /// The arm as services label it: `active` (the baseline, as the
    /// OpenFeature flag's variant is named) or `canary`.
    pub arm: &'a str,
    /// The digest of the configuration that arm serves.
    pub digest: &'a str,
    pub environment: &'a str,
    pub release: u64,
}

/// The names a query may use, as `{{name}}`.
pub const VARIABLES: [&str; 4] = ["arm", "digest", "environment", "release"];

/// Fills `template`'s `{{name}}`s in; an unknown or unclosed one is an
/// error naming it.
pub fn render(template: &str, vars: &Vars<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(format!("an unclosed `{{{{` in query {template:?}"));
        };
        let name = after[..close].trim();
        match name {
            "arm" => out.push_str(vars.arm),
            "digest" => out.push_str(vars.digest),
            "environment" => out.push_str(vars.environment),
            "release" => out.push_str(&vars.release.to_string()),
            other => {
                return Err(format!(
                    "unknown variable `{{{{{other}}}}}` in query {template:?}; the variables are {}",
                    VARIABLES.map(|v| format!("{{{{{v}}}}}")).join(", ")
                ));
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// How a range query is asked.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// Prometheus' base URL, e.g. `http://127.0.0.1:9090`.
    pub url: &'a str,
    pub query: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The resolution: one point per `step`.
    pub step: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
}

/// What a range query returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// (ms, value) per step; empty when no series matched.
    pub series: Vec<(i64, f64)>,
    /// Points Prometheus returned that were not numbers (dropped).
    pub dropped: usize,
    /// Attempts it took.
    pub attempts: u32,
}

/// Why a range query gave nothing to judge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{detail} (after {attempts} attempt(s))")]
pub struct Failed {
    pub detail: String,
    pub attempts: u32,
    /// Whether retrying later might help (no connection, a timeout, a 5xx
    /// or 429): a provider outage rather than a wrong query.
    pub transient: bool,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    metric: serde_json::Map<String, serde_json::Value>,
    values: Vec<(f64, String)>,
}

/// Runs a range query, retrying transient failures; blocking, so call it
/// off the reactor.
pub fn query_range(ask: &Ask<'_>) -> Result<Fetched, Failed> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(ask.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let endpoint = format!("{}/api/v1/query_range", ask.url.trim_end_matches('/'));
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (detail, transient, wait) = match once(&agent, &endpoint, ask) {
            Ok((series, dropped)) => {
                return Ok(Fetched {
                    series,
                    dropped,
                    attempts: attempt,
                });
            }
            Err(e) => e,
        };
        if !transient || attempt >= ask.attempts.max(1) {
            return Err(Failed {
                detail,
                attempts: attempt,
                transient,
            });
        }
        let jittered = backoff.mul_f64(0.5 + 0.5 * fastrand::f64());
        std::thread::sleep(wait.unwrap_or(jittered).min(Duration::from_secs(10)));
        backoff *= 2;
    }
}

type Attempt = Result<(Vec<(i64, f64)>, usize), (String, bool, Option<Duration>)>;

fn once(agent: &ureq::Agent, endpoint: &str, ask: &Ask<'_>) -> Attempt {
    let seconds = |ms: i64| format!("{:.3}", ms as f64 / 1e3);
    let answer = agent
        .get(endpoint)
        .query("query", ask.query)
        .query("start", seconds(ask.start_ms))
        .query("end", seconds(ask.end_ms))
        .query("step", format!("{:.3}", ask.step.as_secs_f64()))
        .call();
    let mut answer = match answer {
        Ok(a) => a,
        Err(e) => return Err((format!("{endpoint}: {e}"), true, None)),
    };
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = answer
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let parsed: Option<Answer> = serde_json::from_str(&body).ok();
    let said = parsed
        .as_ref()
        .and_then(|a| a.error.clone())
        .unwrap_or_else(|| body.chars().take(200).collect());
    match status {
        200 => {}
        429 => {
            return Err((
                format!("Prometheus is rate limiting (429): {said}"),
                true,
                retry_after,
            ));
        }
        500.. => return Err((format!("Prometheus answered {status}: {said}"), true, None)),
        _ => {
            return Err((
                format!(
                    "Prometheus refused the query {:?} ({status}): {said}",
                    ask.query
                ),
                false,
                None,
            ));
        }
    }
    let Some(Answer {
        status,
        data: Some(data),
        ..
    }) = parsed
    else {
        return Err((format!("not a Prometheus answer: {said}"), false, None));
    };
    if status != "success" || data.result_type != "matrix" {
        return Err((
            format!(
                "Prometheus answered {status} with a {} for {:?}; a range query needs an expression that returns an instant vector",
                data.result_type, ask.query
            ),
            false,
            None,
        ));
    }
    match data.result.len() {
        0 => Ok((Vec::new(), 0)),
        1 => {
            let mut dropped = 0;
            let series = data.result[0]
                .values
                .iter()
                .filter_map(|(t, v)| match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => Some(((t * 1e3).round() as i64, x)),
                    _ => {
                        dropped += 1;
                        None
                    }
                })
                .collect();
            Ok((series, dropped))
        }
        n => Err((
            format!(
                "the query {:?} returns {n} series (e.g. {}); it must return one per arm: aggregate it, e.g. with sum(...)",
                ask.query,
                serde_json::Value::Object(data.result[0].metric.clone())
            ),
            false,
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_variable_and_name_an_unknown_one() {
        let vars = Vars {
            arm: "canary",
            digest: "ab12",
            environment: "production",
            release: 7,
        };
        assert_eq!(
            render(
                r#"sum(rate(x{variant="{{arm}}", env="{{ environment }}", d="{{digest}}", r="{{release}}"}[30s]))"#,
                &vars
            )
            .unwrap(),
            r#"sum(rate(x{variant="canary", env="production", d="ab12", r="7"}[30s]))"#
        );
        let e = render("x{a=\"{{variant}}\"}", &vars).unwrap_err();
        assert!(e.contains("{{variant}}") && e.contains("{{arm}}"), "{e}");
        assert!(render("x{{arm", &vars).unwrap_err().contains("unclosed"));
    }
}
