//! The builder's error type.

use std::path::PathBuf;

/// What can go wrong while planning or building.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    #[error("`{drv}` is not a derivation (its name does not end in `.drv`)")]
    NotADerivation { drv: String },
    #[error("cannot {op} `{path}`")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the dependency graph has a cycle through `{drv}`")]
    Cycle { drv: String },
}

/// Returns an error's message followed by its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}
