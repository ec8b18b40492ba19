//! `--explain`: why a derivation is to be built, in terms a person can check.
//!
//! The reasons, in order: a previous attempt at this very derivation failed; no build of a
//! package of this name is recorded; or what differs from the previous build of the same
//! package (a derivation with the same name), found by comparing the two `.drv` files: which
//! inputs changed (and whether their outputs did), which sources, which attributes. Paths of
//! inputs are compared by name, so an attribute that only mentions a changed input is not
//! reported as changed itself.

use std::collections::{BTreeMap, BTreeSet};

use kiln_store::{Derivation, Store, StorePath, input_placeholder};

use crate::Error;
use crate::plan::Node;

/// Returns the reasons `node` is built, one sentence each.
pub fn explain(store: &Store, node: &Node) -> Result<Vec<String>, Error> {
    let mut reasons = Vec::new();
    if let Some((_, message)) = store.last_failure(&node.drv_path)? {
        reasons.push(format!("a previous attempt failed: {message}"));
    }
    let name = node.drv_path.name().trim_end_matches(".drv");
    let Some((previous, _)) = store.previous_build_of(&node.drv_path)? else {
        if reasons.is_empty() {
            reasons.push(format!("never built: no earlier build of `{name}` is recorded"));
        }
        return Ok(reasons);
    };
    if !store.is_valid(&previous)? {
        reasons.push(format!(
            "the previous build of `{name}` used `{}`, which is no longer in the store",
            store.render(&previous)
        ));
        return Ok(reasons);
    }
    let old = store.read_derivation(&previous)?;
    let before = Names::of(store, &old)?;
    let after = Names::of(store, &node.drv)?;

    for (input, path) in &after.inputs {
        match before.inputs.get(input) {
            None => reasons.push(format!("new input `{input}`")),
            Some(old_path) if old_path != path => {
                let (old_out, new_out) =
                    (output_paths(store, old_path)?, output_paths(store, path)?);
                let detail = if new_out.is_empty() {
                    "it is to be built first; if its output comes out the same, this may be cut off"
                } else if old_out != new_out {
                    "its output changed"
                } else {
                    "its derivation changed but not its output"
                };
                reasons.push(format!(
                    "input `{input}` changed ({detail}): was `{}`",
                    store.render(old_path)
                ));
            }
            Some(_) => {}
        }
    }
    for input in before.inputs.keys().filter(|i| !after.inputs.contains_key(*i)) {
        reasons.push(format!("input `{input}` was removed"));
    }
    for (src, path) in &after.sources {
        match before.sources.get(src) {
            None => reasons.push(format!("new source `{src}`")),
            Some(old) if old != path => reasons.push(format!("source `{src}` changed")),
            Some(_) => {}
        }
    }
    let changed = changed_attributes(&before, &old, &after, &node.drv);
    if !changed.is_empty() {
        reasons.push(format!(
            "attributes changed since the previous build: `{}`",
            changed.join("`, `")
        ));
    }
    if reasons.is_empty() {
        reasons.push(format!("its outputs are gone since `{name}` was last built"));
    }
    Ok(reasons)
}

/// The inputs and sources of a derivation by name, and the strings that stand for them.
struct Names {
    inputs: BTreeMap<String, StorePath>,
    sources: BTreeMap<String, StorePath>,
    /// Every path or placeholder of an input or own output, with the name to compare it by.
    tokens: Vec<(String, String)>,
}

impl Names {
    fn of(store: &Store, drv: &Derivation) -> Result<Names, Error> {
        let mut names =
            Names { inputs: BTreeMap::new(), sources: BTreeMap::new(), tokens: Vec::new() };
        for (input, outputs) in &drv.input_drvs {
            let name = input.name().trim_end_matches(".drv").to_owned();
            let input_drv = store.read_derivation(input)?;
            for output in outputs {
                let token = format!("«{name}:{output}»");
                names.tokens.push((input_placeholder(input, output), token.clone()));
                if let Some(p) = input_drv.outputs.get(output).and_then(|o| o.path.as_ref()) {
                    names.tokens.push((store.render(p), token));
                }
            }
            names.inputs.insert(name, input.clone());
        }
        for src in &drv.input_srcs {
            names.tokens.push((store.render(src), format!("«{}»", src.name())));
            names.sources.insert(src.name().to_owned(), src.clone());
        }
        for (output, o) in &drv.outputs {
            names.tokens.push((kiln_store::own_placeholder(output), format!("«self:{output}»")));
            if let Some(p) = &o.path {
                names.tokens.push((store.render(p), format!("«self:{output}»")));
            }
        }
        Ok(names)
    }

    fn normalise(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (from, to) in &self.tokens {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }
}

fn changed_attributes(
    before: &Names,
    old: &Derivation,
    after: &Names,
    new: &Derivation,
) -> Vec<String> {
    let mut changed = Vec::new();
    let keys: BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    for key in keys {
        if new.outputs.contains_key(key) {
            continue;
        }
        let a = old.env.get(key).map(|v| before.normalise(v));
        let b = new.env.get(key).map(|v| after.normalise(v));
        if a != b {
            changed.push(key.clone());
        }
    }
    let norm_args =
        |n: &Names, d: &Derivation| d.args.iter().map(|a| n.normalise(a)).collect::<Vec<_>>();
    if norm_args(before, old) != norm_args(after, new) {
        changed.push("args".into());
    }
    if before.normalise(&old.builder) != after.normalise(&new.builder) {
        changed.push("builder".into());
    }
    if old.platform != new.platform {
        changed.push("system".into());
    }
    changed.sort();
    changed.dedup();
    changed
}

/// Returns the output paths recorded for a derivation (known in advance, or built).
fn output_paths(store: &Store, drv: &StorePath) -> Result<BTreeSet<StorePath>, Error> {
    let d = store.read_derivation(drv)?;
    let mut paths = BTreeSet::new();
    for (name, o) in &d.outputs {
        match &o.path {
            Some(p) => {
                paths.insert(p.clone());
            }
            None => paths.extend(store.last_build(drv, name)?.map(|t| t.output_path)),
        }
    }
    Ok(paths)
}
