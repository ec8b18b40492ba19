//! Builtins on attribute sets: names, values, selection, `listToAttrs`, `mapAttrs`,
//! `zipAttrsWith`, `groupBy`, `functionArgs` and friends; values stay lazy.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use super::plain_entry;
use crate::error::ErrorKind;
use crate::eval::{Evaluator, R, err};
use crate::lower::Param;
use crate::syntax::Span;
use crate::value::{AttrEntry, Attrs, Symbol, Thunk, Value};

pub(super) fn prim_attr_names(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let l = attrs.keys().map(|k| Thunk::value(Value::string(k.as_str()))).collect();
    Ok(Value::List(Rc::new(l)))
}

pub(super) fn prim_attr_values(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    Ok(Value::List(Rc::new(attrs.values().map(|e| e.value.clone()).collect())))
}

pub(super) fn prim_get_attr(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    match attrs.get(&Symbol::new(&name.s)) {
        Some(e) => ev.force(&e.value.clone()),
        None => err(ErrorKind::MissingAttr, format!("attribute `{}` missing", name.s), span),
    }
}

pub(super) fn prim_has_attr(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    Ok(Value::Bool(attrs.contains_key(&Symbol::new(&name.s))))
}

pub(super) fn prim_unsafe_get_attr_pos(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let attrs = ev.force_attrs(&a[1], span)?;
    match attrs.get(&Symbol::new(&name.s)).and_then(|e| e.pos) {
        Some(p) => Ok(ev.pos_attrs(p)),
        None => Ok(Value::Null),
    }
}

pub(super) fn prim_remove_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let attrs = ev.force_attrs(&a[0], span)?;
    let names = ev.force_list(&a[1], span)?;
    let mut gone = HashSet::with_capacity(names.len());
    for t in names.iter() {
        let n = ev.force_string(t, span)?;
        gone.insert(Symbol::new(&n.s));
    }
    let mut out = (*attrs).clone();
    out.retain(|k, _| !gone.contains(k));
    Ok(Value::Attrs(Rc::new(out)))
}

pub(super) fn prim_intersect_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let x = ev.force_attrs(&a[0], span)?;
    let y = ev.force_attrs(&a[1], span)?;
    // The values come from `y`; walking the smaller set keeps `callPackage` (a few formals
    // against a whole package set) from costing the size of the package set.
    let out: Attrs = if x.len() < y.len() {
        x.keys().filter_map(|k| y.get(k).map(|v| (*k, v.clone()))).collect()
    } else {
        y.iter().filter(|(k, _)| x.contains_key(k)).map(|(k, v)| (*k, v.clone())).collect()
    };
    Ok(Value::Attrs(Rc::new(out)))
}

pub(super) fn prim_list_to_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let list = ev.force_list(&a[0], span)?;
    let mut out = Vec::with_capacity(list.len());
    let mut seen = HashSet::with_capacity(list.len());
    let (kn, kv) = (Symbol::new("name"), Symbol::new("value"));
    for t in list.iter() {
        let item = ev.force_attrs(t, span)?;
        let Some(n) = item.get(&kn) else {
            return err(ErrorKind::MissingAttr, "attribute `name` missing", span);
        };
        let name = ev.force_string(&n.value.clone(), span)?;
        let sym = Symbol::new(&name.s);
        // The first occurrence of a name wins.
        if !seen.insert(sym) {
            continue;
        }
        let Some(v) = item.get(&kv) else {
            return err(ErrorKind::MissingAttr, "attribute `value` missing", span);
        };
        out.push((sym, AttrEntry { value: v.value.clone(), pos: v.pos }));
    }
    Ok(Value::Attrs(Rc::new(Attrs::from_unsorted(out))))
}

pub(super) fn prim_map_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let attrs = ev.force_attrs(&a[1], span)?;
    let out: Attrs = attrs
        .iter()
        .map(|(k, e)| {
            let t =
                Thunk::apply2(f.clone(), Thunk::value(Value::string(k.as_str())), e.value.clone());
            (*k, AttrEntry { value: t, pos: e.pos })
        })
        .collect();
    Ok(Value::Attrs(Rc::new(out)))
}

pub(super) fn prim_cat_attrs(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_zip_attrs_with(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let list = ev.force_list(&a[1], span)?;
    let mut groups: BTreeMap<Symbol, Vec<Thunk>> = BTreeMap::new();
    for t in list.iter() {
        let attrs = ev.force_attrs(t, span)?;
        for (k, e) in attrs.iter() {
            groups.entry(*k).or_default().push(e.value.clone());
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

pub(super) fn prim_function_args(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let v = ev.force(&a[0])?;
    match &v {
        Value::Lambda(c) => {
            let mut out = Attrs::new();
            if let Param::Formals { entries, .. } = &c.def.param {
                for (name, default, pos) in entries {
                    out.insert(
                        *name,
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

pub(super) fn prim_group_by(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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
