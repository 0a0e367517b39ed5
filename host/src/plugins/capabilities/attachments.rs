//! The files CI attached to a submission, as gates read them.
//!
//! Not a capability to grant: attachments are part of what is judged (the
//! candidate's outputs on a golden dataset, say) and reach nothing outside
//! the daemon, so every gate may read them. Link: `gatehouse:plugin/attachments`.
//! Prepare: each evaluation puts the release's attachments, and those of the
//! release that made the incumbent live, into its store; other calls see none.

use crate::plugins::sandbox::CallState;
use crate::plugins::world::latest::gatehouse::plugin::attachments::{Host, Owner};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Attached files by name.
pub type Files = BTreeMap<String, Arc<Vec<u8>>>;

/// What one evaluation may read.
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    pub candidate: Files,
    pub incumbent: Files,
}

impl Attachments {
    fn of(&self, owner: Owner) -> &Files {
        match owner {
            Owner::Candidate => &self.candidate,
            Owner::Incumbent => &self.incumbent,
        }
    }
}

impl Host for CallState {
    async fn names(&mut self, owner: Owner) -> wasmtime::Result<Vec<String>> {
        Ok(self.attachments.of(owner).keys().cloned().collect())
    }

    /// The copy handed to the plugin counts against the call's memory
    /// budget: a file larger than what is left fails the call as out of
    /// memory before anything is copied.
    async fn get(&mut self, owner: Owner, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let Some(bytes) = self.attachments.of(owner).get(&name).cloned() else {
            return Ok(None);
        };
        self.fits(bytes.len())?;
        Ok(Some(bytes.to_vec()))
    }
}
