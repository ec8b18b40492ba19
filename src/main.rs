//! The `kiln` command line: turns arguments into calls of the store, evaluator and builder
//! crates, and is the only place that prints what a user reads.

mod cli;
mod ui;

use std::process::ExitCode;

use clap::Parser;

// Evaluation and planning allocate many small, short-lived values; mimalloc serves them in a
// fraction of the time glibc's allocator takes (see the README's performance section).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// mimalloc, asked for plain blocks where the alignment allows: every mimalloc block is aligned
/// to 8 bytes, and its aligned entry point costs twice as much per call as the plain one.
struct Allocator;

// SAFETY: each method passes the request to mimalloc, through its aligned entry points unless
// the alignment is at most 8, which every mimalloc block has.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() <= 8 {
            // SAFETY: as the trait requires, `layout` has a non-zero size.
            unsafe { libmimalloc_sys::mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.align() <= 8 {
            // SAFETY: as in `alloc`.
            unsafe { libmimalloc_sys::mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: as in `alloc`.
            unsafe { libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from mimalloc, which frees blocks of either entry point alike.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        if layout.align() <= 8 {
            // SAFETY: `ptr` came from this allocator with `layout`; `new` is non-zero.
            unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new).cast() }
        } else {
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new, layout.align()).cast() }
        }
    }
}

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
