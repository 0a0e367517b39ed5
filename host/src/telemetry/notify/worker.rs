//! One task per receiver: read the audit log from the receiver's cursor,
//! deliver what it asked for, one event at a time, retrying until it is
//! delivered or given up, and move the cursor on.

use super::deliver::{self, Failure};
use super::payload::{self, Kind, Message};
use super::{Links, Receiver};
use crate::ids::DAEMON;
use crate::store::audit::{AuditEvent, Draft, EventKind, Verification};
use crate::store::{Store, Table, now_ms};
use crate::telemetry::metrics::Metrics;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Receiver name → the last audit sequence number it was told of or gave
/// up on.
const CURSORS: Table = Table("notify_cursors");

/// Events read from the log at a time.
const BATCH: usize = 256;

/// A cursor that only skipped events is written back after this many, so
/// a busy log does not cost a commit per event per receiver; a restart
/// reads those again and skips them again.
const SKIPPED_BEFORE_SAVE: u64 = 1_024;

/// The receivers' own figures in `/metrics` (give-ups are counted from the
/// audit log by [`Metrics`]).
#[derive(Clone)]
struct Figures {
    delivered: IntCounterVec,
    failed: IntCounterVec,
    behind: IntGaugeVec,
}

impl Figures {
    fn new(metrics: &Metrics) -> Result<Figures, crate::telemetry::metrics::Error> {
        let delivered = IntCounterVec::new(
            Opts::new(
                "notifications_delivered_total",
                "Notifications a receiver accepted (a 2xx answer), by receiver and event.",
            ),
            &["notify", "event"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "notification_attempts_failed_total",
                "Delivery attempts that failed and will be retried or given up, by receiver and reason (connect, timeout, status_4xx, status_5xx, tls, other).",
            ),
            &["notify", "reason"],
        )?;
        let behind = IntGaugeVec::new(
            Opts::new(
                "notification_outbox_behind_events",
                "Audit events a receiver has yet to read past (0 when it is caught up).",
            ),
            &["notify"],
        )?;
        metrics.register(Box::new(delivered.clone()))?;
        metrics.register(Box::new(failed.clone()))?;
        metrics.register(Box::new(behind.clone()))?;
        Ok(Figures {
            delivered,
            failed,
            behind,
        })
    }
}

/// What the receivers share.
struct Shared {
    store: Store,
    links: Links,
    figures: Figures,
}

/// Starts one task per receiver; they stop when `closing` turns true.
/// Each receiver's place in the log is settled before this returns, so
/// everything committed afterwards reaches it.
pub async fn spawn(
    receivers: Vec<Receiver>,
    store: Store,
    metrics: &Metrics,
    chain: watch::Receiver<Option<Verification>>,
    links: Links,
    closing: watch::Receiver<bool>,
) -> Result<(), super::Error> {
    if receivers.is_empty() {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        store,
        links,
        figures: Figures::new(metrics)?,
    });
    for r in receivers {
        let from = start_at(&shared.store, &r.target.name).await?;
        let r = Arc::new(r);
        if r.target.events.contains(&Kind::AuditBroken) {
            tokio::spawn(tell_broken_chain(
                r.clone(),
                shared.clone(),
                chain.clone(),
                closing.clone(),
            ));
        }
        tokio::spawn(follow(r, from, shared.clone(), closing.clone()));
    }
    Ok(())
}

/// Follows the log for one receiver until the daemon closes.
async fn follow(
    r: Arc<Receiver>,
    from: u64,
    shared: Arc<Shared>,
    mut closing: watch::Receiver<bool>,
) {
    let name = r.target.name.clone();
    let mut bus = shared.store.subscribe();
    let mut saved = from;
    let mut cursor = from;
    loop {
        if *closing.borrow() {
            break;
        }
        let batch = {
            let store = shared.store.clone();
            tokio::task::spawn_blocking(move || read_after(&store, cursor)).await
        };
        let batch = match batch {
            Ok(Ok(batch)) => batch,
            Ok(Err(e)) => {
                tracing::warn!(notify = %name, error = %e, "cannot read the audit log; retrying");
                if pause(&mut closing, Duration::from_secs(1)).await {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        let Some(last) = batch.last().map(|e| e.seq) else {
            shared.figures.behind.with_label_values(&[&name]).set(0);
            // Caught up: wait for the next commit (or a while, should an
            // announcement be missed).
            tokio::select! {
                changed = closing.changed() => if changed.is_err() { break },
                _ = bus.recv() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        };
        let head = last.max(shared.store.head_seq().unwrap_or(last));
        for e in batch {
            shared
                .figures
                .behind
                .with_label_values(&[&name])
                .set(i64::try_from(head.saturating_sub(cursor)).unwrap_or(i64::MAX));
            let Some(kind) = Kind::of(&e).filter(|k| r.target.events.contains(k)) else {
                cursor = e.seq;
                continue;
            };
            let m = payload::message(kind, &e, r.target.format, &shared.links);
            let Some(gave_up) = send(&r, &m, e.at_ms, &shared, &mut closing).await else {
                // Closing: the cursor stays before this event.
                save(&shared.store, &name, cursor, None).await;
                return;
            };
            cursor = e.seq;
            saved = cursor;
            save(&shared.store, &name, cursor, gave_up.map(|f| (f, &m))).await;
        }
        if cursor - saved >= SKIPPED_BEFORE_SAVE {
            save(&shared.store, &name, cursor, None).await;
            saved = cursor;
        }
    }
    if cursor != saved {
        save(&shared.store, &name, cursor, None).await;
    }
}

/// Delivers `m` until it is accepted (`Some(None)`) or given up on
/// (`Some(Some(failure))`); `None` when the daemon closes first. `born_ms`
/// is when what it tells happened: the give-up clock runs from then, so
/// it carries over a restart.
async fn send(
    r: &Arc<Receiver>,
    m: &Message,
    born_ms: i64,
    shared: &Shared,
    closing: &mut watch::Receiver<bool>,
) -> Option<Option<Failure>> {
    let t = &r.target;
    let mut failures = 0u32;
    loop {
        let (to, msg) = (r.clone(), m.clone());
        let answer = tokio::task::spawn_blocking(move || deliver::attempt(&to, &msg))
            .await
            .unwrap_or_else(|e| {
                Err(Failure {
                    reason: "other",
                    detail: format!("the delivery panicked: {e}"),
                })
            });
        let f = match answer {
            Ok(()) => {
                shared
                    .figures
                    .delivered
                    .with_label_values(&[&t.name, m.kind.as_str()])
                    .inc();
                return Some(None);
            }
            Err(f) => f,
        };
        failures += 1;
        shared
            .figures
            .failed
            .with_label_values(&[&t.name, f.reason])
            .inc();
        let age_ms = now_ms().saturating_sub(born_ms);
        if age_ms >= i64::try_from(t.give_up_after_s.saturating_mul(1_000)).unwrap_or(i64::MAX) {
            return Some(Some(f));
        }
        let wait = deliver::backoff(
            failures,
            Duration::from_millis(t.retry_first_ms),
            Duration::from_millis(t.retry_max_ms),
        );
        tracing::info!(
            notify = %t.name,
            key = %m.key,
            event = m.kind.as_str(),
            failures,
            reason = f.reason,
            retry_in_ms = wait.as_millis() as u64,
            "notification not delivered: {}; retrying",
            f.detail
        );
        if pause(closing, wait).await {
            return None;
        }
    }
}

/// Tells the receiver each time the chain check turns from intact (or
/// unknown) to broken.
async fn tell_broken_chain(
    r: Arc<Receiver>,
    shared: Arc<Shared>,
    mut chain: watch::Receiver<Option<Verification>>,
    mut closing: watch::Receiver<bool>,
) {
    let mut told = false;
    loop {
        let broken = match &*chain.borrow_and_update() {
            Some(Verification::Broken { seq, problem, .. }) => Some((*seq, problem.clone())),
            _ => None,
        };
        match broken {
            Some((seq, problem)) if !told => {
                told = true;
                let m = payload::broken_chain(&problem, seq, r.target.format, &shared.links);
                match send(&r, &m, now_ms(), &shared, &mut closing).await {
                    None => return,
                    Some(Some(f)) => log_give_up(&r.target.name, &m, &f),
                    Some(None) => {}
                }
            }
            Some(_) => {}
            None => told = false,
        }
        tokio::select! {
            changed = chain.changed() => if changed.is_err() { return },
            _ = closing.changed() => return,
        }
    }
}

/// Where the receiver starts: its saved cursor, or, the first time it is
/// configured, the log's head (it is told what happens from now on, not
/// the history).
async fn start_at(store: &Store, name: &str) -> Result<u64, crate::store::Error> {
    if let Some(seq) = store.get::<u64>(CURSORS, name.as_bytes(), || {
        format!("outbox cursor of receiver {name:?}")
    })? {
        return Ok(seq);
    }
    store
        .commit(|tx| {
            if let Some(seq) = tx.get::<u64>(CURSORS, name.as_bytes(), || {
                format!("outbox cursor of receiver {name:?}")
            })? {
                return Ok(seq);
            }
            let head = tx.head_seq()?;
            tx.put(CURSORS, name.as_bytes(), &head)?;
            Ok(head)
        })
        .await
}

fn read_after(store: &Store, cursor: u64) -> Result<Vec<AuditEvent>, crate::store::Error> {
    store.events_from(cursor + 1).take(BATCH).collect()
}

/// Writes the cursor, with the give-up's audit event in the same commit
/// when there is one. A failed write is logged: the events since the last
/// saved cursor are then delivered again after a restart (at least once).
async fn save(store: &Store, name: &str, cursor: u64, gave_up: Option<(Failure, &Message)>) {
    // The log line comes from the audit event (`telemetry::log`).
    let draft = gave_up.map(|(f, m)| {
        let mut d = Draft::new(
            EventKind::NotifyGaveUp,
            DAEMON,
            format!(
                "notification {} ({}) to receiver {name:?} given up: {}",
                m.key,
                m.kind.as_str(),
                f.detail
            ),
        )
        .detail(serde_json::json!({
            "notify": name,
            "key": m.key,
            "event": m.kind.as_str(),
            "audit_seq": m.seq,
            "reason": f.reason,
            "error": f.detail,
        }));
        if let Some(env) = &m.environment {
            d = d.environment(env);
        }
        if let Some(id) = m.release {
            d.release = Some(id);
        }
        d
    });
    let written = store
        .commit(|tx| {
            tx.put(CURSORS, name.as_bytes(), &cursor)?;
            if let Some(d) = &draft {
                tx.append(d.clone())?;
            }
            Ok(())
        })
        .await;
    if let Err(e) = written {
        tracing::error!(notify = %name, error = %e, "cannot save the receiver's place in the outbox");
    }
}

fn log_give_up(name: &str, m: &Message, f: &Failure) {
    tracing::error!(
        notify = %name,
        key = %m.key,
        event = m.kind.as_str(),
        release_id = m.release,
        environment = m.environment.as_deref(),
        reason = f.reason,
        "notification given up: {}",
        f.detail
    );
}

/// Sleeps `d`; says whether the daemon began closing meanwhile.
async fn pause(closing: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *closing.borrow(),
        _ = closing.changed() => true,
    }
}
