//! Submitting a candidate: checked (pipeline, metadata, candidate,
//! attachments) before anything is stored, then one transaction that either
//! finds the release this submission already started or starts a new one.

use super::start::missing_plugins;
use super::{Daemon, Error};
use crate::pipeline::attachment;
use crate::pipeline::candidate;
use crate::pipeline::holds;
use crate::pipeline::release::{Release, ReleaseId, ReleaseReads, ReleaseWrites};
use crate::store::audit::{Draft, EventKind};
use crate::store::{Refusal, refuse};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where the store's meta tree keeps the release each idempotency key
/// started.
const IDEMPOTENCY_PREFIX: &str = "idempotency/";
const MAX_IDEMPOTENCY_KEY: usize = 128;

fn check_idempotency_key(key: &str) -> Result<(), Error> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::IdempotencyKey(format!(
            "idempotency key {:?} must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces",
            crate::plugins::clip_to(key.to_string(), 40)
        )));
    }
    Ok(())
}

impl Daemon {
    /// Starts a release of `bytes` down `pipeline`, or returns the release
    /// an earlier submit with the same idempotency key started (open or
    /// finished), or else the unfinished release of the same bytes on it.
    /// Returns (release, deduplicated, known).
    pub async fn submit(
        self: &Arc<Self>,
        actor: &str,
        pipeline: &str,
        bytes: Vec<u8>,
        metadata: BTreeMap<String, String>,
        attachments: BTreeMap<String, Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<(Release, bool, bool), Error> {
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let pipeline = self.pipeline(pipeline)?;
        check_metadata(&metadata)?;
        self.registry.installed().await;
        if let Some(m) = missing_plugins(pipeline, &self.rt.plugins)
            .into_iter()
            .next()
        {
            return Err(Error::MissingPlugin {
                pipeline: pipeline.name.clone(),
                user: m.user,
                plugin: m.plugin,
                problem: m.problem,
            });
        }
        let candidate = candidate::validate(bytes)?;
        let attachments = attachment::validate(attachments)?;
        let known = self
            .rt
            .store
            .put_candidate(&candidate.digest, &candidate.bytes)?;
        for (reference, bytes) in &attachments {
            self.rt.store.put_attachment(&reference.digest, bytes)?;
        }
        let attached: Vec<_> = attachments.into_iter().map(|(r, _)| r).collect();
        // The check for an unfinished release of the same bytes and the
        // creation of a new one are one transaction, so two CI retries racing
        // each other still start a single release.
        // Read before the commit: used only where the id counter is absent.
        let floor = self.rt.store.release_id_floor()?;
        let (release, deduplicated) = self
            .rt
            .store
            .commit(|tx| {
                let keyed = idempotency_key.map(|k| format!("{IDEMPOTENCY_PREFIX}{k}"));
                if let Some(key) = &keyed
                    && let Some(id) = tx.meta(key)?
                {
                    let id = ReleaseId(u64::from_be_bytes(
                        id.as_slice().try_into().unwrap_or_default(),
                    ));
                    let existing = tx.release(id)?;
                    if existing.candidate != candidate.digest
                        || existing.pipeline.name != pipeline.name
                    {
                        return refuse(Refusal::Precondition(format!(
                            "idempotency key {:?} was used for release {id} ({} on pipeline {}); make a new key for a different submission",
                            idempotency_key.unwrap_or_default(),
                            existing.candidate.short(),
                            existing.pipeline.name
                        )));
                    }
                    return Ok((existing, true));
                }
                let remember = |id: ReleaseId| match &keyed {
                    Some(key) => tx.put_meta(key, &id.0.to_be_bytes()),
                    None => Ok(()),
                };
                if let Some(existing) = tx.open_release_of(&candidate.digest, &pipeline.name)? {
                    remember(existing)?;
                    return Ok((tx.release(existing)?, true));
                }
                let id = tx.next_release_id(floor)?;
                remember(id)?;
                let mut r = Release::new(
                    id,
                    pipeline.clone(),
                    candidate.digest,
                    metadata.clone(),
                    actor.to_string(),
                    tx.now_ms(),
                );
                r.attachments = attached.clone();
                holds::put_release(tx, &r)?;
                tx.append(
                    Draft::new(
                        EventKind::ReleaseSubmitted,
                        actor,
                        format!(
                            "release {id} submitted: {} on pipeline {}",
                            candidate.digest.short(),
                            pipeline.name
                        ),
                    )
                    .release(id.0, r.phase.name())
                    .detail(serde_json::json!({
                        "digest": candidate.digest,
                        "pipeline": pipeline.name,
                        "metadata": metadata,
                        "attachments": attached,
                        "candidate_known": known,
                    })),
                )?;
                Ok((r, false))
            })
            .await?;
        if !deduplicated {
            self.spawn(release.id);
        }
        Ok((release, deduplicated, known))
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), Error> {
    if metadata.len() > 64 {
        return Err(Error::Metadata {
            key: String::new(),
            problem: format!("{} entries, over the limit of 64", metadata.len()),
        });
    }
    for (k, v) in metadata {
        let problem = if k.is_empty() || k.len() > 128 {
            Some("keys must be 1 to 128 bytes")
        } else if v.len() > 4096 {
            Some("values must be at most 4096 bytes")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::Metadata {
                key: k.clone(),
                problem: problem.to_string(),
            });
        }
    }
    Ok(())
}
