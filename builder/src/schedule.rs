//! Running a plan: builds start as soon as their inputs are ready, at most `jobs` at once.
//!
//! One coordinator (the calling thread) owns all state and emits every event; builds run on a
//! rayon pool of `jobs` threads and report back through a channel, log lines included, so the
//! coordinator never blocks a build and a chatty build cannot stall the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kiln_store::{BuildTrace, LockFile, Store, StorePath};

use crate::Error;
use crate::event::{Event, Status, Summary};
use crate::executor::{ExecOutcome, Executor, Job};
use crate::plan::Plan;

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many builds may run at once.
    pub jobs: usize,
    /// How many cores each build is told it may use (`NIX_BUILD_CORES`).
    pub cores: usize,
    /// Build every branch that does not depend on a failure, instead of stopping new work.
    pub keep_going: bool,
    /// Keep the build folder of a failed build.
    pub keep_failed: bool,
}

impl Default for Options {
    fn default() -> Options {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options { jobs: cores, cores, keep_going: false, keep_failed: false }
    }
}

enum Msg {
    Log(usize, String),
    Done(usize, Status, Duration, Option<PathBuf>),
}

/// Builds what the plan says is missing and returns the summary; `events` sees everything.
pub fn build(
    store: &Store,
    plan: &Plan,
    options: &Options,
    executor: &dyn Executor,
    events: &mut dyn FnMut(Event),
) -> Result<Summary, Error> {
    let started = Instant::now();
    let to_build: Vec<usize> = plan.to_build().map(|(i, _)| i).collect();
    events(Event::Plan {
        to_build: to_build
            .iter()
            .map(|&i| {
                (plan.nodes[i].drv_path.clone(), plan.nodes[i].reason.clone().expect("to build"))
            })
            .collect(),
        valid: plan.nodes.len() - to_build.len(),
    });

    let mut summary = Summary { reused: plan.nodes.len() - to_build.len(), ..Summary::default() };
    let mut waiting: BTreeMap<usize, usize> =
        to_build.iter().map(|&i| (i, plan.nodes[i].deps.len())).collect();
    let mut dependents: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &to_build {
        for &d in &plan.nodes[i].deps {
            dependents.entry(d).or_default().push(i);
        }
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs.max(1))
        .thread_name(|i| format!("kiln-build-{i}"))
        .build()
        .expect("a thread pool can be created");
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Msg>();

    pool.in_place_scope(|scope| {
        let mut running = 0usize;
        let start = |i: usize, running: &mut usize, events: &mut dyn FnMut(Event)| {
            *running += 1;
            events(Event::Started { drv: plan.nodes[i].drv_path.clone() });
            let tx = tx.clone();
            let stop = &stop;
            scope.spawn(move |_| {
                let t0 = Instant::now();
                let (status, log) = if stop.load(Ordering::SeqCst) {
                    (Status::Skipped, None)
                } else {
                    let mut send_log = |line: &str| {
                        let _ = tx.send(Msg::Log(i, line.to_owned()));
                    };
                    run_one(store, plan, i, options, executor, &mut send_log)
                };
                let _ = tx.send(Msg::Done(i, status, t0.elapsed(), log));
            });
        };

        let ready: Vec<usize> = waiting.iter().filter(|(_, n)| **n == 0).map(|(i, _)| *i).collect();
        for i in ready {
            waiting.remove(&i);
            start(i, &mut running, events);
        }
        while running > 0 {
            let msg = rx.recv().expect("a running build always reports");
            let (i, status, duration, log) = match msg {
                Msg::Log(i, line) => {
                    events(Event::Log { drv: plan.nodes[i].drv_path.clone(), line });
                    continue;
                }
                Msg::Done(i, status, duration, log) => (i, status, duration, log),
            };
            running -= 1;
            match &status {
                Status::Built => summary.built += 1,
                Status::BuiltElsewhere => summary.reused += 1,
                Status::Failed(message) => {
                    summary.failed += 1;
                    summary.failures.push((plan.nodes[i].drv_path.clone(), message.clone()));
                    if !options.keep_going {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Status::Skipped => summary.skipped += 1,
            }
            let ok = matches!(status, Status::Built | Status::BuiltElsewhere);
            events(Event::Finished { drv: plan.nodes[i].drv_path.clone(), status, duration, log });

            // Dependents of a failure never start; the others start once all inputs are done.
            for &d in dependents.get(&i).map(Vec::as_slice).unwrap_or_default() {
                if !ok {
                    skip_dependents(d, &dependents, &mut waiting, &mut summary);
                    continue;
                }
                if let Some(n) = waiting.get_mut(&d) {
                    *n -= 1;
                    if *n == 0 && !stop.load(Ordering::SeqCst) {
                        waiting.remove(&d);
                        start(d, &mut running, events);
                    }
                }
            }
        }
        summary.skipped += waiting.len();
    });

    for &r in &plan.roots {
        summary.outputs.insert(plan.nodes[r].drv_path.clone(), plan.outputs_of(r));
    }
    summary.duration = started.elapsed();
    Ok(summary)
}

fn skip_dependents(
    i: usize,
    dependents: &BTreeMap<usize, Vec<usize>>,
    waiting: &mut BTreeMap<usize, usize>,
    summary: &mut Summary,
) {
    if waiting.remove(&i).is_none() {
        return;
    }
    summary.skipped += 1;
    for &d in dependents.get(&i).map(Vec::as_slice).unwrap_or_default() {
        skip_dependents(d, dependents, waiting, summary);
    }
}

/// Builds one derivation: lock its outputs, run the builder, register the outputs.
fn run_one(
    store: &Store,
    plan: &Plan,
    i: usize,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
) -> (Status, Option<PathBuf>) {
    let node = &plan.nodes[i];
    let log_path = store.root().join("logs").join(format!("{}.log", node.drv_path));
    match try_build(store, plan, i, options, executor, log, &log_path) {
        Ok(status) => (status, Some(log_path)),
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            (Status::Failed(message), Some(log_path).filter(|p| p.exists()))
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BuildFailure {
    #[error("{0}")]
    Builder(String),
    #[error("the builder did not produce output `{output}` at `{path}`")]
    MissingOutput { output: String, path: String },
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<kiln_store::Error> for BuildFailure {
    fn from(e: kiln_store::Error) -> Self {
        BuildFailure::Other(Error::Store(e))
    }
}

fn try_build(
    store: &Store,
    plan: &Plan,
    i: usize,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &std::path::Path,
) -> Result<Status, BuildFailure> {
    let node = &plan.nodes[i];
    let drv = &node.drv;
    let outputs = plan.outputs_of(i);

    // Hold every output's lock (in a fixed order, so two processes cannot deadlock) from now
    // until the outputs are registered; another process may have built them meanwhile.
    let _locks: Vec<LockFile> =
        outputs.values().map(|p| store.lock_path(p)).collect::<Result<_, _>>()?;
    let mut all_valid = true;
    for p in outputs.values() {
        all_valid &= store.is_valid(p)?;
    }
    if all_valid && outputs.len() == drv.outputs.len() {
        return Ok(Status::BuiltElsewhere);
    }
    for (p, lock) in outputs.values().zip(&_locks) {
        store.clear_invalid(p, lock)?;
    }

    // The inputs: sources, and the outputs the derivation asks of its input derivations.
    let mut input_roots: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
    for (input, wanted) in &drv.input_drvs {
        let input_drv = match plan.node(input) {
            Some(n) => n.drv.clone(),
            None => store.read_derivation(input)?,
        };
        for name in wanted {
            if let Some(p) = input_drv.outputs.get(name).and_then(|o| o.path.clone()) {
                input_roots.push(p);
            }
        }
    }
    let inputs: BTreeSet<StorePath> = store.closure(&input_roots)?.0.into_iter().collect();

    let build_dir = tempfile::Builder::new()
        .prefix(&format!("build-{}-", node.drv_path.name().trim_end_matches(".drv")))
        .tempdir_in(store.root().join("tmp"))
        .map_err(|source| Error::Io {
            op: "create a build folder in",
            path: store.root().join("tmp"),
            source,
        })?;
    let mut job = Job {
        drv_path: &node.drv_path,
        builder: &drv.builder,
        args: &drv.args,
        env: BTreeMap::new(),
        build_dir: build_dir.path(),
        inputs: &inputs,
        outputs: &outputs,
    };
    job.env = environment(store, drv, &executor.build_dir_inside(&job), options);

    let mut log_file = std::fs::File::create(log_path).map_err(|source| Error::Io {
        op: "create the build log",
        path: log_path.to_owned(),
        source,
    })?;
    let t0 = Instant::now();
    let outcome = executor.run(&job, &mut |line| {
        use std::io::Write;
        let _ = writeln!(log_file, "{line}");
        log(line);
    })?;
    if let ExecOutcome::Failure(message) = outcome {
        if options.keep_failed {
            let kept = build_dir.keep();
            return Err(BuildFailure::Builder(format!(
                "{message}; its build folder is kept at `{}`",
                kept.display()
            )));
        }
        return Err(BuildFailure::Builder(message));
    }

    let mut built = Vec::new();
    for (name, path) in &outputs {
        let location = executor.output_location(&job, path);
        if std::fs::symlink_metadata(&location).is_err() {
            return Err(BuildFailure::MissingOutput {
                output: name.clone(),
                path: store.render(path),
            });
        }
        built.push((location, path.clone()));
    }
    let infos = store.register_built_outputs(&built, &inputs, &node.drv_path)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    for (name, info) in outputs.keys().zip(&infos) {
        store.record_build(&BuildTrace {
            drv_path: node.drv_path.clone(),
            output: name.clone(),
            output_path: info.path.clone(),
            nar_hash: info.nar_hash,
            finished_at: now,
            duration_ms: t0.elapsed().as_millis() as u64,
        })?;
    }
    Ok(Status::Built)
}

/// The builder's environment: the derivation's attributes plus a fixed set of variables, and
/// nothing from the environment kiln itself runs in.
fn environment(
    store: &Store,
    drv: &kiln_store::Derivation,
    build_dir: &std::path::Path,
    options: &Options,
) -> BTreeMap<String, String> {
    let mut env = drv.env.clone();
    let dir = build_dir.to_string_lossy().into_owned();
    for key in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP"] {
        env.insert(key.into(), dir.clone());
    }
    env.insert("HOME".into(), "/homeless-shelter".into());
    env.insert("PATH".into(), "/path-not-set".into());
    env.insert("TZ".into(), "UTC".into());
    env.insert("SOURCE_DATE_EPOCH".into(), "1".into());
    env.insert("NIX_STORE".into(), store.dir().as_str().into());
    env.insert("NIX_BUILD_CORES".into(), options.cores.to_string());
    env
}
