//! Evaluating a file for the commands that build: load it (or an expression), call it with the
//! `--arg`s, select the `-A` paths, and collect the derivations found, with the real store
//! behind the evaluator (`StoreIo`), so their `.drv` files are written on the way.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context as _, bail};
use kiln_evaluator::value::{AttrEntry, Attrs, Symbol, Thunk};
use kiln_evaluator::{Diagnostic, EvalOptions, Evaluator, Value};

use super::store_io::StoreIo;

/// What to evaluate and how, shared by `kiln build` and `kiln instantiate`.
#[derive(clap::Args, Debug, Default, Clone)]
pub(crate) struct EvalArgs {
    /// Evaluate this expression instead of a file
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub(crate) expr: Option<String>,
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
    /// Show the complete trace of an evaluation error
    #[arg(long)]
    pub(crate) show_trace: bool,
}

/// Evaluates `file` (or `args.expr`) and returns the `.drv` paths of the derivations among the
/// selected values.
/// Evaluation errors are drawn on stderr; the returned error then only says evaluation failed.
pub(crate) fn derivations(
    store_root: PathBuf,
    file: Option<String>,
    args: &EvalArgs,
) -> anyhow::Result<Vec<String>> {
    let args = args.clone();
    let result = std::thread::Builder::new()
        .name("eval".into())
        .stack_size(1 << 30)
        .spawn(move || collect(store_root, file, &args))
        .context("cannot start the evaluation thread")?
        .join();
    match result {
        Ok(found) => found,
        Err(_) => bail!("the evaluator crashed"),
    }
}

fn collect(
    store_root: PathBuf,
    file: Option<String>,
    args: &EvalArgs,
) -> anyhow::Result<Vec<String>> {
    let nix_path = std::env::var("NIX_PATH")
        .map(|p| p.split(':').filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let opts = EvalOptions {
        search_path: args.include.clone(),
        nix_path,
        home: std::env::var("HOME").ok(),
        system: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        max_call_depth: 10_000,
        impure: true,
        experimental: Vec::new(),
    };
    let mut ev = Evaluator::new(Box::new(StoreIo::new(store_root)), opts);
    let cwd = std::env::current_dir()?;
    let loaded = match &args.expr {
        Some(text) => ev.load("«string»".into(), None, text.as_str().into(), &cwd),
        None => {
            let mut path = cwd.join(file.as_deref().unwrap_or("default.nix"));
            if path.is_dir() {
                path = path.join("default.nix");
            }
            let path = PathBuf::from(kiln_evaluator::lower::canon_path(&path.to_string_lossy()));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or(cwd.clone());
            ev.load(path.to_string_lossy().into_owned(), Some(path), text.into(), &dir)
        }
    };
    let failed = |ev: &Evaluator, diags: &[Diagnostic]| {
        super::eval::draw(&ev.sources, diags, args.show_trace);
        anyhow::anyhow!("evaluation failed")
    };
    let expr = loaded.map_err(|d| failed(&ev, &d))?;
    let auto_args = auto_args(&mut ev, args, &cwd).map_err(|d| failed(&ev, &[*d]))?;
    let root = ev.eval_root(&expr).map_err(|d| failed(&ev, &[*d]))?;
    let paths = if args.attr.is_empty() { vec![String::new()] } else { args.attr.clone() };
    let mut found = Vec::new();
    for path in paths {
        let value =
            ev.select_attr_path(&root, &path, &auto_args).map_err(|d| failed(&ev, &[*d]))?;
        find(&mut ev, value, &path, 0, &mut found).map_err(|d| failed(&ev, &[*d]))?;
    }
    if found.is_empty() {
        bail!("the expression has no derivations to build");
    }
    Ok(found)
}

/// The `--arg`/`--argstr` values as an attribute set.
fn auto_args(
    ev: &mut Evaluator,
    args: &EvalArgs,
    cwd: &Path,
) -> Result<Rc<Attrs>, Box<Diagnostic>> {
    let mut attrs = Attrs::new();
    for pair in args.arg.chunks(2) {
        let [name, expr] = pair else { continue };
        let e = ev
            .load("«string»".into(), None, expr.as_str().into(), cwd)
            .map_err(|mut ds| Box::new(ds.remove(0)))?;
        let value = ev.lazy_root(&e);
        attrs.insert(Symbol::new(name), AttrEntry { value, pos: None });
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

/// Collects derivations as `nix-build` does: a derivation; the derivations among a set's
/// attributes (and within sets marked `recurseForDerivations`); the elements of a list.
fn find(
    ev: &mut Evaluator,
    value: Value,
    path: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), Box<Diagnostic>> {
    let join =
        |name: &str| if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
    match value {
        Value::Attrs(attrs) => {
            if let Some(drv_path) = drv_path(ev, &attrs)? {
                out.push(drv_path);
                return Ok(());
            }
            let recurse = depth == 0 || is_true(ev, &attrs, "recurseForDerivations")?;
            if !recurse {
                return Ok(());
            }
            for (name, entry) in attrs.iter() {
                let v = ev.force(&entry.value)?;
                if let Value::Attrs(inner) = &v
                    && (drv_path(ev, inner)?.is_some()
                        || is_true(ev, inner, "recurseForDerivations")?)
                {
                    find(ev, v, &join(name.as_str()), depth + 1, out)?;
                }
            }
        }
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let v = ev.force(item)?;
                find(ev, v, &join(&i.to_string()), depth + 1, out)?;
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
