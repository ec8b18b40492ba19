//! Lowering: turns the `rnix` syntax tree into kiln's own expression tree ([`Expr`]).
//!
//! Variables are resolved here, once: a name bound by `let`, `rec`, a function or the base
//! environment becomes a (depth, slot) pair; a name bound by none of them but inside `with`
//! becomes a dynamic lookup. Attribute sets are merged with CppNix's rules (`a.b = 1; a.c = 2;`
//! and `a = { ... }; a.c = ...;`), and what `rnix` accepts but CppNix rejects (duplicate
//! attributes, undefined variables, dynamic attributes in `let`, ...) is reported. Lowering
//! keeps going after an error and returns all of them; the erroneous parts become
//! `ExprKind::Error` nodes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;

use crate::syntax::{FileId, Span};
use crate::value::{Symbol, Value};

/// Identifies a lowered expression; its span is in the session's side table
/// (`Evaluator::span_of`), so the tree itself stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub u32);

/// A lowered expression.
pub struct Expr {
    pub(crate) id: NodeId,
    pub(crate) kind: ExprKind,
}

/// How a variable is found at run time.
#[derive(Clone, Debug)]
pub(crate) enum Var {
    /// `depth` frames up, slot `idx`; `name` is kept for printing.
    Local { depth: u32, idx: u32, name: Symbol },
    /// Looked up in the enclosing `with` namespaces, innermost first.
    With(Symbol),
}

/// One part of an interpolated string or path.
pub(crate) enum Part {
    Lit(Rc<str>),
    Expr(Rc<Expr>),
}

/// An attribute name in a selection or `?` test.
pub(crate) enum Key {
    Static(Symbol, Span),
    Dynamic(Rc<Expr>),
}

/// Binary operators that are evaluated directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
    Update,
    And,
    Or,
    Impl,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// How an attribute was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindingKind {
    /// `name = value;`
    Plain,
    /// `inherit name;`
    Inherit,
    /// `inherit (sources[i]) name;`
    InheritFrom(usize),
}

/// An attribute of a set or a `let` binding.
pub(crate) struct Binding {
    pub(crate) name: Symbol,
    pub(crate) kind: BindingKind,
    pub(crate) value: Rc<Expr>,
    /// Evaluated in the environment around the set (`inherit x;` in `rec`/`let`).
    pub(crate) outer: bool,
    pub(crate) span: Span,
}

/// An attribute set, `rec` set or `let` definition.
pub(crate) struct AttrsDef {
    pub(crate) rec: bool,
    /// Whether evaluation makes an environment frame: `rec`/`let` (slots are the bindings,
    /// then the `inherit (e)` sources), or a plain set with `inherit (e)` (slots are sources).
    pub(crate) frame: bool,
    pub(crate) bindings: Vec<Binding>,
    pub(crate) dynamic: Vec<(Rc<Expr>, Rc<Expr>, Span)>,
    /// `inherit (e)` source expressions, evaluated once per set.
    pub(crate) sources: Vec<Rc<Expr>>,
}

/// The parameter of a function.
pub(crate) enum Param {
    Ident(Symbol),
    Formals { entries: Vec<(Symbol, Option<Rc<Expr>>, Span)>, ellipsis: bool, bind: Option<Symbol> },
}

/// A function literal.
pub struct LambdaDef {
    pub(crate) name: std::cell::RefCell<Option<Symbol>>,
    pub(crate) param: Param,
    pub(crate) body: Rc<Expr>,
    pub(crate) span: Span,
}

/// What an expression is.
pub(crate) enum ExprKind {
    Lit(Value),
    Var(Var),
    Str(Vec<Part>),
    /// An interpolated path; parts are concatenated and the result normalised.
    Path(Vec<Part>),
    /// `~/...`: resolved against `$HOME` when evaluated.
    HomePath(Rc<str>),
    Select(Rc<Expr>, Vec<Key>, Option<Rc<Expr>>),
    HasAttr(Rc<Expr>, Vec<Key>),
    Attrs(Rc<AttrsDef>),
    List(Vec<Rc<Expr>>),
    Lambda(Rc<LambdaDef>),
    Apply(Rc<Expr>, Rc<Expr>),
    Let(Rc<AttrsDef>, Rc<Expr>),
    With(Rc<Expr>, Rc<Expr>),
    If(Rc<Expr>, Rc<Expr>, Rc<Expr>),
    Assert(Rc<Expr>, Rc<Expr>),
    Not(Rc<Expr>),
    Neg(Rc<Expr>),
    Bin(BinOp, Rc<Expr>, Rc<Expr>),
    CurPos,
    /// A part that failed to lower; evaluating it reports the message.
    Error(Rc<str>),
}

/// An error found while lowering.
#[derive(Clone, Debug)]
pub struct LowerError {
    /// Stable error code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// Another place that explains the error (the first definition of a duplicate).
    pub label: Option<(Span, String)>,
}

enum Scope {
    Static(HashMap<Symbol, u32>),
    With,
}

/// How a lint reports what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LintLevel {
    /// Say nothing.
    #[default]
    Ignore,
    /// Report a warning.
    Warn,
    /// Report an error.
    Fatal,
}

/// The lints of path and URL literals (CppNix's `lint-*` settings).
#[derive(Clone, Copy, Debug, Default)]
pub struct Lints {
    /// Absolute (`/x`) and home (`~/x`) path literals.
    pub absolute: LintLevel,
    /// Relative path literals without `./` (`a/b`).
    pub short: LintLevel,
    /// Unquoted URL literals.
    pub url: LintLevel,
}

/// The input of lowering one file.
pub(crate) struct LowerCtx<'a> {
    pub(crate) file: FileId,
    /// The directory relative paths are resolved against.
    pub(crate) base_dir: &'a Path,
    /// Names of the base environment (builtins) and their slots.
    pub(crate) base: &'a HashMap<Symbol, u32>,
    /// Extra static scopes (names to slots), innermost last, for `scopedImport`.
    pub(crate) extra: Option<HashMap<Symbol, u32>>,
    /// Maps a byte offset to `file:line:col` for "already defined at" messages.
    pub(crate) describe: &'a dyn Fn(Span) -> String,
    /// Lints of literals.
    pub(crate) lints: Lints,
    /// The id of the first node this lowering creates (the session's span table length).
    pub(crate) first_id: u32,
}

struct Lowerer<'a> {
    ctx: &'a LowerCtx<'a>,
    scopes: Vec<Scope>,
    errors: Vec<LowerError>,
    warnings: Vec<LowerError>,
    /// Spans of the nodes created, indexed by `NodeId - first_id`.
    spans: Vec<Span>,
}

/// What lowering a file gives: the expression, the spans of its nodes (from
/// `LowerCtx::first_id` on), and every error and warning found.
pub(crate) struct Lowered {
    pub(crate) expr: Rc<Expr>,
    pub(crate) spans: Vec<Span>,
    pub(crate) errors: Vec<LowerError>,
    pub(crate) warnings: Vec<LowerError>,
}

/// Lowers a parsed file.
pub(crate) fn lower(ctx: &LowerCtx<'_>, root: &rnix::Root) -> Lowered {
    let mut l = Lowerer {
        ctx,
        scopes: vec![Scope::Static(ctx.base.clone())],
        errors: Vec::new(),
        warnings: Vec::new(),
        spans: Vec::new(),
    };
    if let Some(extra) = &ctx.extra {
        l.scopes.push(Scope::With);
        l.scopes.push(Scope::Static(extra.clone()));
    }
    let e = match root.expr() {
        Some(e) => l.expr(e),
        None => {
            l.error(span_of(ctx.file, root.syntax()), "E001", "syntax error, empty input".into())
        }
    };
    Lowered { expr: e, spans: l.spans, errors: l.errors, warnings: l.warnings }
}

fn span_of(file: FileId, node: &rnix::SyntaxNode) -> Span {
    Span::new(file, node.text_range())
}

/// Lexically normalises an absolute path: removes `.`, empty components and `..`.
pub fn canon_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.is_empty() { "/".to_string() } else { format!("/{}", out.join("/")) }
}

/// A pending attribute set while its entries are collected and merged.
struct PSet {
    rec: bool,
    entries: Vec<(Symbol, PVal, Span)>,
    index: HashMap<Symbol, usize>,
    dynamic: Vec<(ast::Attr, PVal, Span)>,
    sources: Vec<ast::Expr>,
}

enum PVal {
    Ast(ast::Expr),
    Nested(PSet),
    /// `inherit x;`
    InheritVar(Span),
    /// `inherit (sources[i]) x;`
    InheritFrom(usize, Span),
}

impl PSet {
    fn new(rec: bool) -> PSet {
        PSet {
            rec,
            entries: Vec::new(),
            index: HashMap::new(),
            dynamic: Vec::new(),
            sources: Vec::new(),
        }
    }
}

fn strip_parens(mut e: ast::Expr) -> ast::Expr {
    while let ast::Expr::Paren(p) = &e {
        match p.expr() {
            Some(inner) => e = inner,
            None => break,
        }
    }
    e
}

impl<'a> Lowerer<'a> {
    fn mk(&mut self, span: Span, kind: ExprKind) -> Rc<Expr> {
        let id = NodeId(self.ctx.first_id + self.spans.len() as u32);
        self.spans.push(span);
        Rc::new(Expr { id, kind })
    }

    fn span(&self, node: &rnix::SyntaxNode) -> Span {
        span_of(self.ctx.file, node)
    }

    fn lint(&mut self, level: LintLevel, span: Span, message: String) {
        match level {
            LintLevel::Ignore => {}
            LintLevel::Warn => {
                self.warnings.push(LowerError { code: "W001", message, span, label: None })
            }
            LintLevel::Fatal => {
                self.errors.push(LowerError { code: "E008", message, span, label: None })
            }
        }
    }

    fn error(&mut self, span: Span, code: &'static str, message: String) -> Rc<Expr> {
        self.errors.push(LowerError { code, message: message.clone(), span, label: None });
        self.mk(span, ExprKind::Error(message.into()))
    }

    fn opt_expr(&mut self, e: Option<ast::Expr>, parent: &rnix::SyntaxNode) -> Rc<Expr> {
        match e {
            Some(e) => self.expr(e),
            None => {
                let span = self.span(parent);
                self.error(span, "E001", "syntax error, missing expression".into())
            }
        }
    }

    fn resolve(&self, name: &Symbol) -> Option<Var> {
        let mut has_with = false;
        for (depth, scope) in self.scopes.iter().rev().enumerate() {
            match scope {
                Scope::Static(names) => {
                    if let Some(idx) = names.get(name) {
                        return Some(Var::Local { depth: depth as u32, idx: *idx, name: *name });
                    }
                }
                Scope::With => has_with = true,
            }
        }
        has_with.then_some(Var::With(*name))
    }

    fn var(&mut self, name: &str, span: Span) -> Rc<Expr> {
        let sym = Symbol::new(name);
        match self.resolve(&sym) {
            Some(v) => self.mk(span, ExprKind::Var(v)),
            None => self.error(span, "E002", format!("undefined variable `{name}`")),
        }
    }

    fn expr(&mut self, e: ast::Expr) -> Rc<Expr> {
        let node = e.syntax().clone();
        let span = self.span(&node);
        match e {
            ast::Expr::Paren(p) => self.opt_expr(p.expr(), &node),
            ast::Expr::Root(r) => self.opt_expr(r.expr(), &node),
            ast::Expr::Error(_) => self.error(span, "E001", "syntax error".into()),
            ast::Expr::Literal(lit) => self.literal(lit, span),
            ast::Expr::Ident(id) => {
                let name = id.to_string();
                self.var(&name, span)
            }
            ast::Expr::Str(s) => self.string(s, span),
            ast::Expr::PathAbs(p) => self.path(p.parts(), span),
            ast::Expr::PathRel(p) => self.path(p.parts(), span),
            ast::Expr::PathHome(p) => self.path(p.parts(), span),
            ast::Expr::PathSearch(p) => {
                let text = p.content().map(|c| c.text().to_string()).unwrap_or_default();
                let name = text.trim_start_matches('<').trim_end_matches('>').to_string();
                let find = self.var("__findFile", span);
                let nix_path = self.var("__nixPath", span);
                let lit = self.mk(span, ExprKind::Lit(Value::string(name)));
                let f = self.mk(span, ExprKind::Apply(find, nix_path));
                self.mk(span, ExprKind::Apply(f, lit))
            }
            ast::Expr::List(l) => {
                let items = l.items().map(|i| self.expr(i)).collect();
                self.mk(span, ExprKind::List(items))
            }
            ast::Expr::Apply(a) => {
                self.check_cursed_or(&a, span);
                let f = self.opt_expr(a.lambda(), &node);
                let x = self.opt_expr(a.argument(), &node);
                self.mk(span, ExprKind::Apply(f, x))
            }
            ast::Expr::Assert(a) => {
                let c = self.opt_expr(a.condition(), &node);
                let b = self.opt_expr(a.body(), &node);
                self.mk(span, ExprKind::Assert(c, b))
            }
            ast::Expr::IfElse(i) => {
                let c = self.opt_expr(i.condition(), &node);
                let t = self.opt_expr(i.body(), &node);
                let f = self.opt_expr(i.else_body(), &node);
                self.mk(span, ExprKind::If(c, t, f))
            }
            ast::Expr::Select(s) => {
                let target = self.opt_expr(s.expr(), &node);
                let keys = self.attrpath_keys(s.attrpath());
                let default = s.default_expr().map(|d| self.expr(d));
                self.mk(span, ExprKind::Select(target, keys, default))
            }
            ast::Expr::HasAttr(h) => {
                let target = self.opt_expr(h.expr(), &node);
                let keys = self.attrpath_keys(h.attrpath());
                self.mk(span, ExprKind::HasAttr(target, keys))
            }
            ast::Expr::UnaryOp(u) => {
                let inner = self.opt_expr(u.expr(), &node);
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => self.mk(span, ExprKind::Not(inner)),
                    _ => self.mk(span, ExprKind::Neg(inner)),
                }
            }
            ast::Expr::BinOp(b) => self.binop(b, span, &node),
            ast::Expr::With(w) => {
                let ns = self.opt_expr(w.namespace(), &node);
                self.scopes.push(Scope::With);
                let body = self.opt_expr(w.body(), &node);
                self.scopes.pop();
                self.mk(span, ExprKind::With(ns, body))
            }
            ast::Expr::Lambda(l) => self.lambda(l, span, &node),
            ast::Expr::AttrSet(set) => {
                let rec = set.rec_token().is_some();
                let mut p = PSet::new(rec);
                self.collect(&mut p, &set, false);
                let def = self.lower_pset(p);
                self.mk(span, ExprKind::Attrs(def))
            }
            ast::Expr::LetIn(l) => {
                let mut p = PSet::new(true);
                self.collect(&mut p, &l, true);
                let (def, body) = self.lower_let(p, |this| this.opt_expr(l.body(), &node));
                self.mk(span, ExprKind::Let(def, body))
            }
            ast::Expr::LegacyLet(l) => {
                let mut p = PSet::new(true);
                self.collect(&mut p, &l, false);
                let (def, body) = self.lower_let(p, |this| this.var("body", span));
                self.mk(span, ExprKind::Let(def, body))
            }
            ast::Expr::CurPos(_) => self.mk(span, ExprKind::CurPos),
        }
    }

    fn literal(&mut self, lit: ast::Literal, span: Span) -> Rc<Expr> {
        match lit.kind() {
            ast::LiteralKind::Integer(i) => match i.value() {
                Ok(v) => self.mk(span, ExprKind::Lit(Value::Int(v))),
                Err(_) => {
                    let text = i.syntax().text().to_string();
                    self.error(span, "E003", format!("invalid integer `{text}`"))
                }
            },
            ast::LiteralKind::Float(f) => {
                let text = f.syntax().text();
                let v = f.value().or_else(|_| format!("0{text}").parse()).unwrap_or(0.0);
                self.mk(span, ExprKind::Lit(Value::Float(v)))
            }
            ast::LiteralKind::Uri(u) => {
                let text = u.syntax().text().to_string();
                let msg = format!(
                    "URL literals are disallowed. Consider using a string literal \"{text}\" instead (lint-url-literals)"
                );
                self.lint(self.ctx.lints.url, span, msg);
                self.mk(span, ExprKind::Lit(Value::string(text)))
            }
        }
    }

    fn string(&mut self, s: ast::Str, span: Span) -> Rc<Expr> {
        let mut parts = Vec::new();
        for part in s.normalized_parts() {
            match part {
                InterpolPart::Literal(text) => {
                    if !text.is_empty() {
                        parts.push(Part::Lit(text.into()));
                    }
                }
                InterpolPart::Interpolation(i) => {
                    let node = i.syntax().clone();
                    let e = self.opt_expr(i.expr(), &node);
                    parts.push(Part::Expr(e));
                }
            }
        }
        match parts.as_slice() {
            [] => self.mk(span, ExprKind::Lit(Value::string(""))),
            [Part::Lit(s)] => self.mk(span, ExprKind::Lit(Value::string(s.clone()))),
            _ => self.mk(span, ExprKind::Str(parts)),
        }
    }

    fn path(&mut self, raw: Vec<InterpolPart<ast::PathContent>>, span: Span) -> Rc<Expr> {
        let mut parts = Vec::new();
        let mut home = false;
        for (i, part) in raw.into_iter().enumerate() {
            match part {
                InterpolPart::Literal(c) => {
                    let mut text = c.text().to_string();
                    if i == 0 {
                        self.lint_path(&text, span);
                        if c.is_home() || text.starts_with("~/") {
                            home = true;
                        } else if !text.starts_with('/') {
                            let joined: PathBuf = self.ctx.base_dir.join(&text);
                            let mut j = canon_path(&joined.to_string_lossy());
                            if text.ends_with('/') && !j.ends_with('/') {
                                j.push('/');
                            }
                            text = j;
                        }
                    }
                    parts.push(Part::Lit(text.into()));
                }
                InterpolPart::Interpolation(interp) => {
                    let node = interp.syntax().clone();
                    let e = self.opt_expr(interp.expr(), &node);
                    parts.push(Part::Expr(e));
                }
            }
        }
        if home && let [Part::Lit(s)] = parts.as_slice() {
            let rest = s.trim_start_matches('~').to_string();
            return self.mk(span, ExprKind::HomePath(rest.into()));
        }
        match parts.as_slice() {
            [Part::Lit(s)] => {
                let p = canon_path(s);
                self.mk(span, ExprKind::Lit(Value::Path(p.into())))
            }
            _ => self.mk(span, ExprKind::Path(parts)),
        }
    }

    /// Warns about `f or` where only a selection may stand (a list element, an argument, the
    /// default of `or`): CppNix reads `or` there as a variable but will change that.
    fn check_cursed_or(&mut self, a: &ast::Apply, span: Span) {
        let Some(ast::Expr::Ident(arg)) = a.argument() else { return };
        if arg.syntax().text() != "or" {
            return;
        }
        let node = a.syntax();
        let cursed = match node.parent() {
            Some(p) => match p.kind() {
                rnix::SyntaxKind::NODE_LIST => true,
                rnix::SyntaxKind::NODE_APPLY => p.first_child().as_ref() != Some(node),
                rnix::SyntaxKind::NODE_SELECT => p.first_child().as_ref() != Some(node),
                _ => false,
            },
            None => false,
        };
        if cursed {
            let message = format!(
                "this expression uses `or` as an identifier in a way that will change in a future Nix release; wrap it in parentheses to keep its meaning: ({})",
                node.text()
            );
            self.warnings.push(LowerError { code: "W003", message, span, label: None });
        }
    }

    fn lint_path(&mut self, text: &str, span: Span) {
        let lints = self.ctx.lints;
        if text.starts_with('/') {
            let msg = format!(
                "absolute path literals are not portable. Consider replacing path literal '{text}' by a string, relative path, or parameter (lint-absolute-path-literals)"
            );
            self.lint(lints.absolute, span, msg);
        } else if text.starts_with('~') {
            let msg = format!(
                "home path literals are not portable. Consider replacing path literal '{text}' by a string, relative path, or parameter (lint-absolute-path-literals)"
            );
            self.lint(lints.absolute, span, msg);
        } else if !text.starts_with("./") && !text.starts_with("../") && text != "." && text != ".."
        {
            let msg = format!(
                "relative path literal '{text}' should be prefixed with '.' for clarity: './{text}' (lint-short-path-literals)"
            );
            self.lint(lints.short, span, msg);
        }
    }

    fn binop(&mut self, b: ast::BinOp, span: Span, node: &rnix::SyntaxNode) -> Rc<Expr> {
        use ast::BinOpKind as K;
        let l = self.opt_expr(b.lhs(), node);
        let r = self.opt_expr(b.rhs(), node);
        let op = match b.operator() {
            Some(op) => op,
            None => return self.error(span, "E001", "syntax error, missing operator".into()),
        };
        let bin = match op {
            K::PipeRight => return self.mk(span, ExprKind::Apply(r, l)),
            K::PipeLeft => return self.mk(span, ExprKind::Apply(l, r)),
            K::Concat => BinOp::Concat,
            K::Update => BinOp::Update,
            K::Add => BinOp::Add,
            K::Sub => BinOp::Sub,
            K::Mul => BinOp::Mul,
            K::Div => BinOp::Div,
            K::And => BinOp::And,
            K::Equal => BinOp::Eq,
            K::Implication => BinOp::Impl,
            K::Less => BinOp::Lt,
            K::LessOrEq => BinOp::Le,
            K::More => BinOp::Gt,
            K::MoreOrEq => BinOp::Ge,
            K::NotEqual => BinOp::Neq,
            K::Or => BinOp::Or,
        };
        self.mk(span, ExprKind::Bin(bin, l, r))
    }

    fn lambda(&mut self, l: ast::Lambda, span: Span, node: &rnix::SyntaxNode) -> Rc<Expr> {
        let param = match l.param() {
            Some(ast::Param::IdentParam(p)) => {
                let name = p.ident().map(|i| i.to_string()).unwrap_or_default();
                Param::Ident(Symbol::new(&name))
            }
            Some(ast::Param::Pattern(p)) => {
                let mut seen: HashMap<Symbol, ()> = HashMap::new();
                let mut entries = Vec::new();
                let bind = p
                    .pat_bind()
                    .and_then(|b| b.ident())
                    .map(|i| (Symbol::new(&i.to_string()), self.span(i.syntax())));
                let mut pending_defaults = Vec::new();
                for entry in p.pat_entries() {
                    let Some(id) = entry.ident() else { continue };
                    let name = Symbol::new(&id.to_string());
                    let espan = self.span(id.syntax());
                    if seen.insert(name, ()).is_some() {
                        self.errors.push(LowerError {
                            code: "E004",
                            message: format!("duplicate formal function argument `{name}`"),
                            span: espan,
                            label: None,
                        });
                        continue;
                    }
                    pending_defaults.push(entry.default());
                    entries.push((name, None, espan));
                }
                if let Some((b, bspan)) = &bind
                    && seen.contains_key(b)
                {
                    self.errors.push(LowerError {
                        code: "E004",
                        message: format!("duplicate formal function argument `{b}`"),
                        span: *bspan,
                        label: None,
                    });
                }
                let mut names: HashMap<Symbol, u32> = HashMap::new();
                for (i, (n, _, _)) in entries.iter().enumerate() {
                    names.insert(*n, i as u32);
                }
                if let Some((b, _)) = &bind {
                    names.entry(*b).or_insert(entries.len() as u32);
                }
                self.scopes.push(Scope::Static(names));
                for (entry, default) in entries.iter_mut().zip(pending_defaults) {
                    entry.1 = default.map(|d| self.expr(d));
                }
                self.scopes.pop();
                Param::Formals {
                    entries,
                    ellipsis: p.ellipsis_token().is_some(),
                    bind: bind.map(|b| b.0),
                }
            }
            None => Param::Ident(Symbol::new("_")),
        };
        let names = match &param {
            Param::Ident(n) => HashMap::from([(*n, 0)]),
            Param::Formals { entries, bind, .. } => {
                let mut names: HashMap<Symbol, u32> = HashMap::new();
                for (i, (n, _, _)) in entries.iter().enumerate() {
                    names.insert(*n, i as u32);
                }
                if let Some(b) = bind {
                    names.entry(*b).or_insert(entries.len() as u32);
                }
                names
            }
        };
        self.scopes.push(Scope::Static(names));
        let body = self.opt_expr(l.body(), node);
        self.scopes.pop();
        let def = LambdaDef { name: std::cell::RefCell::new(None), param, body, span };
        self.mk(span, ExprKind::Lambda(Rc::new(def)))
    }

    /// A static attribute name, or `None` for a dynamic one.
    fn static_name(&self, attr: &ast::Attr) -> Option<String> {
        match attr {
            ast::Attr::Ident(i) => Some(i.to_string()),
            ast::Attr::Str(s) => str_literal(s),
            ast::Attr::Dynamic(d) => match d.expr() {
                Some(ast::Expr::Str(s)) => str_literal(&s),
                _ => None,
            },
        }
    }

    fn attrpath_keys(&mut self, path: Option<ast::Attrpath>) -> Vec<Key> {
        let Some(path) = path else { return Vec::new() };
        path.attrs().map(|a| self.key(&a)).collect()
    }

    fn key(&mut self, attr: &ast::Attr) -> Key {
        if let Some(name) = self.static_name(attr) {
            let span = self.span(attr.syntax());
            return Key::Static(Symbol::new(&name), span);
        }
        let node = attr.syntax().clone();
        let e = match attr {
            ast::Attr::Dynamic(d) => self.opt_expr(d.expr(), &node),
            ast::Attr::Str(s) => {
                let span = self.span(&node);
                self.string(s.clone(), span)
            }
            ast::Attr::Ident(_) => unreachable!("identifiers are static names"),
        };
        Key::Dynamic(e)
    }

    /// Collects the entries of a set or `let` into `p`, merging nested paths.
    fn collect(&mut self, p: &mut PSet, node: &impl HasEntry, is_let: bool) {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(inh) => {
                    let source = inh.from().and_then(|f| f.expr());
                    let src_idx = source.map(|s| {
                        p.sources.push(s);
                        p.sources.len() - 1
                    });
                    for attr in inh.attrs() {
                        let aspan = self.span(attr.syntax());
                        let Some(name) = self.static_name(&attr) else {
                            self.errors.push(LowerError {
                                code: "E005",
                                message: "dynamic attributes not allowed in inherit".into(),
                                span: aspan,
                                label: None,
                            });
                            continue;
                        };
                        let val = match src_idx {
                            Some(i) => PVal::InheritFrom(i, aspan),
                            None => PVal::InheritVar(aspan),
                        };
                        self.insert_static(p, Symbol::new(&name), val, aspan, &name);
                    }
                }
                ast::Entry::AttrpathValue(av) => {
                    let Some(path) = av.attrpath() else { continue };
                    let attrs: Vec<ast::Attr> = path.attrs().collect();
                    let Some(value) = av.value() else { continue };
                    if attrs.is_empty() {
                        continue;
                    }
                    if is_let && self.static_name(&attrs[0]).is_none() {
                        let span = self.span(attrs[0].syntax());
                        self.errors.push(LowerError {
                            code: "E006",
                            message: "dynamic attributes not allowed in let".into(),
                            span,
                            label: None,
                        });
                        continue;
                    }
                    self.add_path(p, &attrs, value, String::new());
                }
            }
        }
    }

    fn already(&mut self, full: &str, span: Span, prev: Span) {
        let at = (self.ctx.describe)(prev);
        self.errors.push(LowerError {
            code: "E007",
            message: format!("attribute `{full}` already defined at {at}"),
            span,
            label: Some((prev, "first defined here".into())),
        });
    }

    fn insert_static(&mut self, p: &mut PSet, name: Symbol, val: PVal, span: Span, full: &str) {
        if let Some(&i) = p.index.get(&name) {
            let prev = p.entries[i].2;
            self.already(full, span, prev);
            return;
        }
        p.index.insert(name, p.entries.len());
        p.entries.push((name, val, span));
    }

    fn add_path(&mut self, p: &mut PSet, attrs: &[ast::Attr], value: ast::Expr, prefix: String) {
        let first = &attrs[0];
        let span = self.span(first.syntax());
        let name = self.static_name(first);
        let full = match &name {
            Some(n) if prefix.is_empty() => n.clone(),
            Some(n) => format!("{prefix}.{n}"),
            None if prefix.is_empty() => "\"${...}\"".to_string(),
            None => format!("{prefix}.\"${{...}}\""),
        };
        if attrs.len() > 1 {
            match name {
                Some(n) => {
                    let sym = Symbol::new(&n);
                    if let Some(&i) = p.index.get(&sym) {
                        match &mut p.entries[i].1 {
                            PVal::Nested(inner) => {
                                // Safety of the borrow: `inner` lives in `p.entries`.
                                let mut taken = std::mem::replace(inner, PSet::new(false));
                                self.add_path(&mut taken, &attrs[1..], value, full);
                                p.entries[i].1 = PVal::Nested(taken);
                            }
                            _ => {
                                let prev = p.entries[i].2;
                                self.already(&full, span, prev);
                            }
                        }
                    } else {
                        let mut inner = PSet::new(false);
                        self.add_path(&mut inner, &attrs[1..], value, full);
                        p.index.insert(sym, p.entries.len());
                        p.entries.push((sym, PVal::Nested(inner), span));
                    }
                }
                None => {
                    let mut inner = PSet::new(false);
                    self.add_path(&mut inner, &attrs[1..], value, full);
                    p.dynamic.push((first.clone(), PVal::Nested(inner), span));
                }
            }
            return;
        }
        let value = strip_parens(value);
        let new_val = match value {
            ast::Expr::AttrSet(set) => {
                let mut inner = PSet::new(set.rec_token().is_some());
                self.collect(&mut inner, &set, false);
                PVal::Nested(inner)
            }
            other => PVal::Ast(other),
        };
        match name {
            Some(n) => {
                let sym = Symbol::new(&n);
                if let Some(&i) = p.index.get(&sym) {
                    let prev = p.entries[i].2;
                    match (&mut p.entries[i].1, new_val) {
                        (PVal::Nested(existing), PVal::Nested(newset)) => {
                            let base = existing.sources.len();
                            existing.sources.extend(newset.sources);
                            for (k, v, s) in newset.entries {
                                let v = match v {
                                    PVal::InheritFrom(j, sp) => PVal::InheritFrom(j + base, sp),
                                    v => v,
                                };
                                if let Some(&j) = existing.index.get(&k) {
                                    let prev = existing.entries[j].2;
                                    let fullk = format!("{full}.{k}");
                                    self.already(&fullk, s, prev);
                                } else {
                                    existing.index.insert(k, existing.entries.len());
                                    existing.entries.push((k, v, s));
                                }
                            }
                            existing.dynamic.extend(newset.dynamic);
                        }
                        _ => self.already(&full, span, prev),
                    }
                } else {
                    p.index.insert(sym, p.entries.len());
                    p.entries.push((sym, new_val, span));
                }
            }
            None => p.dynamic.push((first.clone(), new_val, span)),
        }
    }

    /// Lowers a value of a pending set in the current scope.
    fn lower_pval(&mut self, name: &Symbol, v: PVal, src_base: u32, at: Span) -> (Rc<Expr>, bool) {
        match v {
            PVal::Ast(e) => {
                let e = self.expr(e);
                if let ExprKind::Lambda(def) = &e.kind {
                    def.name.replace(Some(*name));
                }
                (e, false)
            }
            PVal::Nested(p) => {
                let def = self.lower_pset(p);
                (self.mk(at, ExprKind::Attrs(def)), false)
            }
            PVal::InheritVar(span) => (self.var(name.as_str(), span), true),
            PVal::InheritFrom(i, span) => {
                let var = Var::Local { depth: 0, idx: src_base + i as u32, name: *name };
                let src = self.mk(span, ExprKind::Var(var));
                let sel = ExprKind::Select(src, vec![Key::Static(*name, span)], None);
                (self.mk(span, sel), false)
            }
        }
    }

    fn lower_pset(&mut self, p: PSet) -> Rc<AttrsDef> {
        let rec = p.rec;
        let frame = rec || !p.sources.is_empty();
        let src_base = if rec { p.entries.len() as u32 } else { 0 };
        let mut names: HashMap<Symbol, u32> = HashMap::new();
        if rec {
            for (i, (n, _, _)) in p.entries.iter().enumerate() {
                names.insert(*n, i as u32);
            }
        }
        // Sources: in the set's own scope for `rec`, around it otherwise.
        let sources: Vec<Rc<Expr>> = if rec {
            self.scopes.push(Scope::Static(names.clone()));
            let s = p.sources.into_iter().map(|s| self.expr(s)).collect();
            self.scopes.pop();
            s
        } else {
            p.sources.into_iter().map(|s| self.expr(s)).collect()
        };
        if frame {
            self.scopes.push(Scope::Static(names));
        }
        let mut bindings = Vec::new();
        for (name, val, span) in p.entries {
            let kind = match &val {
                PVal::InheritVar(_) => BindingKind::Inherit,
                PVal::InheritFrom(i, _) => BindingKind::InheritFrom(*i),
                _ => BindingKind::Plain,
            };
            let (value, outer) = if rec && matches!(val, PVal::InheritVar(_)) {
                let saved = self.scopes.pop();
                let r = self.lower_pval(&name, val, src_base, span);
                if let Some(s) = saved {
                    self.scopes.push(s);
                }
                r
            } else {
                self.lower_pval(&name, val, src_base, span)
            };
            bindings.push(Binding { name, kind, value, outer: outer && rec, span });
        }
        let mut dynamic = Vec::new();
        for (attr, val, span) in p.dynamic {
            let key = match self.key(&attr) {
                Key::Dynamic(e) => e,
                Key::Static(s, _) => self.mk(span, ExprKind::Lit(Value::string(s.as_str()))),
            };
            let (value, _) = self.lower_pval(&Symbol::new(""), val, src_base, span);
            dynamic.push((key, value, span));
        }
        if frame {
            self.scopes.pop();
        }
        Rc::new(AttrsDef { rec, frame, bindings, dynamic, sources })
    }

    fn lower_let(
        &mut self,
        p: PSet,
        body: impl FnOnce(&mut Self) -> Rc<Expr>,
    ) -> (Rc<AttrsDef>, Rc<Expr>) {
        let names: HashMap<Symbol, u32> =
            p.entries.iter().enumerate().map(|(i, (n, _, _))| (*n, i as u32)).collect();
        let def = self.lower_pset(p);
        self.scopes.push(Scope::Static(names));
        let b = body(self);
        self.scopes.pop();
        (def, b)
    }
}

/// The text of a string literal without interpolation, if it is one.
fn str_literal(s: &ast::Str) -> Option<String> {
    let mut out = String::new();
    for part in s.normalized_parts() {
        match part {
            InterpolPart::Literal(t) => out.push_str(&t),
            InterpolPart::Interpolation(_) => return None,
        }
    }
    Some(out)
}
