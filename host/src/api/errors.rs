//! The one place domain errors become gRPC statuses.

use crate::configstore;
use crate::daemon::Error;
use crate::plugins::registry;
use crate::store::{self, Refusal};
use tonic::Status;

pub fn status(e: Error) -> Status {
    let message = e.to_string();
    match e {
        Error::UnknownPipeline { .. } | Error::NoJudgement { .. } => Status::not_found(message),
        Error::Drill { .. } => Status::failed_precondition(message),
        Error::Candidate(_)
        | Error::Attachment(_)
        | Error::Metadata { .. }
        | Error::IdempotencyKey(_) => Status::invalid_argument(message),
        Error::Environment(configstore::Error::UnknownEnvironment { .. }) => {
            Status::not_found(message)
        }
        Error::Environment(configstore::Error::Store(s)) | Error::Store(s) => store_status(s),
        Error::Pipeline(_) | Error::DuplicatePipeline(_) => Status::failed_precondition(message),
        Error::Plugin(_)
        | Error::Signing(_)
        | Error::MissingPlugin { .. }
        | Error::Adapter { .. } => Status::failed_precondition(message),
        Error::Registry(e) => registry_status(e),
        Error::Metrics(_) | Error::Notify(_) => Status::internal(message),
    }
}

pub fn registry_status(e: registry::Error) -> Status {
    let message = e.to_string();
    match e {
        registry::Error::Invalid(_) => Status::invalid_argument(message),
        registry::Error::Untrusted(_) => Status::permission_denied(message),
        registry::Error::NotFound(_) => Status::not_found(message),
        registry::Error::Busy(_) => Status::resource_exhausted(message),
        registry::Error::Unavailable(_) => Status::unavailable(message),
        registry::Error::Store(s) => store_status(s),
    }
}

fn store_status(e: store::Error) -> Status {
    let message = e.to_string();
    match e {
        store::Error::Refused(Refusal::NotFound(_)) => Status::not_found(message),
        store::Error::Refused(Refusal::Precondition(_)) => Status::failed_precondition(message),
        store::Error::Refused(Refusal::Stale(_)) => Status::aborted(format!("{message}; retry")),
        store::Error::Refused(Refusal::Follower { leader }) => follower(message, leader),
        store::Error::Storage(e) if e.full_disk => Status::resource_exhausted(format!(
            "the data directory's disk is full ({e}); free at least {} MiB there, nothing was changed",
            store::SPACE_NEEDED_MIB
        )),
        store::Error::Stopped(f) if f.space => Status::resource_exhausted(message),
        store::Error::Stopped(_) => Status::unavailable(message),
        store::Error::NoStore(_) | store::Error::Held(_) => Status::failed_precondition(message),
        store::Error::Storage(_) | store::Error::Corrupt { .. } => Status::internal(message),
    }
}

/// UNAVAILABLE, so a client with several addresses tries the next one; the
/// leader's address, when known, also in the `gatehouse-leader` header.
pub fn follower(message: String, leader: Option<String>) -> Status {
    let mut status = Status::unavailable(message);
    if let Some(value) = leader.and_then(|l| l.parse().ok()) {
        status.metadata_mut().insert(LEADER_HEADER, value);
    }
    status
}

/// Response metadata naming the leader, on writes a follower refuses.
pub const LEADER_HEADER: &str = "gatehouse-leader";
