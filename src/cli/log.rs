//! `kiln log`: print the build log of a derivation or of an output.

use std::io::Write;

use anyhow::bail;

use super::Context;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// A `.drv` store path, an output path, or a link to one such as `./result`
    path: String,
}

pub(crate) fn run(args: Args, cx: &Context) -> anyhow::Result<()> {
    let store = cx.open_store()?;
    let path = store.resolve(&args.path)?;
    let drv = if path.is_derivation() {
        path
    } else {
        match store.query_info(&path)?.and_then(|info| info.deriver) {
            Some(drv) => drv,
            None => bail!(
                "`{}` was not built by kiln here, so it has no build log",
                store.render(&path)
            ),
        }
    };
    let log = kiln_builder::log_path(&store, &drv);
    if !log.exists() {
        bail!("no build log of `{}` is kept", store.render(&drv));
    }
    let (text, complete) = kiln_builder::read_log(&log)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    if !complete {
        eprintln!("note: the log ends early: its build was interrupted");
    }
    Ok(())
}
