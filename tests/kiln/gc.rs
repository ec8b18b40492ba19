//! `kiln store gc` and `kiln store roots` end to end: roots keep closures, removed links stop
//! counting, a running build's inputs and outputs survive.

use std::process::Stdio;

use crate::support::{TestStore, summary};

/// `leaf <- middle <- top`: `top` names `middle` in its output; `middle` copies the leaf's text.
const CHAIN: &str = r#"
{ sleep ? "" }:
let
  @mk@
  leaf = mk "leaf" "echo leaf > $out";
  middle = mk "middle" "read x < ${leaf}; echo \"middle($x)\" > $out";
  top = mk "top" "${sleep} echo ${middle} > $out";
in { inherit leaf middle top; }
"#;

fn outputs(events: &[serde_json::Value]) -> Vec<String> {
    let outs = summary(events)["outputs"].as_object().unwrap();
    outs.values().map(|o| o["out"].as_str().unwrap().to_owned()).collect()
}

fn valid(s: &TestStore, path: &str) -> bool {
    let store = s.open();
    store.is_valid(&store.resolve(path).unwrap()).unwrap()
}

#[test]
fn roots_keep_closures_and_removed_links_stop_counting() {
    let s = TestStore::new();
    let f = &s.nix_file("chain.nix", CHAIN);
    let events = s.build_json(&[f, "-A", "top"], true);
    let top = outputs(&events).remove(0);
    let leaf = outputs(&s.build_json(&[f, "-A", "leaf", "--no-link"], true)).remove(0);
    let middle = std::fs::read_to_string(&top).unwrap().trim().to_owned();

    let roots = s.ok(&["store", "roots"]);
    assert!(
        roots.contains(&format!("{} -> {top} (2 paths", s.tmp.path().join("result").display())),
        "{roots}"
    );

    // A dry run deletes nothing; a collection keeps `top` and `middle`, which it names.
    let dry = s.ok(&["store", "gc", "--dry-run"]);
    assert!(dry.contains(&leaf) && !dry.contains(&top), "{dry}");
    assert!(valid(&s, &leaf));
    let deleted = s.ok(&["store", "gc"]);
    assert!(deleted.contains(&leaf) && deleted.contains(".drv"), "{deleted}");
    assert!(valid(&s, &top) && valid(&s, &middle) && !valid(&s, &leaf));
    assert!(!std::path::Path::new(&leaf).exists(), "its files went too");
    assert_eq!(s.ok(&["store", "gc"]), "", "nothing more to collect");

    // Once the link is gone, so is what it kept.
    std::fs::remove_file(s.tmp.path().join("result")).unwrap();
    let deleted = s.ok(&["store", "gc"]);
    assert!(deleted.contains(&top) && deleted.contains(&middle), "{deleted}");
    assert_eq!(s.open().all_paths().unwrap(), vec![]);
}

#[test]
fn keep_derivations_and_max_freed() {
    let s = TestStore::new();
    let f = &s.nix_file("chain.nix", CHAIN);
    s.build_json(&[f, "-A", "top"], true);
    // The derivations that built the kept paths stay with --keep-derivations.
    let deleted = s.ok(&["store", "gc", "--keep-derivations"]);
    assert!(!deleted.contains("-top.drv") && !deleted.contains("-middle.drv"), "{deleted}");
    assert!(deleted.contains("-leaf"), "{deleted}");

    // --max-freed stops as soon as enough is freed.
    std::fs::remove_file(s.tmp.path().join("result")).unwrap();
    let one = s.ok(&["store", "gc", "--max-freed", "1"]);
    assert_eq!(one.lines().count(), 1, "{one}");
    let rest = s.ok(&["store", "gc"]);
    assert!(rest.lines().count() >= 2, "{rest}");
}

#[test]
fn collection_during_a_build_keeps_its_inputs_and_outputs() {
    let s = TestStore::new();
    let f = &s.nix_file("chain.nix", CHAIN);
    let build = s
        .kiln()
        .args([
            "build",
            "--json",
            "--no-link",
            f,
            "-A",
            "top",
            "--argstr",
            "sleep",
            "/bin/sleep 2.5;",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until `top` runs (its inputs are built), then collect while it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"/bin/sleep\x002.5\0"))
    {
        assert!(std::time::Instant::now() < deadline, "the slow build never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let collected = s.ok(&["store", "gc"]);
    assert!(!collected.contains("-middle") && !collected.contains("-top"), "{collected}");
    let out = build.wait_with_output().unwrap();
    crate::support::assert_success(&out, &"the build during the collection");
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let top = outputs(&events).remove(0);
    let middle = std::fs::read_to_string(&top).unwrap().trim().to_owned();
    assert!(valid(&s, &top) && valid(&s, &middle), "the build's output and input survived");
    // Once the build is over and nothing links to it, it goes.
    let after = s.ok(&["store", "gc"]);
    assert!(after.contains(&top), "{after}");
}
