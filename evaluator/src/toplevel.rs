//! What a front end needs around evaluation: calling a function at the top with `--arg`s,
//! selecting `-A` attribute paths, and printing results strictly, as JSON or as XML.

use std::rc::Rc;

use crate::error::{Diagnostic, ErrorKind};
use crate::eval::{Evaluator, R, err};
use crate::lower::{Lints, Param};
use crate::value::{Attrs, Context, Symbol, Thunk, Value};

impl Evaluator {
    /// Sets the lints applied to files loaded from now on.
    pub fn set_lints(&mut self, lints: Lints) {
        self.lints = lints;
    }

    /// Takes the warnings reported so far (lints).
    pub fn take_warnings(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.warnings)
    }

    /// Calls a function with formals with the arguments it asks for from `args`, as
    /// `nix-instantiate` does with `--arg`; other values are returned as they are.
    pub fn auto_call(&mut self, v: Value, args: &Rc<Attrs>) -> R<Value> {
        self.auto_call_inner(v, args).map_err(|d| self.without_dummy_spans(d))
    }

    fn auto_call_inner(&mut self, v: Value, args: &Rc<Attrs>) -> R<Value> {
        let v = match v {
            Value::Attrs(a) if a.contains_key(&Symbol::new("__functor")) => {
                let f = a.get(&Symbol::new("__functor")).expect("checked above").value.clone();
                let fv = self.force(&f)?;
                let inner =
                    self.call(&fv, Thunk::value(Value::Attrs(a.clone())), self.dummy_span())?;
                return self.auto_call_inner(inner, args);
            }
            v => v,
        };
        let Value::Lambda(c) = &v else { return Ok(v) };
        let Param::Formals { entries, ellipsis, .. } = &c.def.param else { return Ok(v) };
        let mut actual = Attrs::new();
        if *ellipsis {
            actual = (**args).clone();
        } else {
            for (name, default, _) in entries {
                match args.get(name) {
                    Some(e) => {
                        actual.insert(*name, e.clone());
                    }
                    None if default.is_some() => {}
                    None => {
                        return err(
                            ErrorKind::Call,
                            format!(
                                "cannot evaluate a function that has an argument without a value (`{name}`)"
                            ),
                            c.def.span,
                        );
                    }
                }
            }
        }
        let span = c.def.span;
        self.call(&v, Thunk::value(Value::Attrs(Rc::new(actual))), span)
    }

    /// Follows an attribute path (`a.b.0.c`; numbers index lists), auto-calling functions
    /// on the way, as `nix-instantiate -A` does.
    pub fn select_attr_path(&mut self, root: &Value, path: &str, args: &Rc<Attrs>) -> R<Value> {
        self.select_inner(root, path, args).map_err(|d| self.without_dummy_spans(d))
    }

    fn select_inner(&mut self, root: &Value, path: &str, args: &Rc<Attrs>) -> R<Value> {
        let mut v = self.auto_call(root.clone(), args)?;
        for part in split_attr_path(path) {
            let part = part.as_str();
            v = match &v {
                Value::Attrs(a) => match a.get(&Symbol::new(part)) {
                    Some(e) => self.force(&e.value.clone())?,
                    None => {
                        return Err(Box::new(Diagnostic::new(
                            ErrorKind::MissingAttr,
                            format!("attribute `{part}` in selection path `{path}` not found"),
                            None,
                        )));
                    }
                },
                Value::List(l) => match part.parse::<usize>() {
                    Ok(i) if i < l.len() => self.force(&l[i].clone())?,
                    _ => {
                        return Err(Box::new(Diagnostic::new(
                            ErrorKind::MissingAttr,
                            format!("invalid list index `{part}` in selection path `{path}`"),
                            None,
                        )));
                    }
                },
                other => {
                    return Err(Box::new(Diagnostic::new(
                        ErrorKind::Type,
                        format!(
                            "the expression selected by the selection path `{path}` should be a set but is {}",
                            other.type_desc()
                        ),
                        None,
                    )));
                }
            };
            v = self.auto_call(v, args)?;
        }
        Ok(v)
    }

    /// Forces `v` completely and prints it as `nix-instantiate --eval --strict` does.
    pub fn print_strict(&mut self, v: &Value) -> R<String> {
        let span = self.dummy_span();
        self.deep_force(v, span).map_err(|d| self.without_dummy_spans(d))?;
        Ok(crate::print::print_value(v))
    }

    /// Renders `v` as JSON (`--json`).
    pub fn value_to_json(&mut self, v: &Value) -> R<String> {
        let span = self.dummy_span();
        let mut ctx = Context::new();
        let mut out = String::new();
        self.to_json(v, span, &mut ctx, true, &mut out).map_err(|d| self.without_dummy_spans(d))?;
        Ok(out)
    }

    /// Renders `v` as XML (`--xml`; `--no-location` leaves out where attributes and functions
    /// are defined; without `strict`, values not yet evaluated print as `<unevaluated />`).
    pub fn value_to_xml(&mut self, v: &Value, locations: bool, strict: bool) -> R<String> {
        let span = self.dummy_span();
        let mut ctx = Context::new();
        self.to_xml_with(v, span, &mut ctx, locations, strict)
            .map_err(|d| self.without_dummy_spans(d))
    }
}

impl Evaluator {
    /// Parses `text` and evaluates it with the attributes of `scope` as variables (statically
    /// bound, shadowing builtins), as the REPL does. Relative paths resolve against `base_dir`.
    pub fn eval_in_scope(
        &mut self,
        name: &str,
        text: &str,
        base_dir: &std::path::Path,
        scope: &Rc<Attrs>,
    ) -> Result<Value, Vec<Diagnostic>> {
        let names: std::collections::HashMap<Symbol, u32> =
            scope.keys().enumerate().map(|(i, k)| (*k, i as u32)).collect();
        let expr = self.load_scoped(name.into(), None, text.into(), base_dir, Some(names))?;
        let with_frame = Rc::new(crate::value::Env {
            slots: std::cell::RefCell::new(crate::value::Slots::new()),
            parent: Some(self.base_env.clone()),
            with: Some(Thunk::value(Value::Attrs(scope.clone()))),
        });
        let slots: Vec<Thunk> = scope.values().map(|e| e.value.clone()).collect();
        let env = crate::value::Env::new(slots, Some(with_frame));
        self.eval(&expr, &env).map_err(|d| vec![*self.without_dummy_spans(d)])
    }

    /// The names bound at the top level (builtins and constants), for completion.
    pub fn global_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.base_names.keys().map(|s| s.to_string()).collect();
        names.sort();
        names
    }
}

/// Splits an attribute path at dots outside double quotes: `a."b.c".d` is `a`, `b.c`, `d`.
fn split_attr_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in path.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn attribute_paths_split_outside_quotes() {
        assert_eq!(super::split_attr_path("a.\"b.c\".d"), ["a", "b.c", "d"]);
        assert_eq!(super::split_attr_path(""), Vec::<String>::new());
        assert_eq!(super::split_attr_path("xs.0"), ["xs", "0"]);
    }
}
