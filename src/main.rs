//! The `kiln` command line: turns arguments into calls of the store, evaluator and builder
//! crates, and is the only place that prints what a user reads.

mod cli;
mod ui;

use std::process::ExitCode;

use clap::Parser;

// Evaluation and planning allocate many small, short-lived values; mimalloc serves them in a
// fraction of the time glibc's allocator takes (see the README's performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    init_logging();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if ui::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            ui::print_error(&err);
            ExitCode::from(1)
        }
    }
}

/// Developer logs go to stderr, filtered by `KILN_LOG` (for example `KILN_LOG=kiln_store=debug`);
/// without it kiln logs nothing.
fn init_logging() {
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG") else { return };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
