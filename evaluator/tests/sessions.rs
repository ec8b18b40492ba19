//! A program that makes many evaluation sessions (the fuzz targets, an editor, a test suite)
//! gets their memory back when they end: a session does not keep itself alive through the
//! cycles of its builtins (`builtins.builtins`, `derivation`). Fuzzing found this: each
//! session kept about 18 kB.

use kiln_evaluator::{EvalOptions, Evaluator, PlainIo};

fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB")
}

#[test]
fn ended_sessions_free_their_memory() {
    let session = || {
        let mut ev = Evaluator::new(Box::new(PlainIo::default()), EvalOptions::default());
        let e = ev.load("t.nix".into(), None, "builtins.length [ 1 2 ]".into(), "/".as_ref());
        let v = ev.eval_root(&e.expect("parses")).expect("evaluates");
        assert!(matches!(v, kiln_evaluator::Value::Int(2)));
    };
    // Warm up: the interner and the allocator's first pages.
    for _ in 0..200 {
        session();
    }
    let before = resident_kib();
    for _ in 0..5_000 {
        session();
    }
    let grown = resident_kib().saturating_sub(before);
    // Kept sessions would take about 90 MB here.
    assert!(grown < 16 * 1024, "5,000 ended sessions kept {grown} kB");
}
