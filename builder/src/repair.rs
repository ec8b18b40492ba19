//! Repair: rebuilding damaged store paths from the derivations that made them.
//!
//! Verification (in the store) finds paths whose files are missing or changed; here each is
//! rebuilt from its deriver in the sandbox, and the rebuild replaces the damaged copy only if
//! it has exactly the registered hash, so what other paths refer to never changes. Paths that
//! no derivation built (sources, `.drv` files) cannot be rebuilt; the store puts them back when
//! they are added again. A rebuild that needs another damaged path waits until that one is
//! repaired; rounds go on while any repair succeeds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kiln_store::{Store, StorePath};

use crate::Error;
use crate::event::{Event, Status};
use crate::executor::Executor;
use crate::log::log_path;
use crate::plan::Node;
use crate::resolve::Resolver;
use crate::run::{BuildFailure, RepairedOutput, repair_one};
use crate::schedule::Options;

/// What became of one damaged path.
#[derive(Clone, Debug)]
pub struct RepairReport {
    /// The damaged path.
    pub path: StorePath,
    /// The derivation rebuilt for it, if there is one.
    pub drv: Option<StorePath>,
    /// Where the damaged copy differed from the rebuild, or why it could not be repaired.
    pub outcome: Result<Vec<String>, String>,
}

/// Rebuilds the derivers of damaged `paths` and puts the rebuilt copies in place; returns one
/// report per path, in the order given.
pub fn repair(
    store: &Store,
    paths: &[StorePath],
    options: &Options,
    executor: &dyn Executor,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<RepairReport>, Error> {
    let resolver = Resolver::new(store);
    let mut outcomes: BTreeMap<StorePath, RepairReport> = BTreeMap::new();
    // Damaged paths by the derivation that built them.
    let mut pending: BTreeMap<StorePath, BTreeSet<StorePath>> = BTreeMap::new();
    for path in paths {
        let info = store
            .query_info(path)?
            .ok_or_else(|| kiln_store::Error::NotValid { path: store.render(path) })?;
        match info.deriver {
            Some(drv) if store.is_valid(&drv)? => {
                pending.entry(drv).or_default().insert(path.clone());
            }
            deriver => {
                let why = match (deriver, info.ca.as_deref()) {
                    (Some(drv), _) => format!(
                        "the derivation that built it, `{}`, is no longer in the store",
                        store.render(&drv)
                    ),
                    (None, Some("text")) => "no derivation built it: evaluating the expression \
                        that wrote it again puts it back"
                        .to_owned(),
                    _ => "no derivation built it: adding its source again (`kiln store add`) \
                        puts it back"
                        .to_owned(),
                };
                let report = RepairReport { path: path.clone(), drv: None, outcome: Err(why) };
                outcomes.insert(path.clone(), report);
            }
        }
    }

    loop {
        let damaged: BTreeSet<StorePath> = pending.values().flatten().cloned().collect();
        let mut progress = false;
        let mut waiting = BTreeMap::new();
        for (drv, targets) in std::mem::take(&mut pending) {
            let result = repair_drv(store, &resolver, &drv, &targets, options, executor, events);
            match result {
                // Its build needs another damaged path: try again once that one is repaired.
                Err(BuildFailure::Other(Error::Store(kiln_store::Error::Damaged {
                    path, ..
                }))) if damaged.iter().any(|d| store.render(d) == path && !targets.contains(d)) => {
                    waiting.insert(drv, targets);
                }
                result => {
                    progress |= result.is_ok();
                    record(&drv, &targets, result, &mut outcomes);
                }
            }
        }
        if !progress || waiting.is_empty() {
            // Whatever still waits, waits on a path that could not be repaired.
            for (drv, targets) in waiting {
                let result =
                    repair_drv(store, &resolver, &drv, &targets, options, executor, events);
                record(&drv, &targets, result, &mut outcomes);
            }
            break;
        }
        pending = waiting;
    }
    Ok(paths.iter().filter_map(|p| outcomes.remove(p)).collect())
}

fn repair_drv(
    store: &Store,
    resolver: &Resolver<'_>,
    drv_path: &StorePath,
    targets: &BTreeSet<StorePath>,
    options: &Options,
    executor: &dyn Executor,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<RepairedOutput>, BuildFailure> {
    let drv = resolver.read(drv_path)?;
    let node = Node { drv_path: drv_path.clone(), drv, deps: Vec::new(), reason: None };
    events(Event::Started { drv: drv_path.clone() });
    let t0 = Instant::now();
    let log_path = log_path(store, drv_path).with_extension("repair.gz");
    let mut forward =
        |line: &str| events(Event::Log { drv: drv_path.clone(), line: line.to_owned() });
    let result =
        repair_one(store, resolver, &node, targets, options, executor, &mut forward, &log_path);
    let status = match &result {
        Ok(_) => Status::Built,
        Err(e) => Status::Failed(e.to_string()),
    };
    let log = Some(log_path).filter(|p| p.exists());
    events(Event::Finished { drv: drv_path.clone(), status, duration: t0.elapsed(), log });
    result
}

fn record(
    drv: &StorePath,
    targets: &BTreeSet<StorePath>,
    result: Result<Vec<RepairedOutput>, BuildFailure>,
    outcomes: &mut BTreeMap<StorePath, RepairReport>,
) {
    let drv = Some(drv.clone());
    match result {
        Ok(repaired) => {
            for r in repaired {
                let report = RepairReport {
                    path: r.path.clone(),
                    drv: drv.clone(),
                    outcome: Ok(r.differences),
                };
                outcomes.insert(r.path, report);
            }
        }
        Err(e) => {
            let message = crate::error::chain(&e);
            for path in targets {
                let outcome = Err(message.clone());
                outcomes.insert(
                    path.clone(),
                    RepairReport { path: path.clone(), drv: drv.clone(), outcome },
                );
            }
        }
    }
}
