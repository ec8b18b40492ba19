//! Printing values: the text `nix-instantiate --eval` prints, float formatting as CppNix does
//! it, and short descriptions of values for error messages.

use std::collections::HashSet;
use std::fmt::Write;
use std::rc::Rc;

use crate::value::{Thunk, Value};

/// Formats a float as C++'s default stream output does (`%g` with 6 significant digits).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = 6i32;
    let sci = format!("{:.*e}", (p - 1) as usize, f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    if x < -4 || x >= p {
        let mant = strip_zeros(mant);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", x.abs())
    } else {
        let decimals = (p - 1 - x).max(0) as usize;
        strip_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

/// Escapes a string as a Nix string literal, with quotes.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` can be printed as an attribute name without quotes.
pub fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-')
        && !matches!(
            s,
            "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit" | "or"
        )
}

/// Prints a value the way `nix-instantiate --eval` does. Thunks that were not evaluated are
/// printed as `<CODE>`; shared non-empty sets and lists seen before as `«repeated»`.
pub fn print_value(v: &Value) -> String {
    let mut out = String::new();
    let mut seen = HashSet::new();
    print_inner(v, None, &mut out, &mut seen, 0);
    out
}

fn print_inner(
    v: &Value,
    holder: Option<&Thunk>,
    out: &mut String,
    seen: &mut HashSet<usize>,
    depth: usize,
) {
    // Printing recurses; deeper values than evaluation allows are cut off, not crashed on.
    if depth > crate::eval::MAX_VALUE_DEPTH || crate::eval::stack_exhausted() {
        out.push_str("«too deep»");
        return;
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::String(s) => out.push_str(&quote_string(&s.s)),
        Value::Path(p) => out.push_str(p),
        Value::Attrs(a) => {
            if !a.is_empty() && !seen.insert(Rc::as_ptr(a) as *const u8 as usize) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("{ ");
            for (k, e) in a.iter() {
                if is_plain_ident(k.as_str()) {
                    out.push_str(k.as_str());
                } else {
                    out.push_str(&quote_string(k.as_str()));
                }
                out.push_str(" = ");
                print_thunk(&e.value, out, seen, depth + 1);
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            // Lists of up to two elements live inside their value in CppNix, so their
            // identity is that of the value holding them.
            let key = if l.len() <= 2 {
                holder.map(|t| t.ptr()).unwrap_or(0)
            } else {
                Rc::as_ptr(l) as *const u8 as usize
            };
            if !l.is_empty() && key != 0 && !seen.insert(key) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("[ ");
            for t in l.iter() {
                print_thunk(t, out, seen, depth + 1);
                out.push(' ');
            }
            out.push(']');
        }
        Value::Lambda(_) => out.push_str("<LAMBDA>"),
        Value::PrimOp(_) => out.push_str("<PRIMOP>"),
        Value::PrimOpApp(_) => out.push_str("<PRIMOP-APP>"),
    }
}

fn print_thunk(t: &Thunk, out: &mut String, seen: &mut HashSet<usize>, depth: usize) {
    match t.get() {
        Some(v) => print_inner(&v, Some(t), out, seen, depth),
        None => out.push_str("<CODE>"),
    }
}

/// A short description of a value for error messages, like CppNix's `ValuePrinter` with
/// small limits.
pub fn short(v: &Value) -> String {
    let mut out = String::new();
    short_inner(v, &mut out, 0);
    out
}

fn short_inner(v: &Value, out: &mut String, depth: usize) {
    match v {
        Value::Attrs(a) => {
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            if depth > 0 {
                out.push_str("{ ... }");
                return;
            }
            out.push_str("{ ");
            for (i, (k, e)) in a.iter().enumerate() {
                if i >= 10 {
                    let _ = write!(out, "«{} attributes elided» ", a.len() - 10);
                    break;
                }
                let _ = write!(out, "{k} = ");
                match e.value.get() {
                    Some(v) => short_inner(&v, out, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            if depth > 0 {
                out.push_str("[ ... ]");
                return;
            }
            out.push_str("[ ");
            for (i, t) in l.iter().enumerate() {
                if i >= 10 {
                    let _ = write!(out, "«{} items elided» ", l.len() - 10);
                    break;
                }
                match t.get() {
                    Some(v) => short_inner(&v, out, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push(' ');
            }
            out.push(']');
        }
        Value::Lambda(_) => out.push_str("«lambda»"),
        Value::PrimOp(p) => {
            let _ = write!(out, "«primop {}»", p.name);
        }
        Value::PrimOpApp(p) => {
            let _ = write!(out, "«partially applied primop {}»", p.op.name);
        }
        other => print_inner(other, None, out, &mut HashSet::new(), 0),
    }
}

/// Prints a value for `builtins.trace`: like [`short`] but without limits.
pub fn trace_value(v: &Value) -> String {
    let mut out = String::new();
    trace_inner(v, &mut out, 0);
    out
}

fn trace_inner(v: &Value, out: &mut String, depth: usize) {
    if depth > crate::eval::MAX_VALUE_DEPTH || crate::eval::stack_exhausted() {
        out.push_str("«too deep»");
        return;
    }
    match v {
        Value::Attrs(a) => {
            out.push_str("{ ");
            for (k, e) in a.iter() {
                let _ = write!(out, "{k} = ");
                match e.value.get() {
                    Some(v) => trace_inner(&v, out, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push_str("; ");
            }
            out.push('}');
        }
        Value::List(l) => {
            out.push_str("[ ");
            for t in l.iter() {
                match t.get() {
                    Some(v) => trace_inner(&v, out, depth + 1),
                    None => out.push_str("«thunk»"),
                }
                out.push(' ');
            }
            out.push(']');
        }
        other => short_inner(other, out, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_cpp_streams() {
        let cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (3.4, "3.4"),
            (1e20, "1e+20"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
        ];
        for (f, s) in cases {
            assert_eq!(format_float(f), s, "{f}");
        }
    }
}
