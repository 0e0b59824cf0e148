//! What the native integration tests share: where the test models are, and a per-test
//! output directory under target/ (tests never write next to the shared models).
//!
//! A missing model skips the case with a message on stderr, unless
//! `LLAMA2_REQUIRE_FIXTURES=1` (CI), where it fails the test.
#![allow(dead_code)] // each test file uses its own part of this module

use std::path::PathBuf;

pub mod corrupt;

/// `LLAMA2_MODELS`, else `../shared/models` next to the crate.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("LLAMA2_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models"),
    }
}

/// The golden files, beside the models directory (as build.sh finds them).
pub fn golden_dir() -> PathBuf {
    models_dir().join("../golden")
}

/// The path of test model `name`, or None (after saying so) when it is missing.
/// Panics instead when `LLAMA2_REQUIRE_FIXTURES=1`.
pub fn fixture(name: &str) -> Option<PathBuf> {
    find(models_dir(), name)
}

/// Like [`fixture`], for a file of the golden directory.
pub fn golden(name: &str) -> Option<PathBuf> {
    find(golden_dir(), name)
}

fn find(dir: PathBuf, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    let message = format!("skipping: {name} not found in {}", dir.display());
    if std::env::var("LLAMA2_REQUIRE_FIXTURES").as_deref() == Ok("1") {
        panic!("{message} (LLAMA2_REQUIRE_FIXTURES=1)");
    }
    // Straight to stderr, not through eprintln!, which libtest captures and drops for a test
    // that passes: the line must reach the log that ./build.sh test counts skips in. On a line
    // of its own, whatever libtest printed before it.
    use std::io::Write;
    let _ = write!(std::io::stderr().lock(), "\n{message}\n");
    None
}

/// The bytes of test model `name` (see [`fixture`]).
pub fn fixture_bytes(name: &str) -> Option<Vec<u8>> {
    fixture(name)
        .map(|path| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A fresh, empty directory for the outputs of test `test`, under target/.
pub fn out_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-out").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
