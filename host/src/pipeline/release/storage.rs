//! How releases are kept: one record per release by id, and an index of
//! the releases not yet terminal by (candidate digest, pipeline), kept in
//! step by [`ReleaseWrites::put_release`] in the same transaction.

use super::{Release, ReleaseId};
use crate::digest::Digest;
use crate::store::{self, Range, Refusal, Store, Table, Tx, TxResult, decode, key_u64, refuse};

/// id (big-endian) → release.
pub const RELEASES: Table = Table("releases");
/// (candidate digest, pipeline) → id, for releases not yet terminal.
pub const OPEN_RELEASES: Table = Table("open_releases");
/// The id of the last release created (a store counter).
const RELEASE_COUNTER: &str = "last_release_id";

fn open_key(digest: &Digest, pipeline: &str) -> Vec<u8> {
    let mut k = digest.0.to_vec();
    k.extend_from_slice(pipeline.as_bytes());
    k
}

/// Reading releases outside a transaction.
pub trait ReleaseReads {
    fn release(&self, id: ReleaseId) -> Result<Option<Release>, store::Error>;
    /// Newest first.
    fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, store::Error>;
    /// Releases that have not reached a terminal phase, oldest first.
    fn unfinished_releases(&self) -> Result<Vec<ReleaseId>, store::Error>;
    /// The highest release id stored: where ids start for a data directory
    /// from before the id counter (see [`ReleaseWrites::next_release_id`]).
    fn release_id_floor(&self) -> Result<u64, store::Error>;
}

impl ReleaseReads for Store {
    fn release(&self, id: ReleaseId) -> Result<Option<Release>, store::Error> {
        self.get(RELEASES, &id.0.to_be_bytes(), || format!("release {id}"))
    }

    fn releases(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<Release>, store::Error> {
        let mut out = Vec::new();
        for item in self.rows(RELEASES, Range::All, true)? {
            let (key, bytes) = item?;
            let r: Release = decode(&bytes, || format!("release {}", key_u64(&key)))?;
            if pipeline.is_none_or(|p| p == r.pipeline.name) {
                out.push(r);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn unfinished_releases(&self) -> Result<Vec<ReleaseId>, store::Error> {
        let mut ids = Vec::new();
        for item in self.rows(OPEN_RELEASES, Range::All, false)? {
            let (_, id) = item?;
            ids.push(ReleaseId(key_u64(&id)));
        }
        ids.sort();
        Ok(ids)
    }

    fn release_id_floor(&self) -> Result<u64, store::Error> {
        match self.rows(RELEASES, Range::All, true)?.next() {
            Some(item) => Ok(key_u64(&item?.0)),
            None => Ok(0),
        }
    }
}

/// Reading and writing releases inside a transaction.
pub trait ReleaseWrites {
    /// The release, refused as not found when there is none.
    fn release(&self, id: ReleaseId) -> TxResult<Release>;
    /// The id for a new release: one more than the last, in the same
    /// transaction that stores it, so ids stay dense across restarts and a
    /// refused submit uses none. `floor` is [`ReleaseReads::release_id_floor`]
    /// read before the commit, for a data directory from before the counter.
    fn next_release_id(&self, floor: u64) -> TxResult<ReleaseId>;
    /// Writes the release and keeps the index of unfinished releases in step.
    fn put_release(&self, r: &Release) -> TxResult<()>;
    /// The unfinished release of these bytes on this pipeline, if one runs.
    fn open_release_of(&self, digest: &Digest, pipeline: &str) -> TxResult<Option<ReleaseId>>;
}

impl ReleaseWrites for Tx<'_> {
    fn release(&self, id: ReleaseId) -> TxResult<Release> {
        match self.get(RELEASES, &id.0.to_be_bytes(), || format!("release {id}"))? {
            Some(r) => Ok(r),
            None => refuse(Refusal::NotFound(format!(
                "release {id} does not exist; `gatehouse status` lists releases"
            ))),
        }
    }

    fn next_release_id(&self, floor: u64) -> TxResult<ReleaseId> {
        self.next_id(RELEASE_COUNTER, floor).map(ReleaseId)
    }

    fn put_release(&self, r: &Release) -> TxResult<()> {
        self.put(RELEASES, &r.id.0.to_be_bytes(), r)?;
        let key = open_key(&r.candidate, &r.pipeline.name);
        if r.phase.is_terminal() {
            self.remove(OPEN_RELEASES, &key)
        } else {
            self.put_raw(OPEN_RELEASES, &key, &r.id.0.to_be_bytes())
        }
    }

    fn open_release_of(&self, digest: &Digest, pipeline: &str) -> TxResult<Option<ReleaseId>> {
        Ok(self
            .get_raw(OPEN_RELEASES, &open_key(digest, pipeline))?
            .map(|v| ReleaseId(key_u64(&v))))
    }
}
