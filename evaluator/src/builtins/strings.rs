//! String builtins: substrings, replacement, POSIX regular expressions (`match`, `split`),
//! version strings, string contexts and flake references.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::plain_entry;
use crate::error::ErrorKind;
use crate::eval::{Evaluator, R, err};
use crate::syntax::Span;
use crate::value::{Attrs, Context, ContextElem, NixString, Symbol, Thunk, Value};

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<(String, bool), Rc<regex::Regex>>> = RefCell::new(HashMap::new());
}

/// Compiles a POSIX extended regular expression (anchored for `match`), cached.
fn compile(re: &str, anchored: bool, span: Span) -> R<Rc<regex::Regex>> {
    let key = (re.to_string(), anchored);
    if let Some(r) = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(r);
    }
    let translated = translate_posix(re);
    // POSIX `.` matches a newline too.
    let pattern =
        if anchored { format!("(?s)^(?:{translated})$") } else { format!("(?s){translated}") };
    match regex::Regex::new(&pattern) {
        Ok(r) => {
            let r = Rc::new(r);
            REGEX_CACHE.with(|c| c.borrow_mut().insert(key, r.clone()));
            Ok(r)
        }
        Err(e) => err(ErrorKind::Invalid, format!("invalid regular expression `{re}`: {e}"), span),
    }
}

thread_local! {
    static LONGEST_CACHE: RefCell<HashMap<String, Rc<regex_automata::meta::Regex>>> =
        RefCell::new(HashMap::new());
}

/// The same expression for finding the longest match at a position (POSIX semantics).
fn compile_longest(re: &str, span: Span) -> R<Rc<regex_automata::meta::Regex>> {
    if let Some(r) = LONGEST_CACHE.with(|c| c.borrow().get(re).cloned()) {
        return Ok(r);
    }
    let pattern = format!("(?s){}", translate_posix(re));
    let built = regex_automata::meta::Regex::builder()
        .configure(regex_automata::meta::Regex::config().match_kind(regex_automata::MatchKind::All))
        .build(&pattern);
    match built {
        Ok(r) => {
            let r = Rc::new(r);
            LONGEST_CACHE.with(|c| c.borrow_mut().insert(re.to_string(), r.clone()));
            Ok(r)
        }
        Err(e) => err(ErrorKind::Invalid, format!("invalid regular expression `{re}`: {e}"), span),
    }
}

/// Rewrites the POSIX-only spellings the `regex` crate reads differently.
fn translate_posix(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let chars: Vec<char> = re.chars().collect();
    let mut i = 0;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if in_class {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // A POSIX class such as [:alpha:]: copy through.
                if let Some(end) = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == ':' && chars[j + 1] == ']')
                {
                    out.extend(&chars[i..end + 2]);
                    i = end + 2;
                    continue;
                }
            }
            if c == ']' {
                in_class = false;
                out.push(c);
            } else if c == '['
                || c == '\\'
                || (c == '&' || c == '~' || c == '-') && chars.get(i + 1) == Some(&c)
            {
                out.push('\\');
                out.push(c);
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            '\\' if i + 1 < chars.len() => {
                out.push('\\');
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn groups(caps: &regex::Captures<'_>) -> Vec<Thunk> {
    (1..caps.len())
        .map(|i| {
            Thunk::value(match caps.get(i) {
                Some(m) => Value::string(m.as_str()),
                None => Value::Null,
            })
        })
        .collect()
}

pub(super) fn prim_match(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let re = ev.force_string(&a[0], span)?;
    let s = ev.force_string(&a[1], span)?;
    let r = compile(&re.s, true, span)?;
    match r.captures(&s.s) {
        Some(caps) => Ok(Value::List(Rc::new(groups(&caps)))),
        None => Ok(Value::Null),
    }
}

pub(super) fn prim_split(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let re = ev.force_string(&a[0], span)?;
    let s = ev.force_string(&a[1], span)?;
    let first = compile(&re.s, false, span)?;
    let whole = compile(&re.s, true, span)?;
    let longest = compile_longest(&re.s, span)?;
    let hay: &str = &s.s;
    let longest_at = |start: usize| {
        let input =
            regex_automata::Input::new(hay).range(start..).anchored(regex_automata::Anchored::Yes);
        longest.search(&input).map(|m| m.end())
    };
    let mut out = Vec::new();
    let (mut at, mut last, mut after_empty) = (0, 0, false);
    // Matches are found as C++'s `std::regex_iterator` finds them: after an empty match, a
    // non-empty one at the same place is tried before moving on by a character.
    while at <= hay.len() {
        let span_found = if after_empty {
            after_empty = false;
            match longest_at(at).filter(|end| *end > at) {
                Some(end) => Some((at, end)),
                None => {
                    at += hay[at..].chars().next().map_or(1, char::len_utf8);
                    continue;
                }
            }
        } else {
            first.find_at(hay, at).map(|m| {
                // POSIX takes the longest match that starts where the leftmost one starts.
                (m.start(), longest_at(m.start()).map_or(m.end(), |e| e.max(m.end())))
            })
        };
        let Some((start, end)) = span_found else { break };
        let groups_here = match whole.captures(&hay[start..end]) {
            Some(caps) => groups(&caps),
            None => first.captures_at(hay, start).map(|c| groups(&c)).unwrap_or_default(),
        };
        out.push(Thunk::value(Value::string(&hay[last..start])));
        out.push(Thunk::value(Value::List(Rc::new(groups_here))));
        last = end;
        at = end;
        after_empty = start == end;
    }
    out.push(Thunk::value(Value::string(&hay[last..])));
    Ok(Value::List(Rc::new(out)))
}

pub(super) fn prim_to_string(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&v, span, &mut ctx, false, true)?;
    Ok(Value::String(NixString::with_ctx(s, ctx)))
}

pub(super) fn prim_string_length(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_str(&a[0], span, &mut ctx)?;
    Ok(Value::Int(s.len() as i64))
}

pub(super) fn prim_substring(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let start = ev.force_int(&a[0], span)?;
    let len = ev.force_int(&a[1], span)?;
    let mut ctx = Context::new();
    let s = ev.coerce_str(&a[2], span, &mut ctx)?;
    if start < 0 {
        return err(ErrorKind::Invalid, "negative start position in `substring`", span);
    }
    let bytes = s.as_bytes();
    let start = (start as usize).min(bytes.len());
    let end =
        if len < 0 { bytes.len() } else { start.saturating_add(len as usize).min(bytes.len()) };
    let sub = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    Ok(Value::String(NixString::with_ctx(sub, ctx)))
}

pub(super) fn prim_concat_strings_sep(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let sep = ev.force_string(&a[0], span)?;
    sep.merge_ctx_into(&mut ctx);
    let list = ev.force_list(&a[1], span)?;
    let mut out = String::new();
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep.s);
        }
        let s = ev.coerce_str(t, span, &mut ctx)?;
        // What this piece adds; the pieces add up in the evaluator's count.
        ev.check_memory(sep.s.len() + s.len(), span)?;
        out.push_str(&s);
    }
    Ok(Value::String(NixString::with_ctx(out, ctx)))
}

pub(super) fn prim_replace_strings(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let from = ev.force_list(&a[0], span)?;
    let to = ev.force_list(&a[1], span)?;
    if from.len() != to.len() {
        return err(
            ErrorKind::Invalid,
            "`from` and `to` arguments passed to `builtins.replaceStrings` have different lengths",
            span,
        );
    }
    let mut froms = Vec::new();
    for t in from.iter() {
        froms.push(ev.force_string(t, span)?.s.to_string());
    }
    let mut tos: Vec<Option<NixString>> = vec![None; to.len()];
    let s = ev.force_string(&a[2], span)?;
    let mut ctx = Context::new();
    s.merge_ctx_into(&mut ctx);
    let bytes = s.s.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i <= bytes.len() {
        let mut matched = false;
        for (j, f) in froms.iter().enumerate() {
            if bytes[i..].starts_with(f.as_bytes()) {
                if tos[j].is_none() {
                    tos[j] = Some(ev.force_string(&to[j], span)?);
                }
                let replacement = tos[j].as_ref().expect("set above");
                replacement.merge_ctx_into(&mut ctx);
                out.extend_from_slice(replacement.s.as_bytes());
                if f.is_empty() {
                    if i < bytes.len() {
                        out.push(bytes[i]);
                    }
                    i += 1;
                } else {
                    i += f.len();
                }
                matched = true;
                break;
            }
        }
        if !matched {
            if i < bytes.len() {
                out.push(bytes[i]);
            }
            i += 1;
        }
    }
    Ok(Value::String(NixString::with_ctx(String::from_utf8_lossy(&out).into_owned(), ctx)))
}

pub(super) fn prim_base_name_of(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&v, span, &mut ctx, false, false)?;
    let trimmed = if s.ends_with('/') && s.len() > 1 { &s[..s.len() - 1] } else { &s[..] };
    let base = match trimmed.rfind('/') {
        Some(p) => &trimmed[p + 1..],
        None => trimmed,
    };
    Ok(Value::String(NixString::with_ctx(base.to_string(), ctx)))
}

pub(super) fn prim_dir_of(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    let mut ctx = Context::new();
    let is_path = matches!(v, Value::Path(_));
    let s = ev.coerce_to_string(&v, span, &mut ctx, false, false)?;
    let dir = match s.rfind('/') {
        None => ".".to_string(),
        Some(0) => "/".to_string(),
        Some(p) => s[..p].to_string(),
    };
    if is_path {
        Ok(Value::Path(crate::lower::canon_path(&dir).into()))
    } else {
        Ok(Value::String(NixString::with_ctx(dir, ctx)))
    }
}

/// Splits a version string into components as CppNix does.
pub(crate) fn version_components(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' || b[i] == b'-' {
            i += 1;
            continue;
        }
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            while i < b.len() && !b[i].is_ascii_digit() && b[i] != b'.' && b[i] != b'-' {
                i += 1;
            }
        }
        out.push(v[start..i].to_string());
    }
    out
}

fn component_lt(a: &str, b: &str) -> bool {
    let na =
        a.parse::<u64>().ok().filter(|_| !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()));
    let nb =
        b.parse::<u64>().ok().filter(|_| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()));
    match (na, nb) {
        (Some(x), Some(y)) => x < y,
        _ if a.is_empty() && nb.is_some() => true,
        _ if a == "pre" && b != "pre" => true,
        _ if b == "pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => a < b,
    }
}

/// Compares two version strings: -1, 0 or 1.
pub(crate) fn compare_versions(a: &str, b: &str) -> i64 {
    let (ca, cb) = (version_components(a), version_components(b));
    let n = ca.len().max(cb.len());
    for i in 0..n {
        let x = ca.get(i).map(String::as_str).unwrap_or("");
        let y = cb.get(i).map(String::as_str).unwrap_or("");
        if component_lt(x, y) {
            return -1;
        }
        if component_lt(y, x) {
            return 1;
        }
    }
    0
}

pub(super) fn prim_compare_versions(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let x = ev.force_string(&a[0], span)?;
    let y = ev.force_string(&a[1], span)?;
    Ok(Value::Int(compare_versions(&x.s, &y.s)))
}

pub(super) fn prim_split_version(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force_string(&a[0], span)?;
    let l = version_components(&v.s).into_iter().map(|c| Thunk::value(Value::string(c))).collect();
    Ok(Value::List(Rc::new(l)))
}

pub(super) fn prim_parse_drv_name(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    let b = s.s.as_bytes();
    let mut split = None;
    for i in 0..b.len() {
        if b[i] == b'-' && i + 1 < b.len() && !b[i + 1].is_ascii_alphabetic() {
            split = Some(i);
            break;
        }
    }
    let (name, version) = match split {
        Some(i) => (&s.s[..i], &s.s[i + 1..]),
        None => (&s.s[..], ""),
    };
    let mut out = Attrs::new();
    out.insert(Symbol::new("name"), plain_entry(Value::string(name)));
    out.insert(Symbol::new("version"), plain_entry(Value::string(version)));
    Ok(Value::Attrs(Rc::new(out)))
}

// ---- contexts ----

pub(super) fn prim_has_context(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    Ok(Value::Bool(s.has_ctx()))
}

pub(super) fn prim_discard_context(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_str(&a[0], span, &mut ctx)?;
    Ok(Value::string(s))
}

pub(super) fn prim_discard_output_dep(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_str(&a[0], span, &mut ctx)?;
    let ctx = ctx
        .into_iter()
        .map(|c| match c {
            ContextElem::DrvDeep(p) => ContextElem::Opaque(p),
            c => c,
        })
        .collect();
    Ok(Value::String(NixString::with_ctx(s, ctx)))
}

pub(super) fn prim_add_drv_output_deps(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_str(&a[0], span, &mut ctx)?;
    if ctx.len() != 1 {
        return err(
            ErrorKind::Invalid,
            format!("context of string `{s}` must have exactly one element, but has {}", ctx.len()),
            span,
        );
    }
    let ctx = ctx
        .into_iter()
        .map(|c| match c {
            ContextElem::Opaque(p) if p.ends_with(".drv") => Ok(ContextElem::DrvDeep(p)),
            ContextElem::Opaque(p) => Err(format!("path `{p}` is not a derivation")),
            ContextElem::Built(_, o) => Err(format!(
                "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as `{o}`"
            )),
            c => Ok(c),
        })
        .collect::<Result<Context, String>>();
    match ctx {
        Ok(ctx) => Ok(Value::String(NixString::with_ctx(s, ctx))),
        Err(m) => err(ErrorKind::Invalid, m, span),
    }
}

pub(super) fn prim_get_context(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    let mut per: std::collections::BTreeMap<String, (bool, bool, Vec<String>)> = Default::default();
    if let Some(ctx) = &s.ctx {
        for c in ctx.iter() {
            match c {
                ContextElem::Opaque(p) => per.entry(p.clone()).or_default().0 = true,
                ContextElem::DrvDeep(p) => per.entry(p.clone()).or_default().1 = true,
                ContextElem::Built(p, o) => per.entry(p.clone()).or_default().2.push(o.clone()),
            }
        }
    }
    let mut out = Attrs::new();
    for (p, (path, all, outputs)) in per {
        let mut info = Attrs::new();
        if path {
            info.insert(Symbol::new("path"), plain_entry(Value::Bool(true)));
        }
        if all {
            info.insert(Symbol::new("allOutputs"), plain_entry(Value::Bool(true)));
        }
        if !outputs.is_empty() {
            let l = outputs.into_iter().map(|o| Thunk::value(Value::string(o))).collect();
            info.insert(Symbol::new("outputs"), plain_entry(Value::List(Rc::new(l))));
        }
        out.insert(Symbol::new(&p), plain_entry(Value::Attrs(Rc::new(info))));
    }
    Ok(Value::Attrs(Rc::new(out)))
}

pub(super) fn prim_append_context(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    let mut ctx = Context::new();
    s.merge_ctx_into(&mut ctx);
    let store = ev.io.store_dir();
    for (p, e) in attrs.iter() {
        if !p.as_str().starts_with(&format!("{store}/")) {
            return err(ErrorKind::Invalid, format!("context key `{p}` is not a store path"), span);
        }
        let info = ev.force_attrs(&e.value.clone(), span)?;
        if let Some(t) = info.get(&Symbol::new("path")).map(|x| x.value.clone())
            && ev.force_bool(&t, span)?
        {
            ctx.insert(ContextElem::Opaque(p.to_string()));
        }
        if let Some(t) = info.get(&Symbol::new("allOutputs")).map(|x| x.value.clone())
            && ev.force_bool(&t, span)?
        {
            if !p.as_str().ends_with(".drv") {
                return err(
                    ErrorKind::Invalid,
                    format!(
                        "tried to add all-outputs context of `{p}`, which is not a derivation, to a string"
                    ),
                    span,
                );
            }
            ctx.insert(ContextElem::DrvDeep(p.to_string()));
        }
        if let Some(t) = info.get(&Symbol::new("outputs")).map(|x| x.value.clone()) {
            let l = ev.force_list(&t, span)?;
            if !l.is_empty() && !p.as_str().ends_with(".drv") {
                return err(
                    ErrorKind::Invalid,
                    format!(
                        "tried to add derivation output context of `{p}`, which is not a derivation, to a string"
                    ),
                    span,
                );
            }
            for o in l.iter() {
                let o = ev.force_string(o, span)?;
                ctx.insert(ContextElem::Built(p.to_string(), o.s.to_string()));
            }
        }
    }
    Ok(Value::String(NixString::with_ctx(s.s.clone(), ctx)))
}

// ---- flake references ----

pub(super) fn prim_flake_ref_to_string(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, e) in attrs.iter() {
        let v = ev.force(&e.value.clone())?;
        let s = match v {
            Value::String(s) => s.s.to_string(),
            Value::Int(i) if i < 0 => {
                return err(
                    ErrorKind::Invalid,
                    format!("negative value given for flake ref attribute `{k}`: {i}"),
                    span,
                );
            }
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => {
                if b {
                    "1".into()
                } else {
                    "0".into()
                }
            }
            other => return ev.type_err("a string, integer or Boolean", &other, span),
        };
        fields.push((k.to_string(), s));
    }
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let Some(ty) = get("type") else {
        return err(ErrorKind::MissingAttr, "attribute `type` missing in flake reference", span);
    };
    let mut base = match ty.as_str() {
        "github" | "gitlab" | "sourcehut" => {
            let mut s = format!(
                "{ty}:{}/{}",
                get("owner").unwrap_or_default(),
                get("repo").unwrap_or_default()
            );
            if let Some(r) = get("ref").or_else(|| get("rev")) {
                s.push('/');
                s.push_str(&r);
            }
            s
        }
        "indirect" => {
            let mut s = format!("flake:{}", get("id").unwrap_or_default());
            for k in ["ref", "rev"] {
                if let Some(r) = get(k) {
                    s.push('/');
                    s.push_str(&r);
                }
            }
            s
        }
        "path" => format!("path:{}", get("path").unwrap_or_default()),
        other => {
            let url = get("url").unwrap_or_default();
            if url.starts_with(&format!("{other}+")) || other == "tarball" || other == "file" {
                url
            } else {
                format!("{other}+{url}")
            }
        }
    };
    let skip = ["type", "owner", "repo", "ref", "rev", "id", "path", "url"];
    let params: Vec<String> = fields
        .iter()
        .filter(|(k, _)| {
            !skip.contains(&k.as_str())
                || (matches!(ty.as_str(), "git" | "path") && (k == "ref" || k == "rev"))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !params.is_empty() {
        base.push('?');
        base.push_str(&params.join("&"));
    }
    Ok(Value::string(base))
}

pub(super) fn prim_parse_flake_ref(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let s = ev.force_string(&a[0], span)?;
    let (main, query) = match s.s.split_once('?') {
        Some((m, q)) => (m.to_string(), q.to_string()),
        None => (s.s.to_string(), String::new()),
    };
    let mut out = Attrs::new();
    let mut put = |k: &str, v: Value| {
        out.insert(Symbol::new(k), plain_entry(v));
    };
    if let Some(rest) = main.strip_prefix("github:").or_else(|| main.strip_prefix("gitlab:")) {
        let ty = if main.starts_with("github:") { "github" } else { "gitlab" };
        let parts: Vec<&str> = rest.split('/').collect();
        put("type", Value::string(ty));
        put("owner", Value::string(parts.first().copied().unwrap_or("")));
        put("repo", Value::string(parts.get(1).copied().unwrap_or("")));
        if let Some(r) = parts.get(2) {
            let is_rev = r.len() == 40 && r.bytes().all(|c| c.is_ascii_hexdigit());
            put(if is_rev { "rev" } else { "ref" }, Value::string(*r));
        }
    } else if let Some(rest) = main.strip_prefix("path:") {
        put("type", Value::string("path"));
        put("path", Value::string(rest));
    } else if let Some((scheme, url)) = main.split_once('+') {
        put("type", Value::string(scheme));
        put("url", Value::string(url));
    } else if main.starts_with('/') {
        put("type", Value::string("path"));
        put("path", Value::string(main.clone()));
    } else {
        let id = main.strip_prefix("flake:").unwrap_or(&main);
        let parts: Vec<&str> = id.split('/').collect();
        put("type", Value::string("indirect"));
        put("id", Value::string(parts[0]));
        if let Some(r) = parts.get(1) {
            put("ref", Value::string(*r));
        }
    }
    for kv in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = match v.parse::<i64>() {
            Ok(i) if k == "revCount" || k == "lastModified" => Value::Int(i),
            _ => Value::string(v),
        };
        put(k, v);
    }
    Ok(Value::Attrs(Rc::new(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_like_cppnix() {
        let cases = [
            ("1.0", "2.3", -1),
            ("2.1", "2.3", -1),
            ("2.3", "2.3", 0),
            ("2.5", "2.3", 1),
            ("3.1", "2.3", 1),
            ("2.3.1", "2.3", 1),
            ("2.3.1", "2.3a", 1),
            ("2.3pre1", "2.3", -1),
            ("2.3", "2.3pre1", 1),
            ("2.3pre3", "2.3pre12", -1),
            ("2.3a", "2.3c", -1),
        ];
        for (a, b, r) in cases {
            assert_eq!(compare_versions(a, b), r, "{a} vs {b}");
        }
    }
}
