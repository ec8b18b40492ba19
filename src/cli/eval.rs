//! `kiln eval`: evaluates a file or expression and prints the value as `nix-instantiate --eval`
//! does (also `--json` and `--xml`); evaluation errors are drawn with their source lines.

use std::path::PathBuf;

use anyhow::bail;
use codespan_reporting::diagnostic::{Diagnostic as Drawn, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use kiln_evaluator::Diagnostic;
use kiln_evaluator::syntax::SourceMap;

use super::frontend::{
    EvalArgs, Failure, Source, auto_args, fail, flush_warnings, load, make_evaluator, on_big_stack,
};
use super::store_io::StoreIo;

/// Arguments of `kiln eval` (the flags of `nix-instantiate --eval` that make sense for kiln).
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct Args {
    /// The file to evaluate (`-` for stdin), or the expression with `-E` [default: ./default.nix]
    file: Option<String>,
    #[command(flatten)]
    common: EvalArgs,
    /// Evaluate the result completely before printing
    #[arg(long)]
    strict: bool,
    /// Print the value as JSON
    #[arg(long, conflicts_with = "xml")]
    json: bool,
    /// Print the value as XML
    #[arg(long)]
    xml: bool,
    /// Leave source locations out of the XML output
    #[arg(long)]
    no_location: bool,
    /// Accepted for compatibility with `nix-instantiate --eval`
    #[arg(long, hide = true)]
    eval: bool,
    /// Let `getEnv` and friends see the real environment (kiln always does)
    #[arg(long, hide = true)]
    impure: bool,
    /// How to treat absolute and home path literals: `ignore`, `warn` or `fatal`
    #[arg(long, value_name = "LEVEL", value_parser = ["ignore", "warn", "fatal"])]
    lint_absolute_path_literals: Option<String>,
    /// How to treat relative path literals without `./`: `ignore`, `warn` or `fatal`
    #[arg(long, value_name = "LEVEL", value_parser = ["ignore", "warn", "fatal"])]
    lint_short_path_literals: Option<String>,
    /// How to treat unquoted URL literals: `ignore`, `warn` or `fatal`
    #[arg(long, value_name = "LEVEL", value_parser = ["ignore", "warn", "fatal"])]
    lint_url_literals: Option<String>,
}

/// Draws diagnostics on stderr with their source lines.
pub(crate) fn draw(sources: &SourceMap, diags: &[Diagnostic], full_trace: bool) {
    let mut files = SimpleFiles::new();
    let mut ids = std::collections::HashMap::new();
    let config = term::Config::default();
    for d in diags {
        let mut drawn = Drawn::error().with_code(d.code).with_message(&d.message);
        let mut add_file = |id: kiln_evaluator::syntax::FileId| {
            *ids.entry(id).or_insert_with(|| {
                let f = sources.get(id);
                files.add(f.name.clone(), f.text.to_string())
            })
        };
        let mut labels = Vec::new();
        if let Some(span) = d.span {
            let fid = add_file(span.file);
            labels.push(Label::primary(fid, span.start as usize..span.end as usize));
        }
        for (span, message) in &d.labels {
            let fid = add_file(span.file);
            labels.push(
                Label::secondary(fid, span.start as usize..span.end as usize)
                    .with_message(message.clone()),
            );
        }
        drawn = drawn.with_labels(labels);
        let mut notes = d.notes.clone();
        let folded = d.folded_frames();
        let shown = if full_trace { folded.len() } else { folded.len().min(2) };
        for (f, n) in &folded[..shown] {
            match f.span {
                Some(s) => notes.push(format!("… {} at {}", f.message, sources.describe(s))),
                None => notes.push(format!("… {}", f.message)),
            }
            if *n > 1 {
                notes.push(format!("({} identical frames folded)", n - 1));
            }
        }
        if shown < folded.len() {
            notes.push(format!(
                "({} more frames of the trace; use `--show-trace` to see them)",
                folded.len() - shown
            ));
        }
        drawn = drawn.with_notes(notes);
        match term::emit_into_string(&config, &files, &drawn) {
            Ok(text) => eprint!("{text}"),
            Err(_) => eprintln!("error[{}]: {}", d.code, d.message),
        }
    }
}

fn lint_level(s: &Option<String>) -> anyhow::Result<kiln_evaluator::lower::LintLevel> {
    use kiln_evaluator::lower::LintLevel;
    Ok(match s.as_deref() {
        None | Some("ignore") => LintLevel::Ignore,
        Some("warn") => LintLevel::Warn,
        Some("fatal") => LintLevel::Fatal,
        Some(other) => bail!("invalid lint level `{other}`: expected `ignore`, `warn` or `fatal`"),
    })
}

/// Runs `kiln eval`.
pub(crate) fn run(args: Args, store_root: PathBuf) -> anyhow::Result<()> {
    on_big_stack(move || run_on_thread(args, store_root))
}

fn run_on_thread(args: Args, store_root: PathBuf) -> Result<(), Failure> {
    let common = &args.common;
    let trace = common.full_trace();
    let io = Box::new(StoreIo::new(store_root));
    let mut ev = make_evaluator(
        io,
        &common.include,
        common.max_call_depth,
        common.max_memory,
        &common.experimental,
    );
    ev.set_lints(kiln_evaluator::lower::Lints {
        absolute: lint_level(&args.lint_absolute_path_literals)?,
        short: lint_level(&args.lint_short_path_literals)?,
        url: lint_level(&args.lint_url_literals)?,
    });
    let positional: Vec<String> = args.file.iter().cloned().collect();
    let source = Source::from_args(&positional, common.expr).remove(0);
    let expr = load(&mut ev, &source, trace)?;
    let auto_args = auto_args(&mut ev, common).map_err(|d| fail(&mut ev, *d, trace))?;
    let root = ev.eval_root(&expr).map_err(|d| fail(&mut ev, *d, trace))?;
    let paths = if common.attr.is_empty() { vec![String::new()] } else { common.attr.clone() };
    let mut out = String::new();
    for path in paths {
        let v =
            ev.select_attr_path(&root, &path, &auto_args).map_err(|d| fail(&mut ev, *d, trace))?;
        let text = if args.json {
            ev.value_to_json(&v)
        } else if args.xml {
            ev.value_to_xml(&v, !args.no_location, args.strict)
        } else if args.strict {
            ev.print_strict(&v)
        } else {
            Ok(kiln_evaluator::print::print_value(&v))
        };
        out.push_str(&text.map_err(|d| fail(&mut ev, *d, trace))?);
        if !args.xml {
            out.push('\n');
        }
    }
    flush_warnings(&mut ev);
    ev.flush_io().map_err(|e| Failure::Plain(e.into()))?;
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// Draws a warning on stderr with its source line.
pub(crate) fn draw_warning(sources: &SourceMap, d: &Diagnostic) {
    let mut files = SimpleFiles::new();
    let mut drawn = Drawn::warning().with_code(d.code).with_message(&d.message);
    if let Some(span) = d.span {
        let f = sources.get(span.file);
        let fid = files.add(f.name.clone(), f.text.to_string());
        drawn =
            drawn.with_labels(vec![Label::primary(fid, span.start as usize..span.end as usize)]);
    }
    match term::emit_into_string(&term::Config::default(), &files, &drawn) {
        Ok(text) => eprint!("{text}"),
        Err(_) => eprintln!("warning: {}", d.message),
    }
}
