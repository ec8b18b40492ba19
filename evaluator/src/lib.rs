//! The Nix-language evaluator: parsing, lowering and lazy evaluation of package expressions.
//!
//! A session is an [`Evaluator`]: it owns the [`syntax::SourceMap`] of every file it read, the
//! base environment of builtins and the import cache, and reaches files and the store only
//! through an [`io::EvalIo`]. [`Evaluator::load`] parses and lowers a file, [`Evaluator::eval_root`]
//! evaluates it, and [`print`](mod@print) turns values into the text `nix-instantiate --eval` prints.
//! Errors are plain data ([`Diagnostic`]); drawing them is the command line's job.
//!
//! The store is reached only through [`io::EvalIo`]: `store_dir`, `add_path_to_store` (path
//! interpolation, `builtins.path`, `filterSource`), `add_text_to_store` (`toFile`) and
//! `write_derivation` (`derivationStrict` hands over a complete [`io::DerivationRequest`]:
//! environment, arguments, input derivations and sources from string contexts, fixed-output
//! hash in hexadecimal; the store computes the paths and writes the `.drv`). [`PlainIo`]
//! implements them with a stand-in hash so the evaluator runs without a store.
//!
//! Evaluation recurses on the Rust stack: run it on a thread with a large stack (the command
//! line uses 1 GiB); depth is bounded, so deep recursion ends in error `E019`, not a crash.

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
