//! The builder: plans and realises derivations from the store, as many at once as allowed.
//!
//! A build flows through three parts: [`plan`] reads `.drv` files from the store and works out
//! which derivations have outputs missing (and nothing more: a derivation whose outputs are
//! valid is not even opened further); [`schedule`] runs the missing ones in dependency order on
//! a rayon pool, at most `jobs` at once, each as soon as its inputs are ready; an [`Executor`]
//! runs one builder process and hands back its status, and the scheduler registers the
//! outputs. Everything a user sees leaves as [`Event`]s for the command line to draw.

mod error;
mod event;
mod executor;
mod explain;
mod fetch;
mod local;
mod log;
mod plan;
mod repair;
mod resolve;
mod run;
mod sandbox;
mod schedule;

pub use error::Error;
pub use event::{Event, Status, Summary};
pub use executor::{ExecOutcome, Executor, Job};
pub use explain::explain;
pub use local::{LocalExecutor, kill_running_builds};
pub use log::{log_path, read_log};
pub use plan::{Node, Plan, Reason};
pub use repair::{RepairReport, repair};
pub use resolve::{Resolved, needs_resolution};
pub use run::{CheckReport, CheckedOutput};
pub use sandbox::{SandboxArgs, SandboxExecutor, sandbox_main};
pub use schedule::{Options, build, check};
