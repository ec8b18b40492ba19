//! Working out what to build before anything runs.
//!
//! From the requested derivations, the plan follows input derivations only where something is
//! missing: a derivation whose outputs are all valid is reused and its inputs are not read.
//! Nodes come out in dependency order (inputs before the derivations that use them).

use std::collections::{BTreeMap, HashMap};

use kiln_store::{Derivation, Store, StorePath};

use crate::Error;
use crate::resolve::{Resolver, needs_resolution};

/// Why a derivation is to be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Some of its outputs are not in the store.
    MissingOutputs(Vec<String>),
    /// Its inputs exist, but it was never built with exactly these inputs.
    NotBuiltWithTheseInputs,
    /// It uses content-addressed outputs still to be built; if they come out as before, it is
    /// not rebuilt (early cutoff).
    AwaitingInputs,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::MissingOutputs(outputs) => {
                write!(f, "output `{}` is not in the store", outputs.join("`, `"))
            }
            Reason::NotBuiltWithTheseInputs => write!(f, "never built with these inputs"),
            Reason::AwaitingInputs => write!(f, "its inputs are being built; it may be cut off"),
        }
    }
}

/// One derivation of the plan.
#[derive(Debug)]
pub struct Node {
    /// The `.drv` store path.
    pub drv_path: StorePath,
    /// Its contents.
    pub drv: Derivation,
    /// Indices of the nodes it depends on that are to be built.
    pub deps: Vec<usize>,
    /// Why it is built, or `None` if its outputs are all valid.
    pub reason: Option<Reason>,
}

/// The derivations involved in a request, in dependency order.
#[derive(Debug, Default)]
pub struct Plan {
    /// Dependencies come before their dependents.
    pub nodes: Vec<Node>,
    /// Indices of the requested derivations.
    pub roots: Vec<usize>,
    index: HashMap<StorePath, usize>,
    /// The outputs of input-addressed derivations that are reused.
    reused: Vec<StorePath>,
}

impl Plan {
    /// Plans the build of `roots` (`.drv` store paths).
    pub fn new(store: &Store, roots: &[StorePath]) -> Result<Plan, Error> {
        // The outputs found valid are rooted after planning, all at once; if a collection
        // removed one meanwhile, planning again finds it missing.
        let mut attempts = 0;
        loop {
            let plan = store.read_snapshot(|| Plan::make(store, roots))?;
            match store.add_temp_roots(&plan.reused) {
                Ok(()) => return Ok(plan),
                Err(e) if attempts == 3 => return Err(e.into()),
                Err(_) => attempts += 1,
            }
        }
    }

    fn make(store: &Store, roots: &[StorePath]) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        let mut visiting = Vec::new();
        let resolver = Resolver::new(store);
        for root in roots {
            let i = plan.visit(store, &resolver, root, &mut visiting)?;
            plan.roots.push(i);
        }
        // What is asked for and already there must be whole, down to its last reference.
        let mut reused = Vec::new();
        for &r in &plan.roots {
            if plan.nodes[r].reason.is_none() {
                if needs_resolution(&plan.nodes[r].drv) {
                    let resolved = resolver.resolve(&plan.nodes[r].drv_path)?;
                    reused.extend(
                        resolved.into_iter().flat_map(|r| r.realised.into_values()).flatten(),
                    );
                } else {
                    reused.extend(plan.outputs_of(r).into_values());
                }
            }
        }
        store.require_intact_closure(&reused)?;
        Ok(plan)
    }

    /// Returns the node of a derivation in the plan.
    pub fn node(&self, drv: &StorePath) -> Option<&Node> {
        self.index.get(drv).map(|&i| &self.nodes[i])
    }

    /// Returns the nodes that are to be built, in dependency order.
    pub fn to_build(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.reason.is_some())
    }

    fn visit(
        &mut self,
        store: &Store,
        resolver: &Resolver<'_>,
        drv_path: &StorePath,
        visiting: &mut Vec<StorePath>,
    ) -> Result<usize, Error> {
        if let Some(&i) = self.index.get(drv_path) {
            return Ok(i);
        }
        if !drv_path.is_derivation() {
            return Err(Error::NotADerivation { drv: store.render(drv_path) });
        }
        if visiting.contains(drv_path) {
            return Err(Error::Cycle { drv: store.render(drv_path) });
        }
        let drv = resolver.read(drv_path)?;
        let reason = if needs_resolution(&drv) {
            match resolver.resolve(drv_path)? {
                Some(r) if r.is_realised() => {
                    let outputs: Vec<StorePath> = r.realised.into_values().flatten().collect();
                    store.require_intact(&outputs)?;
                    None
                }
                Some(_) => Some(Reason::NotBuiltWithTheseInputs),
                None => Some(Reason::AwaitingInputs),
            }
        } else {
            let mut missing = Vec::new();
            let mut present = Vec::new();
            for (name, output) in &drv.outputs {
                let path = output.path.as_ref().expect("not deferred");
                if store.is_valid(path)? {
                    present.push(path.clone());
                } else {
                    missing.push(name.clone());
                }
            }
            // What is reused must not be known to be damaged, nor collected before the build
            // is done with it (`new` roots it).
            if missing.is_empty() {
                store.require_intact(&present)?;
                self.reused.extend(present);
            }
            (!missing.is_empty()).then_some(Reason::MissingOutputs(missing))
        };

        let mut deps = Vec::new();
        if reason.is_some() {
            visiting.push(drv_path.clone());
            for input in drv.input_drvs.keys() {
                let i = self.visit(store, resolver, input, visiting)?;
                if self.nodes[i].reason.is_some() {
                    deps.push(i);
                }
            }
            visiting.pop();
        }
        let i = self.nodes.len();
        self.nodes.push(Node { drv_path: drv_path.clone(), drv, deps, reason });
        self.index.insert(drv_path.clone(), i);
        Ok(i)
    }

    /// Returns the output paths of a planned derivation, by output name.
    pub fn outputs_of(&self, i: usize) -> BTreeMap<String, StorePath> {
        self.nodes[i]
            .drv
            .outputs
            .iter()
            .filter_map(|(n, o)| Some((n.clone(), o.path.clone()?)))
            .collect()
    }
}
