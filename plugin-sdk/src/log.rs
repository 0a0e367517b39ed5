//! Writing into the daemon's log from a plugin: `log::info("...")`.
//!
//! Lines land inside the span of the release and gate being judged. A plugin
//! that logs should list `"log"` in its capabilities
//! ([`Description::with_capability`](crate::Description::with_capability)).
//! Off WebAssembly (native unit tests of plugin logic) there is no host, so
//! lines go to standard error instead.

pub use crate::bindings::gate::gatehouse::plugin::log::Level;

/// Writes `message` at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::gate::gatehouse::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{level:?}: {message}");
}

/// Detail only useful while writing the plugin.
pub fn trace(message: &str) {
    write(Level::Trace, message);
}

/// Detail useful while diagnosing a verdict.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// A step worth seeing in normal operation.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Something a person should look at.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Something went wrong in the plugin itself.
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_off_wasm_does_not_reach_for_the_host() {
        info("native logging goes to stderr");
        write(Level::Error, "and does not trap");
    }
}
