//! The builtins: the base environment (`builtins`, `true`, `map`, `__add`, ...) and the
//! control, type and arithmetic builtins; the rest live in the submodules by area (sets, lists,
//! strings, files, derivations, formats, hashing), with CppNix's laziness and errors.

mod attrs;
mod derivation;
mod files;
pub(crate) mod formats;
pub(crate) mod hashing;
mod lists;
mod strings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{ErrorKind, Frame};
use crate::eval::{Evaluator, R, err};
use crate::lower::BinOp;
use crate::syntax::Span;
use crate::value::{
    AttrEntry, Attrs, Context, Env, NixString, PrimFn, PrimOp, Symbol, Thunk, Value,
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
        ("all", 2, lists::prim_all),
        ("any", 2, lists::prim_any),
        ("appendContext", 2, strings::prim_append_context),
        ("attrNames", 1, attrs::prim_attr_names),
        ("attrValues", 1, attrs::prim_attr_values),
        ("baseNameOf", 1, strings::prim_base_name_of),
        ("bitAnd", 2, prim_bit_and),
        ("bitOr", 2, prim_bit_or),
        ("bitXor", 2, prim_bit_xor),
        ("break", 1, prim_identity),
        ("catAttrs", 2, attrs::prim_cat_attrs),
        ("ceil", 1, prim_ceil),
        ("compareVersions", 2, strings::prim_compare_versions),
        ("concatLists", 1, lists::prim_concat_lists),
        ("concatMap", 2, lists::prim_concat_map),
        ("concatStringsSep", 2, strings::prim_concat_strings_sep),
        ("convertHash", 1, hashing::prim_convert_hash),
        ("deepSeq", 2, prim_deep_seq),
        ("derivationStrict", 1, derivation::prim_derivation_strict),
        ("dirOf", 1, strings::prim_dir_of),
        ("div", 2, prim_div),
        ("elem", 2, lists::prim_elem),
        ("elemAt", 2, lists::prim_elem_at),
        ("fetchGit", 1, prim_no_network),
        ("fetchMercurial", 1, prim_no_network),
        ("fetchTarball", 1, prim_no_network),
        ("fetchTree", 1, prim_no_network),
        ("fetchurl", 1, prim_no_network),
        ("fetchClosure", 1, prim_no_network),
        ("filter", 2, lists::prim_filter),
        ("filterSource", 2, files::prim_filter_source),
        ("findFile", 2, files::prim_find_file),
        ("floor", 1, prim_floor),
        ("foldl'", 3, lists::prim_foldl),
        ("fromJSON", 1, formats::prim_from_json),
        ("fromTOML", 1, formats::prim_from_toml),
        ("functionArgs", 1, attrs::prim_function_args),
        ("genList", 2, lists::prim_gen_list),
        ("genericClosure", 1, lists::prim_generic_closure),
        ("getAttr", 2, attrs::prim_get_attr),
        ("getContext", 1, strings::prim_get_context),
        ("getEnv", 1, files::prim_get_env),
        ("groupBy", 2, attrs::prim_group_by),
        ("hasAttr", 2, attrs::prim_has_attr),
        ("hasContext", 1, strings::prim_has_context),
        ("hashFile", 2, hashing::prim_hash_file),
        ("hashString", 2, hashing::prim_hash_string),
        ("head", 1, lists::prim_head),
        ("import", 1, files::prim_import),
        ("intersectAttrs", 2, attrs::prim_intersect_attrs),
        ("isAttrs", 1, prim_is_attrs),
        ("isBool", 1, prim_is_bool),
        ("isFloat", 1, prim_is_float),
        ("isFunction", 1, prim_is_function),
        ("isInt", 1, prim_is_int),
        ("isList", 1, prim_is_list),
        ("isNull", 1, prim_is_null),
        ("isPath", 1, prim_is_path),
        ("isString", 1, prim_is_string),
        ("length", 1, lists::prim_length),
        ("lessThan", 2, prim_less_than),
        ("listToAttrs", 1, attrs::prim_list_to_attrs),
        ("map", 2, lists::prim_map),
        ("mapAttrs", 2, attrs::prim_map_attrs),
        ("match", 2, strings::prim_match),
        ("mul", 2, prim_mul),
        ("parseDrvName", 1, strings::prim_parse_drv_name),
        ("partition", 2, lists::prim_partition),
        ("path", 1, files::prim_path),
        ("pathExists", 1, files::prim_path_exists),
        ("placeholder", 1, hashing::prim_placeholder),
        ("readDir", 1, files::prim_read_dir),
        ("readFile", 1, files::prim_read_file),
        ("readFileType", 1, files::prim_read_file_type),
        ("removeAttrs", 2, attrs::prim_remove_attrs),
        ("replaceStrings", 3, strings::prim_replace_strings),
        ("scopedImport", 2, files::prim_scoped_import),
        ("seq", 2, prim_seq),
        ("sort", 2, lists::prim_sort),
        ("split", 2, strings::prim_split),
        ("splitVersion", 1, strings::prim_split_version),
        ("storePath", 1, files::prim_store_path),
        ("stringLength", 1, strings::prim_string_length),
        ("sub", 2, prim_sub),
        ("substring", 3, strings::prim_substring),
        ("tail", 1, lists::prim_tail),
        ("throw", 1, prim_throw),
        ("toFile", 2, files::prim_to_file),
        ("toJSON", 1, formats::prim_to_json),
        ("toPath", 1, files::prim_to_path),
        ("toString", 1, strings::prim_to_string),
        ("toXML", 1, formats::prim_to_xml),
        ("trace", 2, prim_trace),
        ("traceVerbose", 2, prim_trace_verbose),
        ("tryEval", 1, prim_try_eval),
        ("typeOf", 1, prim_type_of),
        ("unsafeDiscardOutputDependency", 1, strings::prim_discard_output_dep),
        ("addDrvOutputDependencies", 1, strings::prim_add_drv_output_deps),
        ("unsafeDiscardStringContext", 1, strings::prim_discard_context),
        ("unsafeGetAttrPos", 2, attrs::prim_unsafe_get_attr_pos),
        ("warn", 2, prim_warn),
        ("zipAttrsWith", 2, attrs::prim_zip_attrs_with),
        ("flakeRefToString", 1, strings::prim_flake_ref_to_string),
        ("parseFlakeRef", 1, strings::prim_parse_flake_ref),
    ]
}

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
    if let Ok(e) =
        ev.load("«derivation»".into(), None, derivation::DERIVATION_NIX.into(), Path::new("/"))
    {
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
    /// A string is shared, not copied: `substring` over a long string costs its result only.
    pub(crate) fn coerce_str(&mut self, t: &Thunk, span: Span, ctx: &mut Context) -> R<Rc<str>> {
        let v = self.force(t)?;
        if let Value::String(s) = &v {
            s.merge_ctx_into(ctx);
            return Ok(s.s.clone());
        }
        Ok(self.coerce_to_string(&v, span, ctx, true, false)?.into())
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
