//! The evaluator's depth limits: deep recursion that CppNix 2.8 evaluates works, and anything
//! deeper ends in error E019 with status 1, never a crash.

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
