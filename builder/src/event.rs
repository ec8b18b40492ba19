//! What the builder reports while it works: one stream of events, drawn by the command line.

use std::collections::BTreeMap;
use std::time::Duration;

use kiln_store::StorePath;

use crate::plan::Reason;

/// How one build ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The builder succeeded and its outputs were registered.
    Built,
    /// Another process built it while this one waited for the outputs' locks.
    BuiltElsewhere,
    /// Its inputs came out as in an earlier build, whose outputs are reused (early cutoff).
    CutOff,
    /// The build failed; the message says why.
    Failed(String),
    /// It was not started because an input failed (or, without `--keep-going`, anything did).
    Skipped,
}

/// One thing that happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// What will be built, and why, before anything runs.
    Plan { to_build: Vec<(StorePath, Reason)>, valid: usize },
    /// A build started.
    Started { drv: StorePath },
    /// A line the builder printed.
    Log { drv: StorePath, line: String },
    /// A build ended.
    Finished { drv: StorePath, status: Status, duration: Duration, log: Option<std::path::PathBuf> },
}

/// The totals at the end.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Derivations built by this process.
    pub built: usize,
    /// Derivations whose outputs were already valid (here or built by another process).
    pub reused: usize,
    /// Derivations not rebuilt because their inputs came out unchanged.
    pub cut_off: usize,
    /// Derivations that failed.
    pub failed: usize,
    /// Derivations not started because of a failure.
    pub skipped: usize,
    /// Wall time.
    pub duration: Duration,
    /// The outputs of the requested derivations, by derivation and output name.
    pub outputs: BTreeMap<StorePath, BTreeMap<String, StorePath>>,
    /// The failures, with their messages.
    pub failures: Vec<(StorePath, String)>,
}
