//! Builtins on lists: access, `map`/`filter`/folds (lazy where CppNix is), a stable `sort`
//! with a Nix comparator, and `genericClosure`.

use std::rc::Rc;

use super::plain_entry;
use crate::error::ErrorKind;
use crate::eval::{Evaluator, R, err};
use crate::syntax::Span;
use crate::value::{Attrs, Symbol, Thunk, Value};

pub(super) fn prim_length(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    Ok(Value::Int(ev.force_list(&a[0], span)?.len() as i64))
}

pub(super) fn prim_head(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    match l.first() {
        Some(t) => ev.force(&t.clone()),
        None => err(ErrorKind::Invalid, "`head` called on an empty list", span),
    }
}

pub(super) fn prim_tail(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    if l.is_empty() {
        return err(ErrorKind::Invalid, "`tail` called on an empty list", span);
    }
    Ok(Value::List(Rc::new(l[1..].to_vec())))
}

pub(super) fn prim_elem_at(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_elem(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_map(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[1], span)?;
    Ok(Value::List(Rc::new(l.iter().map(|t| Thunk::apply(f.clone(), t.clone())).collect())))
}

pub(super) fn prim_filter(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_partition(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_all(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_any(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_concat_lists(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let l = ev.force_list(&a[0], span)?;
    let mut lists = Vec::with_capacity(l.len());
    for t in l.iter() {
        lists.push(ev.force_list(t, span)?);
    }
    let total: usize = lists.iter().map(|l| l.len()).sum();
    ev.check_memory(total * std::mem::size_of::<Thunk>(), span)?;
    let mut out = Vec::with_capacity(total);
    for l in &lists {
        out.extend(l.iter().cloned());
    }
    Ok(Value::List(Rc::new(out)))
}

pub(super) fn prim_concat_map(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_foldl(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let l = ev.force_list(&a[2], span)?;
    let mut acc = a[1].clone();
    for t in l.iter() {
        let v = ev.call2(&f, acc, t.clone(), span)?;
        acc = Thunk::value(v);
    }
    ev.force(&acc)
}

pub(super) fn prim_gen_list(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let f = ev.force(&a[0])?;
    let n = ev.force_int(&a[1], span)?;
    if n < 0 {
        return err(ErrorKind::Invalid, format!("cannot create list of size {n}"), span);
    }
    // Each element is a slot, a thunk applying `f` and the thunk of its index.
    let per_item = std::mem::size_of::<Thunk>() + 160;
    ev.check_memory((n as usize).saturating_mul(per_item), span)?;
    let out = (0..n).map(|i| Thunk::apply(f.clone(), Thunk::value(Value::Int(i)))).collect();
    Ok(Value::List(Rc::new(out)))
}

pub(super) fn prim_sort(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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

pub(super) fn prim_generic_closure(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
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
