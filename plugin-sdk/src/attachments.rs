//! Files CI attached to a submission: `attachments::get(Owner::Candidate,
//! "outputs.jsonl")`.
//!
//! A gate reads the candidate's attachments (its outputs on a golden
//! dataset, latency samples) and the incumbent's (what the live
//! configuration answered when it was released, for paired comparisons).
//! They need no capability: they are part of what is judged. Off WebAssembly
//! there is no host; native unit tests attach files with
//! [`crate::testing::attach`], which only the calling thread sees.

pub use crate::bindings::gate::gatehouse::plugin::attachments::Owner;

/// The bytes of the file `name` attached to `owner`'s submission.
pub fn get(owner: Owner, name: &str) -> Option<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::gate::gatehouse::plugin::attachments::get(owner, name);
    #[cfg(not(target_arch = "wasm32"))]
    native::get(owner, name)
}

/// Names of the files attached to `owner`'s submission, sorted.
pub fn names(owner: Owner) -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::gate::gatehouse::plugin::attachments::names(owner);
    #[cfg(not(target_arch = "wasm32"))]
    native::names(owner)
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native {
    //! Attachments of native unit tests, per thread so tests run in parallel.

    use super::Owner;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static FILES: RefCell<BTreeMap<(bool, String), Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
    }

    fn key(owner: Owner) -> bool {
        matches!(owner, Owner::Incumbent)
    }

    pub fn set(owner: Owner, name: &str, bytes: Vec<u8>) {
        FILES.with(|f| f.borrow_mut().insert((key(owner), name.to_string()), bytes));
    }

    pub fn clear() {
        FILES.with(|f| f.borrow_mut().clear());
    }

    pub fn get(owner: Owner, name: &str) -> Option<Vec<u8>> {
        FILES.with(|f| f.borrow().get(&(key(owner), name.to_string())).cloned())
    }

    pub fn names(owner: Owner) -> Vec<String> {
        FILES.with(|f| {
            f.borrow()
                .keys()
                .filter(|(o, _)| *o == key(owner))
                .map(|(_, n)| n.clone())
                .collect()
        })
    }
}
