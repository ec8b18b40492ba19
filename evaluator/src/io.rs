//! The evaluator's only door to the outside world: [`EvalIo`], implemented by the command line
//! (real files and the real store) and by [`PlainIo`] (real files, a fake store) for tests.
//!
//! Messages for the user (`trace`, `warn`) also leave through this trait, so the library never
//! prints.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;

/// What kind of file a path is, as `builtins.readFileType` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else.
    Unknown,
}

impl FileType {
    /// The name Nix gives this type.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }
}

/// What `derivationStrict` hands to the store: a derivation with its output paths not yet
/// computed (the environment variables named after outputs are empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivationRequest {
    /// The derivation's name.
    pub name: String,
    /// The output names, in the order given.
    pub outputs: Vec<String>,
    /// For a fixed-output derivation: the algorithm (`sha256`, or `r:sha256` when the hash is
    /// over a NAR) and the expected hash in hexadecimal.
    pub fixed: Option<(String, String)>,
    /// Input derivations (absolute `.drv` paths) with the outputs used.
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    /// Input sources (absolute store paths).
    pub input_srcs: BTreeSet<String>,
    /// The system to build on.
    pub platform: String,
    /// The program to run.
    pub builder: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The environment, including `name`, `builder`, `system`, `outputs` and one empty
    /// variable per output.
    pub env: BTreeMap<String, String>,
}

/// Where the store put a derivation: its `.drv` path and the path of every output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivationPaths {
    /// The absolute path of the `.drv` file.
    pub drv_path: String,
    /// The absolute path of each output, by name.
    pub outputs: BTreeMap<String, String>,
}

/// File system, store and user-message access for the evaluator.
pub trait EvalIo {
    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether a path exists (a final symlink need not point anywhere).
    fn path_exists(&self, path: &Path) -> bool;
    /// Whether a path is a directory, following symlinks.
    fn is_dir(&self, path: &Path) -> bool;
    /// The type of a path, not following a final symlink.
    fn file_type(&self, path: &Path) -> io::Result<FileType>;
    /// The entries of a directory with their types (not following symlinks).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>>;
    /// The store directory, e.g. `/nix/store`.
    fn store_dir(&self) -> String;
    /// Adds a path to the store and returns its store path. Paths in `excluded` (and what is
    /// below them) are left out; `recursive` is false for flat files; `name` overrides the
    /// base name.
    fn add_path_to_store(
        &self,
        path: &Path,
        name: Option<&str>,
        recursive: bool,
        excluded: &[std::path::PathBuf],
    ) -> io::Result<String>;
    /// Adds a text file with the given references and returns its store path (`toFile`).
    fn add_text_to_store(&self, name: &str, text: &[u8], refs: &[String]) -> io::Result<String>;
    /// Computes the output paths of a derivation, writes its `.drv` file to the store and
    /// returns the paths.
    fn write_derivation(&self, drv: &DerivationRequest) -> io::Result<DerivationPaths>;
    /// Shows a message for the user (a `trace:` line, a warning), already formatted with its
    /// prefix; it may span several lines.
    fn report(&self, text: &str);
    /// The value of an environment variable (`builtins.getEnv`).
    fn get_env(&self, name: &str) -> Option<String>;
    /// Makes everything added to the store so far durable and visible to other processes (a
    /// store may register what evaluation writes in batches).
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Real files, a fake store and messages kept in memory: for tests and tools that need no store.
#[derive(Default)]
pub struct PlainIo {
    /// Messages reported (traces, warnings), in order.
    pub messages: std::cell::RefCell<Vec<String>>,
}

impl PlainIo {
    /// A fake store path: `/nix/store/<hash>-<name>`, where the hash is a deterministic
    /// non-cryptographic hash of the input, not what a real store would compute.
    pub fn fake_store_path(name: &str, data: &[u8]) -> String {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in data.iter().chain(name.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let alphabet = b"0123456789abcdfghijklmnpqrsvwxyz";
        let mut s = String::new();
        let mut x = h;
        for i in 0..32 {
            if i % 12 == 0 {
                x = x.wrapping_mul(0x9e3779b97f4a7c15) ^ h.rotate_left(i);
            }
            s.push(alphabet[(x % 32) as usize] as char);
            x /= 32;
        }
        format!("/nix/store/{s}-{name}")
    }
}

fn to_file_type(ft: std::fs::FileType) -> FileType {
    if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_file() {
        FileType::Regular
    } else {
        FileType::Unknown
    }
}

impl EvalIo for PlainIo {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(to_file_type(std::fs::symlink_metadata(path)?.file_type()))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                to_file_type(entry.file_type()?),
            ));
        }
        out.sort();
        Ok(out)
    }

    fn store_dir(&self) -> String {
        "/nix/store".into()
    }

    fn add_path_to_store(
        &self,
        path: &Path,
        name: Option<&str>,
        _recursive: bool,
        excluded: &[std::path::PathBuf],
    ) -> io::Result<String> {
        let base = name.map(str::to_string).unwrap_or_else(|| {
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        });
        std::fs::symlink_metadata(path)?;
        let mut data =
            std::fs::read(path).unwrap_or_else(|_| path.to_string_lossy().as_bytes().to_vec());
        for e in excluded {
            data.extend_from_slice(e.to_string_lossy().as_bytes());
        }
        Ok(Self::fake_store_path(&base, &data))
    }

    fn add_text_to_store(&self, name: &str, text: &[u8], _refs: &[String]) -> io::Result<String> {
        Ok(Self::fake_store_path(name, text))
    }

    fn write_derivation(&self, drv: &DerivationRequest) -> io::Result<DerivationPaths> {
        // Fake paths from a fake hash: the real ones come from kiln-store (see `store-paths.md`).
        let text = format!("{drv:?}");
        let drv_path = Self::fake_store_path(&format!("{}.drv", drv.name), text.as_bytes());
        let outputs = drv
            .outputs
            .iter()
            .map(|o| {
                let name = if o == "out" { drv.name.clone() } else { format!("{}-{o}", drv.name) };
                let path = match &drv.fixed {
                    Some((algo, hash)) => {
                        Self::fake_store_path(&name, format!("fixed:{algo}:{hash}").as_bytes())
                    }
                    None => Self::fake_store_path(&name, format!("{drv_path}!{o}").as_bytes()),
                };
                (o.clone(), path)
            })
            .collect();
        Ok(DerivationPaths { drv_path, outputs })
    }

    fn report(&self, text: &str) {
        self.messages.borrow_mut().push(text.to_string());
    }

    fn get_env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
