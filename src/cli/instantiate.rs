//! `kiln instantiate`: evaluate derivations, write their `.drv` files, print their paths.

use std::io::Write;

use super::Context;
use super::frontend::{EvalArgs, derivations};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The file to evaluate [default: ./default.nix]
    file: Option<String>,
    #[command(flatten)]
    eval: EvalArgs,
}

pub(crate) fn run(args: Args, cx: &Context) -> anyhow::Result<()> {
    let found = derivations(cx.store_root()?, args.file, &args.eval)?;
    let mut out = std::io::stdout().lock();
    for drv_path in found {
        writeln!(out, "{drv_path}")?;
    }
    Ok(())
}
