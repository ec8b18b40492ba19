//! Builtins that read files or add to the store through `EvalIo`: `import` (cached) and
//! `scopedImport`, `readFile`, `readDir`, `pathExists`, the search path (`findFile`), `toFile`,
//! `path`, `filterSource` and `storePath`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::plain_entry;
use crate::error::ErrorKind;
use crate::error::Frame;
use crate::eval::{Evaluator, R, err};
use crate::io::FileType;
use crate::syntax::Span;
use crate::value::{Attrs, Symbol, Thunk, Value};
use crate::value::{Context, ContextElem, Env, NixString};

/// The path under which `<nix/fetchurl.nix>` is found.
const CORE_FETCHURL: &str = "/__kiln_corepkgs__/fetchurl.nix";

/// Kiln's own `fetchurl.nix`: a fixed-output derivation with the `builtin:fetchurl` builder.
const FETCHURL_NIX: &str = r#"
{ url, name ? baseNameOf (toString url), system ? "builtin", hash ? "", sha256 ? "",
  sha1 ? "", sha512 ? "", md5 ? "", executable ? false, unpack ? false, impure ? false,
  outputHash ? null, outputHashAlgo ? null }:
let
  picked =
    if outputHash != null then { h = outputHash; a = outputHashAlgo; }
    else if hash != "" then { h = hash; a = null; }
    else if sha256 != "" then { h = sha256; a = "sha256"; }
    else if sha512 != "" then { h = sha512; a = "sha512"; }
    else if sha1 != "" then { h = sha1; a = "sha1"; }
    else if md5 != "" then { h = md5; a = "md5"; }
    else throw "fetchurl: no hash given for `${url}`";
in
derivation ({
  builder = "builtin:fetchurl";
  inherit name url executable unpack system;
  urls = [ url ];
  outputHash = picked.h;
  outputHashMode = if unpack || executable then "recursive" else "flat";
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
} // (if picked.a == null then { } else { outputHashAlgo = picked.a; }))
"#;

pub(super) fn prim_import(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    ev.import_path(&path, span, None)
}

pub(super) fn prim_scoped_import(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let scope = ev.force_attrs(&a[0], span)?;
    let path = ev.coerce_path(&a[1], span)?;
    ev.import_path(&path, span, Some(scope))
}

impl Evaluator {
    /// Imports a file (or `default.nix` of a directory), cached per path unless scoped.
    pub fn import_path(&mut self, path: &Path, span: Span, scope: Option<Rc<Attrs>>) -> R<Value> {
        // Which file a path names is asked once per path: a package set imports the same
        // folders thousands of times.
        let raw = path.to_string_lossy().into_owned();
        let key = match self.import_files.get(&raw) {
            Some(k) => k.clone(),
            None => {
                let k = if self.io.is_dir(path) {
                    path.join("default.nix").to_string_lossy().into_owned()
                } else {
                    raw.clone()
                };
                self.import_files.insert(raw, k.clone());
                k
            }
        };
        let path = PathBuf::from(&key);
        if key == CORE_FETCHURL {
            let e = self
                .load(key, None, FETCHURL_NIX.into(), Path::new("/"))
                .map_err(|mut ds| Box::new(ds.remove(0)))?;
            return self.eval_root(&e);
        }
        if scope.is_none()
            && let Some(v) = self.import_cache.get(&key)
        {
            return Ok(v.clone());
        }
        let bytes = match self.io.read_file(&path) {
            Ok(b) => b,
            Err(e) => {
                return err(ErrorKind::Io, format!("reading `{key}` to import it: {e}"), span);
            }
        };
        let text: Rc<str> = match String::from_utf8(bytes) {
            Ok(t) => t.into(),
            Err(_) => {
                return err(ErrorKind::Io, format!("`{key}` is not valid UTF-8"), span);
            }
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        let (extra, env) = match &scope {
            Some(attrs) => {
                let names: HashMap<Symbol, u32> =
                    attrs.keys().enumerate().map(|(i, k)| (*k, i as u32)).collect();
                let with_frame = Rc::new(Env {
                    slots: std::cell::RefCell::new(crate::value::Slots::new()),
                    parent: Some(self.base_env.clone()),
                    with: Some(Thunk::value(Value::Attrs(attrs.clone()))),
                });
                let slots: Vec<Thunk> = attrs.values().map(|e| e.value.clone()).collect();
                (Some(names), Env::new(slots, Some(with_frame)))
            }
            None => (None, self.base_env.clone()),
        };
        let expr = match self.load_scoped(key.clone(), Some(path.clone()), text, &dir, extra) {
            Ok(e) => e,
            Err(mut ds) => {
                let mut d = ds.remove(0);
                d.frames
                    .push(Frame { span: Some(span), message: format!("while importing `{key}`") });
                return Err(Box::new(d));
            }
        };
        let v = self.eval(&expr, &env).map_err(|d| {
            crate::eval::push_frame(d, Some(span), format!("while evaluating the file `{key}`"))
        })?;
        if scope.is_none() {
            self.import_cache.insert(key, v.clone());
        }
        Ok(v)
    }
}

pub(super) fn prim_read_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    match ev.io.read_file(&path) {
        Ok(b) => Ok(Value::string(String::from_utf8_lossy(&b).into_owned())),
        Err(e) => err(ErrorKind::Io, format!("reading `{}`: {e}", path.display()), span),
    }
}

pub(super) fn prim_path_exists(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let s = match &v {
        Value::Path(p) => p.to_string(),
        _ => ev.coerce_to_string(&v, span, &mut ctx, false, false)?,
    };
    if !s.starts_with('/') {
        return err(
            ErrorKind::Invalid,
            format!("string `{s}` doesn't represent an absolute path"),
            span,
        );
    }
    // A trailing slash requires a directory.
    let p = Path::new(&s);
    let exists = if crate::lower::canon_path(&s) == ev.io.store_dir() {
        true
    } else if s.ends_with('/') && s.len() > 1 {
        ev.io.is_dir(p)
    } else {
        ev.io.path_exists(p)
    };
    Ok(Value::Bool(exists))
}

pub(super) fn prim_read_file_type(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    match ev.io.file_type(&path) {
        Ok(t) => Ok(Value::string(t.as_str())),
        Err(e) => {
            err(ErrorKind::Io, format!("reading the type of `{}`: {e}", path.display()), span)
        }
    }
}

pub(super) fn prim_read_dir(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    let entries = match ev.io.read_dir(&path) {
        Ok(e) => e,
        Err(e) => {
            return err(
                ErrorKind::Io,
                format!("reading directory `{}`: {e}", path.display()),
                span,
            );
        }
    };
    let out: Attrs = entries
        .into_iter()
        .map(|(n, t)| (Symbol::new(&n), plain_entry(Value::string(t.as_str()))))
        .collect();
    Ok(Value::Attrs(Rc::new(out)))
}

pub(super) fn prim_get_env(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    Ok(Value::string(ev.io.get_env(&name.s).unwrap_or_default()))
}

pub(super) fn prim_to_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let p = ev.coerce_path(&a[0], span)?;
    Ok(Value::string(crate::lower::canon_path(&p.to_string_lossy())))
}

pub(super) fn prim_find_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let list = ev.force_list(&a[0], span)?;
    let name = ev.force_string(&a[1], span)?;
    let name = name.s.to_string();
    for t in list.iter() {
        let entry = ev.force_attrs(t, span)?;
        let prefix = match entry.get(&Symbol::new("prefix")) {
            Some(p) => ev.force_string(&p.value.clone(), span)?.s.to_string(),
            None => String::new(),
        };
        let Some(p) = entry.get(&Symbol::new("path")) else {
            return err(ErrorKind::MissingAttr, "attribute `path` missing", span);
        };
        let pv = ev.force(&p.value.clone())?;
        let mut ctx = Context::new();
        let base = ev.coerce_to_string(&pv, span, &mut ctx, false, false)?;
        let rest = if prefix.is_empty() {
            Some(name.as_str())
        } else if name == prefix {
            Some("")
        } else if name.starts_with(&format!("{prefix}/")) {
            Some(&name[prefix.len() + 1..])
        } else {
            None
        };
        let Some(rest) = rest else { continue };
        let candidate = if rest.is_empty() { base.clone() } else { format!("{base}/{rest}") };
        if ev.io.path_exists(Path::new(&candidate)) {
            return Ok(Value::Path(crate::lower::canon_path(&candidate).into()));
        }
    }
    if name == "nix/fetchurl.nix" {
        // CppNix has `<nix/fetchurl.nix>` built in; kiln too (see `corepkg`).
        return Ok(Value::Path(CORE_FETCHURL.into()));
    }
    err(
        ErrorKind::Throw,
        format!(
            "file `{name}` was not found in the Nix search path (add it using $NIX_PATH or -I)"
        ),
        span,
    )
}

pub(super) fn prim_to_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    if !super::derivation::valid_store_name(&name.s) {
        return err(ErrorKind::Invalid, format!("invalid store path name `{}`", name.s), span);
    }
    let mut ctx = Context::new();
    let content = ev.coerce_str(&a[1], span, &mut ctx)?;
    let mut refs = Vec::new();
    for c in &ctx {
        match c {
            ContextElem::Opaque(p) | ContextElem::DrvDeep(p) => refs.push(p.clone()),
            ContextElem::Built(..) => {
                return err(
                    ErrorKind::Invalid,
                    format!(
                        "the file `{}` passed to `toFile` cannot refer to derivation outputs",
                        name.s
                    ),
                    span,
                );
            }
        }
    }
    match ev.io.add_text_to_store(&name.s, content.as_bytes(), &refs) {
        Ok(p) => {
            let mut c = Context::new();
            c.insert(ContextElem::Opaque(p.clone()));
            Ok(Value::String(NixString::with_ctx(p, c)))
        }
        Err(e) => err(ErrorKind::Io, format!("writing `{}` to the store: {e}", name.s), span),
    }
}

fn add_filtered(
    ev: &mut Evaluator,
    path: &Path,
    name: Option<&str>,
    recursive: bool,
    filter: Option<Value>,
    span: Span,
) -> R<Value> {
    let mut excluded = Vec::new();
    if let Some(f) = &filter {
        collect_excluded(ev, path, f, span, &mut excluded)?;
    }
    match ev.io.add_path_to_store(path, name, recursive, &excluded) {
        Ok(p) => {
            let mut c = Context::new();
            c.insert(ContextElem::Opaque(p.clone()));
            Ok(Value::String(NixString::with_ctx(p, c)))
        }
        Err(e) => {
            err(ErrorKind::Io, format!("adding `{}` to the store: {e}", path.display()), span)
        }
    }
}

/// Walks `dir` and calls the Nix filter for every entry; rejected entries are not descended.
fn collect_excluded(
    ev: &mut Evaluator,
    dir: &Path,
    f: &Value,
    span: Span,
    out: &mut Vec<PathBuf>,
) -> R<()> {
    if !matches!(ev.io.file_type(dir), Ok(FileType::Directory)) {
        return Ok(());
    }
    let entries = match ev.io.read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return err(ErrorKind::Io, format!("reading directory `{}`: {e}", dir.display()), span);
        }
    };
    for (name, t) in entries {
        let p = dir.join(&name);
        let pt = Thunk::value(Value::string(p.to_string_lossy().into_owned()));
        let tt = Thunk::value(Value::string(t.as_str()));
        let keep = match ev.call2(f, pt, tt, span)? {
            Value::Bool(b) => b,
            other => return ev.type_err("a Boolean", &other, span),
        };
        if !keep {
            out.push(p);
        } else if t == FileType::Directory {
            collect_excluded(ev, &p, f, span, out)?;
        }
    }
    Ok(())
}

pub(super) fn prim_filter_source(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force_fn(&a[0], span)?;
    let path = ev.coerce_path(&a[1], span)?;
    add_filtered(ev, &path, None, true, Some(f), span)
}

pub(super) fn prim_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let args = ev.force_attrs(&a[0], span)?;
    let Some(p) = ev.attr(&args, "path").map(|e| e.value.clone()) else {
        return err(
            ErrorKind::MissingAttr,
            "attribute `path` missing in the argument of `builtins.path`",
            span,
        );
    };
    let path = ev.coerce_path(&p, span)?;
    let name = match ev.attr(&args, "name").map(|e| e.value.clone()) {
        Some(n) => Some(ev.force_string(&n, span)?.s.to_string()),
        None => None,
    };
    if let Some(n) = name.as_deref().filter(|n| !super::derivation::valid_store_name(n)) {
        return err(ErrorKind::Invalid, format!("invalid store path name `{n}`"), span);
    }
    let recursive = match ev.attr(&args, "recursive").map(|e| e.value.clone()) {
        Some(r) => ev.force_bool(&r, span)?,
        None => true,
    };
    let filter = match ev.attr(&args, "filter").map(|e| e.value.clone()) {
        Some(f) => Some(ev.force_fn(&f, span)?),
        None => None,
    };
    // FIXME: the expected `sha256` is not checked against the real NAR hash.
    add_filtered(ev, &path, name.as_deref(), recursive, filter, span)
}

pub(super) fn prim_store_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let p = ev.coerce_path(&a[0], span)?;
    let s = p.to_string_lossy().into_owned();
    let dir = ev.io.store_dir();
    if !s.starts_with(&format!("{dir}/")) {
        return err(ErrorKind::Invalid, format!("path `{s}` is not in the Nix store"), span);
    }
    let rest = &s[dir.len() + 1..];
    let top = format!("{dir}/{}", rest.split('/').next().unwrap_or(""));
    let mut c = Context::new();
    c.insert(ContextElem::Opaque(top));
    Ok(Value::String(NixString::with_ctx(s, c)))
}
