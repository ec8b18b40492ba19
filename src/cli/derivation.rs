//! `kiln derivation ...`: reading `.drv` files.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;
use kiln_store::{Derivation, Store};
use serde_json::{Value, json};

use super::Context;

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Print a `.drv` as readable JSON
    Show {
        /// A `.drv` store path, or a `.drv` file whose paths are in this store
        path: String,
        /// Print compact JSON on one line, for tools
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: Command, cx: &Context) -> anyhow::Result<()> {
    let store = cx.open_store()?;
    match cmd {
        Command::Show { path, json } => {
            let (name, drv) = read(&store, &path)?;
            let value = json!({ name: to_json(&store, &drv) });
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer(&mut out, &value)?;
            } else {
                serde_json::to_writer_pretty(&mut out, &value)?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Reads a derivation from the store, or from a file outside it.
fn read(store: &Store, arg: &str) -> anyhow::Result<(String, Derivation)> {
    if let Ok(path) = store.resolve(arg) {
        let drv = store.read_derivation(&path)?;
        return Ok((store.render(&path), drv));
    }
    let text = std::fs::read_to_string(arg).with_context(|| format!("cannot read `{arg}`"))?;
    let drv = kiln_store::parse_derivation(&text, store.dir(), arg)?;
    Ok((arg.to_owned(), drv))
}

fn to_json(store: &Store, drv: &Derivation) -> Value {
    let outputs: serde_json::Map<String, Value> = drv
        .outputs
        .iter()
        .map(|(name, o)| {
            let mut v = serde_json::Map::new();
            if let Some(p) = &o.path {
                v.insert("path".into(), store.render(p).into());
            }
            if !o.hash_algo.is_empty() {
                v.insert("hashAlgo".into(), o.hash_algo.clone().into());
            }
            if !o.hash.is_empty() {
                v.insert("hash".into(), o.hash.clone().into());
            }
            (name.clone(), Value::Object(v))
        })
        .collect();
    let input_drvs: serde_json::Map<String, Value> =
        drv.input_drvs.iter().map(|(p, outs)| (store.render(p), json!(outs))).collect();
    json!({
        "outputs": outputs,
        "inputDrvs": input_drvs,
        "inputSrcs": drv.input_srcs.iter().map(|p| store.render(p)).collect::<Vec<_>>(),
        "system": drv.platform,
        "builder": drv.builder,
        "args": drv.args,
        "env": drv.env,
    })
}
