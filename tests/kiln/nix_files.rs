//! `kiln build FILE` and `kiln instantiate` end to end: Nix files in, built outputs out.

use serde_json::Value;

use crate::support::{TestStore, summary, write};

/// A chain `leaf -> middle -> top` whose leaf prints `--argstr text`, with a comment in the
/// leaf's script from `--argstr comment`; `--arg ca true` makes every derivation
/// content-addressed.
const CHAIN: &str = r#"
{ text ? "one", comment ? "", ca ? false }:
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
    __contentAddressed = ca;
  };
  leaf = mk "leaf" "echo ${text} > $out # ${comment}";
  middle = mk "middle" "read x < ${leaf}; echo \"middle($x)\" > $out";
  top = mk "top" "read x < ${middle}; echo \"top($x)\" > $out; echo ${middle} >> $out";
in { inherit leaf middle top; }
"#;

fn build(s: &TestStore, args: &[&str]) -> Value {
    summary(&s.build_json(args, true)).clone()
}

fn counts(summary: &Value) -> (u64, u64, u64) {
    let n = |k: &str| summary[k].as_u64().unwrap();
    (n("built"), n("reused"), n("cut_off"))
}

#[test]
fn a_nix_file_builds_and_rebuilds_only_what_changed() {
    let s = TestStore::new();
    let file = s.scratch("chain.nix");
    write(&file, CHAIN.as_bytes());
    let f = file.to_str().unwrap();

    assert_eq!(counts(&build(&s, &[f, "-A", "top"])), (3, 0, 0));
    let text = std::fs::read_to_string(s.tmp.path().join("result")).unwrap();
    assert!(text.starts_with("top(middle(one))\n"), "{text}");
    assert_eq!(counts(&build(&s, &[f, "-A", "top"])), (0, 1, 0));

    // Input-addressed: a comment in the leaf's script rebuilds everything after it.
    assert_eq!(counts(&build(&s, &[f, "-A", "top", "--argstr", "comment", "v2"])), (3, 0, 0));

    // Content-addressed: the same change rebuilds the leaf alone.
    assert_eq!(counts(&build(&s, &[f, "-A", "top", "--arg", "ca", "true"])), (3, 0, 0));
    let summary = build(&s, &[f, "-A", "top", "--arg", "ca", "true", "--argstr", "comment", "v3"]);
    assert_eq!(counts(&summary), (1, 0, 2), "{summary}");
    // A change of output goes all the way.
    let summary = build(&s, &[f, "-A", "top", "--arg", "ca", "true", "--argstr", "text", "two"]);
    assert_eq!(counts(&summary), (3, 0, 0), "{summary}");
    let text = std::fs::read_to_string(s.tmp.path().join("result")).unwrap();
    assert!(text.starts_with("top(middle(two))\n"), "{text}");
    // The deferred reference to `middle` became its real path.
    let middle = text.lines().nth(1).unwrap();
    assert!(s.open().is_valid(&s.open().resolve(middle).unwrap()).unwrap(), "{middle}");
}

#[test]
fn instantiate_writes_derivations_and_prints_their_paths() {
    let s = TestStore::new();
    let file = s.scratch("chain.nix");
    write(&file, CHAIN.as_bytes());
    let out = s.ok(&["instantiate", file.to_str().unwrap(), "-A", "middle", "-A", "top"]);
    let paths: Vec<&str> = out.lines().collect();
    assert_eq!(paths.len(), 2);
    assert!(paths[0].ends_with("-middle.drv") && paths[1].ends_with("-top.drv"), "{paths:?}");
    let shown: Value = serde_json::from_str(&s.ok(&["derivation", "show", paths[1]])).unwrap();
    let inputs = shown[paths[1]]["inputDrvs"].as_object().unwrap();
    assert_eq!(inputs.keys().collect::<Vec<_>>(), [&paths[0].to_owned()]);
    // Nothing was built.
    let store = s.open();
    assert!(store.all_paths().unwrap().iter().all(|p| p.is_derivation()));
}

#[test]
fn evaluation_errors_are_drawn_with_their_place() {
    let s = TestStore::new();
    let file = s.scratch("broken.nix");
    write(&file, b"{ x = 1; y = x + \"a\"; }.y\n");
    let err = s.fails(&["build", file.to_str().unwrap()], 1);
    assert!(err.contains("broken.nix:1:"), "{err}");
    let err = s.fails(&["build", "-E", "{ a = 1; }"], 1);
    assert!(err.contains("the expression has no derivations to build"), "{err}");
}

#[test]
fn content_addressed_outputs_may_refer_to_each_other() {
    let s = TestStore::new();
    let file = s.scratch("split.nix");
    write(
        &file,
        br#"derivation {
  name = "split";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  outputs = [ "out" "dev" ];
  __contentAddressed = true;
  __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
  args = [ "-c" "/bin/mkdir $out $dev; echo lib > $out/lib; echo $out > $dev/points-to-out; echo $dev > $dev/self" ];
}"#,
    );
    let summary = build(&s, &[file.to_str().unwrap(), "--no-link"]);
    let outputs = summary["outputs"].as_object().unwrap().values().next().unwrap().clone();
    let (out, dev) = (outputs["out"].as_str().unwrap(), outputs["dev"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(format!("{dev}/points-to-out")).unwrap().trim(), out);
    assert_eq!(std::fs::read_to_string(format!("{dev}/self")).unwrap().trim(), dev);
    let store = s.open();
    let dev_path = store.resolve(dev).unwrap();
    let refs = store.query_info(&dev_path).unwrap().unwrap().references;
    assert!(refs.contains(&store.resolve(out).unwrap()) && refs.contains(&dev_path), "{refs:?}");
}
