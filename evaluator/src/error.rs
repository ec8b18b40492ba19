//! Evaluation errors as plain data: a kind with a stable code, a message, the span where it
//! happened and the chain of "while evaluating ..." frames. Drawing them is the command line's
//! job; [`Diagnostic::summary`] gives a plain-text form for tests and logs.

use crate::syntax::{SourceMap, Span};

/// What went wrong. Each kind has a stable code that `lang-spec/errors.md` explains.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// A syntax error.
    #[error("syntax error")]
    Syntax,
    /// A static error found while lowering (undefined variable, duplicate attribute, ...).
    #[error("invalid expression")]
    Static,
    /// `throw`.
    #[error("thrown")]
    Throw,
    /// A failed `assert`.
    #[error("assertion failed")]
    Assert,
    /// `abort`.
    #[error("aborted")]
    Abort,
    /// A thunk was re-entered while being evaluated.
    #[error("infinite recursion")]
    InfiniteRecursion,
    /// A value has the wrong type.
    #[error("type error")]
    Type,
    /// A selected attribute does not exist.
    #[error("missing attribute")]
    MissingAttr,
    /// A variable is not bound (found at run time inside `with`).
    #[error("undefined variable")]
    UndefinedVar,
    /// Function called with a missing or unexpected argument.
    #[error("bad call")]
    Call,
    /// Integer overflow or division by zero.
    #[error("arithmetic error")]
    Arithmetic,
    /// Too deep a recursion.
    #[error("stack overflow")]
    StackOverflow,
    /// Evaluation needed more memory than its limit allows.
    #[error("out of memory")]
    OutOfMemory,
    /// Evaluation took more steps than its budget (set by embedders, not the command line).
    #[error("step limit")]
    StepLimit,
    /// Reading a file or the store failed.
    #[error("i/o error")]
    Io,
    /// A builtin rejected its arguments in another way.
    #[error("invalid argument")]
    Invalid,
    /// Not supported by kiln yet.
    #[error("not implemented")]
    Unimplemented,
}

impl ErrorKind {
    /// The stable code of this kind.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Syntax => "E001",
            ErrorKind::Static => "E002",
            ErrorKind::Throw => "E010",
            ErrorKind::Assert => "E011",
            ErrorKind::Abort => "E012",
            ErrorKind::InfiniteRecursion => "E013",
            ErrorKind::Type => "E014",
            ErrorKind::MissingAttr => "E015",
            ErrorKind::UndefinedVar => "E016",
            ErrorKind::Call => "E017",
            ErrorKind::Arithmetic => "E018",
            ErrorKind::StackOverflow => "E019",
            ErrorKind::Io => "E020",
            ErrorKind::Invalid => "E021",
            ErrorKind::OutOfMemory => "E022",
            ErrorKind::StepLimit => "E023",
            ErrorKind::Unimplemented => "E099",
        }
    }

    /// Whether the error depends on where the evaluation happened (how deep the stack was,
    /// how much memory was in use) rather than on the expression: such errors are not
    /// remembered by the thunk that raised them.
    pub(crate) fn depends_on_context(&self) -> bool {
        matches!(self, ErrorKind::StackOverflow | ErrorKind::OutOfMemory | ErrorKind::StepLimit)
    }
}

/// One "while evaluating ..." step of a trace.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Where, if known.
    pub span: Option<Span>,
    /// What was being done.
    pub message: String,
}

/// An evaluation error: plain data, drawn by the command line.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// The kind (and with it the code).
    pub kind: ErrorKind,
    /// The code; usually `kind.code()`, lowering errors carry their own.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// Where it happened.
    pub span: Option<Span>,
    /// Other places that explain the error, each with a short message.
    pub labels: Vec<(Span, String)>,
    /// Extra notes.
    pub notes: Vec<String>,
    /// The trace, innermost first.
    pub frames: Vec<Frame>,
}

impl Diagnostic {
    /// A diagnostic of `kind` with `message` at `span`.
    pub fn new(kind: ErrorKind, message: impl Into<String>, span: Option<Span>) -> Diagnostic {
        Diagnostic {
            code: kind.code(),
            kind,
            message: message.into(),
            span,
            labels: Vec::new(),
            notes: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Whether `builtins.tryEval` catches this error (only `throw` and `assert`, as CppNix).
    pub fn is_catchable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throw | ErrorKind::Assert)
    }

    /// The frames with runs of identical frames folded into one, with the run's length.
    pub fn folded_frames(&self) -> Vec<(&Frame, usize)> {
        let mut out: Vec<(&Frame, usize)> = Vec::new();
        for f in &self.frames {
            match out.last_mut() {
                Some((last, n)) if last.message == f.message && last.span == f.span => *n += 1,
                _ => out.push((f, 1)),
            }
        }
        out
    }

    /// A plain-text rendering: `error[CODE]: message`, the location and the frames.
    pub fn summary(&self, sources: &SourceMap, full_trace: bool) -> String {
        let mut out = format!("error[{}]: {}\n", self.code, self.message);
        if let Some(span) = self.span {
            out.push_str(&format!("  at {}\n", sources.describe(span)));
        }
        for (span, label) in &self.labels {
            out.push_str(&format!("  {label}: {}\n", sources.describe(*span)));
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
        let folded = self.folded_frames();
        let shown = if full_trace { folded.len() } else { folded.len().min(3) };
        for (f, n) in &folded[..shown] {
            match f.span {
                Some(s) => out.push_str(&format!("  … {} at {}\n", f.message, sources.describe(s))),
                None => out.push_str(&format!("  … {}\n", f.message)),
            }
            if *n > 1 {
                out.push_str(&format!("  ({} identical frames folded)\n", n - 1));
            }
        }
        out
    }
}
