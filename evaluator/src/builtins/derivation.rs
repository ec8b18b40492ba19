//! `derivation` and `derivationStrict`: checking a derivation's attributes, turning them into
//! a `DerivationRequest` (environment, arguments, inputs from string contexts, fixed output)
//! and asking `EvalIo::write_derivation` for its paths.

use std::rc::Rc;

use super::hashing;
use super::plain_entry;
use crate::error::ErrorKind;
use crate::error::{Diagnostic, Frame};
use crate::eval::{Evaluator, R, err};
use crate::syntax::Span;
use crate::value::{Attrs, Symbol, Thunk, Value};
use crate::value::{Context, ContextElem, NixString};

/// The Nix source of `derivation`, written for kiln: it calls `derivationStrict` and builds
/// one attribute set per output.
pub(super) const DERIVATION_NIX: &str = r#"
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

pub(super) fn prim_derivation_strict(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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
