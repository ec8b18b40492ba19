//! Running a plan: builds start as soon as their inputs are ready, at most `jobs` at once.
//!
//! One coordinator (the calling thread) owns all state and emits every event; builds run on a
//! rayon pool of `jobs` threads and report back through a channel, log lines included, so the
//! coordinator never blocks a build and a chatty build cannot stall the others.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiln_store::{Store, StorePath};

use crate::Error;
use crate::event::{Event, Status, Summary};
use crate::executor::Executor;
use crate::log::log_path;
use crate::plan::Plan;
use crate::resolve::{Resolver, needs_resolution};
use crate::run::{CheckReport, build_one, check_one};

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
    match build_one(store, resolver, node, options, executor, log, &log_path) {
        Ok((status, realised)) => {
            let log = Some(log_path).filter(|p| p.exists());
            Outcome { status, log, realised }
        }
        Err(e) => {
            let message = crate::error::chain(&e);
            if let Err(e) = store.record_failure(&node.drv_path, &message) {
                tracing::warn!(error = %e, "cannot record a failed build");
            }
            let log = Some(log_path).filter(|p| p.exists());
            Outcome { status: Status::Failed(message), log, realised: BTreeMap::new() }
        }
    }
}

/// Rebuilds the plan's requested derivations, whose outputs must be valid, and compares each
/// new output with the registered one (`--check`). Inputs that are missing are built first.
pub fn check(
    store: &Store,
    plan: &Plan,
    options: &Options,
    executor: &dyn Executor,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<CheckReport>, Error> {
    let resolver = Resolver::new(store);
    let mut results = Vec::new();
    for &r in &plan.roots {
        let node = &plan.nodes[r];
        events(Event::Started { drv: node.drv_path.clone() });
        let t0 = Instant::now();
        let log_path = log_path(store, &node.drv_path).with_extension("check.gz");
        let mut forward =
            |line: &str| events(Event::Log { drv: node.drv_path.clone(), line: line.to_owned() });
        let result = check_one(store, &resolver, node, options, executor, &mut forward, &log_path);
        let status = match &result {
            Ok(_) => Status::Built,
            Err(e) => Status::Failed(e.to_string()),
        };
        let log = Some(log_path).filter(|p| p.exists());
        events(Event::Finished { drv: node.drv_path.clone(), status, duration: t0.elapsed(), log });
        results.push(CheckReport {
            drv: node.drv_path.clone(),
            outcome: result.map_err(|e| e.to_string()),
        });
    }
    Ok(results)
}
