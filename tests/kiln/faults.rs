//! Fault injection: `kiln` is killed outright (`SIGKILL`, as by `kill -9`) at every named point
//! of adding, building, registering, linking roots, collecting and deduplicating
//! (`kiln_store::fault::POINTS`). After each kill the store verifies with nothing worse than
//! unregistered debris, the same command run again succeeds, and then the store verifies clean.

use std::os::unix::process::ExitStatusExt;

use crate::support::{MK, TestStore, assert_success, summary, write};

/// Derivations for the build points: a plain one, one with two outputs, a content-addressed
/// one, and one that writes a log while it runs.
const BUILDS: &str = r#"
let
  @mk@
in {
  plain = mk "plain" "echo plain > $out";
  twoOut = derivation {
    name = "two";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo out > $out; echo dev > $dev" ];
    outputs = [ "out" "dev" ];
    __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
  };
  ca = derivation {
    name = "ca";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo ca > $out" ];
    __contentAddressed = true;
    __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
  };
  logs = mk "logs" "echo starting; echo more; echo logs > $out";
}
"#;

/// One fault: the point, how to prepare the store, the command that is killed and run again
/// (`@file` stands for the Nix file above, `@scratch/NAME` for a file beside the store), and
/// what must hold once it has succeeded.
struct Fault {
    point: &'static str,
    setup: fn(&TestStore),
    command: &'static [&'static str],
    after: fn(&TestStore),
}

fn file(s: &TestStore) -> String {
    s.scratch("builds.nix").to_str().unwrap().to_owned()
}

fn no_setup(_: &TestStore) {}
fn nothing_more(_: &TestStore) {}

/// Builds `attr` again (nothing left to do), then checks that each of its outputs holds what
/// the builder wrote: `name=text` pairs.
fn built(s: &TestStore, attr: &str, expected: &[&str]) {
    let events = s.build_json(&[&file(s), "-A", attr, "--no-link"], true);
    let sum = summary(&events);
    assert_eq!(sum["built"].as_u64(), Some(0), "{sum}");
    let outs = sum["outputs"].as_object().unwrap().values().next().unwrap().clone();
    for pair in expected {
        let (name, text) = pair.split_once('=').unwrap();
        let path = outs[name].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), format!("{text}\n"), "{path}");
    }
}

/// Builds `plain` and leaves it unrooted, for the collection points.
fn unrooted(s: &TestStore) {
    s.ok(&["build", &file(s), "-A", "plain", "--no-link"]);
}

/// Adds the same text twice under different names, for deduplication.
fn two_copies(s: &TestStore) {
    for name in ["a", "b"] {
        let f = s.scratch(name);
        write(&f, &vec![b'x'; 8192]);
        s.ok(&["store", "add", f.to_str().unwrap()]);
    }
}

/// The result link keeps its output, also through a collection.
fn result_is_rooted(s: &TestStore) {
    let result = s.scratch("result");
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "plain\n");
    s.ok(&["store", "gc"]);
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "plain\n");
}

const ADD: &[&str] = &["store", "add", "@scratch/added.txt"];
const INSTANTIATE: &[&str] = &["instantiate", "@file", "-A", "plain"];
const BUILD_PLAIN: &[&str] = &["build", "@file", "-A", "plain", "--no-link"];
const GC: &[&str] = &["store", "gc"];

fn faults() -> Vec<Fault> {
    fn f(
        point: &'static str,
        setup: fn(&TestStore),
        command: &'static [&'static str],
        after: fn(&TestStore),
    ) -> Fault {
        Fault { point, setup, command, after }
    }
    let plain: fn(&TestStore) = |s| built(s, "plain", &["out=plain"]);
    vec![
        f("add.copied", no_setup, ADD, nothing_more),
        f("add.moved", no_setup, ADD, nothing_more),
        f("add.registered", no_setup, ADD, nothing_more),
        f("batch.moved", no_setup, INSTANTIATE, nothing_more),
        f("batch.synced", no_setup, INSTANTIATE, nothing_more),
        f("build.logging", no_setup, &["build", "@file", "-A", "logs", "--no-link"], |s| {
            built(s, "logs", &["out=logs"])
        }),
        f("build.ran", no_setup, BUILD_PLAIN, plain),
        f("build.moved", no_setup, BUILD_PLAIN, plain),
        f("build.moved@2", no_setup, &["build", "@file", "-A", "twoOut", "--no-link"], |s| {
            built(s, "twoOut", &["out=out", "dev=dev"])
        }),
        f("build.registered", no_setup, BUILD_PLAIN, plain),
        f("ca.moved", no_setup, &["build", "@file", "-A", "ca", "--no-link"], |s| {
            built(s, "ca", &["out=ca"])
        }),
        f(
            "root.linked",
            no_setup,
            &["build", "@file", "-A", "plain", "-o", "@scratch/result"],
            result_is_rooted,
        ),
        f("gc.unregistered", unrooted, GC, nothing_more),
        f("gc.trashed", unrooted, GC, nothing_more),
        f("optimise.linked", two_copies, &["store", "optimise"], nothing_more),
    ]
}

/// Runs `kiln store verify --check-contents` and returns the problems it printed, one per
/// line (nothing when the store is consistent).
fn problems(s: &TestStore) -> Vec<String> {
    let out = s.kiln().args(["store", "verify", "--check-contents"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(out.status.success(), lines.is_empty(), "{text}");
    lines
}

#[test]
fn a_kill_at_any_fault_point_leaves_a_store_that_verifies_and_works() {
    let mut covered: Vec<&str> = Vec::new();
    for fault in faults() {
        let s = TestStore::new();
        write(&s.scratch("builds.nix"), BUILDS.replace("@mk@", MK).as_bytes());
        write(&s.scratch("added.txt"), b"added by the fault test\n");
        (fault.setup)(&s);
        let args: Vec<String> = fault
            .command
            .iter()
            .map(|a| match a.strip_prefix("@scratch/") {
                Some(name) => s.scratch(name).to_str().unwrap().to_owned(),
                None if *a == "@file" => file(&s),
                None => (*a).to_owned(),
            })
            .collect();
        let out = s.kiln().args(&args).env("KILN_FAULT", fault.point).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{} with KILN_FAULT={} should be killed; it ended with {}:\n{stderr}",
            args.join(" "),
            fault.point,
            out.status
        );
        let name = fault.point.split('@').next().unwrap();
        assert!(stderr.contains(&format!("fault injected at `{name}`")), "{stderr}");
        covered.push(name);

        // A kill may leave debris that no one registered, never a damaged or lost path.
        for p in problems(&s) {
            assert!(p.contains("not registered"), "after a kill at {}: {p}", fault.point);
        }
        let again = s.kiln().args(&args).current_dir(s.tmp.path()).output().unwrap();
        assert_success(&again, &format!("{} after a kill at {}", args.join(" "), fault.point));
        (fault.after)(&s);
        // A collection clears what the kill left; then nothing is wrong.
        s.ok(&["store", "gc", "--dry-run"]);
        s.ok(&["store", "gc"]);
        assert_eq!(problems(&s), Vec::<String>::new(), "after a kill at {}", fault.point);
        let leftovers: Vec<_> = std::fs::read_dir(s.root().join("tmp"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "after a kill at {}, tmp still holds {leftovers:?}",
            fault.point
        );
    }
    for point in kiln_store::fault::POINTS {
        assert!(covered.contains(point), "no test kills kiln at `{point}`");
    }
}
