//! `kiln store ...`: adding paths, and querying and exporting what the store holds.

use std::io::Write;
use std::path::PathBuf;

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
    /// Write the NAR archive of a store path to stdout
    Dump {
        /// The store path
        path: String,
    },
    /// Show what the store knows of paths: hashes, sizes, references, deriver, registration
    Info {
        /// Store paths, or links into the store such as `./result` (can be repeated)
        #[arg(required = true)]
        paths: Vec<String>,
        /// Print JSON with exact numbers
        #[arg(long)]
        json: bool,
        /// Show every path in the closure of the given paths
        #[arg(long)]
        closure: bool,
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
            if json {
                print_info_json(&store, &infos, &mut out)?;
            } else {
                print_info_text(&store, &infos, &mut out)?;
            }
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
    }
    out.flush()?;
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
    }
    Ok(())
}

fn print_info_json(store: &Store, infos: &[PathInfo], out: &mut impl Write) -> anyhow::Result<()> {
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
        }));
    }
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)?;
    Ok(())
}
