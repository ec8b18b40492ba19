//! The store's error type: every variant names the path or store path and the operation.

use std::io;
use std::path::PathBuf;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid store folder `{path}`: {reason}")]
    BadStoreDir { path: PathBuf, reason: &'static str },
    #[error("invalid store path name `{name}`: {reason}")]
    BadName { name: String, reason: String },
    #[error("invalid store path `{path}`: {reason}")]
    BadStorePath { path: String, reason: &'static str },
    #[error("`{path}` is not in the store `{store}`")]
    NotInStore { path: String, store: String },
    #[error("`{path}` is not a valid path in the store")]
    NotValid { path: String },
    #[error(
        "cannot store `{path}`: it is a {kind}; only regular files, folders and symlinks can be stored"
    )]
    UnsupportedFileType { path: PathBuf, kind: &'static str },
    #[error("cannot store `{path}`: a file name in it is not valid UTF-8 or contains a NUL")]
    BadFileName { path: PathBuf },
    #[error("`{path}` changed while it was being added to the store")]
    ChangedWhileAdding { path: PathBuf },
    #[error("the store's database `{path}` failed while {op}")]
    Db {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store's database `{path}` has schema version {found}, newer than this kiln knows ({known}); use a newer kiln"
    )]
    SchemaTooNew { path: PathBuf, found: i64, known: i64 },
    #[error("the store's database `{path}` is inconsistent: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("reference `{reference}` of `{path}` is not a valid path in the store")]
    MissingReference { path: String, reference: String },
    #[error("malformed derivation `{path}` at byte {offset}: {message}")]
    BadDerivation { path: String, offset: usize, message: String },
    #[error("the outputs `{outputs}` refer to each other in a cycle")]
    OutputCycle { outputs: String },
    #[error(
        "`{path}` is damaged: {problem}; `kiln store verify --repair` rebuilds it where it can"
    )]
    Damaged { path: String, problem: String },
    #[error("the new copy of `{path}` hashes to {found}, not to the registered {expected}")]
    RepairMismatch { path: String, expected: String, found: String },
    #[error("unknown setting `{name}`; the settings are: {known}")]
    UnknownSetting { name: String, known: String },
    #[error("setting `{name}` takes {wanted}, not `{value}`")]
    BadSetting { name: String, value: String, wanted: &'static str },
    #[error("malformed archive at byte {offset}: {message}")]
    BadNar { offset: u64, message: String },
}

/// Adds the path and the operation to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, Error>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, Error> {
        self.map_err(|source| Error::Io { op, path: path.into(), source })
    }
}
