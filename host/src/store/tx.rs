//! A transaction under construction: typed records over the backend's
//! tables, the audit chain's next link, id counters.
//!
//! Rules: every read and write goes through the backend's transaction, so
//! whatever the body decided on is compared at commit; an event appended
//! here is sealed to the head the same transaction read, so the chain has
//! no fork; a record that cannot be decoded refuses the transaction rather
//! than being overwritten blind.

use super::audit::{AuditEvent, Draft, Head};
use super::backend::{Abort, Table, Txn};
use super::{EVENTS, HEAD_KEY, META, RELEASE_EVENTS, Refusal, TxResult, encode, key_u64, refuse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// A transaction under construction: typed access to every table.
pub struct Tx<'a> {
    pub(super) txn: &'a dyn Txn,
    pub(super) now_ms: i64,
    /// The events appended, announced once the transaction is durable.
    pub(super) sealed: RefCell<Vec<AuditEvent>>,
}

impl Tx<'_> {
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// A record of `table` as the transaction sees it. One that cannot be
    /// decoded refuses the transaction, naming it by `what`.
    pub fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        key: &[u8],
        what: impl Fn() -> String,
    ) -> TxResult<Option<T>> {
        match self.txn.get(table, key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).or_else(|e| {
                refuse(Refusal::Precondition(format!(
                    "{} cannot be read from the store: {e}",
                    what()
                )))
            }),
        }
    }

    /// The raw bytes of a record, for callers that judge them themselves.
    pub fn get_raw(&self, table: Table, key: &[u8]) -> TxResult<Option<Vec<u8>>> {
        self.txn.get(table, key)
    }

    pub fn put<T: Serialize>(&self, table: Table, key: &[u8], record: &T) -> TxResult<()> {
        self.txn.put(table, key, &encode(record)?)
    }

    pub fn put_raw(&self, table: Table, key: &[u8], value: &[u8]) -> TxResult<()> {
        self.txn.put(table, key, value)
    }

    pub fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.txn.remove(table, key)
    }

    /// The next id of `counter`: one more than the last, in the same
    /// transaction that uses it, so ids stay dense across restarts and a
    /// refused transaction uses none. A counter not yet written starts
    /// after `floor` (what a data directory from before the counter holds).
    pub fn next_id(&self, counter: &str, floor: u64) -> TxResult<u64> {
        let last = match self.txn.get(META, counter.as_bytes())? {
            Some(v) => key_u64(&v),
            None => floor,
        };
        let id = last + 1;
        self.txn.put(META, counter.as_bytes(), &id.to_be_bytes())?;
        Ok(id)
    }

    /// Appends an event to the audit log, linked to the newest one.
    pub fn append(&self, draft: Draft) -> TxResult<AuditEvent> {
        let head: Head = match self.txn.get(META, HEAD_KEY)? {
            None => Head::default(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| {
                Abort::Refused(Refusal::Precondition(format!(
                    "the audit head cannot be read ({e}); run `gatehouse audit verify`"
                )))
            })?,
        };
        // Never earlier than the event before, even if the clock stepped back.
        let at_ms = self.now_ms.max(head.at_ms);
        let event = AuditEvent::seal(draft, head.seq + 1, at_ms, head.hash);
        let seq = event.seq.to_be_bytes();
        self.txn.put(EVENTS, &seq, &encode(&event)?)?;
        if let Some(id) = event.release {
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&seq);
            self.txn.put(RELEASE_EVENTS, &key, &[])?;
        }
        let new_head = Head {
            seq: event.seq,
            hash: event.hash.clone(),
            at_ms,
        };
        self.txn.put(META, HEAD_KEY, &encode(&new_head)?)?;
        self.sealed.borrow_mut().push(event.clone());
        Ok(event)
    }

    /// The newest event's sequence number (0 for an empty log).
    pub fn head_seq(&self) -> TxResult<u64> {
        match self.txn.get(META, HEAD_KEY)? {
            None => Ok(0),
            Some(b) => serde_json::from_slice::<Head>(&b)
                .map(|h| h.seq)
                .map_err(|e| {
                    Abort::Refused(Refusal::Precondition(format!(
                        "the audit head cannot be read ({e}); run `gatehouse audit verify`"
                    )))
                }),
        }
    }

    pub fn meta(&self, key: &str) -> TxResult<Option<Vec<u8>>> {
        self.txn.get(META, key.as_bytes())
    }

    pub fn put_meta(&self, key: &str, value: &[u8]) -> TxResult<()> {
        self.txn.put(META, key.as_bytes(), value)
    }
}
