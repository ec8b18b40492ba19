//! Building one derivation: resolve it, run its builder through the executor, check and
//! register its outputs; and `--check`, which runs it again and compares.
//!
//! The steps are separate functions so that a build and a check share all but the end: a
//! build holds its outputs' locks and registers what it made; a check writes nothing to the
//! store and compares what it made with what is registered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kiln_store::{
    BuildTrace, Derivation, LockFile, Store, StorePath, output_path_name, own_placeholder,
    scratch_path,
};

use crate::Error;
use crate::event::Status;
use crate::executor::{ExecOutcome, Executor, Job};
use crate::fetch;
use crate::log::LogWriter;
use crate::plan::Node;
use crate::resolve::{Resolver, needs_resolution};
use crate::schedule::Options;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildFailure {
    #[error("{0}")]
    Builder(String),
    #[error("the builder did not produce output `{output}` at `{path}`")]
    MissingOutput { output: String, path: String },
    #[error("an input of it was not built")]
    InputMissing,
    #[error("`{drv}` has not been built, so there is nothing to check")]
    NothingToCheck { drv: String },
    #[error(
        "checking needs the sandbox: without it the rebuild would overwrite the registered output"
    )]
    CheckNeedsSandbox,
    #[error(
        "repairing needs the sandbox: without it the rebuild would write over the damaged copy in place"
    )]
    RepairNeedsSandbox,
    #[error("it is not an output of `{drv}` any more")]
    NotAnOutput { drv: String },
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

/// A derivation ready to run: resolved, with where each output goes.
struct Prepared {
    /// The derivation actually built (the resolved one, if it needed resolving).
    build_path: StorePath,
    /// Its contents, with its own outputs' placeholders replaced by where they are built.
    drv: Derivation,
    targets: BTreeMap<String, Target>,
    /// The outputs an earlier build of the same resolved derivation registered, if complete.
    realised: Option<BTreeMap<String, StorePath>>,
}

fn prepare(store: &Store, resolver: &Resolver<'_>, node: &Node) -> Result<Prepared, BuildFailure> {
    // A derivation that uses content-addressed outputs is built in its resolved form, which
    // names the real paths.
    let (build_path, mut drv, realised) = if needs_resolution(&node.drv) {
        let r = resolver.resolve(&node.drv_path)?.ok_or(BuildFailure::InputMissing)?;
        let realised = r.is_realised().then(|| {
            r.realised.iter().filter_map(|(n, p)| Some((n.clone(), p.clone()?))).collect()
        });
        (r.path, r.drv, realised)
    } else {
        (node.drv_path.clone(), node.drv.clone(), None)
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
    Ok(Prepared { build_path, drv, targets, realised })
}

/// What running a builder left: its folder (removed when dropped), the inputs it could see,
/// and where each output is.
struct Ran {
    _build_dir: tempfile::TempDir,
    inputs: BTreeSet<StorePath>,
    located: BTreeMap<String, PathBuf>,
    started: Instant,
}

#[allow(clippy::too_many_arguments)]
fn run_builder(
    store: &Store,
    resolver: &Resolver<'_>,
    node: &Node,
    prepared: &Prepared,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &Path,
) -> Result<Ran, BuildFailure> {
    let drv = &prepared.drv;
    // The inputs: sources, and the outputs the derivation asks of its input derivations.
    let mut input_roots: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
    for (input, wanted) in &drv.input_drvs {
        for name in wanted {
            input_roots.extend(resolver.realise_input(input, name)?);
        }
    }
    let inputs: Vec<StorePath> = store.closure(&input_roots)?.0;
    // No garbage collection may take the inputs while the build runs, and a build never sees
    // an input that verification found damaged.
    store.add_temp_roots(&inputs)?;
    store.require_intact(&inputs)?;
    let inputs: BTreeSet<StorePath> = inputs.into_iter().collect();

    let tmp = store.root().join("tmp");
    let build_dir = tempfile::Builder::new()
        .prefix(&format!("build-{}-", node.drv_path.name().trim_end_matches(".drv")))
        .suffix(&store.temp_suffix()?)
        .tempdir_in(&tmp)
        .map_err(|source| Error::Io { op: "create a build folder in", path: tmp, source })?;
    let outputs: BTreeMap<String, StorePath> =
        prepared.targets.iter().map(|(n, t)| (n.clone(), t.path().clone())).collect();
    let mut job = Job {
        drv_path: &node.drv_path,
        builder: &drv.builder,
        args: &drv.args,
        env: BTreeMap::new(),
        build_dir: build_dir.path(),
        inputs: &inputs,
        outputs: &outputs,
    };
    job.env = environment(drv, &executor.build_dir_inside(&job), options);

    let mut log_file = LogWriter::create(log_path)?;
    let started = Instant::now();
    let mut log_both = |line: &str| {
        kiln_store::fault::point("build.logging");
        log_file.line(line);
        log(line);
    };
    let outcome = if drv.builder == "builtin:fetchurl" {
        fetch_builtin(drv, &job, executor, options, &mut log_both)
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
        let location = executor.output_location(&job, prepared.targets["out"].path());
        if let Err(message) = fetch::check_hash(&location, &out.hash_algo, &out.hash) {
            remove_outputs(&job, executor);
            return Err(BuildFailure::Builder(format!("output `out`: {message}")));
        }
    }

    let mut located = BTreeMap::new();
    for (name, t) in &prepared.targets {
        let location = executor.output_location(&job, t.path());
        if std::fs::symlink_metadata(&location).is_err() {
            remove_outputs(&job, executor);
            return Err(BuildFailure::MissingOutput {
                output: name.clone(),
                path: store.render(t.path()),
            });
        }
        located.insert(name.clone(), location);
    }
    drop(job);
    Ok(Ran { _build_dir: build_dir, inputs, located, started })
}

/// Builds one derivation; returns how it ended and the outputs it realised.
pub(crate) fn build_one(
    store: &Store,
    resolver: &Resolver<'_>,
    node: &Node,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &Path,
) -> Result<(Status, BTreeMap<String, StorePath>), BuildFailure> {
    let prepared = prepare(store, resolver, node)?;
    // Built before with exactly these inputs: an early cutoff.
    if let Some(outputs) = prepared.realised {
        return Ok((Status::CutOff, outputs));
    }

    // Hold every output's lock (in a fixed order, so two processes cannot deadlock) from now
    // until the outputs are registered; another process may have built them meanwhile.
    let locks: Vec<LockFile> =
        prepared.targets.values().map(|t| store.lock_path(t.path())).collect::<Result<_, _>>()?;
    if let Some(done) = already_built(store, &prepared.build_path, &prepared.targets)? {
        return Ok((Status::BuiltElsewhere, done));
    }
    for (t, lock) in prepared.targets.values().zip(&locks) {
        store.clear_invalid(t.path(), lock)?;
    }

    let ran = run_builder(store, resolver, node, &prepared, options, executor, log, log_path)?;
    kiln_store::fault::point("build.ran");
    let registered = register(store, node, &prepared, &ran)?;
    Ok((Status::Built, registered))
}

/// Registers what a build made and records it in the build trace.
fn register(
    store: &Store,
    node: &Node,
    prepared: &Prepared,
    ran: &Ran,
) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
    // Input-addressed outputs first: content-addressed ones may refer to them.
    let known: Vec<(PathBuf, StorePath)> = prepared
        .targets
        .iter()
        .filter_map(|(n, t)| match t {
            Target::Known(p) => Some((ran.located[n].clone(), p.clone())),
            Target::Content(_) => None,
        })
        .collect();
    let mut registered: BTreeMap<String, kiln_store::PathInfo> = BTreeMap::new();
    for info in store.register_built_outputs(&known, &ran.inputs, &node.drv_path)? {
        let name =
            prepared.targets.iter().find(|(_, t)| t.path() == &info.path).map(|(n, _)| n.clone());
        registered.insert(name.expect("registered outputs are ours"), info);
    }
    // Content-addressed outputs that refer to others (a `dev` naming `out`) are registered after
    // them, with the other's scratch path rewritten to its final one first.
    let mut pending: BTreeMap<String, StorePath> = prepared
        .targets
        .iter()
        .filter_map(|(n, t)| match t {
            Target::Content(scratch) => Some((n.clone(), scratch.clone())),
            Target::Known(_) => None,
        })
        .collect();
    let mut refers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in pending.keys() {
        let others: BTreeSet<StorePath> =
            pending.iter().filter(|(n, _)| *n != name).map(|(_, s)| s.clone()).collect();
        let found = kiln_store::references::scan(&ran.located[name], &others)?;
        let names =
            pending.iter().filter(|(_, s)| found.contains(s)).map(|(n, _)| n.clone()).collect();
        refers.insert(name.clone(), names);
    }
    while !pending.is_empty() {
        let Some(name) =
            pending.keys().find(|n| refers[*n].iter().all(|r| !pending.contains_key(r))).cloned()
        else {
            let names = pending.keys().cloned().collect::<Vec<_>>().join("`, `");
            return Err(BuildFailure::Builder(format!(
                "the outputs `{names}` refer to each other in a cycle"
            )));
        };
        let scratch = pending.remove(&name).expect("found above");
        let location = &ran.located[&name];
        for other in &refers[&name] {
            let (from, to) = (&prepared.targets[other], &registered[other].path);
            store.rewrite_references(location, from.path(), to)?;
        }
        let mut candidates = ran.inputs.clone();
        candidates.extend(registered.values().map(|i| i.path.clone()));
        let info =
            store.register_content_addressed(location, &scratch, &candidates, &node.drv_path)?;
        registered.insert(name, info);
    }

    kiln_store::fault::point("build.registered");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let duration_ms = ran.started.elapsed().as_millis() as u64;
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
        if prepared.build_path != node.drv_path {
            store.record_resolved_build(&BuildTrace {
                drv_path: prepared.build_path.clone(),
                ..trace
            })?;
        }
    }
    Ok(registered.into_iter().map(|(n, i)| (n, i.path)).collect())
}

/// What `--check` found for one output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedOutput {
    /// The output's name.
    pub output: String,
    /// Its registered path.
    pub path: StorePath,
    /// The files (relative to the output) whose contents, kind or mode differ, or that exist
    /// on one side only; empty when the rebuild is identical.
    pub differences: Vec<String>,
}

/// What `--check` found for one derivation: each output's comparison, or why it could not
/// be checked.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The derivation checked.
    pub drv: StorePath,
    /// Its outputs' comparisons, or the error.
    pub outcome: Result<Vec<CheckedOutput>, String>,
}

/// Rebuilds a derivation whose outputs are registered and compares the new outputs with them.
pub(crate) fn check_one(
    store: &Store,
    resolver: &Resolver<'_>,
    node: &Node,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &Path,
) -> Result<Vec<CheckedOutput>, BuildFailure> {
    let prepared = prepare(store, resolver, node)?;
    let registered = registered_outputs(store, node, &prepared)?;
    if !executor.isolates_outputs() {
        return Err(BuildFailure::CheckNeedsSandbox);
    }

    let ran = run_builder(store, resolver, node, &prepared, options, executor, log, log_path)?;
    let mut report = Vec::new();
    for name in prepared.targets.keys() {
        let location = as_registered(store, &prepared, &registered, &ran, name)?;
        let path = &registered[name];
        let differences = differences(location, &store.locate(path))?;
        report.push(CheckedOutput { output: name.clone(), path: path.clone(), differences });
    }
    Ok(report)
}

/// Returns the registered path of each output of a derivation built before.
fn registered_outputs(
    store: &Store,
    node: &Node,
    prepared: &Prepared,
) -> Result<BTreeMap<String, StorePath>, BuildFailure> {
    if let Some(outputs) = &prepared.realised {
        return Ok(outputs.clone());
    }
    let mut outputs = BTreeMap::new();
    for (name, t) in &prepared.targets {
        match t {
            Target::Known(p) if store.is_valid(p)? => outputs.insert(name.clone(), p.clone()),
            _ => return Err(BuildFailure::NothingToCheck { drv: store.render(&node.drv_path) }),
        };
    }
    Ok(outputs)
}

/// Returns where a rebuilt output is, after rewriting references to this build's scratch
/// paths into the registered paths: the output as it would have been stored.
fn as_registered<'r>(
    store: &Store,
    prepared: &Prepared,
    registered: &BTreeMap<String, StorePath>,
    ran: &'r Ran,
    name: &str,
) -> Result<&'r Path, BuildFailure> {
    let location = &ran.located[name];
    for (other, t) in &prepared.targets {
        if let Target::Content(scratch) = t {
            store.rewrite_references(location, scratch, &registered[other])?;
        }
    }
    Ok(location)
}

/// One output put back by a repair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RepairedOutput {
    /// Its registered path, now holding the rebuild.
    pub(crate) path: StorePath,
    /// Where the damaged copy differed from the rebuild (as `--check` lists them); a missing
    /// copy gives `.: missing`.
    pub(crate) differences: Vec<String>,
}

/// Rebuilds a derivation and puts the rebuilt copy of each output in `damaged` in place of
/// the registered one, if it has exactly the registered hash.
#[allow(clippy::too_many_arguments)]
pub(crate) fn repair_one(
    store: &Store,
    resolver: &Resolver<'_>,
    node: &Node,
    damaged: &BTreeSet<StorePath>,
    options: &Options,
    executor: &dyn Executor,
    log: &mut dyn FnMut(&str),
    log_path: &Path,
) -> Result<Vec<RepairedOutput>, BuildFailure> {
    let prepared = prepare(store, resolver, node)?;
    let registered = registered_outputs(store, node, &prepared)?;
    let wanted: Vec<&String> =
        registered.iter().filter(|(_, p)| damaged.contains(*p)).map(|(n, _)| n).collect();
    if wanted.is_empty() {
        return Err(BuildFailure::NotAnOutput { drv: store.render(&node.drv_path) });
    }
    if !executor.isolates_outputs() {
        return Err(BuildFailure::RepairNeedsSandbox);
    }

    let ran = run_builder(store, resolver, node, &prepared, options, executor, log, log_path)?;
    let mut repaired = Vec::new();
    for name in wanted {
        let location = as_registered(store, &prepared, &registered, &ran, name)?;
        let path = &registered[name];
        let old = store.locate(path);
        let differences = if std::fs::symlink_metadata(&old).is_ok() {
            differences(location, &old)?
        } else {
            vec![".: missing".to_owned()]
        };
        store.replace_damaged(path, location)?;
        repaired.push(RepairedOutput { path: path.clone(), differences });
    }
    Ok(repaired)
}

/// Lists the relative paths where two trees differ, in kind, executable bit or contents.
fn differences(new: &Path, old: &Path) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    compare(new, old, "", &mut out).map_err(|source| Error::Io {
        op: "compare",
        path: new.to_owned(),
        source,
    })?;
    Ok(out)
}

fn compare(new: &Path, old: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shown = if rel.is_empty() { ".".to_owned() } else { rel.to_owned() };
    let (a, b) = (std::fs::symlink_metadata(new)?, std::fs::symlink_metadata(old)?);
    if a.file_type() != b.file_type() {
        out.push(format!("{shown}: a different kind of file"));
    } else if a.is_symlink() {
        if std::fs::read_link(new)? != std::fs::read_link(old)? {
            out.push(format!("{shown}: a different symlink target"));
        }
    } else if a.is_dir() {
        let names = |p: &Path| -> std::io::Result<BTreeSet<std::ffi::OsString>> {
            std::fs::read_dir(p)?.map(|e| e.map(|e| e.file_name())).collect()
        };
        let (na, nb) = (names(new)?, names(old)?);
        for name in na.union(&nb) {
            let child = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            match (na.contains(name), nb.contains(name)) {
                (true, true) => compare(&new.join(name), &old.join(name), &child, out)?,
                (true, false) => out.push(format!("{child}: only in the rebuild")),
                _ => out.push(format!("{child}: only in the registered output")),
            }
        }
    } else {
        let exec = |m: &std::fs::Metadata| m.permissions().mode() & 0o100 != 0;
        if exec(&a) != exec(&b) {
            out.push(format!("{shown}: a different executable bit"));
        } else if a.len() != b.len() || std::fs::read(new)? != std::fs::read(old)? {
            out.push(format!("{shown}: different contents"));
        }
    }
    Ok(())
}

/// Runs the built-in `fetchurl`: the file goes where the executor would have put the output.
fn fetch_builtin(
    drv: &Derivation,
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
    // An output hashed as a NAR is checked once it is in place, with its mode.
    let result = if recursive {
        fetch::fetch_unchecked(url, &options.mirrors, &dest, log).and_then(|()| {
            if drv.env.get("executable").is_some_and(|v| v == "1") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())
            } else {
                Ok(())
            }
        })
    } else {
        fetch::fetch(url, &options.mirrors, algo, expected, &dest, log)
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

/// The builder's environment: a fixed set of variables, then the derivation's attributes
/// (which may override them, as in Nix), and nothing from the environment kiln runs in.
fn environment(drv: &Derivation, build_dir: &Path, options: &Options) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("TMPDIR".to_owned(), build_dir.to_string_lossy().into_owned()),
        ("HOME".to_owned(), "/homeless-shelter".to_owned()),
        ("PATH".to_owned(), "/path-not-set".to_owned()),
        ("TZ".to_owned(), "UTC".to_owned()),
        ("SOURCE_DATE_EPOCH".to_owned(), "1".to_owned()),
        ("NIX_BUILD_CORES".to_owned(), options.cores.to_string()),
    ]);
    env.extend(drv.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
