//! `kiln eval`: evaluates a file or expression and prints the value as `nix-instantiate --eval`
//! does (also `--json` and `--xml`); evaluation errors are drawn with their source lines.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context as _, bail};
use codespan_reporting::diagnostic::{Diagnostic as Drawn, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use kiln_evaluator::io::{DerivationPaths, DerivationRequest, EvalIo, FileType, PlainIo};
use kiln_evaluator::syntax::SourceMap;
use kiln_evaluator::value::{AttrEntry, Attrs, Symbol, Thunk};
use kiln_evaluator::{Diagnostic, EvalOptions, Evaluator, Value};

/// Arguments of `kiln eval` (the flags of `nix-instantiate --eval` that make sense for kiln).
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct Args {
    /// The file to evaluate (`-` for stdin), or the expression with `-E` [default: ./default.nix]
    file: Option<String>,
    /// Treat the positional argument as an expression
    #[arg(short = 'E', long = "expr")]
    expr: bool,
    /// Select an attribute of the result (may repeat; each selection is printed)
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    attr: Vec<String>,
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
    /// Pass an argument (a Nix expression) to the function at the top
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    arg: Vec<String>,
    /// Pass a string argument to the function at the top
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"])]
    argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `PREFIX=PATH`) for `<...>` lookups
    #[arg(short = 'I', value_name = "PATH")]
    include: Vec<String>,
    /// Show the complete trace of an error
    #[arg(long)]
    show_trace: bool,
    /// Show the short trace (the default)
    #[arg(long, hide = true)]
    no_show_trace: bool,
    /// Accepted for compatibility with `nix-instantiate --eval`
    #[arg(long, hide = true)]
    eval: bool,
    /// Let `getEnv` and friends see the real environment (kiln always does)
    #[arg(long, hide = true)]
    impure: bool,
    /// Maximum depth of function calls
    #[arg(long, value_name = "N")]
    max_call_depth: Option<usize>,
    /// Enable experimental features (`parse-toml-timestamps`)
    #[arg(long = "extra-experimental-features", value_name = "FEATURES")]
    experimental: Vec<String>,
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

/// The command line's I/O: real files, messages on stderr.
// FIXME: store operations use the evaluator's fake store paths until they go through kiln-store.
struct CliIo {
    plain: PlainIo,
}

impl EvalIo for CliIo {
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.plain.read_file(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        self.plain.path_exists(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.plain.is_dir(path)
    }

    fn file_type(&self, path: &Path) -> std::io::Result<FileType> {
        self.plain.file_type(path)
    }

    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<(String, FileType)>> {
        self.plain.read_dir(path)
    }

    fn store_dir(&self) -> String {
        std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| self.plain.store_dir())
    }

    fn add_path_to_store(
        &self,
        path: &Path,
        name: Option<&str>,
        recursive: bool,
        excluded: &[PathBuf],
    ) -> std::io::Result<String> {
        self.plain.add_path_to_store(path, name, recursive, excluded)
    }

    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[String],
    ) -> std::io::Result<String> {
        self.plain.add_text_to_store(name, text, refs)
    }

    fn write_derivation(&self, drv: &DerivationRequest) -> std::io::Result<DerivationPaths> {
        // FIXME: write the `.drv` through kiln-store and return its blake3 paths.
        self.plain.write_derivation(drv)
    }

    fn report(&self, text: &str) {
        eprintln!("{text}");
    }

    fn get_env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
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

/// What went wrong: already drawn diagnostics, or a plain error.
enum Failure {
    Drawn,
    Plain(anyhow::Error),
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
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let result = std::thread::Builder::new()
        .name("eval".into())
        .stack_size(1 << 30)
        .spawn(move || run_on_thread(args))
        .context("cannot start the evaluation thread")?
        .join();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Failure::Plain(e))) => Err(e),
        Ok(Err(Failure::Drawn)) => std::process::exit(1),
        Err(_) => bail!("the evaluator crashed"),
    }
}

/// Makes an evaluator with the options of the command line.
pub(crate) fn make_evaluator(
    include: &[String],
    max_call_depth: Option<usize>,
    experimental: &[String],
) -> Evaluator {
    let nix_path = std::env::var("NIX_PATH")
        .map(|p| p.split(':').filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let opts = EvalOptions {
        search_path: include.to_vec(),
        nix_path,
        home: std::env::var("HOME").ok(),
        system: current_system(),
        max_call_depth: max_call_depth.unwrap_or(10_000),
        impure: true,
        experimental: experimental
            .iter()
            .flat_map(|f| f.split_whitespace())
            .map(str::to_string)
            .collect(),
    };
    Evaluator::new(Box::new(CliIo { plain: PlainIo::default() }), opts)
}

/// The system double as Nix names it (`x86_64-linux`, `aarch64-darwin`).
fn current_system() -> String {
    let arch = std::env::consts::ARCH;
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    format!("{arch}-{os}")
}

fn run_on_thread(args: Args) -> Result<(), Failure> {
    let mut ev = make_evaluator(&args.include, args.max_call_depth, &args.experimental);
    let lints = kiln_evaluator::lower::Lints {
        absolute: lint_level(&args.lint_absolute_path_literals).map_err(Failure::Plain)?,
        short: lint_level(&args.lint_short_path_literals).map_err(Failure::Plain)?,
        url: lint_level(&args.lint_url_literals).map_err(Failure::Plain)?,
    };
    ev.set_lints(lints);
    let full_trace = args.show_trace && !args.no_show_trace;
    let cwd = std::env::current_dir().map_err(|e| Failure::Plain(e.into()))?;
    let loaded = if args.expr {
        let text = args.file.clone().unwrap_or_default();
        ev.load("«string»".into(), None, text.into(), &cwd)
    } else {
        let file = args.file.clone().unwrap_or_else(|| "default.nix".into());
        let (name, path, text) = if file == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| Failure::Plain(e.into()))?;
            ("«stdin»".to_string(), None, s)
        } else {
            let mut p = cwd.join(&file);
            if p.is_dir() {
                p = p.join("default.nix");
            }
            let abs = PathBuf::from(kiln_evaluator::lower::canon_path(&p.to_string_lossy()));
            let bytes = std::fs::read(&abs)
                .with_context(|| format!("cannot read `{}`", abs.display()))
                .map_err(Failure::Plain)?;
            // FIXME: Nix source is bytes; kiln reads it as UTF-8 and rejects other files.
            let text = String::from_utf8(bytes)
                .with_context(|| format!("`{}` is not valid UTF-8", abs.display()))
                .map_err(Failure::Plain)?;
            (abs.to_string_lossy().into_owned(), Some(abs), text)
        };
        let dir =
            path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or(cwd.clone());
        ev.load(name, path, text.into(), &dir)
    };
    let flush_warnings = |ev: &mut Evaluator| {
        for w in ev.take_warnings() {
            draw_warning(&ev.sources, &w);
        }
    };
    flush_warnings(&mut ev);
    let expr = match loaded {
        Ok(e) => e,
        Err(diags) => {
            draw(&ev.sources, &diags, full_trace);
            return Err(Failure::Drawn);
        }
    };
    let fail = |ev: &mut Evaluator, d: Box<Diagnostic>| {
        for w in ev.take_warnings() {
            draw_warning(&ev.sources, &w);
        }
        draw(&ev.sources, &[*d], full_trace);
        Failure::Drawn
    };
    let auto_args = match build_auto_args(&mut ev, &args, &cwd) {
        Ok(a) => a,
        Err(d) => return Err(fail(&mut ev, d)),
    };
    let root = match ev.eval_root(&expr) {
        Ok(v) => v,
        Err(d) => return Err(fail(&mut ev, d)),
    };
    let paths = if args.attr.is_empty() { vec![String::new()] } else { args.attr.clone() };
    let mut out = String::new();
    for path in paths {
        let v = match ev.select_attr_path(&root, &path, &auto_args) {
            Ok(v) => v,
            Err(d) => return Err(fail(&mut ev, d)),
        };
        let text = if args.json {
            ev.value_to_json(&v)
        } else if args.xml {
            ev.value_to_xml(&v, !args.no_location, args.strict)
        } else if args.strict {
            ev.print_strict(&v)
        } else {
            Ok(kiln_evaluator::print::print_value(&v))
        };
        match text {
            Ok(t) => {
                out.push_str(&t);
                if !args.xml {
                    out.push('\n');
                }
            }
            Err(d) => return Err(fail(&mut ev, d)),
        }
    }
    flush_warnings(&mut ev);
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).map_err(|e| Failure::Plain(e.into()))?;
    Ok(())
}

fn draw_warning(sources: &SourceMap, d: &Diagnostic) {
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

/// The `--arg`/`--argstr` values as an attribute set.
fn build_auto_args(
    ev: &mut Evaluator,
    args: &Args,
    cwd: &Path,
) -> Result<Rc<Attrs>, Box<Diagnostic>> {
    let mut attrs = Attrs::new();
    for pair in args.arg.chunks(2) {
        let [name, expr] = pair else { continue };
        let e = ev
            .load("«string»".into(), None, expr.clone().into(), cwd)
            .map_err(|mut ds| Box::new(ds.remove(0)))?;
        attrs.insert(Symbol::new(name), AttrEntry { value: ev.lazy_root(&e), pos: None });
    }
    for pair in args.argstr.chunks(2) {
        let [name, s] = pair else { continue };
        attrs.insert(
            Symbol::new(name),
            AttrEntry { value: Thunk::value(Value::string(s.clone())), pos: None },
        );
    }
    Ok(Rc::new(attrs))
}
