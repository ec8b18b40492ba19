//! The Nix-language evaluator: parsing, lowering and lazy evaluation of package expressions.
//!
//! A session is an [`Evaluator`]: it owns the [`syntax::SourceMap`] of every file it read, the
//! base environment of builtins and the import cache, and reaches files and the store only
//! through an [`io::EvalIo`]. [`Evaluator::load`] parses and lowers a file, [`Evaluator::eval_root`]
//! evaluates it, and [`print`](mod@print) turns values into the text `nix-instantiate --eval` prints.
//! Errors are plain data ([`Diagnostic`]); drawing them is the command line's job.

mod builtins;
pub mod error;
pub mod eval;
pub mod io;
pub mod lower;
pub mod print;
pub mod show;
pub mod syntax;
mod toplevel;
pub mod value;

pub use error::{Diagnostic, ErrorKind, Frame};
pub use eval::{EvalOptions, Evaluator};
pub use io::{EvalIo, FileType, PlainIo};
pub use value::Value;
