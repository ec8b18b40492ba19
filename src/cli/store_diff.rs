//! `kiln store diff A B`: what differs between the closures of two store paths, package by
//! package (added, removed, version changes, size change), and the change of the whole closure.
//!
//! A path's name is split into a package name and a version the way CppNix's `parseDrvName`
//! splits a derivation name: the version starts after the first `-` that is followed by
//! anything but an ASCII letter (`zlib-1.3.1` is `zlib` at `1.3.1`, `bash-interactive-5.2` is
//! `bash-interactive` at `5.2`, `source` has no version). A version's last `-` part made of
//! lowercase letters only is taken as an output name and dropped (`zlib-1.3-dev` counts as
//! `zlib` at `1.3`), so the outputs of one package count as that package. A version that really
//! ends that way (`1.0-unstable`) loses its last part too: names cannot tell the two apart.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kiln_store::{Store, StorePath};
use serde_json::json;

use crate::ui;

/// Prints what differs between the closures of `before` and `after` (store paths, or links
/// into the store), as text lines or, with `json`, as one JSON object.
pub(crate) fn run(
    store: &Store,
    before: &str,
    after: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (before, after) = (store.resolve(before)?, store.resolve(after)?);
    let old = Packages::of_closure(store, &before)?;
    let new = Packages::of_closure(store, &after)?;
    let changes = changes(&old, &new);
    if json {
        print_json(store, (&before, &old), (&after, &new), &changes, out)
    } else {
        print_text(&old, &new, &changes, out)
    }
}

/// One package's share of a closure: the versions its paths carry and their total NAR size.
#[derive(Default, PartialEq, Eq)]
struct Side {
    versions: BTreeSet<String>,
    size: u64,
}

/// A closure grouped by package name.
struct Packages {
    by_name: BTreeMap<String, Side>,
    paths: usize,
    size: u64,
}

impl Packages {
    fn of_closure(store: &Store, root: &StorePath) -> anyhow::Result<Packages> {
        let (paths, _) = store.closure(std::slice::from_ref(root))?;
        let mut packages = Packages { by_name: BTreeMap::new(), paths: paths.len(), size: 0 };
        for path in &paths {
            let info = store.query_info(path)?.ok_or_else(|| {
                anyhow::anyhow!("`{}` left the store while being compared", store.render(path))
            })?;
            let (name, version) = split_name(path.name());
            let side = packages.by_name.entry(name.to_owned()).or_default();
            side.versions.insert(version.to_owned());
            side.size += info.nar_size;
            packages.size += info.nar_size;
        }
        Ok(packages)
    }
}

/// How a package differs between two closures.
struct Change<'a> {
    name: &'a str,
    before: Option<&'a Side>,
    after: Option<&'a Side>,
}

impl Change<'_> {
    fn kind(&self) -> &'static str {
        match (self.before, self.after) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        }
    }

    fn size_delta(&self) -> i128 {
        i128::from(self.after.map_or(0, |s| s.size)) - i128::from(self.before.map_or(0, |s| s.size))
    }
}

/// Returns the packages whose versions or size differ, sorted by name.
fn changes<'a>(old: &'a Packages, new: &'a Packages) -> Vec<Change<'a>> {
    let names: BTreeSet<&String> = old.by_name.keys().chain(new.by_name.keys()).collect();
    names
        .into_iter()
        .map(|name| Change { name, before: old.by_name.get(name), after: new.by_name.get(name) })
        .filter(|c| c.before != c.after)
        .collect()
}

fn print_text(
    old: &Packages,
    new: &Packages,
    changes: &[Change],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for change in changes {
        let delta = signed_size(change.size_delta());
        let line = match (change.before, change.after) {
            (None, Some(after)) => format!("added{}, {delta}", labelled(&after.versions)),
            (Some(before), None) => format!("removed{}, {delta}", labelled(&before.versions)),
            (Some(before), Some(after)) => {
                let mut parts = Vec::new();
                if before.versions != after.versions {
                    let (from, to) = (versions(&before.versions), versions(&after.versions));
                    parts.push(format!("{from} → {to}"));
                }
                if before.size != after.size {
                    parts.push(delta);
                }
                parts.join(", ")
            }
            (None, None) => unreachable!("a change names a package of one closure at least"),
        };
        writeln!(out, "{}: {line}", change.name)?;
    }

    let total = i128::from(new.size) - i128::from(old.size);
    writeln!(
        out,
        "total: {} ({} → {}, {} → {} paths)",
        signed_size(total),
        ui::human_size(old.size),
        ui::human_size(new.size),
        old.paths,
        new.paths
    )?;
    Ok(())
}

fn print_json(
    store: &Store,
    (before, old): (&StorePath, &Packages),
    (after, new): (&StorePath, &Packages),
    changes: &[Change],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let side = |path: &StorePath, packages: &Packages| json!({"path": store.render(path), "narSize": packages.size, "pathCount": packages.paths});
    let packages: Vec<_> = changes
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "change": c.kind(),
                "versionsBefore": c.before.map_or_else(Vec::new, |s| sorted(&s.versions)),
                "versionsAfter": c.after.map_or_else(Vec::new, |s| sorted(&s.versions)),
                "sizeBefore": c.before.map_or(0, |s| s.size),
                "sizeAfter": c.after.map_or(0, |s| s.size),
                "sizeDelta": c.size_delta() as i64,
            })
        })
        .collect();
    let value = json!({
        "before": side(before, old),
        "after": side(after, new),
        "sizeDelta": (i128::from(new.size) - i128::from(old.size)) as i64,
        "packages": packages,
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}

/// Splits a store path's name into a package name and a version (empty if it has none), as the
/// module documentation describes.
fn split_name(name: &str) -> (&str, &str) {
    let bytes = name.as_bytes();
    let Some(dash) = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()))
    else {
        return (name, "");
    };
    let (package, version) = (&name[..dash], &name[dash + 1..]);
    let version = match version.rsplit_once('-') {
        Some((rest, output))
            if !output.is_empty() && output.bytes().all(|c| c.is_ascii_lowercase()) =>
        {
            rest
        }
        _ => version,
    };
    (package, version)
}

/// Returns versions in version order: numbers compare as numbers, `1.9` before `1.10`.
fn sorted(versions: &BTreeSet<String>) -> Vec<&str> {
    let mut list: Vec<&str> = versions.iter().map(String::as_str).collect();
    list.sort_by(|a, b| compare_versions(a, b));
    list
}

/// Shows a set of versions: one as itself, several as `{1.0, 1.1}`.
fn versions(set: &BTreeSet<String>) -> String {
    let shown: Vec<&str> =
        sorted(set).into_iter().map(|v| if v.is_empty() { "(no version)" } else { v }).collect();
    match shown.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("{{{}}}", many.join(", ")),
    }
}

/// Shows the versions after a word (`added 2.0`), or nothing for a package without versions.
fn labelled(set: &BTreeSet<String>) -> String {
    if set.iter().all(String::is_empty) { String::new() } else { format!(" {}", versions(set)) }
}

/// Writes a size change with its sign: `+12.3 KiB`, `-1.0 MiB`, `±0 B`.
fn signed_size(delta: i128) -> String {
    let size = ui::human_size(u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX));
    match delta.cmp(&0) {
        Ordering::Greater => format!("+{size}"),
        Ordering::Less => format!("-{size}"),
        Ordering::Equal => format!("±{size}"),
    }
}

/// Orders versions part by part: runs of digits as numbers, other runs as text, a number after
/// text (`1.0` after `1.pre`), a longer version after its prefix (`1.0.1` after `1.0`).
fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut left, mut right) = (parts(a), parts(b));
    loop {
        let order = match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => match (is_number(x), is_number(y)) {
                (true, true) => {
                    let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                }
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => x.cmp(y),
            },
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

fn is_number(part: &str) -> bool {
    part.bytes().all(|c| c.is_ascii_digit())
}

/// Splits a version into runs of digits and runs of other characters, dropping `.` and `-`.
fn parts(version: &str) -> impl Iterator<Item = &str> {
    version.split(['.', '-']).flat_map(|piece| {
        let mut rest = piece;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest.find(|c: char| c.is_ascii_digit() != digits).unwrap_or(rest.len());
            let (part, tail) = rest.split_at(end);
            rest = tail;
            Some(part)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_where_a_dash_meets_a_non_letter() {
        let cases = [
            ("zlib-1.3.1", ("zlib", "1.3.1")),
            ("bash-interactive-5.2", ("bash-interactive", "5.2")),
            ("source", ("source", "")),
            ("hook-setup", ("hook-setup", "")),
            ("zlib-1.3-dev", ("zlib", "1.3")),
            ("perl-5.38.0-man", ("perl", "5.38.0")),
            ("foo-1.0-rc2", ("foo", "1.0-rc2")),
            ("data-1", ("data", "1")),
            ("x-", ("x-", "")),
            ("glibc-2.39-52", ("glibc", "2.39-52")),
        ];
        for (name, want) in cases {
            assert_eq!(split_name(name), want, "{name}");
        }
    }

    #[test]
    fn versions_order_numbers_as_numbers() {
        let mut list = ["1.10", "1.9", "1.9.1", "1.pre", "2", "1.0"];
        list.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(list, ["1.pre", "1.0", "1.9", "1.9.1", "1.10", "2"]);
        let set = BTreeSet::from(["2.1".to_owned(), "2.0".to_owned()]);
        assert_eq!(versions(&set), "{2.0, 2.1}");
        assert_eq!(signed_size(-2048), "-2.0 KiB");
        assert_eq!(signed_size(128), "+128 B");
    }
}
