//! The command tree: one module per command, each an arguments struct and a `run` function
//! that turns arguments into a call of a library crate.

mod build;
mod derivation;
mod eval;
mod frontend;
mod instantiate;
mod log;
mod parse;
mod repl;
mod store;
mod store_diff;
mod store_io;
mod store_verify;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Kiln: a declarative rebuild pipeline for package expressions in the Nix language
#[derive(Parser, Debug)]
#[command(name = "kiln", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The store's root folder [default: $KILN_STORE, else $XDG_DATA_HOME/kiln]
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Add to the store, and query and export what it holds
    #[command(subcommand)]
    Store(store::Command),
    /// Inspect derivations
    #[command(subcommand)]
    Derivation(derivation::Command),
    /// Evaluate derivations, write their `.drv` files to the store and print their paths
    Instantiate(instantiate::Args),
    /// Build derivations and link their outputs as `./result`
    Build(build::Args),
    /// Print the build log of a derivation or of an output
    Log(log::Args),
    /// Set up a build sandbox and run a builder in it (used by `kiln build` itself)
    #[command(name = "__sandbox", hide = true)]
    Sandbox(build::SandboxArgs),
    /// Evaluate a Nix expression and print its value
    Eval(eval::Args),
    /// Check the syntax of a Nix file
    Parse(parse::Args),
    /// Evaluate expressions interactively
    Repl(repl::Args),
}

/// What every command may need: where the store is, opened on first use.
pub(crate) struct Context {
    store_root: Option<PathBuf>,
}

impl Context {
    /// Returns the store root: `--store`, else `KILN_STORE`, else `$XDG_DATA_HOME/kiln`, else
    /// `~/.local/share/kiln`.
    pub(crate) fn store_root(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.store_root {
            return Ok(dir.clone());
        }
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = var("KILN_STORE") {
            return Ok(dir);
        }
        if let Some(data) = var("XDG_DATA_HOME") {
            return Ok(data.join("kiln"));
        }
        let home =
            var("HOME").context("cannot find the store: set `--store`, `KILN_STORE` or `HOME`")?;
        Ok(home.join(".local/share/kiln"))
    }

    /// Opens (creating on first use) the store.
    pub(crate) fn open_store(&self) -> anyhow::Result<kiln_store::Store> {
        let root = self.store_root()?;
        kiln_store::Store::open(&root)
            .with_context(|| format!("cannot open the store at `{}`", root.display()))
    }
}

/// Runs the command the arguments name.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let cx = Context { store_root: cli.store };
    match cli.command {
        Command::Store(cmd) => store::run(cmd, &cx),
        Command::Derivation(cmd) => derivation::run(cmd, &cx),
        Command::Instantiate(args) => instantiate::run(args, &cx),
        Command::Build(args) => build::run(args, &cx),
        Command::Log(args) => log::run(args, &cx),
        Command::Sandbox(args) => build::sandbox(args),
        Command::Eval(args) => eval::run(args, cx.store_root()?),
        Command::Parse(args) => parse::run(args),
        Command::Repl(args) => repl::run(args, cx.store_root()?),
    }
}
