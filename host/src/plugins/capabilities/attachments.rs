//! The files CI attached to a submission, as gates read them.
//!
//! Not a capability to grant: attachments are part of what is judged (the
//! candidate's outputs on a golden dataset, say) and reach nothing outside
//! the daemon, so every gate may read them. Link: `gatehouse:plugin/attachments`.
//! Prepare: each evaluation puts the release's attachments, and those of the
//! release that made the incumbent live, into its store; other calls see none.

use crate::plugins::sandbox::CallState;
use crate::plugins::world::v0_1::gatehouse::plugin::attachments::{Host, Owner};
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
    fn names(&mut self, owner: Owner) -> Vec<String> {
        self.attachments.of(owner).keys().cloned().collect()
    }

    fn get(&mut self, owner: Owner, name: String) -> Option<Vec<u8>> {
        self.attachments
            .of(owner)
            .get(&name)
            .map(|bytes| bytes.to_vec())
    }
}
