//! Running a builder process on this machine, in its own process group, with exactly the
//! environment it is given.
//!
//! This is `--no-sandbox`: the builder sees the whole host. The sandbox (`sandbox.rs`) runs the
//! same way, through a helper process that sets up namespaces first.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use kiln_store::{Store, StorePath};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::Error;
use crate::executor::{ExecOutcome, Executor, Job};

/// Runs builders directly on the host, writing outputs at their final store paths.
pub struct LocalExecutor<'s> {
    store: &'s Store,
}

impl<'s> LocalExecutor<'s> {
    /// Returns an executor for builds whose outputs go to `store`.
    pub fn new(store: &'s Store) -> LocalExecutor<'s> {
        LocalExecutor { store }
    }
}

impl Executor for LocalExecutor<'_> {
    fn run(&self, job: &Job<'_>, log: &mut dyn FnMut(&str)) -> Result<ExecOutcome, Error> {
        let mut cmd = Command::new(job.builder);
        cmd.args(job.args)
            .env_clear()
            .envs(&job.env)
            .current_dir(job.build_dir)
            .stdin(Stdio::null());
        run_logged(cmd, job.builder, log)
    }

    fn output_location(&self, _job: &Job<'_>, path: &StorePath) -> PathBuf {
        self.store.locate(path)
    }
}

/// Runs a command in its own process group with stdout and stderr merged into `log`, line by
/// line; when it exits, whatever it left running in its group is killed.
pub(crate) fn run_logged(
    mut cmd: Command,
    what: &str,
    log: &mut dyn FnMut(&str),
) -> Result<ExecOutcome, Error> {
    let io = |op| move |source| Error::Io { op, path: PathBuf::from(what), source };
    let (reader, writer) = std::io::pipe().map_err(io("create a pipe for"))?;
    cmd.stdout(writer.try_clone().map_err(io("create a pipe for"))?)
        .stderr(writer)
        .process_group(0);
    let mut child = cmd.spawn().map_err(io("run the builder"))?;
    // The command keeps copies of the pipe's write end; drop them so the read end sees the end
    // of the output once the process group is gone.
    drop(cmd);
    let pgid = Pid::from_raw(child.id() as i32);
    running().insert(pgid.as_raw());

    let status = std::thread::scope(|scope| {
        let waiter = scope.spawn(move || {
            let status = child.wait();
            let _ = killpg(pgid, Signal::SIGKILL);
            running().remove(&pgid.as_raw());
            status
        });
        let mut lines = BufReader::new(reader);
        let mut buf = Vec::new();
        while lines.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            let line = String::from_utf8_lossy(&buf);
            log(line.trim_end_matches('\n'));
            buf.clear();
        }
        waiter.join().expect("the waiting thread does not panic")
    });
    let status = status.map_err(io("wait for the builder"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(0), _) => ExecOutcome::Success,
        (Some(code), _) => ExecOutcome::Failure(format!("the builder exited with status {code}")),
        (None, Some(sig)) => {
            ExecOutcome::Failure(format!("the builder was killed by signal {sig}"))
        }
        (None, None) => ExecOutcome::Failure("the builder ended abnormally".into()),
    })
}

/// The process groups of the builds running now.
fn running() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    static RUNNING: std::sync::Mutex<std::collections::BTreeSet<i32>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every running build's process group (for Ctrl-C). What they wrote is not registered,
/// so the store stays valid; the next build of the same derivations starts afresh.
pub fn kill_running_builds() {
    for pgid in std::mem::take(&mut *running()) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}
