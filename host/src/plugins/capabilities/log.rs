//! Capability "log": a plugin's lines go into the daemon's tracing log,
//! inside the span of the release and gate being judged.
//!
//! Grant: `"log"` in the manifest's capabilities; nothing to configure.
//! Link: `gatehouse:plugin/log`. Prepare: a line counter per call, so a
//! chatty plugin cannot flood the daemon's log.

use crate::plugins::sandbox::CallState;
use crate::plugins::world::latest::gatehouse::plugin::log::{Host, Level};

/// Log lines one call may write; the rest are counted and dropped.
pub const MAX_LINES: u32 = 100;
pub const MAX_LINE_BYTES: usize = 1024;

impl Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > MAX_LINES {
            if self.log_lines == MAX_LINES + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin log limit reached; further lines dropped");
            }
            return Ok(());
        }
        // Clipped, then escaped: a `\n` in a plugin's line must not forge a
        // line of the daemon's own log.
        let message =
            crate::plugins::escape_controls(&crate::plugins::clip_to(message, MAX_LINE_BYTES));
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}
