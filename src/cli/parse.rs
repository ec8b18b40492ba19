//! `kiln parse`: checks the syntax of a file (and what lowering rejects: duplicate attributes,
//! undefined variables, ...), printing the expression or drawing the errors.

use std::path::{Path, PathBuf};

use std::io::Write as _;

use anyhow::Context as _;

/// Arguments of `kiln parse`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The file to check, or `-` for stdin
    #[arg(default_value = "-")]
    file: String,
}

/// Runs `kiln parse` on a thread with a large stack (lowering and printing recurse).
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("parse".into())
        .stack_size(1 << 30)
        .spawn(move || run_here(args))
        .context("cannot start the parsing thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the parser crashed"))?
}

fn run_here(args: Args) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot find the current directory")?;
    let (name, path, text) = if args.file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read stdin")?;
        ("«stdin»".to_string(), None, s)
    } else {
        let p = cwd.join(&args.file);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read `{}`", p.display()))?;
        (p.to_string_lossy().into_owned(), Some(p), text)
    };
    let dir: PathBuf =
        path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or(cwd.clone());
    // Parsing never reaches the store.
    let io = Box::new(kiln_evaluator::PlainIo::default());
    let mut ev = super::frontend::make_evaluator(io, &[], None, None, &[]);
    match ev.load(name, path, text.into(), &dir) {
        Ok(expr) => {
            let text = kiln_evaluator::show::show(&expr);
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}").context("cannot write the expression")?;
            Ok(())
        }
        Err(diags) => {
            super::eval::draw(&ev.sources, &diags, true);
            std::process::exit(1);
        }
    }
}
