//! The builtins: the base environment (`builtins`, `true`, `map`, `__add`, ...) and the
//! implementations of the builtin functions, with CppNix's laziness and errors. Formats (JSON,
//! TOML, XML), hashing, regular expressions and version strings live in the submodules.

pub(crate) mod formats;
pub(crate) mod hashing;
mod strings;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{Diagnostic, ErrorKind, Frame};
use crate::eval::{Evaluator, R, err};
use crate::io::FileType;
use crate::lower::{BinOp, Param};
use crate::syntax::Span;
use crate::value::{
    AttrEntry, Attrs, Context, ContextElem, Env, NixString, PrimFn, PrimOp, Symbol, Thunk, Value,
};

/// Names bound at the top level as well as in `builtins`.
const GLOBAL: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivation",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

fn table() -> Vec<(&'static str, usize, PrimFn)> {
    vec![
        ("abort", 1, prim_abort),
        ("add", 2, prim_add),
        ("addErrorContext", 2, prim_add_error_context),
        ("all", 2, prim_all),
        ("any", 2, prim_any),
        ("appendContext", 2, strings::prim_append_context),
        ("attrNames", 1, prim_attr_names),
        ("attrValues", 1, prim_attr_values),
        ("baseNameOf", 1, strings::prim_base_name_of),
        ("bitAnd", 2, prim_bit_and),
        ("bitOr", 2, prim_bit_or),
        ("bitXor", 2, prim_bit_xor),
        ("break", 1, prim_identity),
        ("catAttrs", 2, prim_cat_attrs),
        ("ceil", 1, prim_ceil),
        ("compareVersions", 2, strings::prim_compare_versions),
        ("concatLists", 1, prim_concat_lists),
        ("concatMap", 2, prim_concat_map),
        ("concatStringsSep", 2, strings::prim_concat_strings_sep),
        ("convertHash", 1, hashing::prim_convert_hash),
        ("deepSeq", 2, prim_deep_seq),
        ("derivationStrict", 1, prim_derivation_strict),
        ("dirOf", 1, strings::prim_dir_of),
        ("div", 2, prim_div),
        ("elem", 2, prim_elem),
        ("elemAt", 2, prim_elem_at),
        ("fetchGit", 1, prim_no_network),
        ("fetchMercurial", 1, prim_no_network),
        ("fetchTarball", 1, prim_no_network),
        ("fetchTree", 1, prim_no_network),
        ("fetchurl", 1, prim_no_network),
        ("fetchClosure", 1, prim_no_network),
        ("filter", 2, prim_filter),
        ("filterSource", 2, prim_filter_source),
        ("findFile", 2, prim_find_file),
        ("floor", 1, prim_floor),
        ("foldl'", 3, prim_foldl),
        ("fromJSON", 1, formats::prim_from_json),
        ("fromTOML", 1, formats::prim_from_toml),
        ("functionArgs", 1, prim_function_args),
        ("genList", 2, prim_gen_list),
        ("genericClosure", 1, prim_generic_closure),
        ("getAttr", 2, prim_get_attr),
        ("getContext", 1, strings::prim_get_context),
        ("getEnv", 1, prim_get_env),
        ("groupBy", 2, prim_group_by),
        ("hasAttr", 2, prim_has_attr),
        ("hasContext", 1, strings::prim_has_context),
        ("hashFile", 2, hashing::prim_hash_file),
        ("hashString", 2, hashing::prim_hash_string),
        ("head", 1, prim_head),
        ("import", 1, prim_import),
        ("intersectAttrs", 2, prim_intersect_attrs),
        ("isAttrs", 1, prim_is_attrs),
        ("isBool", 1, prim_is_bool),
        ("isFloat", 1, prim_is_float),
        ("isFunction", 1, prim_is_function),
        ("isInt", 1, prim_is_int),
        ("isList", 1, prim_is_list),
        ("isNull", 1, prim_is_null),
        ("isPath", 1, prim_is_path),
        ("isString", 1, prim_is_string),
        ("length", 1, prim_length),
        ("lessThan", 2, prim_less_than),
        ("listToAttrs", 1, prim_list_to_attrs),
        ("map", 2, prim_map),
        ("mapAttrs", 2, prim_map_attrs),
        ("match", 2, strings::prim_match),
        ("mul", 2, prim_mul),
        ("parseDrvName", 1, strings::prim_parse_drv_name),
        ("partition", 2, prim_partition),
        ("path", 1, prim_path),
        ("pathExists", 1, prim_path_exists),
        ("placeholder", 1, hashing::prim_placeholder),
        ("readDir", 1, prim_read_dir),
        ("readFile", 1, prim_read_file),
        ("readFileType", 1, prim_read_file_type),
        ("removeAttrs", 2, prim_remove_attrs),
        ("replaceStrings", 3, strings::prim_replace_strings),
        ("scopedImport", 2, prim_scoped_import),
        ("seq", 2, prim_seq),
        ("sort", 2, prim_sort),
        ("split", 2, strings::prim_split),
        ("splitVersion", 1, strings::prim_split_version),
        ("storePath", 1, prim_store_path),
        ("stringLength", 1, strings::prim_string_length),
        ("sub", 2, prim_sub),
        ("substring", 3, strings::prim_substring),
        ("tail", 1, prim_tail),
        ("throw", 1, prim_throw),
        ("toFile", 2, prim_to_file),
        ("toJSON", 1, formats::prim_to_json),
        ("toPath", 1, prim_to_path),
        ("toString", 1, strings::prim_to_string),
        ("toXML", 1, formats::prim_to_xml),
        ("trace", 2, prim_trace),
        ("traceVerbose", 2, prim_trace_verbose),
        ("tryEval", 1, prim_try_eval),
        ("typeOf", 1, prim_type_of),
        ("unsafeDiscardOutputDependency", 1, strings::prim_discard_output_dep),
        ("addDrvOutputDependencies", 1, strings::prim_add_drv_output_deps),
        ("unsafeDiscardStringContext", 1, strings::prim_discard_context),
        ("unsafeGetAttrPos", 2, prim_unsafe_get_attr_pos),
        ("warn", 2, prim_warn),
        ("zipAttrsWith", 2, prim_zip_attrs_with),
        ("flakeRefToString", 1, strings::prim_flake_ref_to_string),
        ("parseFlakeRef", 1, strings::prim_parse_flake_ref),
    ]
}

/// The Nix source of `derivation`, written for kiln: it calls `derivationStrict` and builds
/// one attribute set per output.
const DERIVATION_NIX: &str = r#"
attrs:
let
  strict = derivationStrict attrs;
  names = attrs.outputs or [ "out" ];
  forOutput = name: {
    inherit name;
    value = shared // {
      outPath = strict.${name};
      drvPath = strict.drvPath;
      type = "derivation";
      outputName = name;
    };
  };
  outputs = map forOutput names;
  shared = attrs // builtins.listToAttrs outputs // {
    all = map (o: o.value) outputs;
    drvAttrs = attrs;
  };
in (builtins.head outputs).value
"#;

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

/// Builds the base environment and the `builtins` set.
pub(crate) fn install(ev: &mut Evaluator) {
    let mut builtins = Attrs::new();
    let mut slots: Vec<Thunk> = Vec::new();
    let mut names: HashMap<Symbol, u32> = HashMap::new();
    let mut bind = |name: &str, t: Thunk, slots: &mut Vec<Thunk>| {
        names.insert(Symbol::new(name), slots.len() as u32);
        slots.push(t);
    };
    for (name, arity, f) in table() {
        let t = Thunk::value(Value::PrimOp(Rc::new(PrimOp { name, arity, f })));
        builtins.insert(Symbol::new(name), AttrEntry { value: t.clone(), pos: None });
        if GLOBAL.contains(&name) {
            bind(name, t.clone(), &mut slots);
        }
        bind(&format!("__{name}"), t, &mut slots);
    }
    let mut search = Vec::new();
    for entry in ev.opts.search_path.iter().chain(ev.opts.nix_path.iter()) {
        let (prefix, path) = match entry.split_once('=') {
            Some((p, path)) => (p.to_string(), path.to_string()),
            None => (String::new(), entry.clone()),
        };
        let abs = if path.starts_with('/') || path.contains("://") {
            path
        } else {
            let cwd = std::env::current_dir().unwrap_or_default();
            crate::lower::canon_path(&cwd.join(path).to_string_lossy())
        };
        let mut a = Attrs::new();
        a.insert(Symbol::new("prefix"), plain_entry(Value::string(prefix)));
        a.insert(Symbol::new("path"), plain_entry(Value::string(abs)));
        search.push(Thunk::value(Value::Attrs(Rc::new(a))));
    }
    let consts: Vec<(&str, Value, bool)> = vec![
        ("true", Value::Bool(true), true),
        ("false", Value::Bool(false), true),
        ("null", Value::Null, true),
        ("currentSystem", Value::string(ev.opts.system.clone()), false),
        ("currentTime", Value::Int(now()), false),
        ("langVersion", Value::Int(6), false),
        ("nixVersion", Value::string("2.35.0"), false),
        ("storeDir", Value::string(ev.io.store_dir()), false),
        ("nixPath", Value::List(Rc::new(search)), false),
    ];
    for (name, v, global) in consts {
        let t = Thunk::value(v);
        if !global || name == "null" || name == "true" || name == "false" {
            builtins.insert(Symbol::new(name), AttrEntry { value: t.clone(), pos: None });
        }
        if global {
            bind(name, t.clone(), &mut slots);
        }
        bind(&format!("__{name}"), t, &mut slots);
    }
    // `builtins` contains itself; tie the knot through a thunk.
    let builtins_thunk = Thunk::value(Value::Null);
    builtins
        .insert(Symbol::new("builtins"), AttrEntry { value: builtins_thunk.clone(), pos: None });
    let derivation_thunk = Thunk::value(Value::Null);
    builtins.insert(
        Symbol::new("derivation"),
        AttrEntry { value: derivation_thunk.clone(), pos: None },
    );
    bind("derivation", derivation_thunk.clone(), &mut slots);
    bind("builtins", builtins_thunk.clone(), &mut slots);
    let attrs = Rc::new(builtins);
    *builtins_thunk.0.borrow_mut() = crate::value::ThunkState::Done(Value::Attrs(attrs.clone()));
    ev.base_names = names;
    ev.base_env = Env::new(slots, None);
    ev.builtins_attrs = Some(attrs);
    // `derivation` is Nix code evaluated in the base environment.
    if let Ok(e) = ev.load("«derivation»".into(), None, DERIVATION_NIX.into(), Path::new("/")) {
        let env = ev.base_env.clone();
        let v = ev.eval(&e, &env).unwrap_or(Value::Null);
        *derivation_thunk.0.borrow_mut() = crate::value::ThunkState::Done(v);
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn plain_entry(v: Value) -> AttrEntry {
    AttrEntry { value: Thunk::value(v), pos: None }
}

// ---- argument helpers ----

impl Evaluator {
    pub(crate) fn force_int(&mut self, t: &Thunk, span: Span) -> R<i64> {
        match self.force(t)? {
            Value::Int(i) => Ok(i),
            other => self.type_err("an integer", &other, span),
        }
    }

    pub(crate) fn force_bool(&mut self, t: &Thunk, span: Span) -> R<bool> {
        match self.force(t)? {
            Value::Bool(b) => Ok(b),
            other => self.type_err("a Boolean", &other, span),
        }
    }

    pub(crate) fn force_list(&mut self, t: &Thunk, span: Span) -> R<Rc<Vec<Thunk>>> {
        match self.force(t)? {
            Value::List(l) => Ok(l),
            other => self.type_err("a list", &other, span),
        }
    }

    pub(crate) fn force_attrs(&mut self, t: &Thunk, span: Span) -> R<Rc<Attrs>> {
        match self.force(t)? {
            Value::Attrs(a) => Ok(a),
            other => self.type_err("a set", &other, span),
        }
    }

    pub(crate) fn force_fn(&mut self, t: &Thunk, span: Span) -> R<Value> {
        let v = self.force(t)?;
        match &v {
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(v),
            Value::Attrs(a) if a.contains_key(&Symbol::new("__functor")) => Ok(v),
            other => self.type_err("a function", other, span),
        }
    }

    /// A value that must be a string (not coerced).
    pub(crate) fn force_string(&mut self, t: &Thunk, span: Span) -> R<NixString> {
        match self.force(t)? {
            Value::String(s) => Ok(s),
            other => self.type_err("a string", &other, span),
        }
    }

    /// Coerces to a string as interpolation does (paths are copied to the store).
    pub(crate) fn coerce_str(&mut self, t: &Thunk, span: Span, ctx: &mut Context) -> R<String> {
        let v = self.force(t)?;
        self.coerce_to_string(&v, span, ctx, true, false)
    }

    /// Coerces to a path: a path value, or a string that is an absolute path.
    pub(crate) fn coerce_path(&mut self, t: &Thunk, span: Span) -> R<PathBuf> {
        let v = self.force(t)?;
        match &v {
            Value::Path(p) => Ok(PathBuf::from(&**p)),
            _ => {
                let mut ctx = Context::new();
                let s = self.coerce_to_string(&v, span, &mut ctx, false, false)?;
                if !s.starts_with('/') {
                    return err(
                        ErrorKind::Invalid,
                        format!("string `{s}` doesn't represent an absolute path"),
                        span,
                    );
                }
                Ok(PathBuf::from(s))
            }
        }
    }

    /// Evaluates `v` to a list of strings' names: the value of an attribute `name` of a set.
    pub(crate) fn attr<'a>(&self, a: &'a Attrs, name: &str) -> Option<&'a AttrEntry> {
        a.get(&Symbol::new(name))
    }
}

// ---- control ----

fn prim_abort(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, span, &mut ctx, false, true)?;
    err(
        ErrorKind::Abort,
        format!("evaluation aborted with the following error message: '{s}'"),
        span,
    )
}

fn prim_throw(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let v = ev.force(&a[0])?;
    let s = ev.coerce_to_string(&v, span, &mut ctx, false, true)?;
    err(ErrorKind::Throw, s, span)
}

fn prim_identity(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    ev.force(&a[0])
}

fn prim_add_error_context(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    match ev.force(&a[1]) {
        Ok(v) => Ok(v),
        Err(mut d) => {
            let mut ctx = Context::new();
            if let Ok(cv) = ev.force(&a[0])
                && let Ok(s) = ev.coerce_to_string(&cv, span, &mut ctx, false, false)
            {
                d.frames.push(Frame { span: Some(span), message: s });
            }
            Err(d)
        }
    }
}

fn prim_seq(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    ev.force(&a[0])?;
    ev.force(&a[1])
}

fn prim_deep_seq(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    ev.deep_force(&v, span)?;
    ev.force(&a[1])
}

fn prim_trace(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let msg = match &v {
        Value::String(s) => s.s.to_string(),
        other => crate::print::trace_value(other),
    };
    ev.io.report(&format!("trace: {msg}"));
    ev.force(&a[1])
}

fn prim_trace_verbose(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    ev.force(&a[1])
}

fn prim_warn(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let msg = ev.force_string(&a[0], span)?;
    ev.io.report(&evaluation_warning(&msg.s));
    ev.force(&a[1])
}

/// `evaluation warning: ` and the message, later lines indented under the first unless the
/// message starts on a new line (as CppNix prints it).
pub(crate) fn evaluation_warning(msg: &str) -> String {
    const PREFIX: &str = "evaluation warning:";
    if msg.starts_with('\n') {
        return format!("{PREFIX}{msg}");
    }
    let indent = " ".repeat(PREFIX.len() + 1);
    format!("{PREFIX} {}", msg.replace('\n', &format!("\n{indent}")))
}

fn prim_try_eval(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    let mut out = Attrs::new();
    match ev.force(&a[0]) {
        Ok(v) => {
            out.insert(Symbol::new("success"), plain_entry(Value::Bool(true)));
            out.insert(Symbol::new("value"), plain_entry(v));
        }
        Err(d) if d.is_catchable() => {
            out.insert(Symbol::new("success"), plain_entry(Value::Bool(false)));
            out.insert(Symbol::new("value"), plain_entry(Value::Bool(false)));
        }
        Err(d) => return Err(d),
    }
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_no_network(_ev: &mut Evaluator, _a: &[Thunk], span: Span) -> R<Value> {
    // FIXME: fetchers need the network and the store, which kiln's evaluator does not reach.
    err(ErrorKind::Unimplemented, "fetching is not supported by kiln's evaluator", span)
}

// ---- types ----

fn prim_type_of(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    Ok(Value::string(v.type_name()))
}

macro_rules! is_type {
    ($name:ident, $pat:pat) => {
        fn $name(ev: &mut Evaluator, a: &[Thunk], _span: Span) -> R<Value> {
            let v = ev.force(&a[0])?;
            Ok(Value::Bool(matches!(v, $pat)))
        }
    };
}

is_type!(prim_is_attrs, Value::Attrs(_));
is_type!(prim_is_bool, Value::Bool(_));
is_type!(prim_is_float, Value::Float(_));
is_type!(prim_is_function, Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_));
is_type!(prim_is_int, Value::Int(_));
is_type!(prim_is_list, Value::List(_));
is_type!(prim_is_null, Value::Null);
is_type!(prim_is_path, Value::Path(_));
is_type!(prim_is_string, Value::String(_));

// ---- arithmetic ----

fn arith2(ev: &mut Evaluator, a: &[Thunk], span: Span, op: BinOp) -> R<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    ev.arith(op, x, y, span)
}

fn prim_add(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    arith2(ev, a, span, BinOp::Add)
}

fn prim_sub(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    arith2(ev, a, span, BinOp::Sub)
}

fn prim_mul(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    arith2(ev, a, span, BinOp::Mul)
}

fn prim_div(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    arith2(ev, a, span, BinOp::Div)
}

fn prim_bit_and(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    Ok(Value::Int(ev.force_int(&a[0], span)? & ev.force_int(&a[1], span)?))
}

fn prim_bit_or(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    Ok(Value::Int(ev.force_int(&a[0], span)? | ev.force_int(&a[1], span)?))
}

fn prim_bit_xor(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    Ok(Value::Int(ev.force_int(&a[0], span)? ^ ev.force_int(&a[1], span)?))
}

fn prim_less_than(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let x = ev.force(&a[0])?;
    let y = ev.force(&a[1])?;
    Ok(Value::Bool(ev.less_than(&x, &y, span)?))
}

fn float_to_int(ev: &mut Evaluator, a: &[Thunk], span: Span, f: fn(f64) -> f64) -> R<Value> {
    match ev.force(&a[0])? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                return err(
                    ErrorKind::Arithmetic,
                    format!(
                        "float {} does not fit in a 64-bit integer",
                        crate::print::format_float(x)
                    ),
                    span,
                );
            }
            Ok(Value::Int(r as i64))
        }
        other => ev.type_err("a float", &other, span),
    }
}

fn prim_ceil(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    float_to_int(ev, a, span, f64::ceil)
}

fn prim_floor(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    float_to_int(ev, a, span, f64::floor)
}

// ---- attribute sets ----

fn prim_attr_names(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let l = attrs.keys().map(|k| Thunk::value(Value::string(k.as_str()))).collect();
    Ok(Value::List(Rc::new(l)))
}

fn prim_attr_values(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    Ok(Value::List(Rc::new(attrs.values().map(|e| e.value.clone()).collect())))
}

fn prim_get_attr(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    match attrs.get(&Symbol::new(&name.s)) {
        Some(e) => ev.force(&e.value.clone()),
        None => err(ErrorKind::MissingAttr, format!("attribute `{}` missing", name.s), span),
    }
}

fn prim_has_attr(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    Ok(Value::Bool(attrs.contains_key(&Symbol::new(&name.s))))
}

fn prim_unsafe_get_attr_pos(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    match attrs.get(&Symbol::new(&name.s)).and_then(|e| e.pos) {
        Some(p) => Ok(ev.pos_attrs(p)),
        None => Ok(Value::Null),
    }
}

fn prim_remove_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let names = ev.force_list(&a[1], span)?;
    let mut out = (*attrs).clone();
    for t in names.iter() {
        let n = ev.force_string(t, span)?;
        out.remove(&Symbol::new(&n.s));
    }
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_intersect_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let x = ev.force_attrs(&a[0], span)?;
    let y = ev.force_attrs(&a[1], span)?;
    let out: Attrs =
        y.iter().filter(|(k, _)| x.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_list_to_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let list = ev.force_list(&a[0], span)?;
    let mut out = Attrs::new();
    let (kn, kv) = (Symbol::new("name"), Symbol::new("value"));
    for t in list.iter() {
        let item = ev.force_attrs(t, span)?;
        let Some(n) = item.get(&kn) else {
            return err(ErrorKind::MissingAttr, "attribute `name` missing", span);
        };
        let name = ev.force_string(&n.value.clone(), span)?;
        let sym = Symbol::new(&name.s);
        if out.contains_key(&sym) {
            continue;
        }
        let Some(v) = item.get(&kv) else {
            return err(ErrorKind::MissingAttr, "attribute `value` missing", span);
        };
        out.insert(sym, AttrEntry { value: v.value.clone(), pos: v.pos });
    }
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_map_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let attrs = ev.force_attrs(&a[1], span)?;
    let out: Attrs = attrs
        .iter()
        .map(|(k, e)| {
            let t =
                Thunk::apply2(f.clone(), Thunk::value(Value::string(k.as_str())), e.value.clone());
            (k.clone(), AttrEntry { value: t, pos: e.pos })
        })
        .collect();
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_cat_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let list = ev.force_list(&a[1], span)?;
    let sym = Symbol::new(&name.s);
    let mut out = Vec::new();
    for t in list.iter() {
        let attrs = ev.force_attrs(t, span)?;
        if let Some(e) = attrs.get(&sym) {
            out.push(e.value.clone());
        }
    }
    Ok(Value::List(Rc::new(out)))
}

fn prim_zip_attrs_with(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let list = ev.force_list(&a[1], span)?;
    let mut groups: BTreeMap<Symbol, Vec<Thunk>> = BTreeMap::new();
    for t in list.iter() {
        let attrs = ev.force_attrs(t, span)?;
        for (k, e) in attrs.iter() {
            groups.entry(k.clone()).or_default().push(e.value.clone());
        }
    }
    let out: Attrs = groups
        .into_iter()
        .map(|(k, vs)| {
            let t = Thunk::apply2(
                f.clone(),
                Thunk::value(Value::string(k.as_str())),
                Thunk::value(Value::List(Rc::new(vs))),
            );
            (k, AttrEntry { value: t, pos: None })
        })
        .collect();
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_function_args(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    match &v {
        Value::Lambda(c) => {
            let mut out = Attrs::new();
            if let Param::Formals { entries, .. } = &c.def.param {
                for (name, default, pos) in entries {
                    out.insert(
                        name.clone(),
                        AttrEntry {
                            value: Thunk::value(Value::Bool(default.is_some())),
                            pos: Some(*pos),
                        },
                    );
                }
            }
            Ok(Value::Attrs(Rc::new(out)))
        }
        Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(Value::Attrs(Rc::new(Attrs::new()))),
        other => ev.type_err("a function", other, span),
    }
}

fn prim_group_by(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let list = ev.force_list(&a[1], span)?;
    let mut groups: BTreeMap<Symbol, Vec<Thunk>> = BTreeMap::new();
    for t in list.iter() {
        let k = ev.call(&f, t.clone(), span)?;
        let Value::String(k) = k else { return ev.type_err("a string", &k, span) };
        groups.entry(Symbol::new(&k.s)).or_default().push(t.clone());
    }
    let out: Attrs =
        groups.into_iter().map(|(k, v)| (k, plain_entry(Value::List(Rc::new(v))))).collect();
    Ok(Value::Attrs(Rc::new(out)))
}

// ---- lists ----

fn prim_length(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    Ok(Value::Int(ev.force_list(&a[0], span)?.len() as i64))
}

fn prim_head(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    match l.first() {
        Some(t) => ev.force(&t.clone()),
        None => err(ErrorKind::Invalid, "`head` called on an empty list", span),
    }
}

fn prim_tail(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    if l.is_empty() {
        return err(ErrorKind::Invalid, "`tail` called on an empty list", span);
    }
    Ok(Value::List(Rc::new(l[1..].to_vec())))
}

fn prim_elem_at(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    let i = ev.force_int(&a[1], span)?;
    if i < 0 || i as usize >= l.len() {
        return err(
            ErrorKind::Invalid,
            format!("index {i} out of bounds for a list of {} elements", l.len()),
            span,
        );
    }
    ev.force(&l[i as usize].clone())
}

fn prim_elem(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let x = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    for t in l.iter() {
        let v = ev.force(t)?;
        if ev.equal(&x, &v, span)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn prim_map(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    Ok(Value::List(Rc::new(l.iter().map(|t| Thunk::apply(f.clone(), t.clone())).collect())))
}

fn prim_filter(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    let mut out = Vec::new();
    for t in l.iter() {
        let r = ev.call(&f, t.clone(), span)?;
        match r {
            Value::Bool(true) => out.push(t.clone()),
            Value::Bool(false) => {}
            other => return ev.type_err("a Boolean", &other, span),
        }
    }
    if out.len() == l.len() {
        return Ok(Value::List(l));
    }
    Ok(Value::List(Rc::new(out)))
}

fn prim_partition(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for t in l.iter() {
        match ev.call(&f, t.clone(), span)? {
            Value::Bool(true) => right.push(t.clone()),
            Value::Bool(false) => wrong.push(t.clone()),
            other => return ev.type_err("a Boolean", &other, span),
        }
    }
    let mut out = Attrs::new();
    out.insert(Symbol::new("right"), plain_entry(Value::List(Rc::new(right))));
    out.insert(Symbol::new("wrong"), plain_entry(Value::List(Rc::new(wrong))));
    Ok(Value::Attrs(Rc::new(out)))
}

fn prim_all(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    for t in l.iter() {
        match ev.call(&f, t.clone(), span)? {
            Value::Bool(true) => {}
            Value::Bool(false) => return Ok(Value::Bool(false)),
            other => return ev.type_err("a Boolean", &other, span),
        }
    }
    Ok(Value::Bool(true))
}

fn prim_any(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    for t in l.iter() {
        match ev.call(&f, t.clone(), span)? {
            Value::Bool(true) => return Ok(Value::Bool(true)),
            Value::Bool(false) => {}
            other => return ev.type_err("a Boolean", &other, span),
        }
    }
    Ok(Value::Bool(false))
}

fn prim_concat_lists(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    let mut out = Vec::new();
    for t in l.iter() {
        out.extend(ev.force_list(t, span)?.iter().cloned());
    }
    Ok(Value::List(Rc::new(out)))
}

fn prim_concat_map(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    let mut out = Vec::new();
    for t in l.iter() {
        match ev.call(&f, t.clone(), span)? {
            Value::List(r) => out.extend(r.iter().cloned()),
            other => return ev.type_err("a list", &other, span),
        }
    }
    Ok(Value::List(Rc::new(out)))
}

fn prim_foldl(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[2], span)?;
    let mut acc = a[1].clone();
    for t in l.iter() {
        let v = ev.call2(&f, acc, t.clone(), span)?;
        acc = Thunk::value(v);
    }
    ev.force(&acc)
}

fn prim_gen_list(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let n = ev.force_int(&a[1], span)?;
    if n < 0 {
        return err(ErrorKind::Invalid, format!("cannot create list of size {n}"), span);
    }
    let out = (0..n).map(|i| Thunk::apply(f.clone(), Thunk::value(Value::Int(i)))).collect();
    Ok(Value::List(Rc::new(out)))
}

fn prim_sort(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force_fn(&a[0], span)?;
    let l = ev.force_list(&a[1], span)?;
    let mut items: Vec<Thunk> = l.to_vec();
    // A stable merge sort that can fail: the comparator is Nix code.
    let mut error = None;
    let mut buf = items.clone();
    merge_sort(&mut items, &mut buf, &mut |x, y| {
        if error.is_some() {
            return false;
        }
        match ev.call2(&f, x.clone(), y.clone(), span) {
            Ok(Value::Bool(b)) => b,
            Ok(other) => {
                error = Some(ev.type_err::<()>("a Boolean", &other, span).unwrap_err());
                false
            }
            Err(e) => {
                error = Some(e);
                false
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    Ok(Value::List(Rc::new(items)))
}

fn merge_sort(v: &mut [Thunk], buf: &mut [Thunk], less: &mut dyn FnMut(&Thunk, &Thunk) -> bool) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let mid = n / 2;
    merge_sort(&mut v[..mid], &mut buf[..mid], less);
    merge_sort(&mut v[mid..], &mut buf[mid..], less);
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if less(&v[j], &v[i]) {
            buf[k] = v[j].clone();
            j += 1;
        } else {
            buf[k] = v[i].clone();
            i += 1;
        }
        k += 1;
    }
    while i < mid {
        buf[k] = v[i].clone();
        i += 1;
        k += 1;
    }
    while j < n {
        buf[k] = v[j].clone();
        j += 1;
        k += 1;
    }
    v.clone_from_slice(&buf[..n]);
}

fn prim_generic_closure(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let args = ev.force_attrs(&a[0], span)?;
    let Some(start) = ev.attr(&args, "startSet").map(|e| e.value.clone()) else {
        return err(ErrorKind::MissingAttr, "attribute `startSet` missing", span);
    };
    let Some(op) = ev.attr(&args, "operator").map(|e| e.value.clone()) else {
        return err(ErrorKind::MissingAttr, "attribute `operator` missing", span);
    };
    let op = ev.force(&op)?;
    let mut work: std::collections::VecDeque<Thunk> =
        ev.force_list(&start, span)?.iter().cloned().collect();
    let mut done: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    let key = Symbol::new("key");
    while let Some(t) = work.pop_front() {
        let item = ev.force_attrs(&t, span)?;
        let Some(k) = item.get(&key) else {
            return err(ErrorKind::MissingAttr, "attribute `key` missing", span);
        };
        let kv = ev.force(&k.value.clone())?;
        let mut seen = false;
        for d in &done {
            // Keys are ordered with `<` as in CppNix, so incomparable keys are an error.
            if !ev.less_than(d, &kv, span)? && !ev.less_than(&kv, d, span)? {
                seen = true;
                break;
            }
        }
        if seen {
            continue;
        }
        done.push(kv);
        out.push(t.clone());
        let next = ev.call(&op, t.clone(), span)?;
        match next {
            Value::List(l) => work.extend(l.iter().cloned()),
            other => return ev.type_err("a list", &other, span),
        }
    }
    Ok(Value::List(Rc::new(out)))
}

// ---- files and imports ----

fn prim_import(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    ev.import_path(&path, span, None)
}

fn prim_scoped_import(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let scope = ev.force_attrs(&a[0], span)?;
    let path = ev.coerce_path(&a[1], span)?;
    ev.import_path(&path, span, Some(scope))
}

impl Evaluator {
    /// Imports a file (or `default.nix` of a directory), cached per path unless scoped.
    pub fn import_path(&mut self, path: &Path, span: Span, scope: Option<Rc<Attrs>>) -> R<Value> {
        let mut path = path.to_path_buf();
        if self.io.is_dir(&path) {
            path = path.join("default.nix");
        }
        let key = path.to_string_lossy().into_owned();
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
                    attrs.keys().enumerate().map(|(i, k)| (k.clone(), i as u32)).collect();
                let with_frame = Rc::new(Env {
                    slots: std::cell::RefCell::new(Vec::new()),
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

fn prim_read_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    match ev.io.read_file(&path) {
        Ok(b) => Ok(Value::string(String::from_utf8_lossy(&b).into_owned())),
        Err(e) => err(ErrorKind::Io, format!("reading `{}`: {e}", path.display()), span),
    }
}

fn prim_path_exists(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

fn prim_read_file_type(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let path = ev.coerce_path(&a[0], span)?;
    match ev.io.file_type(&path) {
        Ok(t) => Ok(Value::string(t.as_str())),
        Err(e) => {
            err(ErrorKind::Io, format!("reading the type of `{}`: {e}", path.display()), span)
        }
    }
}

fn prim_read_dir(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

fn prim_get_env(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    Ok(Value::string(ev.io.get_env(&name.s).unwrap_or_default()))
}

fn prim_to_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let p = ev.coerce_path(&a[0], span)?;
    Ok(Value::string(crate::lower::canon_path(&p.to_string_lossy())))
}

fn prim_find_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

fn prim_to_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let mut ctx = Context::new();
    let content = ev.coerce_str(&a[1], span, &mut ctx)?;
    let refs: Vec<String> = ctx
        .iter()
        .map(|c| match c {
            ContextElem::Opaque(p) | ContextElem::DrvDeep(p) | ContextElem::Built(p, _) => {
                p.clone()
            }
        })
        .collect();
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

fn prim_filter_source(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force_fn(&a[0], span)?;
    let path = ev.coerce_path(&a[1], span)?;
    add_filtered(ev, &path, None, true, Some(f), span)
}

fn prim_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

fn prim_store_path(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

/// Whether `name` is a valid store path name (CppNix's rules).
pub(crate) fn valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 211
        && !name.starts_with('.')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-._?=".contains(&c))
}

fn drv_err<T>(msg: String, name: &str, span: Span) -> R<T> {
    let mut d = Diagnostic::new(ErrorKind::Invalid, msg, Some(span));
    d.frames.push(Frame {
        span: Some(span),
        message: format!("while evaluating the derivation `{name}`"),
    });
    Err(Box::new(d))
}

fn prim_derivation_strict(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let name = match ev.attr(&attrs, "name").map(|e| e.value.clone()) {
        Some(n) => ev.force_string(&n, span)?.s.to_string(),
        None => return err(ErrorKind::MissingAttr, "required attribute `name` missing", span),
    };
    if !valid_store_name(&name) {
        return drv_err(format!("invalid derivation name `{name}`"), &name, span);
    }
    let flag = |ev: &mut Evaluator, key: &str| -> R<bool> {
        match ev.attr(&attrs, key).map(|e| e.value.clone()) {
            Some(t) => match ev.force(&t)? {
                Value::Bool(b) => Ok(b),
                other => ev.type_err("a Boolean", &other, span),
            },
            None => Ok(false),
        }
    };
    let structured = flag(ev, "__structuredAttrs")?;
    let ignore_nulls = flag(ev, "__ignoreNulls")?;
    let mut req = crate::io::DerivationRequest { name: name.clone(), ..Default::default() };
    req.outputs = vec!["out".to_string()];
    let mut ctx = Context::new();
    let mut json = String::from("{");
    let (mut has_builder, mut has_system) = (false, false);
    let (mut out_hash, mut out_algo, mut out_mode) = (None, None, "flat".to_string());
    for (k, e) in attrs.iter() {
        let key = k.as_str();
        if key == "__ignoreNulls" {
            continue;
        }
        let v = ev.force(&e.value.clone())?;
        if ignore_nulls && matches!(v, Value::Null) {
            continue;
        }
        let in_attr = |d: Box<Diagnostic>| {
            crate::eval::push_frame(
                d,
                e.pos,
                format!("while evaluating attribute `{k}` of derivation `{name}`"),
            )
        };
        match key {
            "__contentAddressed" | "__impure" if !matches!(v, Value::Bool(_)) => {
                return ev.type_err("a Boolean", &v, span);
            }
            "args" => {
                let Value::List(l) = &v else { return ev.type_err("a list", &v, span) };
                for t in l.iter() {
                    let x = ev.force(t)?;
                    let s = ev.coerce_to_string(&x, span, &mut ctx, true, true).map_err(in_attr)?;
                    req.args.push(s);
                }
                continue;
            }
            "outputs" => {
                let names: Vec<String> = match &v {
                    Value::List(l) => {
                        let mut names = Vec::new();
                        for t in l.iter() {
                            names.push(ev.force_string(t, span)?.s.to_string());
                        }
                        names
                    }
                    _ if structured => return ev.type_err("a list", &v, span),
                    _ => {
                        let s = ev.coerce_to_string(&v, span, &mut ctx, true, true)?;
                        s.split_whitespace().map(str::to_string).collect()
                    }
                };
                if names.is_empty() {
                    return drv_err(
                        "derivation cannot have an empty set of outputs".into(),
                        &name,
                        span,
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for o in &names {
                    if o == "drvPath" || !valid_store_name(o) {
                        return drv_err(
                            format!("invalid derivation output name `{o}`"),
                            &name,
                            span,
                        );
                    }
                    if !seen.insert(o.clone()) {
                        return drv_err(format!("duplicate derivation output `{o}`"), &name, span);
                    }
                }
                req.outputs = names;
            }
            _ => {}
        }
        let text = if structured {
            if key == "__structuredAttrs" {
                continue;
            }
            if matches!(
                key,
                "allowedReferences"
                    | "allowedRequisites"
                    | "disallowedReferences"
                    | "disallowedRequisites"
                    | "maxSize"
                    | "maxClosureSize"
            ) {
                let mut w = Diagnostic::new(
                    ErrorKind::Invalid,
                    format!(
                        "`__structuredAttrs` disables the effect of the derivation attribute `{key}`; use `outputChecks.<output>.{key}` instead"
                    ),
                    e.pos,
                );
                w.code = "W002";
                ev.warnings.push(w);
            }
            let mut out = String::new();
            ev.to_json(&v, span, &mut ctx, true, &mut out).map_err(in_attr)?;
            if json.len() > 1 {
                json.push(',');
            }
            crate::builtins::formats::json_string(key, &mut json);
            json.push(':');
            json.push_str(&out);
            // The special attributes are read from their string form.
            match &v {
                Value::String(s) => s.s.to_string(),
                _ => out,
            }
        } else {
            let s = ev.coerce_to_string(&v, span, &mut ctx, true, true).map_err(in_attr)?;
            req.env.insert(key.to_string(), s.clone());
            s
        };
        match key {
            "builder" => {
                has_builder = true;
                req.builder = text;
            }
            "system" => {
                has_system = true;
                req.platform = text;
            }
            "outputHash" => out_hash = Some(text),
            "outputHashAlgo" => out_algo = Some(text),
            "outputHashMode" => {
                if !matches!(text.as_str(), "recursive" | "flat" | "text" | "nar") {
                    return drv_err(
                        format!("invalid value `{text}` for `outputHashMode`"),
                        &name,
                        span,
                    );
                }
                out_mode = text;
            }
            _ => {}
        }
    }
    if structured {
        json.push('}');
        req.env.insert("__json".into(), json);
    }
    if !has_builder {
        return drv_err("required attribute `builder` missing".into(), &name, span);
    }
    if !has_system {
        return drv_err("required attribute `system` missing".into(), &name, span);
    }
    if let Some(h) = out_hash {
        if req.outputs != ["out"] {
            return drv_err(
                "multiple outputs are not supported in fixed-output derivations".into(),
                &name,
                span,
            );
        }
        let (algo, hex) =
            match hashing::to_base16(&h, out_algo.as_deref().filter(|a| !a.is_empty())) {
                Ok(x) => x,
                Err(m) => return drv_err(m, &name, span),
            };
        let prefix = if out_mode == "recursive" || out_mode == "nar" { "r:" } else { "" };
        req.fixed = Some((format!("{prefix}{algo}"), hex));
    }
    for o in &req.outputs {
        req.env.insert(o.clone(), String::new());
    }
    for c in &ctx {
        match c {
            ContextElem::Opaque(p) => {
                req.input_srcs.insert(p.clone());
            }
            // FIXME: CppNix adds every output of the `.drv` closure here; kiln keeps the `.drv`.
            ContextElem::DrvDeep(p) => {
                req.input_srcs.insert(p.clone());
            }
            ContextElem::Built(p, o) => {
                req.input_drvs.entry(p.clone()).or_default().insert(o.clone());
            }
        }
    }
    let paths = match ev.io.write_derivation(&req) {
        Ok(p) => p,
        Err(e) => return err(ErrorKind::Io, format!("writing derivation `{name}`: {e}"), span),
    };
    let mut out = Attrs::new();
    let mut dc = Context::new();
    dc.insert(ContextElem::DrvDeep(paths.drv_path.clone()));
    out.insert(
        Symbol::new("drvPath"),
        plain_entry(Value::String(NixString::with_ctx(paths.drv_path.clone(), dc))),
    );
    for (o, p) in paths.outputs {
        let mut oc = Context::new();
        oc.insert(ContextElem::Built(paths.drv_path.clone(), o.clone()));
        out.insert(Symbol::new(&o), plain_entry(Value::String(NixString::with_ctx(p, oc))));
    }
    Ok(Value::Attrs(Rc::new(out)))
}
