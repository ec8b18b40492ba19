//! The one interface between the scheduler and whatever runs a builder process: inputs,
//! command, environment and expected outputs in; status out, with log lines on the way.
//!
//! The local executor runs the process on this machine; another (remote) executor implements
//! the same trait without the scheduler changing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kiln_store::StorePath;

use crate::Error;

/// One build to run.
#[derive(Debug)]
pub struct Job<'a> {
    /// The derivation being built.
    pub drv_path: &'a StorePath,
    /// The program to run and its arguments.
    pub builder: &'a str,
    pub args: &'a [String],
    /// The whole environment of the process.
    pub env: BTreeMap<String, String>,
    /// A fresh, empty, writable folder to run in.
    pub build_dir: &'a Path,
    /// The store paths the build may read: the closure of its inputs.
    pub inputs: &'a BTreeSet<StorePath>,
    /// The outputs it must produce, by name.
    pub outputs: &'a BTreeMap<String, StorePath>,
}

/// How the builder process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Exit status 0.
    Success,
    /// Another exit status, or death by a signal, described for the user.
    Failure(String),
}

/// Runs builder processes.
pub trait Executor: Sync {
    /// Runs the job to the end, passing each line it prints to `log`.
    fn run(&self, job: &Job<'_>, log: &mut dyn FnMut(&str)) -> Result<ExecOutcome, Error>;

    /// Returns where the output `path` is found after `run` succeeded.
    fn output_location(&self, job: &Job<'_>, path: &StorePath) -> PathBuf;

    /// Tells whether outputs are made away from their store paths (in a sandbox), so that a
    /// rebuild of a valid derivation cannot touch the registered outputs.
    fn isolates_outputs(&self) -> bool {
        false
    }

    /// Returns the folder that the builder sees as its build folder.
    fn build_dir_inside(&self, job: &Job<'_>) -> PathBuf {
        job.build_dir.to_owned()
    }
}
