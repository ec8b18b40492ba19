//! The evaluator's limits: deep recursion that CppNix 2.8 evaluates works, and anything deeper
//! ends in error E019 with status 1; code that wants more memory than `--max-memory` ends in
//! error E022 pointing at the code, never a crash or the machine's OOM killer.

use crate::support::TestStore;

/// A value nested a million levels deep, built without deep recursion.
const NESTED: &str = "builtins.foldl' (acc: _: [ acc ]) 0 (builtins.genList (x: x) 1000000)";

#[test]
fn recursion_as_deep_as_cppnix_goes_evaluates() {
    // CppNix 2.8 evaluates about 73,000 levels of this function on its 8 MiB stack.
    let t = TestStore::new();
    let sum = "let f = k: if k == 0 then 0 else k + f (k - 1); in f 75000";
    assert_eq!(t.ok(&["eval", "-E", sum]).trim(), "2812537500");
}

#[test]
fn endless_recursion_is_an_error_not_a_crash() {
    let t = TestStore::new();
    let stderr = t.fails(&["eval", "-E", "let f = n: 1 + f (n + 1); in f 0"], 1);
    assert!(stderr.contains("error[E019]: stack overflow"), "{stderr}");
    assert!(stderr.contains("«string»:1:"), "the error points at the code: {stderr}");
}

#[test]
fn the_call_depth_limit_is_configurable() {
    let t = TestStore::new();
    let count = "let f = k: if k == 0 then 0 else 1 + f (k - 1); in f 2000";
    assert_eq!(t.ok(&["eval", "--max-call-depth", "3000", "-E", count]).trim(), "2000");
    let stderr = t.fails(&["eval", "--max-call-depth", "1000", "-E", count], 1);
    assert!(stderr.contains("max-call-depth exceeded"), "{stderr}");
}

#[test]
fn deeply_nested_values_give_an_answer_or_an_error_never_a_crash() {
    let t = TestStore::new();
    for (what, expr, answer) in [
        ("comparing", format!("let a = {NESTED}; b = {NESTED}; in a == b"), "true"),
        ("ordering", format!("let a = {NESTED}; b = {NESTED}; in a < b"), "false"),
        ("converting to a string", format!("builtins.toString ({NESTED})"), "\"0\""),
    ] {
        let out = t.kiln().args(["eval", "--strict", "-E", &expr]).output().expect("run kiln");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), answer, "{what}"),
            Some(1) => assert!(stderr.contains("error[E019]: stack overflow"), "{what}: {stderr}"),
            status => panic!("{what}: exit status {status:?} (killed?); stderr:\n{stderr}"),
        }
    }
    // JSON nests at most 10,000 deep, as in CppNix.
    let stderr = t.fails(&["eval", "-E", &format!("builtins.toJSON ({NESTED})")], 1);
    assert!(stderr.contains("error[E019]: stack overflow"), "{stderr}");
}

/// Runs `expr` with a memory limit of `limit` and returns its stderr, asserting it failed with
/// E022 and status 1 (a crash or a kill would have no status or another one).
fn out_of_memory(t: &TestStore, limit: &str, expr: &str) -> String {
    let out = t.kiln().args(["eval", "--strict", "--max-memory", limit, "-E", expr]).output();
    let out = out.expect("run kiln");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{expr}: {stderr}");
    assert!(
        stderr.contains("error[E022]: evaluation needs more memory than its limit of"),
        "{stderr}"
    );
    assert!(stderr.contains("«string»:1:"), "the error points at the code: {stderr}");
    stderr
}

#[test]
fn a_huge_list_or_string_is_an_error_not_a_crash() {
    let t = TestStore::new();
    // One request far over the limit: refused before it is made.
    let stderr = out_of_memory(&t, "256M", "builtins.length (builtins.genList (x: x) 4000000000)");
    assert!(stderr.contains("MiB more asked for"), "{stderr}");
    out_of_memory(
        &t,
        "256M",
        "builtins.concatLists (builtins.genList (_: builtins.genList (x: x) 1000000) 1000)",
    );
    // A string doubled until it no longer fits: by `+`, by interpolation, by concatenation.
    for double in ["s + s", "\"${s}${s}\"", "builtins.concatStringsSep \"\" [ s s ]"] {
        let expr = format!(
            "let f = s: n: if n == 0 then builtins.stringLength s else f ({double}) (n - 1); in f \"x\" 40"
        );
        out_of_memory(&t, "256M", &expr);
    }
    // Growth a little at a time, every step small: found by the periodic measure.
    out_of_memory(
        &t,
        "128M",
        "let go = n: acc: if n == 0 then acc else go (n - 1) { prev = acc; inherit n; }; in (go 100000000 null).n",
    );
    // Under the limit the same code answers.
    let ok = t.ok(&[
        "eval",
        "--max-memory",
        "256M",
        "-E",
        "builtins.length (builtins.genList (x: x) 1000)",
    ]);
    assert_eq!(ok.trim(), "1000");
    // `tryEval` does not hide it: running out of memory is not a catchable error.
    out_of_memory(&t, "256M", "(builtins.tryEval (builtins.genList (x: x) 4000000000)).success");
}

#[test]
fn max_memory_sizes_are_checked() {
    let t = TestStore::new();
    let stderr = t.fails(&["eval", "--max-memory", "12Q", "-E", "1"], 2);
    assert!(stderr.contains("`12Q` has an unknown unit"), "{stderr}");
    assert_eq!(t.ok(&["eval", "--max-memory", "0", "-E", "1"]).trim(), "1");
}
