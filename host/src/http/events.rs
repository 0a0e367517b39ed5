//! `GET /events`: the audit log as server-sent events, live, for any role;
//! the same stream `WatchRelease` is cut from, over every release.
//!
//! Rules: each event's SSE id is its sequence number. A client that
//! reconnects sends `Last-Event-ID` (browsers do by themselves) or asks
//! `?from=SEQ`, and gets every event after it from the log, then live ones,
//! none twice and none missed: the stream subscribes before it reads the
//! log. One that falls behind the live bus catches up from the log too.
//! The stream ends when the daemon stops.

use super::Surface;
use super::session::Viewer;
use super::views;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::{Stream, StreamExt};

fn frame(e: &crate::store::audit::AuditEvent) -> Event {
    Event::default()
        .id(e.seq.to_string())
        .event("audit")
        .data(views::event(e).to_string())
}

/// Where the client left off, if it says.
fn resume_after(headers: &HeaderMap, uri: &Uri) -> Option<u64> {
    let from_query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "from")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(|from| from.saturating_sub(1));
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(from_query)
}

pub async fn events(
    State(s): State<Surface>,
    _v: Viewer,
    headers: HeaderMap,
    uri: Uri,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut bus = s.daemon.subscribe();
    let after = resume_after(&headers, &uri);
    let daemon = s.daemon.clone();
    let frames = s.daemon.feed(move |tx| async move {
        // 0 means "only what comes from now on".
        let mut last = after.unwrap_or(0);
        let read_after = |last: u64| -> Vec<(u64, Event)> {
            daemon
                .events_from(last + 1)
                .map_while(Result::ok)
                .map(|e| (e.seq, frame(&e)))
                .collect()
        };
        let mut pending = match after {
            Some(after) => read_after(after),
            None => Vec::new(),
        };
        loop {
            for (seq, f) in pending.drain(..) {
                last = last.max(seq);
                if tx.send(f).await.is_err() {
                    return;
                }
            }
            match bus.recv().await {
                Ok(e) if e.seq > last => pending.push((e.seq, frame(&e))),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) if last > 0 => pending = read_after(last),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    Sse::new(frames.map(Ok)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
