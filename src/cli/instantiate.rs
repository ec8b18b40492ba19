//! `kiln instantiate`: evaluate derivations, write their `.drv` files, print their paths.

use std::io::Write;

use super::Context;
use super::frontend::{EvalArgs, Source, derivations};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Files to evaluate, or expressions with `-E` [default: ./default.nix]
    paths: Vec<String>,
    #[command(flatten)]
    eval: EvalArgs,
}

pub(crate) fn run(args: Args, cx: &Context) -> anyhow::Result<()> {
    let sources = Source::from_args(&args.paths, args.eval.expr);
    let found = derivations(cx.store_root()?, sources, &args.eval)?;
    let mut out = std::io::stdout().lock();
    for drv_path in found {
        writeln!(out, "{drv_path}")?;
    }
    Ok(())
}
