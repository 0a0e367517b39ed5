//! Replacing a file so that a reader, or the daemon after a crash, sees the
//! old bytes or the new ones, never a mix.
//!
//! The bytes go to a temporary file in the same directory, which is synced
//! and then renamed over the target: a rename within one directory is atomic
//! on POSIX filesystems. The directory is synced afterwards where the
//! platform allows, so the rename itself survives a power cut.
//!
//! Each write creates its own temporary file (`.NAME.SUFFIX.tmp`, created
//! exclusively), so writers that meet in one directory (two calls, a second
//! daemon, a person with a script) never write into or rename away each
//! other's file: the last rename wins, whole. A write interrupted by a
//! crash leaves its temporary behind; the next write of the same name
//! removes those that are more than [`STRAY_AFTER`] older than its own.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temporary this much older than a new one is left from a crash: no
/// write takes that long.
pub const STRAY_AFTER: Duration = Duration::from_secs(600);

/// Writes `bytes` to `dir/name` atomically.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let target = dir.join(name);
    let fail = |step: &str, e: std::io::Error| {
        format!(
            "cannot {step} {} ({e}); check that the directory is granted writable (manifest [[files]] writable = true) and has space",
            target.display()
        )
    };
    let (temporary, mut file) =
        create_temporary(dir, name).map_err(|e| fail("create a temporary file for", e))?;
    let written = file
        .write_all(bytes)
        .map_err(|e| fail("write", e))
        .and_then(|()| file.sync_all().map_err(|e| fail("sync", e)));
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    drop(file);
    if let Err(e) =
        written.and_then(|()| fs::rename(&temporary, &target).map_err(|e| fail("replace", e)))
    {
        let _ = fs::remove_file(&temporary);
        return Err(e);
    }
    sync_dir(dir);
    if let Some(modified) = modified {
        remove_strays(dir, name, modified);
    }
    Ok(())
}

/// A new temporary file for `name` in `dir`, created exclusively.
fn create_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let seed = RandomState::new();
    let mut last = None;
    for attempt in 0u64..64 {
        let suffix = seed.hash_one(attempt);
        let path = dir.join(format!(".{name}.{suffix:016x}.tmp"));
        match File::create_new(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Removes temporaries of `name` written well before `now` (the time the
/// filesystem gave the one just written): they are left from crashes.
fn remove_strays(dir: &Path, name: &str, now: std::time::SystemTime) {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !(file.starts_with(&prefix) && file.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age > STRAY_AFTER));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    fn a_stray_temporary_from_a_crash_is_removed_and_a_fresh_one_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stray = dir.path().join(".active.json.00000000000000aa.tmp");
        fs::write(&stray, b"half a wr").expect("stray");
        let old = std::time::SystemTime::now() - STRAY_AFTER * 2;
        File::options()
            .write(true)
            .open(&stray)
            .and_then(|f| f.set_modified(old))
            .expect("aged");
        // Another writer's temporary, in flight: not ours to remove.
        let in_flight = dir.path().join(".active.json.00000000000000bb.tmp");
        fs::write(&in_flight, b"on its way").expect("in flight");
        write(dir.path(), "active.json", b"whole").expect("written");
        assert!(!stray.exists());
        assert!(in_flight.exists());
        assert_eq!(read(dir.path(), "active.json"), Ok(Some(b"whole".to_vec())));
    }

    #[test]
    fn writers_meeting_in_one_directory_each_replace_the_file_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writers: Vec<_> = (0..8u8)
            .map(|n| {
                let dir = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        write(&dir, "previous.json", &[b'a' + n; 4096])?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer").expect("every write succeeds");
        }
        let bytes = read(dir.path(), "previous.json")
            .expect("read")
            .expect("file");
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "a mix of writers");
        let left: Vec<_> = fs::read_dir(dir.path()).expect("listed").collect();
        assert_eq!(left.len(), 1, "temporaries left behind");
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
