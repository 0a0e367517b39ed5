//! Which plugin names a pipeline may use, checked as it loads, and the
//! did-you-mean for a name one typo from a known one.

use super::BUILTIN_ADAPTER;
use std::collections::BTreeSet;

/// The plugin names a pipeline is checked against as it loads: those the
/// daemon has or will install as it starts (embedded, stored, in its plugin
/// directory). A name that is none of them but close to one is a typo,
/// refused at its line with a did-you-mean. A name far from all of them may
/// be a plugin pushed later (a pipeline and its new plugin often land
/// together): it loads, the daemon warns, and its releases are refused until
/// the plugin is there.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub gates: BTreeSet<String>,
    pub adapters: BTreeSet<String>,
}

/// Which kind of plugin a pipeline names at a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    Gate,
    Adapter,
}

impl Catalog {
    /// Whether `name` may stand where a plugin of kind `used` is named; if
    /// not, why, naming the fix.
    pub(super) fn check(&self, name: &str, used: Use) -> Result<(), String> {
        let (own, other, what, a_what, other_a_what) = match used {
            Use::Gate => (
                &self.gates,
                &self.adapters,
                "gate plugin",
                "a gate plugin",
                "an adapter",
            ),
            Use::Adapter => (
                &self.adapters,
                &self.gates,
                "adapter",
                "an adapter",
                "a gate plugin",
            ),
        };
        if own.contains(name) || (used == Use::Adapter && name == BUILTIN_ADAPTER) {
            return Ok(());
        }
        let known = || own.iter().cloned().collect::<Vec<_>>().join(", ");
        if other.contains(name) {
            return Err(format!(
                "{name:?} is {other_a_what}, not {a_what}; {what}s known here: {}",
                known()
            ));
        }
        match did_you_mean(name, own) {
            Some(near) => Err(format!(
                "{what} {name:?} is not known; did you mean {near:?}? ({what}s known here: {})",
                known()
            )),
            None => Ok(()),
        }
    }
}

/// The known name `name` is most likely a typo of: at most two edits away,
/// and not a whole different word.
pub fn did_you_mean<'a>(
    name: &str,
    known: impl IntoIterator<Item = &'a String>,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(distance, k)| *distance <= 2 && *distance < k.chars().count().max(1) / 2 + 1)
        .min()
        .map(|(_, k)| k.as_str())
}
