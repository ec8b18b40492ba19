//! Helpers shared by the end-to-end tests: running `kiln` against a store and reading what it
//! printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary folder with a store root inside it, removed when dropped.
pub(crate) struct TestStore {
    pub(crate) tmp: tempfile::TempDir,
}

impl TestStore {
    pub(crate) fn new() -> TestStore {
        TestStore { tmp: tempfile::tempdir().expect("create a temporary folder") }
    }

    /// The store root.
    pub(crate) fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    /// A scratch path beside the store.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A `kiln` command with `--store` set to this store.
    pub(crate) fn kiln(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("--store").arg(self.root()).env_remove("KILN_LOG");
        cmd
    }

    /// Runs `kiln` with `args`, asserts success and returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.kiln().args(args).output().expect("run kiln");
        assert_success(&out, &args);
        String::from_utf8(out.stdout).expect("stdout is UTF-8")
    }

    /// Runs `kiln` with `args`, asserts it failed with `code` and returns stderr.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.kiln().args(args).output().expect("run kiln");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "kiln {args:?} should fail with {code}; stderr:\n{stderr}"
        );
        stderr
    }

    /// Runs `kiln build --json` in the scratch folder and returns its events (one JSON object
    /// per line), asserting that it succeeded or, if not `succeed`, that it failed.
    pub(crate) fn build_json(&self, args: &[&str], succeed: bool) -> Vec<serde_json::Value> {
        let out = self
            .kiln()
            .arg("build")
            .arg("--json")
            .args(args)
            .current_dir(self.tmp.path())
            .output()
            .unwrap();
        if succeed {
            assert_success(&out, &args);
        } else {
            assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Writes a Nix file in the scratch folder, with `@mk@` replaced by [`MK`], and returns
    /// its path.
    pub(crate) fn nix_file(&self, name: &str, text: &str) -> String {
        let file = self.scratch(name);
        write(&file, text.replace("@mk@", MK).as_bytes());
        file.to_str().expect("a UTF-8 temporary folder").to_owned()
    }

    /// Opens the store through the library, as a second view of what the commands did.
    pub(crate) fn open(&self) -> kiln_store::Store {
        kiln_store::Store::open(&self.root()).expect("open the store")
    }
}

pub(crate) fn assert_success(out: &Output, what: &dyn std::fmt::Debug) {
    assert!(
        out.status.success(),
        "{what:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a file, creating its folder.
pub(crate) fn write(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("create a folder");
    std::fs::write(path, contents).expect("write a file");
}

/// Returns the path of CppNix's `nix-store` if it is installed, saying so when it is not.
pub(crate) fn nix_store() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nix-store"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!(
            "nix-store (Debian's nix-bin) is not installed: comparing with kiln's own expected bytes only"
        );
    }
    found
}

/// Returns the summary, the last of a build's JSON events.
pub(crate) fn summary(events: &[serde_json::Value]) -> &serde_json::Value {
    events.last().filter(|e| e["event"] == "summary").expect("a build ends with its summary")
}

/// A Nix binding for test files: `mk name script` is a derivation that runs `script` with the
/// host's `/bin/sh` and tools in `PATH`.
pub(crate) const MK: &str = r#"mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/bin:/usr/bin";
    __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
  };"#;

/// Returns the `out` path of the first derivation a build's summary lists.
pub(crate) fn first_out(events: &[serde_json::Value]) -> String {
    let outs = summary(events)["outputs"].as_object().expect("outputs by derivation");
    outs.values().next().expect("one derivation")["out"].as_str().expect("an out").to_owned()
}
