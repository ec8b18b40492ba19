//! Fault injection, for kiln's own tests: named points where a crash would hurt most.
//!
//! Built with the `fault-injection` feature (only kiln's tests turn it on), a process whose
//! environment has `KILN_FAULT=NAME` kills itself with `SIGKILL`, as `kill -9` would, the first
//! time it reaches the point `NAME`; `KILN_FAULT=NAME@N` waits for the `N`th time. Without the
//! feature every point compiles to nothing.

/// Every fault point, in the order a path meets them. The fault tests reach each one.
pub const POINTS: &[&str] = &[
    // Adding a path (`kiln store add`, `import`, sources, `toFile`).
    "add.copied",
    "add.moved",
    "add.registered",
    // Text files written in a batch (`.drv` files during evaluation).
    "batch.moved",
    "batch.synced",
    // Builds: the builder has run, outputs are moved and registered, the trace is recorded.
    "build.logging",
    "build.ran",
    "build.moved",
    "build.registered",
    "ca.moved",
    // Roots, garbage collection and deduplication.
    "root.linked",
    "gc.unregistered",
    "gc.trashed",
    "optimise.linked",
];

/// Kills this process outright if `KILN_FAULT` names this point (see the module
/// documentation).
#[cfg(feature = "fault-injection")]
pub fn point(name: &'static str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static WANTED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);
    debug_assert!(POINTS.contains(&name), "`{name}` is not listed in fault::POINTS");
    let wanted = WANTED.get_or_init(|| {
        let spec = std::env::var("KILN_FAULT").ok()?;
        Some(match spec.split_once('@') {
            Some((point, n)) => (point.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        })
    });
    if let Some((point, n)) = wanted
        && point == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("kiln: fault injected at `{name}`");
        // SAFETY: plain system calls; the process ends here, as with `kill -9`.
        unsafe {
            nix::libc::kill(nix::libc::getpid(), nix::libc::SIGKILL);
        }
        loop {
            std::thread::park();
        }
    }
}

/// Does nothing: this build has no fault injection.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_name: &'static str) {}
