//! Replacing a file so that a reader, or the daemon after a crash, sees the
//! old bytes or the new ones, never a mix.
//!
//! The bytes go to a temporary file in the same directory, which is synced
//! and then renamed over the target: a rename within one directory is atomic
//! on POSIX filesystems. The directory is synced afterwards where the
//! platform allows, so the rename itself survives a power cut. The temporary
//! names are fixed (`.NAME.tmp`), so a write interrupted by a crash leaves at
//! most one stray file, which the next write of the same name replaces; one
//! writer per environment is assumed, as the daemon drives one release per
//! environment at a time.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Writes `bytes` to `dir/name` atomically.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let fail = |step: &str, e: std::io::Error| {
        format!(
            "cannot {step} {} ({e}); check that the directory is granted writable (manifest [[files]] writable = true) and has space",
            target.display()
        )
    };
    let mut file = File::create(&temporary).map_err(|e| fail("create a temporary file for", e))?;
    file.write_all(bytes).map_err(|e| fail("write", e))?;
    file.sync_all().map_err(|e| fail("sync", e))?;
    drop(file);
    fs::rename(&temporary, &target).map_err(|e| fail("replace", e))?;
    sync_dir(dir);
    Ok(())
}

/// Removes `dir/name`; a file already gone is not an error.
pub fn remove(dir: &Path, name: &str) -> Result<(), String> {
    let target = dir.join(name);
    match fs::remove_file(&target) {
        Ok(()) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot remove {} ({e}); check that the directory is granted writable",
            target.display()
        )),
    }
}

/// Reads `dir/name`; `None` when there is no such file.
pub fn read(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, String> {
    let target = dir.join(name);
    match fs::read(&target) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read {} ({e}); check that the directory is granted to the adapter",
            target.display()
        )),
    }
}

/// Makes a rename in `dir` durable. Best effort: not every platform (nor
/// every WASI host) opens directories as files or syncs them, and the
/// rename is already atomic without it.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), "active.json", b"one").expect("written");
        write(dir.path(), "active.json", b"two").expect("rewritten");
        assert_eq!(read(dir.path(), "active.json"), Ok(Some(b"two".to_vec())));
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("listed")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["active.json"]);
    }

    #[test]
    fn a_stray_temporary_from_a_crash_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(".active.json.tmp"), b"half a wr").expect("stray");
        write(dir.path(), "active.json", b"whole").expect("written");
        assert!(!dir.path().join(".active.json.tmp").exists());
        assert_eq!(read(dir.path(), "active.json"), Ok(Some(b"whole".to_vec())));
    }

    #[test]
    fn missing_files_read_as_none_and_remove_quietly() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(dir.path(), "canary.json"), Ok(None));
        assert_eq!(remove(dir.path(), "canary.json"), Ok(()));
    }

    #[test]
    fn a_missing_directory_says_to_grant_it_writable() {
        let err = write(Path::new("/no/such/deploy/dir"), "active.json", b"x").unwrap_err();
        assert!(err.contains("writable = true"), "{err}");
    }
}
