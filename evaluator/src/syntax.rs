//! A thin layer over `rnix`: the [`SourceMap`] of every file an evaluation session has read,
//! [`Span`]s into it, and parsing that never panics and returns the tree together with all
//! syntax errors as byte ranges.

use std::path::PathBuf;
use std::rc::Rc;

/// Identifies one source text in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// Start byte offset.
    pub start: u32,
    /// End byte offset (exclusive).
    pub end: u32,
}

impl Span {
    /// A span covering `range` of `file`.
    pub fn new(file: FileId, range: rnix::TextRange) -> Span {
        Span { file, start: range.start().into(), end: range.end().into() }
    }
}

/// One source text.
pub struct SourceFile {
    /// The name shown to the user: the path, or `«string»`/`«stdin»`.
    pub name: String,
    /// The path the text was read from, if any.
    pub path: Option<PathBuf>,
    /// The text.
    pub text: Rc<str>,
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let end = (offset as usize).min(self.text.len());
        let col = self.text.get(start..end).map_or(end - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// Every source text of an evaluation session.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a source text and returns its id.
    pub fn add(&mut self, name: String, path: Option<PathBuf>, text: Rc<str>) -> FileId {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i as u32 + 1);
            }
        }
        self.files.push(SourceFile { name, path, text, line_starts });
        FileId(self.files.len() as u32 - 1)
    }

    /// The file with the given id.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// `file:line:col` of the start of a span.
    pub fn describe(&self, span: Span) -> String {
        let f = self.get(span.file);
        let (line, col) = f.line_col(span.start);
        format!("{}:{}:{}", f.name, line, col)
    }
}

/// A syntax error: a message and where it is.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// A syntax kind as a user reads it: `` `;` ``, `an identifier`, ...
fn describe_kind(kind: rnix::SyntaxKind) -> String {
    use rnix::SyntaxKind::*;
    let token = match kind {
        TOKEN_SEMICOLON => ";",
        TOKEN_ASSIGN => "=",
        TOKEN_L_BRACE => "{",
        TOKEN_R_BRACE => "}",
        TOKEN_L_PAREN => "(",
        TOKEN_R_PAREN => ")",
        TOKEN_L_BRACK => "[",
        TOKEN_R_BRACK => "]",
        TOKEN_COLON => ":",
        TOKEN_COMMA => ",",
        TOKEN_DOT => ".",
        TOKEN_QUESTION => "?",
        TOKEN_AT => "@",
        TOKEN_IN => "in",
        TOKEN_THEN => "then",
        TOKEN_ELSE => "else",
        TOKEN_INTERPOL_END => "}",
        TOKEN_IDENT => return "an identifier".into(),
        TOKEN_STRING_END => return "the end of the string".into(),
        other => {
            let name = format!("{other:?}");
            let name = name.trim_start_matches("TOKEN_").trim_start_matches("NODE_");
            return name.to_lowercase().replace('_', " ");
        }
    };
    format!("`{token}`")
}

fn describe_kinds(kinds: &[rnix::SyntaxKind]) -> String {
    let names: Vec<String> = kinds.iter().map(|k| describe_kind(*k)).collect();
    match names.as_slice() {
        [one] => one.clone(),
        _ => format!("one of {}", names.join(", ")),
    }
}

/// Parses `text` (already in the source map as `file`). Never panics.
pub fn parse(file: FileId, text: &str) -> (rnix::Root, Vec<SyntaxError>) {
    let parsed = rnix::Root::parse(text);
    let end = text.len() as u32;
    let errors = parsed
        .errors()
        .iter()
        .map(|e| {
            use rnix::ParseError as P;
            let (message, range) = match e {
                P::Unexpected(r) => ("syntax error, unexpected input".to_string(), Some(*r)),
                P::UnexpectedExtra(r) => {
                    ("syntax error, unexpected extra input".to_string(), Some(*r))
                }
                P::UnexpectedWanted(got, r, want) => (
                    format!(
                        "syntax error, unexpected {}, expected {}",
                        describe_kind(*got),
                        describe_kinds(want)
                    ),
                    Some(*r),
                ),
                P::UnexpectedDoubleBind(r) => ("pattern is bound twice".to_string(), Some(*r)),
                P::UnexpectedEOF => ("syntax error, unexpected end of file".to_string(), None),
                P::UnexpectedEOFWanted(want) => (
                    format!(
                        "syntax error, unexpected end of file, expected {}",
                        describe_kinds(want)
                    ),
                    None,
                ),
                P::DuplicatedArgs(r, name) => {
                    (format!("duplicate formal function argument `{name}`"), Some(*r))
                }
                P::RecursionLimitExceeded => {
                    ("syntax error, expression nested too deeply".to_string(), None)
                }
                other => (format!("syntax error: {other}"), None),
            };
            let span = match range {
                Some(r) => Span::new(file, r),
                None => Span { file, start: end, end },
            };
            SyntaxError { message, span }
        })
        .collect::<Vec<_>>();
    // rnix may report the same place more than once; keep the most specific message.
    let mut deduped: Vec<SyntaxError> = Vec::new();
    for e in errors {
        match deduped.iter_mut().find(|d| d.span == e.span) {
            Some(d) if e.message.len() > d.message.len() => *d = e,
            Some(_) => {}
            None => deduped.push(e),
        }
    }
    (parsed.tree(), deduped)
}
