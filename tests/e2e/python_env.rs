//! The Python the end-to-end tests and the benchmarks drive clients with:
//! PyPI's packages pinned in `tests/python/requirements.txt`, in a virtual
//! environment under the target directory. A file of its own so that a
//! benchmark can include it (`#[path]`) without the rest of the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A Python with `tests/python/requirements.txt` installed from PyPI, in a
/// virtual environment under the target directory, made once and shared by
/// every run built there (a file lock keeps two from building it at once).
/// Panics with what failed: a test that needs it never skips.
pub fn python() -> PathBuf {
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/requirements.txt");
    let pins = std::fs::read(&requirements).expect("read tests/python/requirements.txt");
    let digest = gatehouse::digest::Digest::of(&pins).hex();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python");
    std::fs::create_dir_all(&root).expect("create the Python directory");
    let lock = std::fs::File::create(root.join("lock")).expect("create the lock file");
    lock.lock().expect("lock the Python directory");
    let venv = root.join(&digest[..16]);
    let python = venv.join("bin/python");
    let done = venv.join("installed");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                out.status.success(),
                "{what} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (the README's test path needs Python 3 with venv)",
        );
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/python/requirements.txt (from PyPI)",
        );
        std::fs::write(&done, &pins).expect("mark the environment installed");
    }
    python
}
