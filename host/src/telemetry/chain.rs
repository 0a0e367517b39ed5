//! The audit chain, walked at start and then every few minutes, so a
//! tampered or damaged log is seen without anyone running `gatehouse audit
//! verify`: `/metrics` shows it, and receivers that asked are told.

use crate::store::Store;
use crate::store::audit::Verification;
use std::time::Duration;
use tokio::sync::watch;

/// How often the chain is walked.
pub const EVERY: Duration = Duration::from_secs(300);

/// Walks the chain now and every `every` until the daemon closes; the
/// receiver holds the latest finding (none before the first walk ends).
pub fn spawn(
    store: Store,
    every: Duration,
    closed: impl std::future::Future<Output = ()> + Send + 'static,
) -> watch::Receiver<Option<Verification>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let walk = async {
            loop {
                let s = store.clone();
                match tokio::task::spawn_blocking(move || s.verify_audit()).await {
                    Ok(Ok(v)) => {
                        if let Verification::Broken { seq, problem, .. } = &v {
                            tracing::error!(seq, "the audit chain does not verify: {problem}");
                        }
                        tx.send_replace(Some(v));
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot walk the audit chain"),
                    Err(e) => tracing::warn!(error = %e, "walking the audit chain panicked"),
                }
                tokio::time::sleep(every).await;
            }
        };
        tokio::select! {
            () = walk => {}
            () = closed => {}
        }
    });
    rx
}
