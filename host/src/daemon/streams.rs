//! What a watcher of a release sees, as streams the API only converts: the
//! release's events, and its canary's judgements.
//!
//! Rules: a release stream subscribes before it replays the log, so no
//! event falls between the two; one that falls behind the bus catches up
//! from the store, in order, with none twice; it ends with the event that
//! ends the release. A judgement stream gives the newest judgement (each
//! stands on its own, so a slow watcher skips, never queues) and, when the
//! canary ended without handing over its last one (an abort, an operator's
//! rollback), the one the log holds. Both end when the daemon stops.

use super::{Daemon, Error};
use crate::canary::live::Snapshot;
use crate::ids::{PhaseName, ReleaseId};
use crate::store::audit::AuditEvent;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

/// One judgement to show, and whether it is the final one read from the
/// log after its canary ended.
pub struct Judged {
    pub snapshot: Arc<Snapshot>,
    pub recorded_final: bool,
}

impl Daemon {
    /// `id`'s events: those logged, then each as it commits.
    pub fn watch_release(
        self: &Arc<Self>,
        id: ReleaseId,
    ) -> Result<impl Stream<Item = Result<AuditEvent, Error>> + Send + 'static, Error> {
        let mut bus = self.subscribe();
        let past = self.events_of(id)?;
        let daemon = self.clone();
        Ok(self.feed(move |tx| async move {
            let mut last = 0;
            for e in past {
                last = e.seq;
                let end = ends_release(&e);
                if tx.send(Ok(e)).await.is_err() || end {
                    return;
                }
            }
            // Ended meanwhile: its last events came after `past` was read.
            if daemon.release(id).is_ok_and(|r| r.phase.is_terminal()) {
                for e in daemon.events_of(id).unwrap_or_default() {
                    if e.seq > last && tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
                return;
            }
            loop {
                let batch = match bus.recv().await {
                    Ok(e) if e.release == Some(id.0) && e.seq > last => vec![(*e).clone()],
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => match daemon.events_of(id) {
                        Ok(all) => all.into_iter().filter(|e| e.seq > last).collect(),
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    },
                    Err(RecvError::Closed) => return,
                };
                for e in batch {
                    last = e.seq;
                    let end = ends_release(&e);
                    if tx.send(Ok(e)).await.is_err() || end {
                        return;
                    }
                }
            }
        }))
    }

    /// `id`'s canary judgements: the newest while it runs, then the last.
    pub fn watch_judgement(
        self: &Arc<Self>,
        id: ReleaseId,
    ) -> Result<impl Stream<Item = Judged> + Send + 'static, Error> {
        let mut live = match self.judgement_feed(id)? {
            super::JudgementFeed::Live(rx) => rx,
            super::JudgementFeed::Ended(last) => {
                let snapshot = match last {
                    Some(s) => s,
                    None => self.judgement(id)?,
                };
                let (tx, rx) = mpsc::channel(1);
                let _ = tx.try_send(Judged {
                    snapshot,
                    recorded_final: false,
                });
                return Ok(ReceiverStream::new(rx));
            }
        };
        let daemon = self.clone();
        Ok(self.feed(move |tx| async move {
            let mut sent_at = None;
            loop {
                let current = live.borrow_and_update().clone();
                if let Some(snapshot) = current {
                    sent_at = Some(snapshot.at_ms);
                    let last = snapshot.last;
                    let judged = Judged {
                        snapshot,
                        recorded_final: false,
                    };
                    if tx.send(judged).await.is_err() || last {
                        return;
                    }
                }
                if live.changed().await.is_err() {
                    break;
                }
            }
            if let Ok(Some(snapshot)) = daemon.recorded_judgement(id)
                && sent_at != Some(snapshot.at_ms)
            {
                let _ = tx
                    .send(Judged {
                        snapshot,
                        recorded_final: true,
                    })
                    .await;
            }
        }))
    }

    /// A stream fed by a task; the task stops when the watcher goes away or
    /// the daemon is stopping.
    pub fn feed<T, F, Fut>(&self, body: F) -> ReceiverStream<T>
    where
        T: Send + 'static,
        F: FnOnce(mpsc::Sender<T>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(64);
        let feed = body(tx);
        let closed = self.closed();
        tokio::spawn(async move {
            tokio::select! {
                _ = feed => {}
                _ = closed => {}
            }
        });
        ReceiverStream::new(rx)
    }
}

fn ends_release(e: &AuditEvent) -> bool {
    use PhaseName::*;
    matches!(e.phase, Some(Succeeded | Failed | RolledBack | Aborted))
}
