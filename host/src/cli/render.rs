//! How releases and events look on a terminal, in plain lines, and in JSON.

use gatehouse::proto::{self, ReleasePhase};
use serde_json::json;
use std::io::IsTerminal;

pub fn phase_name(phase: i32) -> &'static str {
    match ReleasePhase::try_from(phase).unwrap_or(ReleasePhase::Unspecified) {
        ReleasePhase::Unspecified => "Unknown",
        ReleasePhase::Pending => "Pending",
        ReleasePhase::Gating => "Gating",
        ReleasePhase::AwaitingApproval => "AwaitingApproval",
        ReleasePhase::Applying => "Applying",
        ReleasePhase::Canary => "Canary",
        ReleasePhase::Promoted => "Promoted",
        ReleasePhase::Succeeded => "Succeeded",
        ReleasePhase::Failed => "Failed",
        ReleasePhase::RolledBack => "RolledBack",
        ReleasePhase::Aborted => "Aborted",
    }
}

fn outcome_name(o: i32) -> &'static str {
    match proto::Outcome::try_from(o).unwrap_or(proto::Outcome::Unspecified) {
        proto::Outcome::Unspecified => "unknown",
        proto::Outcome::Pass => "pass",
        proto::Outcome::Warn => "warn",
        proto::Outcome::Fail => "fail",
        proto::Outcome::Inconclusive => "inconclusive",
    }
}

/// Styles for a terminal, or none when output goes to a pipe or file.
#[derive(Clone, Copy)]
pub struct Style {
    tty: bool,
}

impl Style {
    pub fn detect() -> Style {
        Style {
            tty: std::io::stdout().is_terminal(),
        }
    }

    /// Whether output goes to a terminal (and may redraw a live line).
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.tty {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// One line for one event: live progress of a release.
    pub fn event(&self, e: &proto::Event) -> String {
        let (mark, color) = match e.kind.as_str() {
            "gate.verdict"
                if e.message.contains("→ fail") || e.message.contains("→ inconclusive") =>
            {
                ("✗", "31")
            }
            "gate.verdict" if e.message.contains("→ warn") => ("!", "33"),
            "gate.verdict" => ("✓", "32"),
            "env.applied" | "env.rolled_back" => ("→", "36"),
            _ => match phase_name(e.phase) {
                "Succeeded" => ("✓", "32;1"),
                "Failed" | "RolledBack" | "Aborted" => ("✗", "31;1"),
                _ => ("·", "2"),
            },
        };
        if self.tty {
            format!("{} {}", self.paint(color, mark), e.message)
        } else {
            format!("{} {} {}", e.seq, e.kind, e.message)
        }
    }

    pub fn release(&self, r: &proto::Release) -> String {
        let phase = phase_name(r.phase);
        let color = match phase {
            "Succeeded" => "32;1",
            "Failed" | "RolledBack" | "Aborted" => "31;1",
            _ => "33",
        };
        let mut out = format!(
            "release {}  {}  pipeline {}  candidate {}",
            r.id,
            self.paint(color, phase),
            r.pipeline,
            &r.candidate_digest[..12.min(r.candidate_digest.len())]
        );
        if !r.environment.is_empty() {
            out.push_str(&format!("  at {}", r.environment));
        }
        if !r.waiting.is_empty() {
            out.push_str(&format!("\n  {}", r.waiting));
        }
        if !r.reason.is_empty() {
            out.push_str(&format!("\n  reason: {}", r.reason));
        }
        for s in &r.stages {
            let state = if s.promoted { "promoted" } else { "-" };
            out.push_str(&format!("\n  {:<12} {state}", s.environment));
            for g in &s.gates {
                out.push_str(&format!(
                    "\n    gate {:<16} {:<5} {}",
                    g.gate,
                    outcome_name(g.outcome),
                    g.reason
                ));
                if !g.plugin_digest.is_empty() {
                    out.push_str(&format!(
                        "\n         judged by {} {}, {} instructions",
                        g.plugin,
                        g.plugin_digest.get(..12).unwrap_or(&g.plugin_digest),
                        g.fuel_used
                    ));
                }
            }
            if s.approvals_required > 0 {
                out.push_str(&format!(
                    "\n    approvals {}/{} {}",
                    s.approved_by.len(),
                    s.approvals_required,
                    s.approved_by.join(", ")
                ));
            }
        }
        out
    }
}

pub fn release_json(r: &proto::Release) -> serde_json::Value {
    json!({
        "id": r.id,
        "pipeline": r.pipeline,
        "candidate_digest": r.candidate_digest,
        "metadata": r.metadata,
        "phase": phase_name(r.phase),
        "environment": r.environment,
        "reason": r.reason,
        "waiting": r.waiting,
        "failed_gate": r.failed_gate,
        "misconfigured": r.misconfigured,
        "terminal": r.terminal,
        "submitted_by": r.submitted_by,
        "submitted_at_ms": r.submitted_at_ms,
        "attachments": r.attachments.iter().map(|a| json!({
            "name": a.name, "digest": a.digest, "size": a.size,
        })).collect::<Vec<_>>(),
        "updated_at_ms": r.updated_at_ms,
        "stages": r.stages.iter().map(|s| json!({
            "environment": s.environment,
            "promoted": s.promoted,
            "approvals_required": s.approvals_required,
            "approved_by": s.approved_by,
            "gates": s.gates.iter().map(|g| json!({
                "gate": g.gate,
                "plugin": g.plugin,
                "plugin_digest": g.plugin_digest,
                "outcome": outcome_name(g.outcome),
                "score": g.score,
                "reason": g.reason,
                "blocking": g.blocking,
                "duration_us": g.duration_us,
                "fuel_used": g.fuel_used,
                "measurements": g.measurements.iter().map(|m| json!({
                    "name": m.name, "value": m.value, "unit": m.unit,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub fn event_json(e: &proto::Event) -> serde_json::Value {
    json!({
        "seq": e.seq,
        "at_ms": e.at_ms,
        "actor": e.actor,
        "release_id": e.release_id,
        "environment": e.environment,
        "kind": e.kind,
        "message": e.message,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail_json).unwrap_or_default(),
        "phase": phase_name(e.phase),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
}

/// The exit code a finished release maps to.
pub fn exit_code(r: &proto::Release) -> u8 {
    match phase_name(r.phase) {
        "Succeeded" => super::EXIT_OK,
        "Failed" if r.misconfigured => super::EXIT_MISCONFIGURED,
        "Failed" => super::EXIT_GATE_FAILED,
        "RolledBack" => super::EXIT_ROLLED_BACK,
        "Aborted" => super::EXIT_ABORTED,
        _ => super::EXIT_ERROR,
    }
}

/// The live line `submit --wait` and `watch` redraw during a canary step:
/// step and weight, samples per arm (and how many the judge needs), time
/// left in the step, and the judge's current word.
pub fn canary_line(j: &proto::Judgement, step_ends_ms: Option<i64>, now_ms: i64) -> String {
    let left = match step_ends_ms {
        Some(end) if end > now_ms => {
            let s = (end - now_ms + 999) / 1000;
            format!(", {}m{:02}s left", s / 60, s % 60)
        }
        Some(_) => ", step time up".to_string(),
        None => String::new(),
    };
    let needed = if j.needed > 0 {
        format!(" (judge needs {} per arm)", j.needed)
    } else {
        String::new()
    };
    let decision = match proto::Decision::try_from(j.decision).unwrap_or_default() {
        proto::Decision::Promote => "promote",
        proto::Decision::Continue => "continue",
        proto::Decision::RollBack => "roll back",
        proto::Decision::Inconclusive | proto::Decision::Unspecified => "inconclusive",
    };
    truncate(
        &format!(
            "  canary step {} at {}%: baseline {} / canary {} samples{needed}{left}; judge: {decision}",
            j.step + 1,
            j.weight_percent,
            j.baseline_samples,
            j.canary_samples
        ),
        160,
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long ago `then_ms` was, as people say it: 42s, 5m, 3h, 2d.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    if then_ms <= 0 {
        return "-".into();
    }
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut; on one line.
pub fn truncate(text: &str, max: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn ages_and_cuts_read_short() {
        let now = 1_000_000_000;
        assert_eq!(age(now, now - 42_000), "42s");
        assert_eq!(age(now, now - 5 * 60_000), "5m");
        assert_eq!(age(now, now - 3 * 3_600_000), "3h");
        assert_eq!(age(now, 0), "-");
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a much longer reason\nhere", 10), "a much lo…");
    }
}

#[cfg(test)]
mod canary_line_tests {
    use super::*;

    #[test]
    fn the_live_canary_line_names_step_weight_samples_and_time_left() {
        let j = proto::Judgement {
            step: 1,
            weight_percent: 50,
            baseline_samples: 120,
            canary_samples: 38,
            needed: 60,
            decision: proto::Decision::Continue as i32,
            ..Default::default()
        };
        assert_eq!(
            canary_line(&j, Some(100_000), 100_000 - 61_500),
            "  canary step 2 at 50%: baseline 120 / canary 38 samples (judge needs 60 per arm), 1m02s left; judge: continue"
        );
        assert!(canary_line(&j, Some(1), 2).contains("step time up"));
    }
}
