//! DORA figures from the audit log: how often changes reach an environment,
//! how long they take to get there, how often they fail, and how fast a
//! failed one is undone. Computed from the events alone, so an exported log
//! gives the same figures as the daemon.
//!
//! Definitions, for one environment over a window `[since, until)`:
//! - a **deployment** is an `env.applied` event that made a candidate live
//!   there: not a canary's traffic step, not a drill;
//! - **deployment frequency**: deployments in the window per day of it;
//! - **lead time**: from the release's `release.submitted` to its
//!   deployment;
//! - a **failed deployment** is one later rolled back (`env.rolled_back`
//!   from its digest while it was live: by an operator, or by the watch
//!   after promotion; drills excepted);
//! - **change failure rate**: failed deployments ÷ deployments;
//! - **recovery time**: from a failed deployment going live to the rollback
//!   that took it out (DORA's failed deployment recovery time).
//!
//! A canary rolled back before it was deployed is counted apart: the canary
//! caught it, so it never failed as a deployment. What a rollback restores is
//! live again but no new deployment: rolling that back too (an operator
//! stepping further back in the same incident) counts as neither a failure
//! nor a caught canary. Medians of an even count
//! are the mean of the two middle values; p90 is the nearest rank,
//! the ⌈0.9·n⌉-th smallest.

use crate::store::audit::{AuditEvent, EventKind};
use serde::Serialize;
use std::collections::HashMap;

pub const DAY_MS: i64 = 86_400_000;

/// Which environment, over which span of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub environment: String,
    pub since_ms: i64,
    pub until_ms: i64,
}

impl Window {
    /// The `days` before `now_ms`.
    pub fn last_days(environment: &str, days: u32, now_ms: i64) -> Window {
        Window {
            environment: environment.to_string(),
            since_ms: now_ms - i64::from(days) * DAY_MS,
            until_ms: now_ms,
        }
    }

    fn holds(&self, at_ms: i64) -> bool {
        (self.since_ms..self.until_ms).contains(&at_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dora {
    pub environment: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub deployments: u64,
    pub deployments_per_day: f64,
    /// None without deployments whose submission is in the log.
    pub lead_time_median_ms: Option<i64>,
    pub lead_time_p90_ms: Option<i64>,
    pub failed_deployments: u64,
    /// None without deployments.
    pub change_failure_rate: Option<f64>,
    /// None without failed deployments.
    pub recovery_median_ms: Option<i64>,
    pub canaries_rolled_back: u64,
}

/// What serves in the environment, as the log tells it.
struct Live {
    digest: String,
    /// When it was deployed; none when a rollback restored it.
    deployed_ms: Option<i64>,
}

/// The figures of `window` from `events`, read in the log's order.
pub fn figures<'a>(events: impl IntoIterator<Item = &'a AuditEvent>, window: &Window) -> Dora {
    let mut submitted: HashMap<u64, i64> = HashMap::new();
    let mut live: Option<Live> = None;
    let mut lead_times = Vec::new();
    let mut recoveries = Vec::new();
    let (mut deployments, mut canaries_rolled_back) = (0u64, 0u64);
    for e in events {
        let here = e.environment.as_deref() == Some(window.environment.as_str());
        let drill = e.detail.get("drill").and_then(|d| d.as_bool()) == Some(true);
        let text = |key: &str| {
            e.detail
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        match e.kind {
            EventKind::ReleaseSubmitted => {
                if let Some(id) = e.release {
                    submitted.insert(id, e.at_ms);
                }
            }
            EventKind::EnvApplied if here && !drill && e.detail.get("weight_percent").is_none() => {
                let Some(digest) = text("digest") else {
                    continue;
                };
                live = Some(Live {
                    digest,
                    deployed_ms: Some(e.at_ms),
                });
                if window.holds(e.at_ms) {
                    deployments += 1;
                    if let Some(at) = e.release.and_then(|id| submitted.get(&id)) {
                        lead_times.push(e.at_ms - at);
                    }
                }
            }
            EventKind::EnvRolledBack if here && !drill => {
                let from = text("from");
                let serving = live.as_ref().map(|l| l.digest.as_str());
                if from.is_some() && from.as_deref() == serving {
                    if let Some(at) = live.as_ref().and_then(|l| l.deployed_ms)
                        && window.holds(at)
                    {
                        recoveries.push(e.at_ms - at);
                    }
                    live = text("to").map(|digest| Live {
                        digest,
                        deployed_ms: None,
                    });
                } else if window.holds(e.at_ms) {
                    // What was taken down was not what serves: a canary
                    // beside it, which keeps serving.
                    canaries_rolled_back += 1;
                }
            }
            _ => {}
        }
    }
    let days = (window.until_ms - window.since_ms) as f64 / DAY_MS as f64;
    let failed = recoveries.len() as u64;
    Dora {
        environment: window.environment.clone(),
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        deployments,
        deployments_per_day: if days > 0.0 {
            deployments as f64 / days
        } else {
            0.0
        },
        lead_time_median_ms: median(&mut lead_times),
        lead_time_p90_ms: nearest_rank(&mut lead_times, 0.9),
        failed_deployments: failed,
        change_failure_rate: (deployments > 0).then(|| failed as f64 / deployments as f64),
        recovery_median_ms: median(&mut recoveries),
        canaries_rolled_back,
    }
}

fn median(values: &mut [i64]) -> Option<i64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

fn nearest_rank(values: &mut [i64], p: f64) -> Option<i64> {
    values.sort_unstable();
    let rank = (p * values.len() as f64).ceil() as usize;
    values.get(rank.max(1) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    /// A log under construction: events numbered in order.
    #[derive(Default)]
    struct Log(Vec<AuditEvent>);

    impl Log {
        fn push(
            &mut self,
            at_ms: i64,
            kind: EventKind,
            release: Option<u64>,
            env: Option<&str>,
            detail: serde_json::Value,
        ) -> &mut Log {
            self.0.push(AuditEvent {
                seq: self.0.len() as u64 + 1,
                at_ms,
                actor: "daemon".into(),
                release,
                environment: env.map(str::to_string),
                kind,
                message: String::new(),
                detail,
                phase: None,
                prev_hash: String::new(),
                hash: String::new(),
            });
            self
        }
        fn submitted(&mut self, at_ms: i64, id: u64) -> &mut Log {
            self.push(
                at_ms,
                EventKind::ReleaseSubmitted,
                Some(id),
                None,
                json!({}),
            )
        }
        fn applied(&mut self, at_ms: i64, id: u64, env: &str, digest: &str) -> &mut Log {
            let detail = json!({ "digest": digest, "generation": 1 });
            self.push(at_ms, EventKind::EnvApplied, Some(id), Some(env), detail)
        }
        fn canary(&mut self, at_ms: i64, id: u64, env: &str, digest: &str) -> &mut Log {
            let detail = json!({ "digest": digest, "weight_percent": 10, "step": 0 });
            self.push(at_ms, EventKind::EnvApplied, Some(id), Some(env), detail)
        }
        fn rolled_back(&mut self, at_ms: i64, env: &str, from: &str) -> &mut Log {
            self.rolled_back_to(at_ms, env, from, None)
        }
        fn rolled_back_to(
            &mut self,
            at_ms: i64,
            env: &str,
            from: &str,
            to: Option<&str>,
        ) -> &mut Log {
            let detail = json!({ "from": from, "to": to });
            self.push(at_ms, EventKind::EnvRolledBack, None, Some(env), detail)
        }
    }

    fn production(since_ms: i64, until_ms: i64) -> Window {
        Window {
            environment: "production".into(),
            since_ms,
            until_ms,
        }
    }

    #[test]
    fn figures_of_a_small_history_worked_by_hand() {
        // Three releases reach production; the second is rolled back by an
        // operator 4 s after it went live; a fourth's canary is rolled back
        // before it is deployed; dev's events do not count.
        let mut log = Log::default();
        log.submitted(1_000, 1)
            .applied(2_000, 1, "dev", D1)
            .applied(11_000, 1, "production", D1)
            .submitted(20_000, 2)
            .applied(50_000, 2, "production", D2)
            .rolled_back(54_000, "production", D2)
            .submitted(60_000, 3)
            .applied(90_000, 3, "production", D3)
            .submitted(100_000, 4)
            .canary(110_000, 4, "production", D2)
            .rolled_back(111_000, "production", D2)
            .rolled_back(120_000, "dev", D1);
        let f = figures(&log.0, &production(0, 2 * DAY_MS));
        assert_eq!(f.deployments, 3);
        assert_eq!(f.deployments_per_day, 1.5);
        // Lead times 10 s, 30 s, 30 s.
        assert_eq!(f.lead_time_median_ms, Some(30_000));
        assert_eq!(f.lead_time_p90_ms, Some(30_000));
        assert_eq!(f.failed_deployments, 1);
        assert_eq!(f.change_failure_rate, Some(1.0 / 3.0));
        assert_eq!(f.recovery_median_ms, Some(4_000));
        assert_eq!(f.canaries_rolled_back, 1);
    }

    #[test]
    fn rolling_back_what_a_rollback_restored_is_no_caught_canary() {
        // An operator steps back twice in one incident: D2 to D1, then D1
        // to nothing. Only D2 failed; no canary was involved.
        let mut log = Log::default();
        log.submitted(1_000, 1)
            .applied(2_000, 1, "production", D1)
            .submitted(3_000, 2)
            .applied(4_000, 2, "production", D2)
            .rolled_back_to(5_000, "production", D2, Some(D1))
            .rolled_back_to(6_000, "production", D1, None);
        let f = figures(&log.0, &production(0, DAY_MS));
        assert_eq!(f.deployments, 2);
        assert_eq!(f.failed_deployments, 1);
        assert_eq!(f.recovery_median_ms, Some(1_000));
        assert_eq!(f.canaries_rolled_back, 0);
    }

    #[test]
    fn the_window_keeps_only_deployments_inside_it() {
        let mut log = Log::default();
        log.submitted(0, 1)
            .applied(1_000, 1, "production", D1)
            .submitted(5_000, 2)
            .applied(7_000, 2, "production", D2)
            .rolled_back(9_000, "production", D2);
        let f = figures(&log.0, &production(5_000, 5_000 + DAY_MS));
        assert_eq!(f.deployments, 1);
        assert_eq!(f.lead_time_median_ms, Some(2_000));
        assert_eq!(f.failed_deployments, 1);
        assert_eq!(f.change_failure_rate, Some(1.0));
        assert_eq!(f.recovery_median_ms, Some(2_000));
    }

    #[test]
    fn a_drill_is_neither_a_deployment_nor_a_failure() {
        let mut log = Log::default();
        log.submitted(0, 1).applied(1_000, 1, "production", D1);
        log.push(
            2_000,
            EventKind::EnvApplied,
            None,
            Some("production"),
            json!({ "drill": true, "digest": D1, "weight_percent": 1 }),
        );
        log.push(
            2_500,
            EventKind::EnvRolledBack,
            None,
            Some("production"),
            json!({ "drill": true, "from": D1, "to": D1 }),
        );
        let f = figures(&log.0, &production(0, DAY_MS));
        assert_eq!(f.deployments, 1);
        assert_eq!(f.failed_deployments, 0);
        assert_eq!(f.change_failure_rate, Some(0.0));
        assert_eq!(f.canaries_rolled_back, 0);
    }

    #[test]
    fn no_deployments_leave_the_rates_unset() {
        let f = figures(&[], &production(0, DAY_MS));
        assert_eq!(f.deployments, 0);
        assert_eq!(f.deployments_per_day, 0.0);
        assert_eq!(f.lead_time_median_ms, None);
        assert_eq!(f.change_failure_rate, None);
        assert_eq!(f.recovery_median_ms, None);
    }

    #[test]
    fn medians_and_nearest_ranks() {
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        let mut ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&mut ten, 0.9), Some(9));
        assert_eq!(nearest_rank(&mut [7], 0.9), Some(7));
        assert_eq!(nearest_rank(&mut [], 0.9), None);
    }
}
