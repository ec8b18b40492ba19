//! Resolution: turning a derivation that depends on content-addressed outputs into one that
//! names real store paths, once those outputs exist.
//!
//! A content-addressed output's path is known only after its build, so derivations that use
//! it carry a placeholder (`kiln_store::input_placeholder`) instead, and are "deferred" if
//! they are not content-addressed themselves. Resolving replaces each placeholder by the real
//! path, turns input derivations into input sources, gives deferred outputs their
//! input-addressed paths, and writes the result to the store. If an input was rebuilt but came
//! out byte-identical, the resolved derivation is the same as last time, so its recorded
//! outputs are reused and nothing is built: early cutoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use kiln_store::{Derivation, Store, StorePath, input_placeholder};

use crate::Error;

/// A derivation with every input replaced by a real store path.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The resolved derivation's own `.drv` path.
    pub path: StorePath,
    /// The resolved derivation.
    pub drv: Derivation,
    /// For each output, its valid store path if a build of the resolved derivation recorded
    /// one (or, for an input-addressed output, if its path is valid).
    pub realised: BTreeMap<String, Option<StorePath>>,
}

impl Resolved {
    /// Tells whether every output already exists.
    pub fn is_realised(&self) -> bool {
        self.realised.values().all(Option::is_some)
    }
}

/// Tells whether a derivation's output paths are only known after building it or its inputs.
pub fn needs_resolution(drv: &Derivation) -> bool {
    drv.outputs.values().any(|o| o.path.is_none())
}

/// Resolves derivations, remembering derivations read and resolutions that were complete.
pub(crate) struct Resolver<'s> {
    store: &'s Store,
    drvs: Mutex<HashMap<StorePath, Derivation>>,
    done: Mutex<HashMap<StorePath, Resolved>>,
}

impl<'s> Resolver<'s> {
    pub(crate) fn new(store: &'s Store) -> Resolver<'s> {
        Resolver { store, drvs: Mutex::default(), done: Mutex::default() }
    }

    pub(crate) fn read(&self, drv: &StorePath) -> Result<Derivation, Error> {
        if let Some(d) = self.drvs.lock().expect("not poisoned").get(drv) {
            return Ok(d.clone());
        }
        let d = self.store.read_derivation(drv)?;
        self.drvs.lock().expect("not poisoned").insert(drv.clone(), d.clone());
        Ok(d)
    }

    /// Returns the valid path of an input derivation's output, if it exists yet.
    pub(crate) fn realise_input(
        &self,
        drv: &StorePath,
        output: &str,
    ) -> Result<Option<StorePath>, Error> {
        let d = self.read(drv)?;
        match d.outputs.get(output).and_then(|o| o.path.clone()) {
            Some(path) => Ok(self.store.is_valid(&path)?.then_some(path)),
            None => Ok(self.resolve(drv)?.and_then(|r| r.realised.get(output).cloned().flatten())),
        }
    }

    /// Resolves `drv`, or returns `None` if one of its inputs does not exist yet.
    pub(crate) fn resolve(&self, drv_path: &StorePath) -> Result<Option<Resolved>, Error> {
        if let Some(r) = self.done.lock().expect("not poisoned").get(drv_path) {
            return Ok(Some(r.clone()));
        }
        let drv = self.read(drv_path)?;
        let mut resolved = drv.clone();
        resolved.input_drvs.clear();
        let mut replacements = Vec::new();
        for (input, outputs) in &drv.input_drvs {
            let input_drv = self.read(input)?;
            for output in outputs {
                let Some(real) = self.realise_input(input, output)? else { return Ok(None) };
                if input_drv.outputs.get(output).is_some_and(|o| o.path.is_none()) {
                    replacements.push((input_placeholder(input, output), self.store.render(&real)));
                }
                resolved.input_srcs.insert(real);
            }
        }
        let replace = |s: &mut String| {
            for (from, to) in &replacements {
                if s.contains(from.as_str()) {
                    *s = s.replace(from.as_str(), to);
                }
            }
        };
        replace(&mut resolved.builder);
        resolved.args.iter_mut().for_each(replace);
        resolved.env.values_mut().for_each(replace);

        // Deferred outputs (not content-addressed themselves) get their input-addressed paths
        // from the resolved derivation.
        let name = drv_path.name().trim_end_matches(".drv").to_owned();
        let deferred =
            resolved.outputs.values().any(|o| o.path.is_none() && o.hash_algo.is_empty());
        if deferred {
            for o in resolved.outputs.keys().cloned().collect::<Vec<_>>() {
                resolved.env.insert(o, String::new());
            }
            resolved.fill_output_paths(
                self.store.dir(),
                &name,
                |_| -> Result<_, kiln_store::Error> {
                    unreachable!("a resolved derivation has no input derivations")
                },
            )?;
        }
        let path = self.store.write_derivation(&name, &resolved)?;

        let mut realised = BTreeMap::new();
        for (output, o) in &resolved.outputs {
            let found = match &o.path {
                Some(p) => self.store.is_valid(p)?.then(|| p.clone()),
                None => match self.store.last_build(&path, output)? {
                    Some(trace) if self.store.is_valid(&trace.output_path)? => {
                        Some(trace.output_path)
                    }
                    _ => None,
                },
            };
            realised.insert(output.clone(), found);
        }
        let r = Resolved { path, drv: resolved, realised };
        let found: Vec<StorePath> = r.realised.values().flatten().cloned().collect();
        // What is reused must not be collected before the build is done with it.
        if r.is_realised() && self.store.add_temp_roots(&found).is_ok() {
            self.done.lock().expect("not poisoned").insert(drv_path.clone(), r.clone());
        }
        Ok(Some(r))
    }
}
