//! `kiln store ...`: adding paths, and querying and exporting what the store holds.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use kiln_store::{PathInfo, Store, StorePath};
use serde_json::json;

use super::Context;
use crate::ui;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Add files or folders to the store and print their store paths
    Add {
        /// Files, folders or symlinks to add (can be repeated)
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Add the file, folder or symlink a NAR archive holds (as `kiln store dump` writes one)
    ///
    /// The archive is checked as it is unpacked in a temporary folder: entries that would land
    /// outside it (`..`, names with `/`), unsorted or repeated entries and malformed fields are
    /// refused with the offset of the offending bytes, and nothing is added.
    Import {
        /// The archive, or `-` for standard input
        file: PathBuf,
        /// The name of the store path (default: the file's name without `.nar`)
        #[arg(long)]
        name: Option<String>,
    },
    /// Write the NAR archive of a store path to stdout
    Dump {
        /// The store path
        path: String,
    },
    /// Show what the store knows of paths: hashes, sizes, references, deriver, registration
    ///
    /// With `--closure`, end with the closure's total size and its biggest paths; with
    /// `--closure --json`, print an object (`paths`, `closure`) instead of an array.
    Info {
        /// Store paths, or links into the store such as `./result` (can be repeated)
        #[arg(required = true)]
        paths: Vec<String>,
        /// Print JSON with exact numbers
        #[arg(long)]
        json: bool,
        /// Show every path in the closure of the given paths, then their total size and the
        /// biggest contributors
        #[arg(long)]
        closure: bool,
    },
    /// Show what differs between the closures of two store paths, package by package
    ///
    /// One line per package that was added, removed, or changed in version or in size, sorted
    /// by name; then the change of the whole closure.
    Diff {
        /// The store path before, or a link into the store such as `./result`
        before: String,
        /// The store path after
        after: String,
        /// Print JSON with exact numbers
        #[arg(long)]
        json: bool,
    },
    /// Print the paths a store path refers to
    Refs {
        /// The store path
        path: String,
    },
    /// Print the valid paths that refer to a store path
    Referrers {
        /// The store path
        path: String,
    },
    /// Print the closure of store paths under references
    Closure {
        /// Store paths (can be repeated)
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Show why one store path depends on another: the chain of references, and where each
    /// hop's files name the next
    WhyDepends {
        /// The path that depends
        from: String,
        /// The path it depends on
        to: String,
        /// Show every path of the closure through which `from` depends on `to`, as a tree
        #[arg(long)]
        all: bool,
    },
    /// Show the reference tree of a store path, references by name (a subtree shown once, then
    /// marked)
    Tree {
        /// The store path
        path: String,
    },
    /// Print the reference graph of a store path's closure
    Graph {
        /// The store path
        path: String,
        /// `dot` for Graphviz, `json` for tools
        #[arg(long, value_parser = ["dot", "json"], default_value = "dot")]
        format: String,
    },
    /// List a folder inside the store (a store path, or a folder in one)
    Ls {
        /// The store path, or a path inside one
        path: String,
        /// List the folders below too
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Delete every path that no root keeps alive, and say what was freed
    Gc {
        /// Only print what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// Stop once this much is freed (`500M`, `2G`, or bytes)
        #[arg(long, value_name = "SIZE", value_parser = ui::parse_size)]
        max_freed: Option<u64>,
        /// Keep the outputs of derivations that are kept
        #[arg(long)]
        keep_outputs: bool,
        /// Keep the derivations that built paths that are kept
        #[arg(long)]
        keep_derivations: bool,
    },
    /// List the garbage collector's roots and what each keeps alive
    Roots,
    /// Check that the disk holds what the database says, and repair what can be
    ///
    /// Without paths, checks the whole store: the database, that every registered path is on
    /// disk, and that nothing unregistered lingers in the store folder. Damaged paths are
    /// recorded and not handed out again (exports, builds) until repaired.
    Verify {
        /// Store paths to check [default: the whole store] (can be repeated)
        paths: Vec<String>,
        /// Also hash every path (on every core) and compare with its registered hash, and
        /// check that it is still read-only and untouched
        #[arg(long)]
        check_contents: bool,
        /// Rebuild damaged paths from their derivations in the sandbox, put back the normal
        /// form, and remove unregistered entries; say what could not be repaired
        #[arg(long)]
        repair: bool,
        /// Look for downloads here first when rebuilding fetched sources: a folder or an
        /// `http://` URL (can be repeated)
        #[arg(long = "mirror", value_name = "DIR-OR-URL", requires = "repair")]
        mirrors: Vec<String>,
        /// Rebuild without the sandbox (repairs then fail: the rebuild needs its own place)
        #[arg(long, hide = true)]
        no_sandbox: bool,
        /// Print one JSON object with every problem and what became of it
        #[arg(long)]
        json: bool,
    },
    /// Turn identical files across the store into hard links to one copy, and say how much
    /// space that saved
    ///
    /// `kiln store config auto-optimise true` does it as each new path is registered.
    Optimise {
        /// Store paths to deduplicate [default: the whole store] (can be repeated)
        paths: Vec<String>,
    },
    /// Show the store's settings, or show or change one
    Config {
        /// The setting [default: show them all]
        name: Option<String>,
        /// Its new value
        value: Option<String>,
        /// Put the setting back to its default
        #[arg(long, conflicts_with = "value", requires = "name")]
        unset: bool,
    },
    /// Print a file inside the store
    Cat {
        /// A path to a file inside a store path
        path: String,
    },
}

pub(crate) fn run(cmd: Command, cx: &Context) -> anyhow::Result<()> {
    let store = cx.open_store()?;
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Add { paths } => {
            for src in paths {
                let path = store
                    .add_path(&src, None)
                    .with_context(|| format!("cannot add `{}` to the store", src.display()))?;
                writeln!(out, "{}", store.render(&path))?;
            }
        }
        Command::Import { file, name } => {
            let name = match name {
                Some(n) => n,
                None if file == Path::new("-") => {
                    anyhow::bail!("an archive read from standard input needs --name")
                }
                None => {
                    let base = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    base.strip_suffix(".nar").unwrap_or(base).to_owned()
                }
            };
            let path = if file == Path::new("-") {
                store.import_nar(std::io::stdin().lock(), &name)
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open `{}`", file.display()))?;
                store.import_nar(std::io::BufReader::new(f), &name)
            }
            .with_context(|| format!("cannot import `{}`", file.display()))?;
            writeln!(out, "{}", store.render(&path))?;
        }
        Command::Dump { path } => {
            let path = store.resolve(&path)?;
            store.dump(&path, &mut out)?;
        }
        Command::Info { paths, json, closure } => {
            let mut paths = resolve_all(&store, &paths)?;
            if closure {
                paths = store.closure(&paths)?.0;
            }
            let infos = paths
                .iter()
                .map(|p| {
                    let info = store.query_info(p)?;
                    info.ok_or_else(|| {
                        anyhow::anyhow!("`{}` is not a valid path in the store", store.render(p))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if json && closure {
                print_closure_json(&store, &infos, &mut out)?;
            } else if json {
                print_info_json(&store, &infos, &mut out)?;
            } else {
                print_info_text(&store, &infos, &mut out)?;
                if closure {
                    print_closure_summary(&store, &infos, &mut out)?;
                }
            }
        }
        Command::Diff { before, after, json } => {
            super::store_diff::run(&store, &before, &after, json, &mut out)?
        }
        Command::Refs { path } => {
            for r in store.references(&store.resolve(&path)?)? {
                writeln!(out, "{}", store.render(&r))?;
            }
        }
        Command::Referrers { path } => {
            for r in store.referrers(&store.resolve(&path)?)? {
                writeln!(out, "{}", store.render(&r))?;
            }
        }
        Command::Closure { paths } => {
            let paths = resolve_all(&store, &paths)?;
            for p in store.closure(&paths)?.0 {
                writeln!(out, "{}", store.render(&p))?;
            }
        }
        Command::WhyDepends { from, to, all } => why_depends(&store, &from, &to, all, &mut out)?,
        Command::Tree { path } => {
            let root = store.resolve(&path)?;
            tree(&store, &root, "", true, &mut BTreeSet::new(), &mut out, true)?;
        }
        Command::Graph { path, format } => {
            graph(&store, &store.resolve(&path)?, &format, &mut out)?
        }
        Command::Ls { path, recursive } => {
            let location = inside(&store, &path)?;
            // A file is listed by its name; a folder's entries relative to it.
            let root = match location.parent() {
                Some(parent) if !location.is_dir() => parent.to_owned(),
                _ => location.clone(),
            };
            ls(&root, &location, recursive, &mut out)?;
        }
        Command::Gc { dry_run, max_freed, keep_outputs, keep_derivations } => {
            let options =
                kiln_store::GcOptions { dry_run, max_freed, keep_outputs, keep_derivations };
            let report = store.collect_garbage(&options)?;
            for p in &report.deleted {
                writeln!(out, "{}", store.render(p))?;
            }
            let verb = if dry_run { "would delete" } else { "deleted" };
            let n = report.deleted.len();
            eprintln!(
                "{verb} {n} path{}, freeing {}{}",
                if n == 1 { "" } else { "s" },
                ui::human_size(report.freed),
                match (report.debris, report.temporaries) {
                    (0, 0) => String::new(),
                    (d, 0) => format!(" (and {d} unregistered leftovers)"),
                    (0, t) => format!(" (and {t} leftovers of interrupted processes)"),
                    (d, t) =>
                        format!(" (and {d} unregistered leftovers, {t} of interrupted processes)"),
                }
            );
        }
        Command::Roots => {
            for root in store.roots()? {
                let (closure, size) = store.closure(std::slice::from_ref(&root.path))?;
                writeln!(
                    out,
                    "{} -> {} ({} paths, {})",
                    root.link.display(),
                    store.render(&root.path),
                    closure.len(),
                    ui::human_size(size)
                )?;
            }
        }
        Command::Verify { paths, check_contents, repair, mirrors, no_sandbox, json } => {
            let args = super::store_verify::Args {
                paths,
                check_contents,
                repair,
                mirrors,
                no_sandbox,
                json,
            };
            super::store_verify::run(&store, args, &mut out)?;
        }
        Command::Optimise { paths } => {
            let paths = resolve_all(&store, &paths)?;
            let report = store.optimise(&paths)?;
            let files = if report.linked == 1 { "file" } else { "files" };
            eprintln!(
                "linked {} {files} to identical ones in {} paths, saving {}",
                report.linked,
                report.paths,
                ui::human_size(report.saved)
            );
        }
        Command::Config { name, value, unset } => match (name, value) {
            (None, _) => {
                for (name, about) in kiln_store::SETTINGS {
                    let value = store.setting(name)?;
                    let shown = value.as_deref().unwrap_or("false (the default)");
                    writeln!(out, "{name} = {shown}\n    {about}")?;
                }
            }
            (Some(name), None) if unset => store.set_setting(&name, None)?,
            (Some(name), None) => {
                writeln!(out, "{}", store.setting(&name)?.as_deref().unwrap_or("false"))?
            }
            (Some(name), Some(value)) => store.set_setting(&name, Some(&value))?,
        },
        Command::Cat { path } => {
            let location = inside(&store, &path)?;
            // What verification found damaged is not handed out.
            let (store_path, _) = store.dir().split(location.to_str().unwrap_or_default())?;
            store.require_intact(std::slice::from_ref(&store_path))?;
            let bytes =
                std::fs::read(&location).with_context(|| format!("cannot read `{path}`"))?;
            out.write_all(&bytes)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Resolves a path inside the store (`/s/abc-x/bin/y`) to a location on disk, refusing paths
/// that are not valid.
fn inside(store: &Store, arg: &str) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(arg)?;
    let text = absolute.to_string_lossy();
    let (path, rest) = store.dir().split(&text)?;
    if !store.is_valid(&path)? {
        anyhow::bail!("`{}` is not a valid path in the store", store.render(&path));
    }
    Ok(store.locate(&path).join(rest))
}

fn why_depends(
    store: &Store,
    from: &str,
    to: &str,
    all: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (from, to) = (store.resolve(from)?, store.resolve(to)?);
    let Some(chain) = store.why_depends(&from, &to)? else {
        anyhow::bail!("`{}` does not depend on `{}`", store.render(&from), store.render(&to));
    };
    let hop = |holder: &StorePath, next: &StorePath| -> anyhow::Result<String> {
        Ok(match store.find_reference(holder, next)? {
            Some(site) if site.file.as_os_str().is_empty() => {
                format!("at byte {}: {}", site.offset, site.context)
            }
            Some(site) => {
                format!("in {} at byte {}: {}", site.file.display(), site.offset, site.context)
            }
            None => "registered as a reference, but no file names it now".to_owned(),
        })
    };
    if !all {
        writeln!(out, "{}", store.render(&chain[0]))?;
        for (depth, pair) in chain.windows(2).enumerate() {
            let indent = "    ".repeat(depth);
            writeln!(out, "{indent}└── {}", store.render(&pair[1]))?;
            writeln!(out, "{indent}    named {}", hop(&pair[0], &pair[1])?)?;
        }
        return Ok(());
    }
    // Every path of `from`'s closure that leads to `to`, as a tree.
    let mut leads = BTreeSet::new();
    for p in store.closure(std::slice::from_ref(&from))?.0 {
        if store.why_depends(&p, &to)?.is_some() {
            leads.insert(p);
        }
    }
    fn walk(
        store: &Store,
        p: &StorePath,
        to: &StorePath,
        leads: &BTreeSet<StorePath>,
        depth: usize,
        seen: &mut BTreeSet<StorePath>,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        for r in store.references(p)? {
            if r == *p || !leads.contains(&r) {
                continue;
            }
            let indent = "    ".repeat(depth);
            let site = store.find_reference(p, &r)?;
            let named = site.map_or(String::new(), |s| {
                format!("  ({} at byte {})", s.file.display(), s.offset)
            });
            if !seen.insert(r.clone()) {
                writeln!(out, "{indent}└── {}{named}  [shown above]", store.render(&r))?;
                continue;
            }
            writeln!(out, "{indent}└── {}{named}", store.render(&r))?;
            if r != *to {
                walk(store, &r, to, leads, depth + 1, seen, out)?;
            }
        }
        Ok(())
    }
    writeln!(out, "{}", store.render(&from))?;
    walk(store, &from, &to, &leads, 0, &mut BTreeSet::new(), out)
}

fn tree(
    store: &Store,
    p: &StorePath,
    indent: &str,
    last: bool,
    seen: &mut BTreeSet<StorePath>,
    out: &mut impl Write,
    top: bool,
) -> anyhow::Result<()> {
    let (branch, below) = match (top, last) {
        (true, _) => ("", String::new()),
        (false, true) => ("└── ", format!("{indent}    ")),
        (false, false) => ("├── ", format!("{indent}│   ")),
    };
    // By name, so the tree reads the same in every store (digests depend on the store folder).
    let mut refs: Vec<StorePath> = store.references(p)?.into_iter().filter(|r| r != p).collect();
    refs.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.cmp(b)));
    if !seen.insert(p.clone()) && !refs.is_empty() {
        writeln!(out, "{indent}{branch}{} [shown above]", store.render(p))?;
        return Ok(());
    }
    writeln!(out, "{indent}{branch}{}", store.render(p))?;
    for (i, r) in refs.iter().enumerate() {
        tree(store, r, &below, i + 1 == refs.len(), seen, out, false)?;
    }
    Ok(())
}

fn graph(
    store: &Store,
    root: &StorePath,
    format: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (closure, _) = store.closure(std::slice::from_ref(root))?;
    let mut edges = Vec::new();
    for p in &closure {
        for r in store.references(p)? {
            if &r != p {
                edges.push((p.clone(), r));
            }
        }
    }
    if format == "json" {
        let value = json!({
            "root": store.render(root),
            "nodes": closure.iter().map(|p| {
                let info = store.query_info(p).ok().flatten();
                json!({"path": store.render(p), "narSize": info.map(|i| i.nar_size)})
            }).collect::<Vec<_>>(),
            "edges": edges.iter().map(|(a, b)| json!({"from": store.render(a), "to": store.render(b)})).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "digraph closure {{")?;
    writeln!(out, "  rankdir = LR;")?;
    for p in &closure {
        writeln!(out, "  \"{p}\" [label = \"{}\"];", p.name())?;
    }
    for (a, b) in &edges {
        writeln!(out, "  \"{a}\" -> \"{b}\";")?;
    }
    writeln!(out, "}}")?;
    Ok(())
}

fn ls(root: &Path, location: &Path, recursive: bool, out: &mut impl Write) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(location)
        .with_context(|| format!("cannot read `{}`", location.display()))?;
    let show = |p: &Path, m: &std::fs::Metadata, out: &mut dyn Write| -> anyhow::Result<()> {
        let rel = p.strip_prefix(root).unwrap_or(p);
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        if m.is_symlink() {
            writeln!(
                out,
                "lrwxrwxrwx {:>10}  {} -> {}",
                0,
                rel.display(),
                std::fs::read_link(p)?.display()
            )?;
        } else if m.is_dir() {
            writeln!(out, "dr-xr-xr-x {:>10}  {}/", 0, rel.display())?;
        } else {
            let kind =
                if m.permissions().mode() & 0o100 != 0 { "-r-xr-xr-x" } else { "-r--r--r--" };
            writeln!(out, "{kind} {:>10}  {}", m.len(), rel.display())?;
        }
        Ok(())
    };
    if !meta.is_dir() {
        return show(location, &meta, out);
    }

    let mut entries: Vec<_> = std::fs::read_dir(location)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let m = std::fs::symlink_metadata(e.path())?;
        show(&e.path(), &m, out)?;
        if recursive && m.is_dir() {
            ls(root, &e.path(), true, out)?;
        }
    }
    Ok(())
}

fn resolve_all(store: &Store, args: &[String]) -> anyhow::Result<Vec<StorePath>> {
    args.iter().map(|a| Ok(store.resolve(a)?)).collect()
}

fn print_info_text(store: &Store, infos: &[PathInfo], out: &mut impl Write) -> anyhow::Result<()> {
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let (closure, closure_size) = store.closure(std::slice::from_ref(&info.path))?;
        writeln!(out, "{}", store.render(&info.path))?;
        writeln!(out, "  nar hash      {}", info.nar_hash)?;
        writeln!(out, "  nar size      {}", ui::human_size(info.nar_size))?;
        let count = closure.len();
        let noun = if count == 1 { "path" } else { "paths" };
        writeln!(out, "  closure size  {} ({count} {noun})", ui::human_size(closure_size))?;
        if info.references.is_empty() {
            writeln!(out, "  references    none")?;
        }
        for (j, r) in info.references.iter().enumerate() {
            let label = if j == 0 { "references" } else { "" };
            writeln!(out, "  {label:<12}  {}", store.render(r))?;
        }
        let deriver = info.deriver.as_ref().map_or_else(|| "none".to_owned(), |d| store.render(d));
        writeln!(out, "  deriver       {deriver}")?;
        writeln!(out, "  registered    {}", ui::utc_time(info.registration_time))?;
        if let Some(ca) = &info.ca {
            writeln!(out, "  addressed by  {ca}")?;
        }
        if let Some(problem) = store.damage(&info.path)? {
            writeln!(out, "  damaged       {problem}")?;
        }
    }
    Ok(())
}

/// How many of a closure's biggest paths `info --closure` shows.
const BIGGEST: usize = 10;

/// Returns the closure's total NAR size and its biggest paths, largest first (ties by path).
fn biggest(infos: &[PathInfo]) -> (u64, Vec<&PathInfo>) {
    let total = infos.iter().map(|i| i.nar_size).sum();
    let mut by_size: Vec<&PathInfo> = infos.iter().collect();
    by_size.sort_by(|a, b| b.nar_size.cmp(&a.nar_size).then_with(|| a.path.cmp(&b.path)));
    by_size.truncate(BIGGEST);
    (total, by_size)
}

fn percent(part: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { part as f64 * 100.0 / total as f64 }
}

fn print_closure_summary(
    store: &Store,
    infos: &[PathInfo],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (total, biggest) = biggest(infos);
    let count = infos.len();
    let noun = if count == 1 { "path" } else { "paths" };
    writeln!(out)?;
    writeln!(out, "closure: {count} {noun}, {} in total", ui::human_size(total))?;
    writeln!(out, "biggest contributors:")?;
    for info in biggest {
        writeln!(
            out,
            "  {:>10}  {:>5.1}%  {}",
            ui::human_size(info.nar_size),
            percent(info.nar_size, total),
            store.render(&info.path)
        )?;
    }
    Ok(())
}

fn info_json(store: &Store, infos: &[PathInfo]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut items = Vec::with_capacity(infos.len());
    for info in infos {
        let closure_size = store.closure(std::slice::from_ref(&info.path))?.1;
        items.push(json!({
            "path": store.render(&info.path),
            "narHash": info.nar_hash.to_string(),
            "narSize": info.nar_size,
            "closureSize": closure_size,
            "references": info.references.iter().map(|r| store.render(r)).collect::<Vec<_>>(),
            "deriver": info.deriver.as_ref().map(|d| store.render(d)),
            "registrationTime": info.registration_time,
            "ca": info.ca,
            "damaged": store.damage(&info.path)?,
        }));
    }
    Ok(items)
}

fn print_info_json(store: &Store, infos: &[PathInfo], out: &mut impl Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &info_json(store, infos)?)?;
    writeln!(out)?;
    Ok(())
}

/// Prints `info --closure --json`: the paths as `info --json` prints them, and the summary.
fn print_closure_json(
    store: &Store,
    infos: &[PathInfo],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (total, biggest) = biggest(infos);
    let value = json!({
        "paths": info_json(store, infos)?,
        "closure": {
            "pathCount": infos.len(),
            "narSize": total,
            "biggest": biggest.iter().map(|i| json!({
                "path": store.render(&i.path),
                "narSize": i.nar_size,
                "percent": percent(i.nar_size, total),
            })).collect::<Vec<_>>(),
        },
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}
