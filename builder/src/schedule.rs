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

use kiln_store::{
    BuildTrace, LockFile, Store, StorePath, output_path_name, own_placeholder, scratch_path,
};

use crate::Error;
use crate::event::{Event, Status, Summary};
use crate::executor::{ExecOutcome, Executor, Job};
use crate::fetch;
use crate::log::{LogWriter, log_path};
use crate::plan::{Node, Plan};
use crate::resolve::{Resolver, needs_resolution};

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
    /// Where `builtin:fetchurl` looks first: folders or `http://` URLs.
    pub mirrors: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options { jobs: cores, cores, keep_going: false, keep_failed: false, mirrors: Vec::new() }
    }
}

enum Msg {
    Log(usize, String),
    Done(usize, Outcome, Duration),
}

/// How one build ended, with the outputs it realised.
struct Outcome {
    status: Status,
    log: Option<PathBuf>,
    realised: BTreeMap<String, StorePath>,
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
    let resolver = Resolver::new(store);
    let mut realised: BTreeMap<usize, BTreeMap<String, StorePath>> = BTreeMap::new();

    pool.in_place_scope(|scope| {
        let mut running = 0usize;
        let start = |i: usize, running: &mut usize, events: &mut dyn FnMut(Event)| {
            *running += 1;
            events(Event::Started { drv: plan.nodes[i].drv_path.clone() });
            let tx = tx.clone();
            let stop = &stop;
            let resolver = &resolver;
            scope.spawn(move |_| {
                let t0 = Instant::now();
                let outcome = if stop.load(Ordering::SeqCst) {
                    Outcome { status: Status::Skipped, log: None, realised: BTreeMap::new() }
                } else {
                    let mut send_log = |line: &str| {
                        let _ = tx.send(Msg::Log(i, line.to_owned()));
                    };
                    run_one(store, resolver, plan, i, options, executor, &mut send_log)
                };
                let _ = tx.send(Msg::Done(i, outcome, t0.elapsed()));
            });
        };

        let ready: Vec<usize> = waiting.iter().filter(|(_, n)| **n == 0).map(|(i, _)| *i).collect();
        for i in ready {
            waiting.remove(&i);
            start(i, &mut running, events);
        }
        while running > 0 {
            let msg = rx.recv().expect("a running build always reports");
            let (i, Outcome { status, log, realised: outputs }, duration) = match msg {
                Msg::Log(i, line) => {
                    events(Event::Log { drv: plan.nodes[i].drv_path.clone(), line });
                    continue;
                }
                Msg::Done(i, outcome, duration) => (i, outcome, duration),
            };
            running -= 1;
            realised.insert(i, outputs);
            match &status {
                Status::Built => summary.built += 1,
                Status::CutOff => summary.cut_off += 1,
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
            let ok = matches!(status, Status::Built | Status::BuiltElsewhere | Status::CutOff);
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
        let node = &plan.nodes[r];
        let outputs = match realised.remove(&r) {
            Some(outputs) => outputs,
            None if needs_resolution(&node.drv) => match resolver.resolve(&node.drv_path)? {
                Some(res) => res.realised.into_iter().filter_map(|(n, p)| Some((n, p?))).collect(),
                None => BTreeMap::new(),
            },
            None => plan.outputs_of(r),
        };
        summary.outputs.insert(node.drv_path.clone(), outputs);
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

/// Builds one derivation: resolve it, lock its outputs, run the builder, register the outputs.
fn run_one(
    store: &Store,
    resolver: &Resolver<'_>,
    plan: &Plan,
    i: usize,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
) -> Outcome {
    let node = &plan.nodes[i];
    let log_path = log_path(store, &node.drv_path);
    match try_build(store, resolver, node, options, executor, log, &log_path) {
        Ok((status, realised)) => {
            let log = Some(log_path).filter(|p| p.exists());
            Outcome { status, log, realised }
        }
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            if let Err(e) = store.record_failure(&node.drv_path, &message) {
                tracing::warn!(error = %e, "cannot record a failed build");
            }
            let log = Some(log_path).filter(|p| p.exists());
            Outcome { status: Status::Failed(message), log, realised: BTreeMap::new() }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum BuildFailure {
    #[error("{0}")]
    Builder(String),
    #[error("the builder did not produce output `{output}` at `{path}`")]
    MissingOutput { output: String, path: String },
    #[error("an input of it was not built")]
    InputMissing,
    #[error(transparent)]
    Other(#[from] Error),
}

impl From<kiln_store::Error> for BuildFailure {
    fn from(e: kiln_store::Error) -> Self {
        BuildFailure::Other(Error::Store(e))
    }
}

/// Where one output is built, and how it is registered.
enum Target {
    /// At its final path, known in advance (input-addressed or fixed).
    Known(StorePath),
    /// At a scratch path; the final path comes from the contents.
    Content(StorePath),
}

impl Target {
    fn path(&self) -> &StorePath {
        match self {
            Target::Known(p) | Target::Content(p) => p,
        }
    }
}

fn try_build(
    store: &Store,
    resolver: &Resolver<'_>,
    node: &Node,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &std::path::Path,
) -> Result<(Status, BTreeMap<String, StorePath>), BuildFailure> {
    // A derivation that uses content-addressed outputs is built in its resolved form, which
    // names the real paths; if that form was built before, this is an early cutoff.
    let (build_path, mut drv) = if needs_resolution(&node.drv) {
        let r = resolver.resolve(&node.drv_path)?.ok_or(BuildFailure::InputMissing)?;
        if r.is_realised() {
            let outputs = r.realised.into_iter().filter_map(|(n, p)| Some((n, p?))).collect();
            return Ok((Status::CutOff, outputs));
        }
        (r.path, r.drv)
    } else {
        (node.drv_path.clone(), node.drv.clone())
    };

    let mut targets = BTreeMap::new();
    for (name, o) in &drv.outputs {
        let target = match &o.path {
            Some(p) => Target::Known(p.clone()),
            None => {
                let path_name =
                    output_path_name(node.drv_path.name().trim_end_matches(".drv"), name);
                Target::Content(scratch_path(store.dir(), &build_path, name, &path_name)?)
            }
        };
        targets.insert(name.clone(), target);
    }
    // The builder writes content-addressed outputs to their scratch paths.
    for (name, t) in &targets {
        if let Target::Content(scratch) = t {
            let (from, to) = (own_placeholder(name), store.render(scratch));
            drv.builder = drv.builder.replace(&from, &to);
            drv.args.iter_mut().for_each(|a| *a = a.replace(&from, &to));
            drv.env.values_mut().for_each(|v| *v = v.replace(&from, &to));
        }
    }

    // Hold every output's lock (in a fixed order, so two processes cannot deadlock) from now
    // until the outputs are registered; another process may have built them meanwhile.
    let locks: Vec<LockFile> =
        targets.values().map(|t| store.lock_path(t.path())).collect::<Result<_, _>>()?;
    if let Some(done) = already_built(store, &build_path, &targets)? {
        return Ok((Status::BuiltElsewhere, done));
    }
    for (t, lock) in targets.values().zip(&locks) {
        store.clear_invalid(t.path(), lock)?;
    }

    // The inputs: sources, and the outputs the derivation asks of its input derivations.
    let mut input_roots: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
    for (input, wanted) in &drv.input_drvs {
        for name in wanted {
            input_roots.extend(resolver.realise_input(input, name)?);
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
    let outputs: BTreeMap<String, StorePath> =
        targets.iter().map(|(n, t)| (n.clone(), t.path().clone())).collect();
    let mut job = Job {
        drv_path: &node.drv_path,
        builder: &drv.builder,
        args: &drv.args,
        env: BTreeMap::new(),
        build_dir: build_dir.path(),
        inputs: &inputs,
        outputs: &outputs,
    };
    job.env = environment(store, &drv, &executor.build_dir_inside(&job), options);

    let mut log_file = LogWriter::create(log_path)?;
    let t0 = Instant::now();
    let mut log_both = |line: &str| {
        log_file.line(line);
        log(line);
    };
    let outcome = if drv.builder == "builtin:fetchurl" {
        fetch_builtin(&drv, &job, executor, options, &mut log_both)
    } else {
        executor.run(&job, &mut log_both)?
    };
    log_file.finish()?;
    if let ExecOutcome::Failure(message) = outcome {
        remove_outputs(&job, executor);
        if options.keep_failed {
            let kept = build_dir.keep();
            return Err(BuildFailure::Builder(format!(
                "{message}; its build folder is kept at `{}`",
                kept.display()
            )));
        }
        return Err(BuildFailure::Builder(message));
    }

    // A fixed output must have the hash it declared, whoever made it.
    if drv.is_fixed_output() {
        let out = &drv.outputs["out"];
        let location = executor.output_location(&job, targets["out"].path());
        if let Err(message) = fetch::check_hash(&location, &out.hash_algo, &out.hash) {
            remove_outputs(&job, executor);
            return Err(BuildFailure::Builder(format!("output `out`: {message}")));
        }
    }

    let mut located = BTreeMap::new();
    for (name, t) in &targets {
        let location = executor.output_location(&job, t.path());
        if std::fs::symlink_metadata(&location).is_err() {
            return Err(BuildFailure::MissingOutput {
                output: name.clone(),
                path: store.render(t.path()),
            });
        }
        located.insert(name.clone(), location);
    }

    // Input-addressed outputs first: content-addressed ones may refer to them.
    let known: Vec<(PathBuf, StorePath)> = targets
        .iter()
        .filter_map(|(n, t)| match t {
            Target::Known(p) => Some((located[n].clone(), p.clone())),
            Target::Content(_) => None,
        })
        .collect();
    let mut registered: BTreeMap<String, kiln_store::PathInfo> = BTreeMap::new();
    for info in store.register_built_outputs(&known, &inputs, &node.drv_path)? {
        let name = targets
            .iter()
            .find(|(_, t)| t.path() == &info.path)
            .map(|(n, _)| n.clone())
            .expect("ours");
        registered.insert(name, info);
    }
    let mut candidates = inputs.clone();
    candidates.extend(registered.values().map(|i| i.path.clone()));
    for (name, t) in &targets {
        if let Target::Content(scratch) = t {
            let info = store.register_content_addressed(
                &located[name],
                scratch,
                &candidates,
                &node.drv_path,
            )?;
            registered.insert(name.clone(), info);
        }
    }

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let duration_ms = t0.elapsed().as_millis() as u64;
    for (name, info) in &registered {
        let trace = BuildTrace {
            drv_path: node.drv_path.clone(),
            output: name.clone(),
            output_path: info.path.clone(),
            nar_hash: info.nar_hash,
            finished_at: now,
            duration_ms,
        };
        store.record_build(&trace)?;
        if build_path != node.drv_path {
            store.record_resolved_build(&BuildTrace { drv_path: build_path.clone(), ..trace })?;
        }
    }
    Ok((Status::Built, registered.into_iter().map(|(n, i)| (n, i.path)).collect()))
}

/// Runs the built-in `fetchurl`: the file goes where the executor would have put the output.
fn fetch_builtin(
    drv: &kiln_store::Derivation,
    job: &Job<'_>,
    executor: &dyn Executor,
    options: &Options,
    log: &mut dyn FnMut(&str),
) -> ExecOutcome {
    let out = drv.outputs.get("out");
    let Some((algo, recursive)) = out.and_then(|o| fetch::Algo::parse(&o.hash_algo)) else {
        return ExecOutcome::Failure(
            "`builtin:fetchurl` needs a fixed `sha256` or `sha512` output".into(),
        );
    };
    let Some(url) = drv.env.get("url") else {
        return ExecOutcome::Failure("`builtin:fetchurl` needs a `url`".into());
    };
    let dest = executor.output_location(job, &job.outputs["out"]);
    if let Some(parent) = dest.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        return ExecOutcome::Failure(format!("cannot create `{}`: {e}", parent.display()));
    }
    let expected = &out.expect("parsed above").hash;
    // An executable download is hashed as a NAR, so it is written as one file first.
    let flat_hash = if recursive { None } else { Some(expected.as_str()) };
    let result = match flat_hash {
        Some(hash) => fetch::fetch(url, &options.mirrors, algo, hash, &dest, log),
        None => fetch::fetch_unchecked(url, &options.mirrors, &dest, log).and_then(|()| {
            if drv.env.get("executable").is_some_and(|v| v == "1") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())
            } else {
                Ok(())
            }
        }),
    };
    match result {
        Ok(()) => ExecOutcome::Success,
        Err(message) => ExecOutcome::Failure(message),
    }
}

/// Removes whatever a failed build left at its outputs' locations.
fn remove_outputs(job: &Job<'_>, executor: &dyn Executor) {
    for path in job.outputs.values() {
        let location = executor.output_location(job, path);
        let _ = std::fs::remove_dir_all(&location).or_else(|_| std::fs::remove_file(&location));
    }
}

/// Returns the outputs if another process built them while this one waited for the locks.
fn already_built(
    store: &Store,
    build_path: &StorePath,
    targets: &BTreeMap<String, Target>,
) -> Result<Option<BTreeMap<String, StorePath>>, BuildFailure> {
    let mut done = BTreeMap::new();
    for (name, t) in targets {
        let found = match t {
            Target::Known(p) => store.is_valid(p)?.then(|| p.clone()),
            Target::Content(_) => match store.last_build(build_path, name)? {
                Some(trace) if store.is_valid(&trace.output_path)? => Some(trace.output_path),
                _ => None,
            },
        };
        match found {
            Some(p) => done.insert(name.clone(), p),
            None => return Ok(None),
        };
    }
    Ok(Some(done))
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
