//! The lazy interpreter: evaluates lowered expressions ([`crate::lower::Expr`]) in environments
//! of thunks, applies functions, and implements the operators, equality, comparison and the
//! coercion of values to strings.
//!
//! Every thunk is evaluated at most once; a thunk that is entered again while it is being
//! evaluated is infinite recursion. The depth of nested evaluation is counted, so endless
//! recursion ends in an error with a position rather than a crashed process (the command line
//! runs evaluation on a thread with a large stack).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{Diagnostic, ErrorKind, Frame};
use crate::io::EvalIo;
use crate::lower::{self, AttrsDef, BinOp, Expr, ExprKind, Key, Param, Part, Var};
use crate::syntax::{FileId, SourceMap, Span};
use crate::value::{
    AttrEntry, Attrs, Closure, Context, ContextElem, Env, NixString, PrimOpApp, Symbol, Thunk,
    ThunkState, Value,
};

/// The result type of evaluation.
pub type R<T> = Result<T, Box<Diagnostic>>;

/// Builds an error.
pub(crate) fn err<T>(kind: ErrorKind, msg: impl Into<String>, span: Span) -> R<T> {
    Err(Box::new(Diagnostic::new(kind, msg, Some(span))))
}

/// Options of an evaluation session.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// Search path entries from `-I` (each `prefix=path` or a plain path), before `NIX_PATH`.
    pub search_path: Vec<String>,
    /// `NIX_PATH` entries.
    pub nix_path: Vec<String>,
    /// `$HOME`, for `~/` paths.
    pub home: Option<String>,
    /// The value of `builtins.currentSystem`.
    pub system: String,
    /// Maximum depth of function calls (CppNix's `max-call-depth`).
    pub max_call_depth: usize,
    /// Whether `getEnv`, `currentTime` and friends see the real world.
    pub impure: bool,
    /// Enabled experimental features (`parse-toml-timestamps`, ...).
    pub experimental: Vec<String>,
    /// How much memory (resident, in bytes) evaluation may use; 0 for no limit.
    pub max_memory: usize,
    /// How many evaluation steps (counted in units of 65,536) a session may take; 0 for no
    /// limit. For embedders that must bound time, such as the fuzz targets.
    pub max_steps: u64,
}

/// Maximum depth of nested expression evaluation, independent of function calls.
pub(crate) const MAX_EVAL_DEPTH: usize = 10_000_000;

/// Maximum nesting of values that deep operations (`==`, `<`, `deepSeq`, printing, string
/// conversion) walk: deeper values would also be too deep to free without overflowing the stack.
pub(crate) const MAX_VALUE_DEPTH: usize = 100_000;

/// How much of the thread's stack evaluation leaves unused: when less remains, the next
/// nested evaluation stops with an error instead of overflowing the stack.
const STACK_RED_ZONE: usize = 1024 * 1024;

/// Whether the current thread's stack is nearly used up (never, where its size is unknown).
pub(crate) fn stack_exhausted() -> bool {
    stacker::remaining_stack().is_some_and(|left| left < STACK_RED_ZONE)
}

/// What one step of evaluation gives: a value, an expression to evaluate in its place (in the
/// same environment or another), or a function body entered by a tail call (with the call's
/// position and function).
enum Step<'a> {
    Value(Value),
    Same(&'a Rc<Expr>),
    Tail(Rc<Expr>, Rc<Env>),
    Call(Rc<Expr>, Rc<Env>, (Span, Rc<lower::LambdaDef>)),
}

/// An evaluation session: source files, the base environment, the import cache and the I/O.
pub struct Evaluator {
    /// Every source text read so far.
    pub sources: SourceMap,
    pub(crate) io: Box<dyn EvalIo>,
    pub(crate) opts: EvalOptions,
    pub(crate) base_env: Rc<Env>,
    pub(crate) base_names: HashMap<Symbol, u32>,
    pub(crate) builtins_attrs: Option<Rc<Attrs>>,
    pub(crate) import_cache: HashMap<String, Value>,
    /// The file each imported path resolved to (`dir` to `dir/default.nix`).
    pub(crate) import_files: HashMap<String, String>,
    /// The span of every lowered node, indexed by its `NodeId`.
    spans: Vec<Span>,
    pub(crate) lints: lower::Lints,
    pub(crate) warnings: Vec<Diagnostic>,
    /// Nesting depth of recursive printers (`toJSON`), bounded like calls.
    pub(crate) nest: usize,
    /// Nesting depth of `toJSON`, bounded by `max_call_depth` as in CppNix.
    pub(crate) json_nest: usize,
    depth: usize,
    call_depth: usize,
    /// Evaluation steps, to measure memory every so many.
    steps: u32,
    /// Resident memory when last measured.
    memory_seen: usize,
    /// Evaluation steps taken, counted every 65,536.
    steps_total: u64,
}

impl Drop for Evaluator {
    /// Breaks the reference cycles through the base environment (`builtins.builtins`, and
    /// `derivation`, which is Nix code closing over it), so that a session frees its builtins
    /// when it ends: a program that makes many sessions (the fuzz targets, a test suite) would
    /// otherwise keep every one. Cycles that evaluated code made (`rec` sets, `let` bindings
    /// that refer to each other) are not broken: values are reference-counted, not collected.
    fn drop(&mut self) {
        for slot in self.base_env.slots.borrow().iter() {
            if let Ok(mut state) = slot.0.try_borrow_mut() {
                *state = ThunkState::Done(Value::Null);
            }
        }
        self.base_env.slots.borrow_mut().clear();
        self.builtins_attrs = None;
        self.import_cache.clear();
    }
}

impl Evaluator {
    /// A session with the given I/O and options.
    pub fn new(io: Box<dyn EvalIo>, mut opts: EvalOptions) -> Evaluator {
        if opts.max_call_depth == 0 {
            opts.max_call_depth = 1_000_000;
        }
        let mut ev = Evaluator {
            sources: SourceMap::default(),
            io,
            opts,
            base_env: Env::new(Vec::new(), None),
            base_names: HashMap::new(),
            builtins_attrs: None,
            import_cache: HashMap::new(),
            import_files: HashMap::new(),
            spans: Vec::new(),
            lints: lower::Lints::default(),
            warnings: Vec::new(),
            nest: 0,
            json_nest: 0,
            depth: 0,
            call_depth: 0,
            steps: 0,
            memory_seen: 0,
            steps_total: 0,
        };
        crate::builtins::install(&mut ev);
        ev
    }

    /// Parses and lowers `text` as file `name`, relative paths resolved against `base_dir`.
    pub fn load(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: Rc<str>,
        base_dir: &Path,
    ) -> Result<Rc<Expr>, Vec<Diagnostic>> {
        self.load_scoped(name, path, text, base_dir, None)
    }

    pub(crate) fn load_scoped(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: Rc<str>,
        base_dir: &Path,
        extra: Option<HashMap<Symbol, u32>>,
    ) -> Result<Rc<Expr>, Vec<Diagnostic>> {
        // CppNix reads CR and CR LF as line ends, also inside strings.
        let text: Rc<str> = if text.contains('\r') {
            text.replace("\r\n", "\n").replace('\r', "\n").into()
        } else {
            text
        };
        let file = self.sources.add(name, path, text.clone());
        if let Some(pos) = text.find('\0') {
            let span = Span { file, start: pos as u32, end: pos as u32 + 1 };
            return Err(vec![Diagnostic::new(
                ErrorKind::Syntax,
                "syntax error, NUL bytes are not allowed in Nix source",
                Some(span),
            )]);
        }
        let (root, syntax_errors) = crate::syntax::parse(file, &text);
        if !syntax_errors.is_empty() {
            return Err(syntax_errors
                .into_iter()
                .map(|e| Diagnostic::new(ErrorKind::Syntax, e.message, Some(e.span)))
                .collect());
        }
        let sources = &self.sources;
        let describe = |s: Span| sources.describe(s);
        let ctx = lower::LowerCtx {
            file,
            base_dir,
            base: &self.base_names,
            extra,
            describe: &describe,
            lints: self.lints,
            first_id: self.spans.len() as u32,
        };
        let lowered = lower::lower(&ctx, &root);
        self.spans.extend(lowered.spans);
        let (expr, errors, warnings) = (lowered.expr, lowered.errors, lowered.warnings);
        for w in warnings {
            let mut d = Diagnostic::new(ErrorKind::Static, w.message, Some(w.span));
            d.code = w.code;
            self.warnings.push(d);
        }
        if errors.is_empty() {
            Ok(expr)
        } else {
            Err(errors
                .into_iter()
                .map(|e| {
                    let mut d = Diagnostic::new(ErrorKind::Static, e.message, Some(e.span));
                    d.code = e.code;
                    d.labels.extend(e.label);
                    d
                })
                .collect())
        }
    }

    /// Makes what evaluation added to the store so far durable and visible to other
    /// processes (see [`EvalIo::flush`]).
    pub fn flush_io(&self) -> std::io::Result<()> {
        self.io.flush()
    }

    /// A thunk of a loaded expression in the base environment, evaluated when first needed
    /// (how `--arg` values are passed).
    pub fn lazy_root(&mut self, e: &Rc<Expr>) -> Thunk {
        Thunk::pending(e.clone(), self.base_env.clone())
    }

    /// Evaluates a loaded expression to weak head normal form.
    pub fn eval_root(&mut self, e: &Rc<Expr>) -> R<Value> {
        let env = self.base_env.clone();
        self.eval(e, &env).map_err(|d| self.without_dummy_spans(d))
    }

    /// The source span of a lowered expression.
    pub fn span_of(&self, e: &Expr) -> Span {
        self.spans[e.id.0 as usize]
    }

    // ---- forcing ----

    /// Forces a thunk to weak head normal form.
    pub fn force(&mut self, t: &Thunk) -> R<Value> {
        if let ThunkState::Done(v) = &*t.0.borrow() {
            return Ok(v.clone());
        }
        let state = std::mem::replace(&mut *t.0.borrow_mut(), ThunkState::Blackhole);
        match state {
            ThunkState::Pending(e, env) => match self.eval(&e, &env) {
                Ok(v) => {
                    *t.0.borrow_mut() = ThunkState::Done(v.clone());
                    Ok(v)
                }
                Err(mut d) => {
                    if d.kind == ErrorKind::InfiniteRecursion && d.span.is_none() {
                        d.span = Some(self.span_of(&e));
                    }
                    // Running out of stack depends on where the thunk was forced: retry later.
                    *t.0.borrow_mut() = if d.kind.depends_on_context() {
                        ThunkState::Pending(e, env)
                    } else {
                        ThunkState::Failed(d.clone())
                    };
                    Err(d)
                }
            },
            ThunkState::Apply(f, a, b) => {
                let span = self.dummy_span();
                let r = match &b {
                    None => self.call(&f, a.clone(), span),
                    Some(b) => self.call2(&f, a.clone(), b.clone(), span),
                };
                match r {
                    Ok(v) => {
                        *t.0.borrow_mut() = ThunkState::Done(v.clone());
                        Ok(v)
                    }
                    Err(d) => {
                        *t.0.borrow_mut() = if d.kind.depends_on_context() {
                            ThunkState::Apply(f, a, b)
                        } else {
                            ThunkState::Failed(d.clone())
                        };
                        Err(d)
                    }
                }
            }
            ThunkState::Blackhole => Err(Box::new(Diagnostic::new(
                ErrorKind::InfiniteRecursion,
                "infinite recursion encountered",
                None,
            ))),
            ThunkState::Failed(d) => {
                *t.0.borrow_mut() = ThunkState::Failed(d.clone());
                Err(d)
            }
            ThunkState::Done(_) => unreachable!("checked above"),
        }
    }

    /// The span of errors that have no place in the source (top-level printing, `-A`); it is
    /// removed before an error leaves the evaluator (see [`Evaluator::without_dummy_spans`]).
    pub(crate) fn dummy_span(&self) -> Span {
        Span { file: FileId(u32::MAX), start: 0, end: 0 }
    }

    /// Removes the placeholder span of errors raised outside any source text.
    pub(crate) fn without_dummy_spans(&self, mut d: Box<Diagnostic>) -> Box<Diagnostic> {
        let dummy = self.dummy_span();
        if d.span == Some(dummy) {
            d.span = None;
        }
        for f in &mut d.frames {
            if f.span == Some(dummy) {
                f.span = None;
            }
        }
        d
    }

    /// Makes a thunk for `e` in `env`, without allocating for literals and variables.
    pub(crate) fn thunk(&mut self, e: &Rc<Expr>, env: &Rc<Env>) -> Thunk {
        match &e.kind {
            ExprKind::Lit(v) => Thunk::value(v.clone()),
            ExprKind::Var(Var::Local { depth, idx, .. }) => lookup_slot(env, *depth, *idx),
            // Functions stay thunks, as in CppNix: unforced ones print as `<CODE>`.
            _ => Thunk::pending(e.clone(), env.clone()),
        }
    }

    // ---- evaluation ----

    /// Evaluates `e` in `env` to weak head normal form.
    pub(crate) fn eval(&mut self, e: &Rc<Expr>, env: &Rc<Env>) -> R<Value> {
        self.depth += 1;
        // The stack is measured every 16 levels: far fewer bytes than its red zone apart.
        if self.depth > MAX_EVAL_DEPTH || (self.depth.is_multiple_of(16) && stack_exhausted()) {
            self.depth -= 1;
            return err(
                ErrorKind::StackOverflow,
                "stack overflow; expressions nested too deeply",
                self.span_of(e),
            );
        }
        // Memory is measured every 65,536 steps (a read of /proc, a few microseconds); what
        // grows in one step (a long list or string) is checked where it is made.
        self.steps = self.steps.wrapping_add(1);
        if self.steps.is_multiple_of(1 << 16)
            && let Err(d) = self.every_so_often(e)
        {
            self.depth -= 1;
            return Err(d);
        }
        let r = self.eval_inner(e, env);
        self.depth -= 1;
        r
    }

    /// The checks made every 65,536 steps: memory, and the step budget.
    #[cold]
    #[inline(never)]
    fn every_so_often(&mut self, e: &Expr) -> R<()> {
        self.steps_total += 1 << 16;
        if self.opts.max_steps > 0 && self.steps_total > self.opts.max_steps {
            return err(
                ErrorKind::StepLimit,
                format!("evaluation took more than {} steps", self.opts.max_steps),
                self.span_of(e),
            );
        }
        if self.opts.max_memory > 0 {
            self.check_memory(0, self.span_of(e))?;
        }
        Ok(())
    }

    /// Fails with `E022` if the memory in use, plus `more` bytes about to be allocated, is
    /// over the limit. Not every builtin asks first: `replaceStrings`, `toJSON` and `readFile`
    /// of a huge file build their result before the periodic measure can see it. Cheap for requests that stay well under it: memory is measured again
    /// only when the last measure plus `more` passes half the limit, or from the periodic
    /// check (`more` = 0).
    pub(crate) fn check_memory(&mut self, more: usize, span: Span) -> R<()> {
        let limit = self.opts.max_memory;
        if limit == 0 {
            return Ok(());
        }
        if more > 0 && self.memory_seen.saturating_add(more) <= limit / 2 {
            // Counted until the next measure, so that many requests add up.
            self.memory_seen += more;
            return Ok(());
        }
        if let Some(used) = resident_bytes() {
            self.memory_seen = used;
        }
        if self.memory_seen.saturating_add(more) > limit {
            let mib = |b: usize| b.div_ceil(1 << 20);
            let asked = if more > 0 {
                format!(", and {} MiB more asked for", mib(more))
            } else {
                String::new()
            };
            return err(
                ErrorKind::OutOfMemory,
                format!(
                    "evaluation needs more memory than its limit of {} MiB ({} MiB in use{asked}); raise it with --max-memory",
                    mib(limit),
                    mib(self.memory_seen)
                ),
                span,
            );
        }
        Ok(())
    }

    /// Evaluates `e`, continuing in the same frame where the result is another expression's
    /// (the branches of `if`, the bodies of `let`, `with` and `assert`, and the bodies of
    /// functions applied in tail position), so such chains take no stack. The calls entered
    /// this way are remembered to count towards `max-call-depth` and to name them in traces.
    fn eval_inner(&mut self, e: &Rc<Expr>, env: &Rc<Env>) -> R<Value> {
        let mut e = e;
        let (e, env, call) = loop {
            match self.step(e, env)? {
                Step::Value(v) => return Ok(v),
                Step::Same(next) => e = next,
                Step::Tail(e, env) => break (e, env, None),
                Step::Call(e, env, call) => break (e, env, Some(call)),
            }
        };
        // The first call entered is kept apart: most chains enter one, and a vector that
        // stays empty costs no allocation.
        let mut more = Vec::new();
        let r = self.eval_tail(e, env, &mut more);
        self.call_depth -= usize::from(call.is_some()) + more.len();
        match r {
            Ok(v) => Ok(v),
            Err(d) => Err(self.trace_calls(d, call.iter().chain(&more))),
        }
    }

    /// The rest of [`Evaluator::eval_inner`] once the expression or the environment changed.
    fn eval_tail(
        &mut self,
        mut e: Rc<Expr>,
        mut env: Rc<Env>,
        calls: &mut Vec<(Span, Rc<lower::LambdaDef>)>,
    ) -> R<Value> {
        loop {
            (e, env) = match self.step(&e, &env)? {
                Step::Value(v) => return Ok(v),
                Step::Same(next) => (next.clone(), env),
                Step::Tail(e2, env2) => (e2, env2),
                Step::Call(e2, env2, call) => {
                    calls.push(call);
                    (e2, env2)
                }
            }
        }
    }

    /// Names the tail calls an error left, innermost first (`calls` is in the order entered).
    #[cold]
    #[inline(never)]
    fn trace_calls<'c>(
        &self,
        mut d: Box<Diagnostic>,
        calls: impl DoubleEndedIterator<Item = &'c (Span, Rc<lower::LambdaDef>)>,
    ) -> Box<Diagnostic> {
        for (span, def) in calls.rev() {
            if d.frames.len() >= 1000 {
                break;
            }
            d.frames.push(Frame {
                span: Some(*span),
                message: format!("while calling {}", self.function_desc(def)),
            });
        }
        d
    }

    /// One step of evaluation: a value, or the expression whose value is the result.
    #[inline(always)]
    fn step<'a>(&mut self, e: &'a Rc<Expr>, env: &Rc<Env>) -> R<Step<'a>> {
        match &e.kind {
            ExprKind::Lit(v) => Ok(Step::Value(v.clone())),
            ExprKind::Var(Var::Local { depth, idx, .. }) => {
                let t = lookup_slot(env, *depth, *idx);
                match self.force(&t) {
                    Ok(v) => Ok(Step::Value(v)),
                    Err(d) => Err(self.at_var(d, e)),
                }
            }
            ExprKind::Apply(f, x) => {
                let fv = self.eval(f, env)?;
                let arg = self.thunk(x, env);
                match &fv {
                    Value::Lambda(c) => {
                        let span = self.span_of(e);
                        self.enter_call(span)?;
                        match self.bind_args(c, arg, span) {
                            Ok(frame) => {
                                Ok(Step::Call(c.def.body.clone(), frame, (span, c.def.clone())))
                            }
                            Err(d) => {
                                self.call_depth -= 1;
                                Err(d)
                            }
                        }
                    }
                    _ => Ok(Step::Value(self.call(&fv, arg, self.span_of(e))?)),
                }
            }
            ExprKind::If(c, t, f) => match self.eval(c, env) {
                Ok(Value::Bool(true)) => Ok(Step::Same(t)),
                Ok(Value::Bool(false)) => Ok(Step::Same(f)),
                Ok(other) => self.type_err("a Boolean", &other, self.span_of(c)),
                Err(d) => Err(self.in_condition(d, c)),
            },
            ExprKind::Bin(op, l, r) => {
                Ok(Step::Value(self.binop(*op, l, r, env, self.span_of(e))?))
            }
            ExprKind::Let(def, body) => {
                let frame = self.rec_frame(def, env);
                Ok(Step::Tail(body.clone(), frame))
            }
            ExprKind::With(ns, body) => {
                let t = self.thunk(ns, env);
                let frame = Rc::new(Env {
                    slots: std::cell::RefCell::new(crate::value::Slots::new()),
                    parent: Some(env.clone()),
                    with: Some(t),
                });
                Ok(Step::Tail(body.clone(), frame))
            }
            ExprKind::Assert(c, body) => {
                self.check_assert(c, env)?;
                Ok(Step::Same(body))
            }
            ExprKind::Lambda(def) => Ok(Step::Value(Value::Lambda(Rc::new(Closure {
                def: def.clone(),
                env: env.clone(),
            })))),
            _ => Ok(Step::Value(self.eval_other(e, env)?)),
        }
    }

    /// Counts one more nested call, failing beyond `max-call-depth`.
    #[inline(always)]
    fn enter_call(&mut self, span: Span) -> R<()> {
        self.call_depth += 1;
        if self.call_depth > self.opts.max_call_depth {
            self.call_depth -= 1;
            return err(ErrorKind::StackOverflow, "stack overflow; max-call-depth exceeded", span);
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn at_var(&self, mut d: Box<Diagnostic>, e: &Expr) -> Box<Diagnostic> {
        if d.kind == ErrorKind::InfiniteRecursion && d.span.is_none() {
            d.span = Some(self.span_of(e));
        }
        d
    }

    #[cold]
    #[inline(never)]
    fn in_condition(&self, d: Box<Diagnostic>, c: &Expr) -> Box<Diagnostic> {
        push_frame(d, Some(self.span_of(c)), "while evaluating a branch condition".into())
    }

    #[inline(never)]
    fn check_assert(&mut self, c: &Rc<Expr>, env: &Rc<Env>) -> R<()> {
        let cv = self.eval(c, env)?;
        match cv {
            Value::Bool(true) => Ok(()),
            Value::Bool(false) => {
                let text = self.source_text(self.span_of(c));
                err(ErrorKind::Assert, format!("assertion `{text}` failed"), self.span_of(c))
            }
            other => self.type_err("a Boolean", &other, self.span_of(c)),
        }
    }

    /// The expressions that are less common or need more room than the ones in
    /// [`Evaluator::step`], kept apart so that the recursive path stays small on the stack.
    #[inline(never)]
    fn eval_other(&mut self, e: &Rc<Expr>, env: &Rc<Env>) -> R<Value> {
        let span = self.span_of(e);
        match &e.kind {
            ExprKind::Var(Var::With(name)) => {
                let t = self.lookup_with(env, name, span)?;
                self.force(&t)
            }
            ExprKind::Str(parts) => self.eval_str(parts, env),
            ExprKind::Path(parts) => self.eval_path(parts, env),
            ExprKind::HomePath(rest) => {
                let home = self.opts.home.clone().unwrap_or_else(|| "/homeless-shelter".into());
                Ok(Value::Path(lower::canon_path(&format!("{home}/{rest}")).into()))
            }
            ExprKind::Select(target, keys, default) => self.eval_select(target, keys, default, env),
            ExprKind::HasAttr(target, keys) => self.eval_has_attr(target, keys, env),
            ExprKind::Attrs(def) => self.build_attrs(def, env),
            ExprKind::List(items) => {
                let list: Vec<Thunk> = items.iter().map(|i| self.thunk(i, env)).collect();
                Ok(Value::List(Rc::new(list)))
            }
            ExprKind::Not(x) => match self.eval(x, env)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                other => self.type_err("a Boolean", &other, self.span_of(x)),
            },
            ExprKind::Neg(x) => {
                let v = self.eval(x, env)?;
                self.arith(BinOp::Sub, Value::Int(0), v, span)
            }
            ExprKind::CurPos => Ok(self.pos_attrs(span)),
            ExprKind::Error(msg) => err(ErrorKind::Static, msg.to_string(), span),
            ExprKind::Lit(_)
            | ExprKind::Var(Var::Local { .. })
            | ExprKind::Apply(..)
            | ExprKind::If(..)
            | ExprKind::Bin(..)
            | ExprKind::Let(..)
            | ExprKind::With(..)
            | ExprKind::Assert(..)
            | ExprKind::Lambda(_) => unreachable!("evaluated by step"),
        }
    }

    fn eval_str(&mut self, parts: &[Part], env: &Rc<Env>) -> R<Value> {
        let mut out = String::new();
        let mut ctx = Context::new();
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(x) => {
                    let v = self.eval(x, env)?;
                    let s = self.coerce_to_string(&v, self.span_of(x), &mut ctx, true, false)?;
                    self.check_memory(s.len(), self.span_of(x))?;
                    out.push_str(&s);
                }
            }
        }
        Ok(Value::String(NixString::with_ctx(out, ctx)))
    }

    fn eval_path(&mut self, parts: &[Part], env: &Rc<Env>) -> R<Value> {
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Expr(x) => {
                    let v = self.eval(x, env)?;
                    let mut ctx = Context::new();
                    let s = self.coerce_to_string(&v, self.span_of(x), &mut ctx, false, false)?;
                    if !ctx.is_empty() {
                        return err(
                            ErrorKind::Type,
                            "a string that refers to a store path cannot be appended to a path",
                            self.span_of(x),
                        );
                    }
                    out.push_str(&s);
                }
            }
        }
        if out.starts_with("~/") {
            let home = self.opts.home.clone().unwrap_or_else(|| "/homeless-shelter".into());
            out = format!("{home}{}", &out[1..]);
        }
        Ok(Value::Path(lower::canon_path(&out).into()))
    }

    fn eval_select(
        &mut self,
        target: &Rc<Expr>,
        keys: &[Key],
        default: &Option<Rc<Expr>>,
        env: &Rc<Env>,
    ) -> R<Value> {
        let mut v = self.eval(target, env)?;
        for key in keys {
            let name = self.key_name(key, env)?;
            match &v {
                Value::Attrs(a) => match a.get(&name) {
                    Some(entry) => {
                        let t = entry.value.clone();
                        v = self.force(&t).map_err(|d| {
                            push_frame(
                                d,
                                entry.pos,
                                format!("while evaluating the attribute `{name}`"),
                            )
                        })?;
                    }
                    None => {
                        if let Some(d) = default {
                            return self.eval(d, env);
                        }
                        let at = match key {
                            Key::Static(_, s) => *s,
                            Key::Dynamic(e) => self.span_of(e),
                        };
                        return self.missing_attr(&name, a, at);
                    }
                },
                other => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let at = match key {
                        Key::Static(_, s) => *s,
                        Key::Dynamic(e) => self.span_of(e),
                    };
                    return err(
                        ErrorKind::Type,
                        format!(
                            "cannot select attribute `{name}`: expected a set but found {}: {}",
                            other.type_desc(),
                            crate::print::short(other)
                        ),
                        at,
                    );
                }
            }
        }
        Ok(v)
    }

    fn eval_has_attr(&mut self, target: &Rc<Expr>, keys: &[Key], env: &Rc<Env>) -> R<Value> {
        let mut v = self.eval(target, env)?;
        for (i, key) in keys.iter().enumerate() {
            let name = self.key_name(key, env)?;
            match &v {
                Value::Attrs(a) => match a.get(&name) {
                    // The last attribute's value is not evaluated.
                    Some(_) if i + 1 == keys.len() => return Ok(Value::Bool(true)),
                    Some(entry) => {
                        let t = entry.value.clone();
                        v = self.force(&t)?;
                    }
                    None => return Ok(Value::Bool(false)),
                },
                _ => return Ok(Value::Bool(false)),
            }
        }
        Ok(Value::Bool(true))
    }

    pub(crate) fn source_text(&self, span: Span) -> String {
        let f = self.sources.get(span.file);
        f.text.get(span.start as usize..span.end as usize).unwrap_or("").to_string()
    }

    /// `{ file, line, column }` of a span, as `__curPos` and `unsafeGetAttrPos` give it.
    pub(crate) fn pos_attrs(&self, span: Span) -> Value {
        let f = self.sources.get(span.file);
        let (line, col) = f.line_col(span.start);
        let mut a = Attrs::new();
        let mk = |v: Value| AttrEntry { value: Thunk::value(v), pos: None };
        a.insert(Symbol::new("file"), mk(Value::string(f.name.clone())));
        a.insert(Symbol::new("line"), mk(Value::Int(line as i64)));
        a.insert(Symbol::new("column"), mk(Value::Int(col as i64)));
        Value::Attrs(Rc::new(a))
    }

    pub(crate) fn type_err<T>(&self, expected: &str, got: &Value, span: Span) -> R<T> {
        err(
            ErrorKind::Type,
            format!(
                "expected {expected} but found {}: {}",
                got.type_desc(),
                crate::print::short(got)
            ),
            span,
        )
    }

    fn missing_attr<T>(&self, name: &Symbol, a: &Attrs, span: Span) -> R<T> {
        let mut d = Diagnostic::new(
            ErrorKind::MissingAttr,
            format!("attribute `{name}` missing"),
            Some(span),
        );
        let similar: Vec<&str> =
            a.keys().map(|k| k.as_str()).filter(|k| similar(k, name.as_str())).take(3).collect();
        if !similar.is_empty() {
            d.notes.push(format!("did you mean {}?", similar.join(", ")));
        }
        Err(Box::new(d))
    }

    fn key_name(&mut self, key: &Key, env: &Rc<Env>) -> R<Symbol> {
        match key {
            Key::Static(s, _) => Ok(*s),
            Key::Dynamic(e) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::String(s) => Ok(Symbol::new(&s.s)),
                    other => self.type_err("a string", &other, self.span_of(e)),
                }
            }
        }
    }

    fn lookup_with(&mut self, env: &Rc<Env>, name: &Symbol, span: Span) -> R<Thunk> {
        let mut cur = Some(env.clone());
        while let Some(frame) = cur {
            if let Some(ns) = &frame.with {
                let v = self.force(ns)?;
                match v {
                    Value::Attrs(a) => {
                        if let Some(entry) = a.get(name) {
                            return Ok(entry.value.clone());
                        }
                    }
                    other => return self.type_err("a set", &other, span),
                }
            }
            cur = frame.parent.clone();
        }
        err(ErrorKind::UndefinedVar, format!("undefined variable `{name}`"), span)
    }

    /// Makes the frame of a `rec` set or `let`: slots are the bindings, then the sources.
    fn rec_frame(&mut self, def: &AttrsDef, env: &Rc<Env>) -> Rc<Env> {
        let frame = Env::new(Vec::new(), Some(env.clone()));
        let mut slots = crate::value::Slots::with_capacity(def.bindings.len() + def.sources.len());
        for b in &def.bindings {
            let t = if b.outer {
                self.thunk(&b.value, env)
            } else if matches!(b.value.kind, ExprKind::Var(Var::Local { depth: 0, .. })) {
                // The slot it names may not exist yet.
                Thunk::pending(b.value.clone(), frame.clone())
            } else {
                self.thunk(&b.value, &frame)
            };
            slots.push(t);
        }
        for s in &def.sources {
            let t = if matches!(s.kind, ExprKind::Var(Var::Local { depth: 0, .. })) {
                Thunk::pending(s.clone(), frame.clone())
            } else {
                self.thunk(s, &frame)
            };
            slots.push(t);
        }
        *frame.slots.borrow_mut() = slots;
        frame
    }

    fn build_attrs(&mut self, def: &AttrsDef, env: &Rc<Env>) -> R<Value> {
        let mut attrs: Attrs;
        let inner = if def.rec {
            let frame = self.rec_frame(def, env);
            let slots = frame.slots.borrow().clone();
            attrs = def
                .bindings
                .iter()
                .zip(slots)
                .map(|(b, t)| (b.name, AttrEntry { value: t, pos: Some(b.span) }))
                .collect();
            // `__overrides` in a `rec` set replaces attributes, also in the recursive scope.
            let key = Symbol::new("__overrides");
            if let Some(o) = attrs.get(&key).map(|e| e.value.clone()) {
                let ov = self.force(&o)?;
                let Value::Attrs(over) = ov else {
                    return self.type_err("a set", &ov, self.dummy_span());
                };
                for (k, e) in over.iter() {
                    if let Some(i) = def.bindings.iter().position(|b| &b.name == k) {
                        frame.slots.borrow_mut()[i] = e.value.clone();
                    }
                    attrs.insert(*k, e.clone());
                }
            }
            frame
        } else {
            let frame = if def.frame {
                let sources: Vec<Thunk> = def.sources.iter().map(|s| self.thunk(s, env)).collect();
                Env::new(sources, Some(env.clone()))
            } else {
                env.clone()
            };
            attrs = def
                .bindings
                .iter()
                .map(|b| {
                    (b.name, AttrEntry { value: self.thunk(&b.value, &frame), pos: Some(b.span) })
                })
                .collect();
            frame
        };
        for (k, v, span) in &def.dynamic {
            let kv = self.eval(k, &inner)?;
            let name = match kv {
                Value::Null => continue,
                Value::String(s) => Symbol::new(&s.s),
                other => return self.type_err("a string", &other, self.span_of(k)),
            };
            if let Some(prev) = attrs.get(&name) {
                let at = prev.pos.map(|p| self.sources.describe(p)).unwrap_or_default();
                return err(
                    ErrorKind::Static,
                    format!("dynamic attribute `{name}` already defined at {at}"),
                    *span,
                );
            }
            let t = self.thunk(v, &inner);
            attrs.insert(name, AttrEntry { value: t, pos: Some(*span) });
        }
        Ok(Value::Attrs(Rc::new(attrs)))
    }

    // ---- calls ----

    /// Applies `f` to `arg`.
    pub fn call(&mut self, f: &Value, arg: Thunk, span: Span) -> R<Value> {
        self.call_depth += 1;
        if self.call_depth > self.opts.max_call_depth {
            self.call_depth -= 1;
            return err(ErrorKind::StackOverflow, "stack overflow; max-call-depth exceeded", span);
        }
        let r = self.call_inner(f, arg, span);
        self.call_depth -= 1;
        r
    }

    /// The frame of a call of `c` with `arg`: the argument, or the formals taken from it.
    #[inline(always)]
    fn bind_args(&mut self, c: &Closure, arg: Thunk, span: Span) -> R<Rc<Env>> {
        match &c.def.param {
            Param::Ident(_) => Ok(Env::new(smallvec::smallvec![arg], Some(c.env.clone()))),
            Param::Formals { .. } => self.bind_formals(c, arg, span),
        }
    }

    #[inline(never)]
    fn bind_formals(&mut self, c: &Closure, arg: Thunk, span: Span) -> R<Rc<Env>> {
        let def = &c.def;
        let frame = Env::new(Vec::new(), Some(c.env.clone()));
        let Param::Formals { entries, ellipsis, bind } = &def.param else {
            unreachable!("called for formals")
        };
        let av = self.force(&arg)?;
        let Value::Attrs(attrs) = &av else {
            return self.type_err("a set", &av, span);
        };
        let mut slots = crate::value::Slots::with_capacity(entries.len() + 1);
        for (name, default, _) in entries {
            match attrs.get(name) {
                Some(entry) => slots.push(entry.value.clone()),
                None => match default {
                    Some(d) => slots.push(Thunk::pending(d.clone(), frame.clone())),
                    None => {
                        return Err(self.call_error(
                            def,
                            span,
                            format!("without required argument `{name}`"),
                        ));
                    }
                },
            }
        }
        // Every argument matched a formal unless there are more arguments than
        // matches; only then look for the unexpected one.
        let matched = entries.iter().filter(|(n, _, _)| attrs.contains_key(n)).count();
        if !ellipsis && matched < attrs.len() {
            for k in attrs.keys() {
                if !entries.iter().any(|(n, _, _)| n == k) {
                    let what = format!("with unexpected argument `{k}`");
                    return Err(self.call_error(def, span, what));
                }
            }
        }
        if bind.is_some() {
            slots.push(arg.clone());
        }
        *frame.slots.borrow_mut() = slots;
        Ok(frame)
    }

    /// `E017` for a call of `def` at `span`: "FUNCTION called WHAT", labelled at the definition.
    #[cold]
    fn call_error(&self, def: &lower::LambdaDef, span: Span, what: String) -> Box<Diagnostic> {
        let message = format!("{} called {what}", self.function_desc(def));
        let mut d = Diagnostic::new(ErrorKind::Call, message, Some(span));
        d.labels.push((def.span, "the function is defined here".into()));
        Box::new(d)
    }

    fn call_inner(&mut self, f: &Value, arg: Thunk, span: Span) -> R<Value> {
        match f {
            Value::Lambda(c) => {
                let frame = self.bind_args(c, arg, span)?;
                let def = &c.def;
                self.eval(&def.body, &frame).map_err(|mut d| {
                    if d.frames.len() < 1000 {
                        d.frames.push(Frame {
                            span: Some(span),
                            message: format!("while calling {}", self.function_desc(def)),
                        });
                    }
                    d
                })
            }
            Value::PrimOp(op) => {
                if op.arity == 1 {
                    (op.f)(self, &[arg], span).map_err(|d| builtin_frame(d, op.name, span))
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp { op: op.clone(), args: vec![arg] })))
                }
            }
            Value::PrimOpApp(app) => {
                let mut args = app.args.clone();
                args.push(arg);
                if args.len() == app.op.arity {
                    (app.op.f)(self, &args, span).map_err(|d| builtin_frame(d, app.op.name, span))
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp { op: app.op.clone(), args })))
                }
            }
            Value::Attrs(a) if a.contains_key(&Symbol::new("__functor")) => {
                let functor =
                    a.get(&Symbol::new("__functor")).expect("checked above").value.clone();
                let fv = self.force(&functor)?;
                let inner = self.call(&fv, Thunk::value(f.clone()), span)?;
                self.call(&inner, arg, span)
            }
            other => err(
                ErrorKind::Type,
                format!(
                    "attempt to call something which is not a function but {}: {}",
                    other.type_desc(),
                    crate::print::short(other)
                ),
                span,
            ),
        }
    }

    /// "function `f`" or "anonymous function", for messages.
    fn function_desc(&self, def: &lower::LambdaDef) -> String {
        match &*def.name.borrow() {
            Some(n) => format!("function `{n}`"),
            None => "anonymous function".into(),
        }
    }

    /// Calls `f` with two arguments.
    pub(crate) fn call2(&mut self, f: &Value, a: Thunk, b: Thunk, span: Span) -> R<Value> {
        let g = self.call(f, a, span)?;
        self.call(&g, b, span)
    }

    // ---- operators ----

    fn binop(
        &mut self,
        op: BinOp,
        l: &Rc<Expr>,
        r: &Rc<Expr>,
        env: &Rc<Env>,
        span: Span,
    ) -> R<Value> {
        match op {
            BinOp::And | BinOp::Or | BinOp::Impl => {
                let lv = match self.eval(l, env)? {
                    Value::Bool(b) => b,
                    other => return self.type_err("a Boolean", &other, self.span_of(l)),
                };
                let short = match op {
                    BinOp::And => (!lv).then_some(false),
                    BinOp::Or => lv.then_some(true),
                    _ => (!lv).then_some(true),
                };
                if let Some(b) = short {
                    return Ok(Value::Bool(b));
                }
                match self.eval(r, env)? {
                    Value::Bool(b) => Ok(Value::Bool(b)),
                    other => self.type_err("a Boolean", &other, self.span_of(r)),
                }
            }
            _ => {
                let lv = self.eval(l, env)?;
                let rv = self.eval(r, env)?;
                self.binop_values(op, lv, rv, span)
            }
        }
    }

    pub(crate) fn binop_values(&mut self, op: BinOp, lv: Value, rv: Value, span: Span) -> R<Value> {
        match op {
            BinOp::Eq => Ok(Value::Bool(self.equal(&lv, &rv, span)?)),
            BinOp::Neq => Ok(Value::Bool(!self.equal(&lv, &rv, span)?)),
            BinOp::Lt => Ok(Value::Bool(self.less_than(&lv, &rv, span)?)),
            BinOp::Gt => Ok(Value::Bool(self.less_than(&rv, &lv, span)?)),
            BinOp::Le => Ok(Value::Bool(!self.less_than(&rv, &lv, span)?)),
            BinOp::Ge => Ok(Value::Bool(!self.less_than(&lv, &rv, span)?)),
            BinOp::Concat => {
                let a = match lv {
                    Value::List(a) => a,
                    other => return self.type_err("a list", &other, span),
                };
                let b = match rv {
                    Value::List(b) => b,
                    other => return self.type_err("a list", &other, span),
                };
                if a.is_empty() {
                    return Ok(Value::List(b));
                }
                if b.is_empty() {
                    return Ok(Value::List(a));
                }
                self.check_memory((a.len() + b.len()) * std::mem::size_of::<Thunk>(), span)?;
                let mut v = Vec::with_capacity(a.len() + b.len());
                v.extend(a.iter().cloned());
                v.extend(b.iter().cloned());
                Ok(Value::List(Rc::new(v)))
            }
            BinOp::Update => {
                let a = match lv {
                    Value::Attrs(a) => a,
                    other => return self.type_err("a set", &other, span),
                };
                let b = match rv {
                    Value::Attrs(b) => b,
                    other => return self.type_err("a set", &other, span),
                };
                if b.is_empty() {
                    return Ok(Value::Attrs(a));
                }
                if a.is_empty() {
                    return Ok(Value::Attrs(b));
                }
                // One merge of the two sorted sets; a small right side is inserted in place when
                // nothing else holds the left one.
                let m = if b.len() <= 4 && Rc::strong_count(&a) == 1 {
                    let mut m = Rc::unwrap_or_clone(a);
                    for (k, v) in b.iter() {
                        m.insert(*k, v.clone());
                    }
                    m
                } else {
                    a.update(&b)
                };
                Ok(Value::Attrs(Rc::new(m)))
            }
            BinOp::Add => self.add(lv, rv, span),
            BinOp::Sub | BinOp::Mul | BinOp::Div => self.arith(op, lv, rv, span),
            BinOp::And | BinOp::Or | BinOp::Impl => unreachable!("handled lazily"),
        }
    }

    fn add(&mut self, lv: Value, rv: Value, span: Span) -> R<Value> {
        match (&lv, &rv) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                self.arith(BinOp::Add, lv, rv, span)
            }
            (Value::Int(_) | Value::Float(_), _) => err(
                ErrorKind::Type,
                format!("cannot add {} to {}", rv.type_desc(), lv.type_desc()),
                span,
            ),
            (Value::Path(p), _) => {
                let mut ctx = Context::new();
                let s = self.coerce_to_string(&rv, span, &mut ctx, false, false)?;
                if !ctx.is_empty() {
                    return err(
                        ErrorKind::Type,
                        "a string that refers to a store path cannot be appended to a path",
                        span,
                    );
                }
                Ok(Value::Path(lower::canon_path(&format!("{p}{s}")).into()))
            }
            (Value::String(a), _) => {
                let mut ctx = Context::new();
                a.merge_ctx_into(&mut ctx);
                let s = self.coerce_to_string(&rv, span, &mut ctx, true, false)?;
                self.check_memory(a.s.len() + s.len(), span)?;
                Ok(Value::String(NixString::with_ctx(format!("{}{}", a.s, s), ctx)))
            }
            (Value::Attrs(_), _) => {
                let mut ctx = Context::new();
                let a = self.coerce_to_string(&lv, span, &mut ctx, true, false)?;
                let b = self.coerce_to_string(&rv, span, &mut ctx, true, false)?;
                Ok(Value::String(NixString::with_ctx(a + &b, ctx)))
            }
            _ => err(
                ErrorKind::Type,
                format!("cannot add {} to {}", rv.type_desc(), lv.type_desc()),
                span,
            ),
        }
    }

    pub(crate) fn arith(&mut self, op: BinOp, lv: Value, rv: Value, span: Span) -> R<Value> {
        match (&lv, &rv) {
            (Value::Int(a), Value::Int(b)) => {
                let (a, b) = (*a, *b);
                let r = match op {
                    BinOp::Add => a.checked_add(b),
                    BinOp::Sub => a.checked_sub(b),
                    BinOp::Mul => a.checked_mul(b),
                    _ => {
                        if b == 0 {
                            return err(ErrorKind::Arithmetic, "division by zero", span);
                        }
                        a.checked_div(b)
                    }
                };
                match r {
                    Some(v) => Ok(Value::Int(v)),
                    None => {
                        let (verb, sym) = match op {
                            BinOp::Add => ("adding", "+"),
                            BinOp::Sub => ("subtracting", "-"),
                            BinOp::Mul => ("multiplying", "*"),
                            _ => ("dividing", "/"),
                        };
                        err(
                            ErrorKind::Arithmetic,
                            format!("integer overflow in {verb} {a} {sym} {b}"),
                            span,
                        )
                    }
                }
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let a = as_f64(&lv);
                let b = as_f64(&rv);
                let r = match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    _ => {
                        if b == 0.0 {
                            return err(ErrorKind::Arithmetic, "division by zero", span);
                        }
                        a / b
                    }
                };
                Ok(Value::Float(r))
            }
            (Value::Int(_) | Value::Float(_), other) => self.type_err("a number", other, span),
            (other, _) => self.type_err("a number", other, span),
        }
    }

    /// Deep equality, as `==`.
    pub fn equal(&mut self, a: &Value, b: &Value, span: Span) -> R<bool> {
        if self.nest >= MAX_VALUE_DEPTH || stack_exhausted() {
            return err(ErrorKind::StackOverflow, "stack overflow; value nested too deeply", span);
        }
        self.nest += 1;
        let r = self.equal_step(a, b, span);
        self.nest -= 1;
        r
    }

    fn equal_step(&mut self, a: &Value, b: &Value, span: Span) -> R<bool> {
        Ok(match (a, b) {
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                as_f64(a) == as_f64(b)
            }
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Null, Value::Null) => true,
            (Value::String(x), Value::String(y)) => x.s == y.s,
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (tx, ty) in x.iter().zip(y.iter()) {
                    if Rc::ptr_eq(&tx.0, &ty.0) {
                        continue;
                    }
                    let vx = self.force(tx)?;
                    let vy = self.force(ty)?;
                    if !self.equal(&vx, &vy, span)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if Rc::ptr_eq(x, y) {
                    return Ok(true);
                }
                if self.is_derivation(x)? && self.is_derivation(y)? {
                    let k = Symbol::new("outPath");
                    if let (Some(ox), Some(oy)) = (x.get(&k), y.get(&k)) {
                        let vx = self.force(&ox.value.clone())?;
                        let vy = self.force(&oy.value.clone())?;
                        return self.equal(&vx, &vy, span);
                    }
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for ((kx, _), (ky, _)) in x.iter().zip(y.iter()) {
                    if kx != ky {
                        return Ok(false);
                    }
                }
                for ((_, ex), (_, ey)) in x.iter().zip(y.iter()) {
                    if Rc::ptr_eq(&ex.value.0, &ey.value.0) {
                        continue;
                    }
                    let vx = self.force(&ex.value)?;
                    let vy = self.force(&ey.value)?;
                    if !self.equal(&vx, &vy, span)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    pub(crate) fn is_derivation(&mut self, a: &Attrs) -> R<bool> {
        match a.get(&Symbol::new("type")) {
            Some(t) => {
                let v = self.force(&t.value.clone())?;
                Ok(matches!(v, Value::String(s) if &*s.s == "derivation"))
            }
            None => Ok(false),
        }
    }

    /// `<`, as `builtins.lessThan`.
    pub fn less_than(&mut self, a: &Value, b: &Value, span: Span) -> R<bool> {
        if self.nest >= MAX_VALUE_DEPTH || stack_exhausted() {
            return err(ErrorKind::StackOverflow, "stack overflow; value nested too deeply", span);
        }
        self.nest += 1;
        let r = self.less_than_step(a, b, span);
        self.nest -= 1;
        r
    }

    fn less_than_step(&mut self, a: &Value, b: &Value, span: Span) -> R<bool> {
        Ok(match (a, b) {
            (Value::Int(x), Value::Int(y)) => x < y,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                as_f64(a) < as_f64(b)
            }
            (Value::String(x), Value::String(y)) => x.s.as_bytes() < y.s.as_bytes(),
            (Value::Path(x), Value::Path(y)) => x.as_bytes() < y.as_bytes(),
            (Value::List(x), Value::List(y)) => {
                for (tx, ty) in x.iter().zip(y.iter()) {
                    let vx = self.force(tx)?;
                    let vy = self.force(ty)?;
                    if !self.equal(&vx, &vy, span)? {
                        return self.less_than(&vx, &vy, span);
                    }
                }
                x.len() < y.len()
            }
            _ => {
                return err(
                    ErrorKind::Type,
                    format!("cannot compare {} with {}", a.type_desc(), b.type_desc()),
                    span,
                );
            }
        })
    }

    // ---- coercion ----

    /// Coerces a value to a string, as interpolation (`coerce_more == false`) or `toString`
    /// (`coerce_more == true`) do; paths are copied to the store when `copy` is set.
    pub fn coerce_to_string(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        copy: bool,
        coerce_more: bool,
    ) -> R<String> {
        if self.nest >= MAX_VALUE_DEPTH || stack_exhausted() {
            return err(ErrorKind::StackOverflow, "stack overflow; value nested too deeply", span);
        }
        self.nest += 1;
        let r = self.coerce_step(v, span, ctx, copy, coerce_more);
        self.nest -= 1;
        r
    }

    fn coerce_step(
        &mut self,
        v: &Value,
        span: Span,
        ctx: &mut Context,
        copy: bool,
        coerce_more: bool,
    ) -> R<String> {
        match v {
            Value::String(s) => {
                s.merge_ctx_into(ctx);
                Ok(s.s.to_string())
            }
            Value::Path(p) => {
                if copy {
                    let sp = self.copy_path_to_store(p, span)?;
                    ctx.insert(ContextElem::Opaque(sp.clone()));
                    Ok(sp)
                } else {
                    Ok(p.to_string())
                }
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get(&Symbol::new("__toString")) {
                    let fv = self.force(&f.value.clone())?;
                    let r = self.call(&fv, Thunk::value(v.clone()), span)?;
                    return self.coerce_to_string(&r, span, ctx, copy, coerce_more);
                }
                if let Some(o) = a.get(&Symbol::new("outPath")) {
                    let ov = self.force(&o.value.clone())?;
                    return self.coerce_to_string(&ov, span, ctx, copy, coerce_more);
                }
                err(
                    ErrorKind::Type,
                    format!("cannot coerce a set to a string: {}", crate::print::short(v)),
                    span,
                )
            }
            Value::Int(i) if coerce_more => Ok(i.to_string()),
            Value::Float(f) if coerce_more => Ok(format!("{f:.6}")),
            Value::Bool(true) if coerce_more => Ok("1".into()),
            Value::Bool(false) | Value::Null if coerce_more => Ok(String::new()),
            Value::List(l) if coerce_more => {
                let mut out = String::new();
                let n = l.len();
                for (i, t) in l.iter().enumerate() {
                    let ev = self.force(t)?;
                    let s = self.coerce_to_string(&ev, span, ctx, copy, coerce_more)?;
                    out.push_str(&s);
                    let is_empty_list = matches!(&ev, Value::List(x) if x.is_empty());
                    if i + 1 < n && !is_empty_list {
                        out.push(' ');
                    }
                }
                Ok(out)
            }
            other => err(
                ErrorKind::Type,
                format!(
                    "cannot coerce {} to a string: {}",
                    other.type_desc(),
                    crate::print::short(other)
                ),
                span,
            ),
        }
    }

    /// Copies a path to the store through the I/O and returns the store path.
    pub(crate) fn copy_path_to_store(&mut self, p: &str, span: Span) -> R<String> {
        match self.io.add_path_to_store(Path::new(p), None, true, &[]) {
            Ok(sp) => Ok(sp),
            Err(e) => err(ErrorKind::Io, format!("copying `{p}` to the store: {e}"), span),
        }
    }

    /// Forces `v` and every value inside it.
    pub fn deep_force(&mut self, v: &Value, span: Span) -> R<()> {
        let mut seen = std::collections::HashSet::new();
        self.deep_force_inner(v, span, &mut seen)
    }

    #[allow(clippy::only_used_in_recursion)]
    fn deep_force_inner(
        &mut self,
        v: &Value,
        span: Span,
        seen: &mut std::collections::HashSet<usize>,
    ) -> R<()> {
        if self.nest >= MAX_VALUE_DEPTH || stack_exhausted() {
            return err(ErrorKind::StackOverflow, "stack overflow; value nested too deeply", span);
        }
        self.nest += 1;
        let r = self.deep_force_step(v, span, seen);
        self.nest -= 1;
        r
    }

    fn deep_force_step(
        &mut self,
        v: &Value,
        span: Span,
        seen: &mut std::collections::HashSet<usize>,
    ) -> R<()> {
        match v {
            Value::Attrs(a) => {
                if !seen.insert(Rc::as_ptr(a) as *const u8 as usize) {
                    return Ok(());
                }
                for (k, e) in a.iter() {
                    let ev = self.force(&e.value).map_err(|mut d| {
                        d.frames.push(Frame {
                            span: e.pos,
                            message: format!("while evaluating the attribute `{k}`"),
                        });
                        d
                    })?;
                    self.deep_force_inner(&ev, span, seen)?;
                }
                Ok(())
            }
            Value::List(l) => {
                if !seen.insert(Rc::as_ptr(l) as *const u8 as usize) {
                    return Ok(());
                }
                for t in l.iter() {
                    let ev = self.force(t)?;
                    self.deep_force_inner(&ev, span, seen)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Adds a "while ..." frame to an error, keeping traces of endless recursion bounded.
pub(crate) fn push_frame(
    mut d: Box<Diagnostic>,
    span: Option<Span>,
    message: String,
) -> Box<Diagnostic> {
    if d.frames.len() < 1000 {
        d.frames.push(Frame { span, message });
    }
    d
}

fn builtin_frame(d: Box<Diagnostic>, name: &str, span: Span) -> Box<Diagnostic> {
    // The error of a `throw` or `abort` is the message itself, not a builtin failing.
    if matches!(
        name,
        "throw" | "abort" | "addErrorContext" | "seq" | "deepSeq" | "trace" | "import"
    ) {
        return d;
    }
    push_frame(d, Some(span), format!("while calling the `{name}` builtin"))
}

/// The resident memory of this process (`VmRSS` in `/proc/self/status`), where it can be read.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The thunk in slot `idx` of the frame `depth` levels up.
pub(crate) fn lookup_slot(env: &Rc<Env>, depth: u32, idx: u32) -> Thunk {
    let mut e = env;
    for _ in 0..depth {
        e = e.parent.as_ref().expect("lowering resolved the depth");
    }
    e.slots.borrow()[idx as usize].clone()
}

pub(crate) fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// Whether two names are close enough to suggest one for the other.
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}
