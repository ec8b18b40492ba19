//! Prints a lowered expression in the fully parenthesised form `nix-instantiate --parse` uses,
//! for `kiln parse`: every operator application in parentheses, attributes sorted with the
//! inherited ones first, and the operators CppNix desugars shown as the calls they become
//! (`a - b` is `(__sub a b)`, `a < b` is `(__lessThan a b)`).

use std::fmt::Write;

use crate::lower::{AttrsDef, BinOp, BindingKind, Expr, ExprKind, Key, Param, Part, Var};
use crate::print::{format_float, quote_string};
use crate::value::Value;

/// The text of an expression.
pub fn show(e: &Expr) -> String {
    let mut out = String::new();
    show_into(e, &mut out);
    out
}

fn show_into(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Lit(v) => match v {
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float(*f)),
            Value::String(s) => out.push_str(&quote_string(&s.s)),
            Value::Path(p) => out.push_str(p),
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            _ => out.push_str("«value»"),
        },
        ExprKind::Var(Var::Local { name, .. }) | ExprKind::Var(Var::With(name)) => {
            out.push_str(name.as_str())
        }
        ExprKind::Str(parts) | ExprKind::Path(parts) => {
            out.push('(');
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(" + ");
                }
                match p {
                    Part::Lit(s) if matches!(e.kind, ExprKind::Path(_)) && i == 0 => {
                        out.push_str(s)
                    }
                    Part::Lit(s) => out.push_str(&quote_string(s)),
                    Part::Expr(x) => show_into(x, out),
                }
            }
            out.push(')');
        }
        ExprKind::HomePath(rest) => {
            out.push('~');
            out.push_str(rest);
        }
        ExprKind::Select(target, keys, default) => {
            out.push('(');
            show_into(target, out);
            out.push_str(").");
            show_path(keys, out);
            if let Some(d) = default {
                out.push_str(" or (");
                show_into(d, out);
                out.push(')');
            }
        }
        ExprKind::HasAttr(target, keys) => {
            out.push_str("((");
            show_into(target, out);
            out.push_str(") ? ");
            show_path(keys, out);
            out.push(')');
        }
        ExprKind::Attrs(def) => {
            if def.rec {
                out.push_str("rec ");
            }
            out.push_str("{ ");
            show_bindings(def, out);
            out.push('}');
        }
        ExprKind::List(items) => {
            out.push_str("[ ");
            for i in items {
                out.push('(');
                show_into(i, out);
                out.push_str(") ");
            }
            out.push(']');
        }
        ExprKind::Lambda(def) => {
            out.push('(');
            match &def.param {
                Param::Ident(n) => out.push_str(n.as_str()),
                Param::Formals { entries, ellipsis, bind } => {
                    let mut sorted: Vec<_> = entries.iter().collect();
                    sorted.sort_by_key(|a| a.0);
                    out.push_str("{ ");
                    for (i, (name, default, _)) in sorted.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        out.push_str(name.as_str());
                        if let Some(d) = default {
                            out.push_str(" ? ");
                            show_into(d, out);
                        }
                    }
                    if *ellipsis {
                        if !sorted.is_empty() {
                            out.push_str(", ");
                        }
                        out.push_str("...");
                    }
                    out.push_str(" }");
                    if let Some(b) = bind {
                        out.push_str(" @ ");
                        out.push_str(b.as_str());
                    }
                }
            }
            out.push_str(": ");
            show_into(&def.body, out);
            out.push(')');
        }
        ExprKind::Apply(..) => {
            // CppNix keeps `f a b` as one call with two arguments.
            let mut args = Vec::new();
            let mut f = e;
            while let ExprKind::Apply(g, x) = &f.kind {
                args.push(x);
                f = g;
            }
            out.push('(');
            show_into(f, out);
            for a in args.iter().rev() {
                out.push(' ');
                show_into(a, out);
            }
            out.push(')');
        }
        ExprKind::Let(def, body) => {
            out.push_str("(let ");
            show_bindings(def, out);
            out.push_str("in ");
            show_into(body, out);
            out.push(')');
        }
        ExprKind::With(ns, body) => {
            out.push_str("(with ");
            show_into(ns, out);
            out.push_str("; ");
            show_into(body, out);
            out.push(')');
        }
        ExprKind::If(c, t, f) => {
            out.push_str("(if ");
            show_into(c, out);
            out.push_str(" then ");
            show_into(t, out);
            out.push_str(" else ");
            show_into(f, out);
            out.push(')');
        }
        ExprKind::Assert(c, body) => {
            out.push_str("assert ");
            show_into(c, out);
            out.push_str("; ");
            show_into(body, out);
        }
        ExprKind::Not(x) => {
            out.push_str("(! ");
            show_into(x, out);
            out.push(')');
        }
        ExprKind::Neg(x) => {
            out.push_str("(__sub 0 ");
            show_into(x, out);
            out.push(')');
        }
        ExprKind::Bin(op, l, r) => show_bin(*op, l, r, out),
        ExprKind::CurPos => out.push_str("__curPos"),
        ExprKind::Error(_) => out.push_str("«error»"),
    }
}

fn show_bin(op: BinOp, l: &Expr, r: &Expr, out: &mut String) {
    let call = |name: &str, a: &Expr, b: &Expr, out: &mut String| {
        let _ = write!(out, "({name} ");
        show_into(a, out);
        out.push(' ');
        show_into(b, out);
        out.push(')');
    };
    let infix = |sym: &str, out: &mut String| {
        out.push('(');
        show_into(l, out);
        let _ = write!(out, " {sym} ");
        show_into(r, out);
        out.push(')');
    };
    match op {
        BinOp::Sub => call("__sub", l, r, out),
        BinOp::Mul => call("__mul", l, r, out),
        BinOp::Div => call("__div", l, r, out),
        BinOp::Lt => call("__lessThan", l, r, out),
        BinOp::Gt => call("__lessThan", r, l, out),
        BinOp::Le => {
            out.push_str("(! ");
            call("__lessThan", r, l, out);
            out.push(')');
        }
        BinOp::Ge => {
            out.push_str("(! ");
            call("__lessThan", l, r, out);
            out.push(')');
        }
        BinOp::Add => infix("+", out),
        BinOp::Concat => infix("++", out),
        BinOp::Update => infix("//", out),
        BinOp::And => infix("&&", out),
        BinOp::Or => infix("||", out),
        BinOp::Impl => infix("->", out),
        BinOp::Eq => infix("==", out),
        BinOp::Neq => infix("!=", out),
    }
}

fn show_path(keys: &[Key], out: &mut String) {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match k {
            Key::Static(s, _) => out.push_str(s.as_str()),
            Key::Dynamic(e) => {
                out.push_str("\"${");
                show_into(e, out);
                out.push_str("}\"");
            }
        }
    }
}

fn show_bindings(def: &AttrsDef, out: &mut String) {
    let mut sorted: Vec<_> = def.bindings.iter().collect();
    sorted.sort_by_key(|a| a.name);
    let inherits: Vec<_> = sorted.iter().filter(|b| b.kind == BindingKind::Inherit).collect();
    if !inherits.is_empty() {
        out.push_str("inherit");
        for b in inherits {
            out.push(' ');
            out.push_str(b.name.as_str());
        }
        out.push_str("; ");
    }
    for (i, source) in def.sources.iter().enumerate() {
        let names: Vec<_> =
            sorted.iter().filter(|b| b.kind == BindingKind::InheritFrom(i)).collect();
        if names.is_empty() {
            continue;
        }
        out.push_str("inherit (");
        show_into(source, out);
        out.push(')');
        for b in names {
            out.push(' ');
            out.push_str(b.name.as_str());
        }
        out.push_str("; ");
    }
    for b in sorted.iter().filter(|b| b.kind == BindingKind::Plain) {
        out.push_str(b.name.as_str());
        out.push_str(" = ");
        show_into(&b.value, out);
        out.push_str("; ");
    }
    for (k, v, _) in &def.dynamic {
        out.push_str("\"${");
        show_into(k, out);
        out.push_str("}\" = ");
        show_into(v, out);
        out.push_str("; ");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{EvalOptions, Evaluator, PlainIo};

    /// Lowers `text` and shows it, or gives the first error's code and message.
    fn lowered(text: &str) -> String {
        let mut ev = Evaluator::new(Box::new(PlainIo::default()), EvalOptions::default());
        match ev.load("«test»".into(), None, text.into(), Path::new("/dir")) {
            Ok(e) => super::show(&e),
            Err(ds) => format!("{}: {}", ds[0].code, ds[0].message),
        }
    }

    #[test]
    fn lowering_cases() {
        let cases = [
            ("{ a.b = 1; a.c = 2; }", "{ a = { b = 1; c = 2; }; }"),
            ("{ a = { b = 1; }; a.c = 2; }", "{ a = { b = 1; c = 2; }; }"),
            ("rec { a = 1; b = a; }", "rec { a = 1; b = a; }"),
            ("let x = 1; in with { }; x", "(let x = 1; in (with { }; x))"),
            ("with { }; y", "(with { }; y)"),
            ("{ a = 1; a = 2; }", "E007: attribute `a` already defined at «test»:1:3"),
            ("{ a.b = 1; a = 2; }", "E007: attribute `a` already defined at «test»:1:3"),
            ("{ inherit a; }", "E002: undefined variable `a`"),
            ("let ${\"a\"} = 1; in a", "(let a = 1; in a)"),
            ("let ${x} = 1; in 2", "E006: dynamic attributes not allowed in let"),
            ("./a/../b", "/dir/b"),
            ("a: b: a - b", "(a: (b: (__sub a b)))"),
            ("x: x.y.z or 1", "(x: (x).y.z or (1))"),
            ("f: f 1 2 3", "(f: (f 1 2 3))"),
            ("<p>", "(__findFile __nixPath \"p\")"),
            ("-1", "(__sub 0 1)"),
            ("x: -x", "(x: (__sub 0 x))"),
        ];
        for (input, expected) in cases {
            assert_eq!(lowered(input), expected, "{input}");
        }
    }
}
