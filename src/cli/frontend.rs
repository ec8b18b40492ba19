//! What the evaluating commands share: the evaluation flags, making an evaluator over the real
//! store (`StoreIo`), loading a file or an expression, the `--arg`s, running on a thread with a
//! large stack, and collecting the derivations of a value for `build` and `instantiate`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context as _, bail};
use kiln_evaluator::io::EvalIo;
use kiln_evaluator::lower::Expr;
use kiln_evaluator::value::{AttrEntry, Attrs, Symbol, Thunk};
use kiln_evaluator::{Diagnostic, EvalOptions, Evaluator, Value};

use super::eval::{draw, draw_warning};
use super::store_io::StoreIo;

/// The evaluation flags of `kiln eval`, `kiln instantiate` and `kiln build`.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct EvalArgs {
    /// Treat the positional arguments as expressions instead of files
    #[arg(short = 'E', long = "expr")]
    pub(crate) expr: bool,
    /// Select an attribute of the result (can be repeated)
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub(crate) attr: Vec<String>,
    /// Pass an argument (a Nix expression) to the function at the top (can be repeated)
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    pub(crate) arg: Vec<String>,
    /// Pass a string argument to the function at the top (can be repeated)
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"])]
    pub(crate) argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `PREFIX=PATH`) for `<...>` lookups (can be repeated)
    #[arg(short = 'I', value_name = "PATH")]
    pub(crate) include: Vec<String>,
    /// Show the complete trace of an error
    #[arg(long)]
    pub(crate) show_trace: bool,
    /// Show the short trace (the default)
    #[arg(long, hide = true)]
    pub(crate) no_show_trace: bool,
    /// Maximum depth of function calls
    #[arg(long, value_name = "N")]
    pub(crate) max_call_depth: Option<usize>,
    /// Memory evaluation may use, as `512M`, `4G` or bytes (default: three quarters of the
    /// machine's memory; 0 for no limit)
    #[arg(long, value_name = "SIZE", value_parser = crate::ui::parse_size)]
    pub(crate) max_memory: Option<u64>,
    /// Enable experimental features (`parse-toml-timestamps`)
    #[arg(long = "extra-experimental-features", value_name = "FEATURES")]
    pub(crate) experimental: Vec<String>,
}

impl EvalArgs {
    /// Tells whether errors show their whole trace.
    pub(crate) fn full_trace(&self) -> bool {
        self.show_trace && !self.no_show_trace
    }
}

/// How an evaluating command failed: its diagnostics are already drawn, or a plain error.
pub(crate) enum Failure {
    Drawn,
    Plain(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Plain(e.into())
    }
}

/// Runs `f` on a thread with a big stack (see [`spawn_big_stack`]). Drawn failures end the
/// process with status 1, as their message is already on the screen.
pub(crate) fn on_big_stack<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> anyhow::Result<T> {
    let joined = spawn_big_stack("eval", f)?.join();
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(Failure::Plain(e))) => Err(e),
        Ok(Err(Failure::Drawn)) => std::process::exit(1),
        Err(_) => bail!("the evaluator crashed"),
    }
}

/// Starts `f` on a thread with a 4 GiB stack, for evaluation, which recurses: only the part
/// used takes memory, and the evaluator stops with an error before it runs out. Where the
/// system refuses that much address space, it tries 1 GiB, then 256 MiB.
pub(crate) fn spawn_big_stack<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<T>> {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let mut refused = None;
    for size in [4 << 30, 1 << 30, 256 << 20] {
        let f = slot.clone();
        let spawned =
            std::thread::Builder::new().name(name.into()).stack_size(size).spawn(move || {
                let f = f.lock().unwrap_or_else(|e| e.into_inner()).take();
                f.expect("the thread that starts runs it")()
            });
        match spawned {
            Ok(handle) => return Ok(handle),
            Err(e) => refused = Some(e),
        }
    }
    Err(refused.expect("tried")).context("cannot start the evaluation thread")
}

/// Makes an evaluator over `io` (`StoreIo` for the real store) with the command line's options.
pub(crate) fn make_evaluator(
    io: Box<dyn EvalIo>,
    include: &[String],
    max_call_depth: Option<usize>,
    max_memory: Option<u64>,
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
        max_call_depth: max_call_depth.unwrap_or(1_000_000),
        max_memory: max_memory
            .map_or_else(default_max_memory, |m| usize::try_from(m).unwrap_or(usize::MAX)),
        max_steps: 0,
        impure: true,
        experimental: experimental
            .iter()
            .flat_map(|f| f.split_whitespace())
            .map(str::to_string)
            .collect(),
    };
    Evaluator::new(io, opts)
}

/// Three quarters of the machine's memory (`MemTotal` in `/proc/meminfo`), or no limit where
/// that cannot be read.
fn default_max_memory() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
        line.split_whitespace().nth(1)?.parse::<usize>().ok()
    });
    total_kib.map_or(0, |k| k / 4 * 3 * 1024)
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

/// What to evaluate: an expression, or a file (`-` for stdin; a folder means its
/// `default.nix`).
pub(crate) enum Source {
    Expr(String),
    File(String),
}

impl Source {
    /// The sources the positional arguments name (`./default.nix` if none).
    pub(crate) fn from_args(positional: &[String], expr: bool) -> Vec<Source> {
        match (positional.is_empty(), expr) {
            (true, true) => vec![Source::Expr(String::new())],
            (true, false) => vec![Source::File("default.nix".into())],
            (false, true) => positional.iter().map(|e| Source::Expr(e.clone())).collect(),
            (false, false) => positional.iter().map(|f| Source::File(f.clone())).collect(),
        }
    }
}

/// Loads a source, drawing its errors and warnings.
pub(crate) fn load(
    ev: &mut Evaluator,
    source: &Source,
    full_trace: bool,
) -> Result<Rc<Expr>, Failure> {
    let cwd = std::env::current_dir()?;
    let loaded = match source {
        Source::Expr(text) => ev.load("«string»".into(), None, text.as_str().into(), &cwd),
        Source::File(file) if file == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read stdin")?;
            ev.load("«stdin»".into(), None, text.into(), &cwd)
        }
        Source::File(file) => {
            let mut p = cwd.join(file);
            if p.is_dir() {
                p = p.join("default.nix");
            }
            let abs = PathBuf::from(kiln_evaluator::lower::canon_path(&p.to_string_lossy()));
            let bytes =
                std::fs::read(&abs).with_context(|| format!("cannot read `{}`", abs.display()))?;
            // FIXME: Nix source is bytes; kiln reads it as UTF-8 and rejects other files.
            let text = String::from_utf8(bytes)
                .with_context(|| format!("`{}` is not valid UTF-8", abs.display()))?;
            let dir = abs.parent().map(Path::to_path_buf).unwrap_or(cwd);
            ev.load(abs.to_string_lossy().into_owned(), Some(abs), text.into(), &dir)
        }
    };
    flush_warnings(ev);
    loaded.map_err(|diags| {
        draw(&ev.sources, &diags, full_trace);
        Failure::Drawn
    })
}

/// Draws the warnings reported so far.
pub(crate) fn flush_warnings(ev: &mut Evaluator) {
    for w in ev.take_warnings() {
        draw_warning(&ev.sources, &w);
    }
}

/// Draws an evaluation error (after any pending warnings).
pub(crate) fn fail(ev: &mut Evaluator, d: Diagnostic, full_trace: bool) -> Failure {
    flush_warnings(ev);
    draw(&ev.sources, &[d], full_trace);
    Failure::Drawn
}

/// The `--arg`/`--argstr` values as an attribute set; `--arg` values are evaluated lazily.
pub(crate) fn auto_args(ev: &mut Evaluator, args: &EvalArgs) -> Result<Rc<Attrs>, Box<Diagnostic>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let mut attrs = Attrs::new();
    for pair in args.arg.chunks(2) {
        let [name, expr] = pair else { continue };
        let e = ev
            .load("«string»".into(), None, expr.as_str().into(), &cwd)
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

/// Evaluates the sources and returns the `.drv` paths of the derivations among the selected
/// values (writing the `.drv` files on the way).
pub(crate) fn derivations(
    store_root: PathBuf,
    sources: Vec<Source>,
    args: &EvalArgs,
) -> anyhow::Result<Vec<String>> {
    let args = args.clone();
    on_big_stack(move || {
        let trace = args.full_trace();
        let io = Box::new(StoreIo::new(store_root));
        let mut ev = make_evaluator(
            io,
            &args.include,
            args.max_call_depth,
            args.max_memory,
            &args.experimental,
        );
        let mut found = Vec::new();
        for source in &sources {
            let expr = load(&mut ev, source, trace)?;
            let auto_args = auto_args(&mut ev, &args).map_err(|d| fail(&mut ev, *d, trace))?;
            let root = ev.eval_root(&expr).map_err(|d| fail(&mut ev, *d, trace))?;
            let paths = if args.attr.is_empty() { vec![String::new()] } else { args.attr.clone() };
            for path in paths {
                let value = ev
                    .select_attr_path(&root, &path, &auto_args)
                    .map_err(|d| fail(&mut ev, *d, trace))?;
                find(&mut ev, value, 0, &mut found).map_err(|d| fail(&mut ev, *d, trace))?;
            }
        }
        flush_warnings(&mut ev);
        ev.flush_io().map_err(|e| Failure::Plain(e.into()))?;
        if found.is_empty() {
            return Err(Failure::Plain(anyhow::anyhow!(
                "the expression has no derivations to build"
            )));
        }
        Ok(found)
    })
}

/// Collects derivations as `nix-build` does: a derivation; the derivations among a set's
/// attributes (and within sets marked `recurseForDerivations`); the elements of a list.
fn find(
    ev: &mut Evaluator,
    value: Value,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), Box<Diagnostic>> {
    match value {
        Value::Attrs(attrs) => {
            if let Some(drv_path) = drv_path(ev, &attrs)? {
                out.push(drv_path);
                return Ok(());
            }
            if depth > 0 && !is_true(ev, &attrs, "recurseForDerivations")? {
                return Ok(());
            }
            for entry in attrs.values() {
                let v = ev.force(&entry.value)?;
                if let Value::Attrs(inner) = &v
                    && (drv_path(ev, inner)?.is_some()
                        || is_true(ev, inner, "recurseForDerivations")?)
                {
                    find(ev, v, depth + 1, out)?;
                }
            }
        }
        Value::List(items) => {
            for item in items.iter() {
                let v = ev.force(item)?;
                find(ev, v, depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_true(ev: &mut Evaluator, attrs: &Attrs, name: &str) -> Result<bool, Box<Diagnostic>> {
    match attrs.get(&Symbol::new(name)) {
        Some(e) => Ok(matches!(ev.force(&e.value)?, Value::Bool(true))),
        None => Ok(false),
    }
}

/// Returns the `.drv` path of a set that is a derivation (`type = "derivation"`).
fn drv_path(ev: &mut Evaluator, attrs: &Attrs) -> Result<Option<String>, Box<Diagnostic>> {
    let Some(t) = attrs.get(&Symbol::new("type")) else { return Ok(None) };
    let is_drv = matches!(ev.force(&t.value)?, Value::String(s) if &*s.s == "derivation");
    let Some(p) = attrs.get(&Symbol::new("drvPath")).filter(|_| is_drv) else { return Ok(None) };
    match ev.force(&p.value)? {
        Value::String(s) => Ok(Some(s.s.to_string())),
        _ => Ok(None),
    }
}
