//! Helpers for unit tests that run a second process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A private directory holding a zero-filled 4096-byte file `words`, for
/// two processes to map; removed when dropped.
pub(crate) struct SharedWords {
    dir: PathBuf,
    /// The file.
    pub(crate) path: PathBuf,
}

impl SharedWords {
    /// Creates it; `tag` names the test in the directory's name.
    pub(crate) fn new(tag: &str) -> SharedWords {
        let dir = std::env::temp_dir().join(format!(
            "memlane-{tag}-{}-{}",
            std::process::id(),
            crate::name::unique_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("words");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        SharedWords { dir, path }
    }

    /// Runs this test binary again, only the test `test`, with `env` set
    /// to the file's path (the child's cue to play its part).
    pub(crate) fn spawn_child(&self, test: &str, env: &str) -> Child {
        spawn_test(test, env, &self.path)
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_test(test: &str, env: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "-q"])
        .env(env, path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}
