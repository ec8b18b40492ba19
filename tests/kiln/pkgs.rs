//! The package set end to end: everything builds from the upstream tarballs and passes its
//! tests; a change to a stage-1 tool rebuilds exactly what uses it, or only the tool when its
//! output does not change; hello's closure is the store's alone; builds are reproducible.
//!
//! One test does it all on one store, since a full build takes minutes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{TestStore, summary};

fn upstream() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream");
    if dir.join("SHA256SUMS").exists() {
        Some(dir)
    } else {
        eprintln!(
            "../shared/upstream is missing: skipping the package-set test, which needs its tarballs"
        );
        None
    }
}

fn pkgs() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgs").to_string_lossy().into_owned()
}

/// An overlay that changes bzip2's install script by `addition`.
fn bzip2_overlay(addition: &str) -> String {
    format!(
        "[ (final: prev: {{ stage1 = prev.stage1 // {{ bzip2 = prev.stage1.bzip2.overrideAttrs \
         (old: {{ postInstall = old.postInstall + \"{addition}\"; }}); }}; }}) ]"
    )
}

/// Runs `kiln build --json` on the package set and returns its events.
fn build(s: &TestStore, mirror: &Path, args: &[&str]) -> Vec<Value> {
    let pkgs = pkgs();
    let mut all = vec!["--no-link", "--mirror", mirror.to_str().unwrap(), &pkgs];
    all.extend_from_slice(args);
    s.build_json(&all, true)
}

/// The names (without version) of the derivations that finished with `status`.
fn finished(events: &[Value], status: &str) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e["event"] == "finish" && e["status"] == status)
        .map(|e| {
            let drv = e["drv"].as_str().unwrap();
            let name = &drv[drv.rfind('/').unwrap() + 34..drv.len() - 4];
            match name
                .rfind('-')
                .filter(|&i| name[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
            {
                Some(i) => name[..i].to_owned(),
                None => name.to_owned(),
            }
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Tells whether `bytes` name a path under the host's `/usr` or `/lib`: `/usr/` or `/lib` not
/// preceded by a character of a path (so a store path's own `.../lib/...` does not count).
fn refers_to_host(bytes: &[u8]) -> Option<usize> {
    let is_path_char = |b: u8| b.is_ascii_alphanumeric() || b"/._+-=?".contains(&b);
    for needle in [&b"/usr/"[..], b"/lib/", b"/lib64/"] {
        for i in 0..bytes.len().saturating_sub(needle.len() - 1) {
            if &bytes[i..i + needle.len()] == needle && (i == 0 || !is_path_char(bytes[i - 1])) {
                return Some(i);
            }
        }
    }
    None
}

fn files(root: &Path, out: &mut Vec<PathBuf>) {
    let meta = std::fs::symlink_metadata(root).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            files(&e.unwrap().path(), out);
        }
    } else {
        out.push(root.to_owned());
    }
}

#[test]
fn the_package_set_builds_rebuilds_little_and_reproduces() {
    let Some(mirror) = upstream() else { return };
    let s = TestStore::new();
    let store = s.open();

    // Everything builds, and every package's test passes (a test fails its build otherwise).
    let events = build(&s, &mirror, &["-A", "all"]);
    let sum = summary(&events);
    assert_eq!(sum["failed"].as_u64(), Some(0), "{sum}");
    let built = finished(&events, "built");
    for name in [
        "make", "sed", "patch", "m4", "xz", "bzip2", "musl", "zlib", "pcre2", "lua", "hello",
        "greet",
    ] {
        assert!(built.contains(name), "{name} was not built: {built:?}");
        if name != "greet" {
            assert!(built.contains(&format!("test-{name}")), "test-{name} did not run: {built:?}");
        }
    }
    assert!(built.contains("test-demo"));

    // A second run builds nothing.
    let sum = summary(&build(&s, &mirror, &["-A", "all"])).clone();
    assert_eq!((sum["built"].as_u64(), sum["cut_off"].as_u64()), (Some(0), Some(0)), "{sum}");

    // A change to bzip2's output rebuilds bzip2 and exactly what uses it: stage 2 and the
    // tests of those packages; not the other stage-1 tools, nor the demo.
    let changed = bzip2_overlay("\\necho changed > $out/kiln-note\\n");
    let events = build(&s, &mirror, &["-A", "all", "--arg", "overlays", &changed]);
    let stage2 = ["musl", "zlib", "pcre2", "lua", "hello"];
    let mut want = set(&["bzip2", "test-bzip2"]);
    for p in stage2 {
        want.insert(p.to_owned());
        want.insert(format!("test-{p}"));
    }
    assert_eq!(finished(&events, "built"), want);

    // A comment changes bzip2's build but not its output: bzip2 alone is rebuilt, and
    // `--explain` says why, and that what follows may be cut off.
    let comment = bzip2_overlay("\\n# only a comment\\n");
    let plan =
        build(&s, &mirror, &["-A", "all", "--arg", "overlays", &comment, "--dry-run", "--explain"]);
    let explained: Vec<&Value> = plan[0]["to_build"].as_array().unwrap().iter().collect();
    let why = |name: &str| -> Vec<String> {
        let item = explained
            .iter()
            .find(|i| i["drv"].as_str().unwrap().contains(&format!("-{name}-")))
            .unwrap();
        item["explanation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(why("bzip2"), ["attributes changed since the previous build: `postInstall`"]);
    assert!(why("musl").iter().any(|l| l.starts_with("input `bzip2-1.0.8` changed (it is to be built first; if its output comes out the same, this may be cut off)")), "{:?}", why("musl"));
    let events = build(&s, &mirror, &["-A", "all", "--arg", "overlays", &comment]);
    assert_eq!(finished(&events, "built"), set(&["bzip2"]));
    let mut cut = set(&["test-bzip2"]);
    for p in stage2 {
        cut.insert(p.to_owned());
        cut.insert(format!("test-{p}"));
    }
    assert_eq!(finished(&events, "cut-off"), cut);

    // hello's closure is hello and musl's run-time output, and none of its files names the
    // host's `/usr` or `/lib`.
    let hello_out = summary(&build(&s, &mirror, &["-A", "hello"]))["outputs"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["out"]
        .as_str()
        .unwrap()
        .to_owned();
    let closure = s.ok(&["store", "closure", &hello_out]);
    let names: BTreeSet<&str> = closure.lines().map(|p| &p[p.rfind('/').unwrap() + 34..]).collect();
    assert_eq!(names, BTreeSet::from(["hello-2.10", "musl-1.2.3"]));
    for path in closure.lines() {
        let mut all = Vec::new();
        files(Path::new(path), &mut all);
        for f in all {
            let bytes = std::fs::read_link(&f)
                .map(|t| t.into_os_string().into_encoded_bytes())
                .or_else(|_| std::fs::read(&f))
                .unwrap();
            if let Some(at) = refers_to_host(&bytes) {
                let around =
                    String::from_utf8_lossy(&bytes[at..(at + 40).min(bytes.len())]).into_owned();
                panic!("{} refers to the host at byte {at}: {around:?}", f.display());
            }
        }
    }
    let info = s.ok(&["store", "info", "--closure", &hello_out]);
    assert!(info.contains("(2 paths)"), "{info}");

    // Rebuilding hello, lua and zlib gives the same bytes.
    let events = build(&s, &mirror, &["-A", "hello", "-A", "lua", "-A", "zlib", "--check"]);
    let checks: Vec<&Value> = events.iter().filter(|e| e["event"] == "check").collect();
    assert!(checks.len() >= 3, "{checks:?}");
    assert!(checks.iter().all(|c| c["identical"] == true), "{checks:?}");

    // A fresh store at the same place gives the same content hashes.
    let hello_path = store.resolve(&hello_out).unwrap();
    let before = store.query_info(&hello_path).unwrap().unwrap().nar_hash;
    drop(store);
    std::fs::remove_dir_all(s.root()).unwrap_or_else(|_| {
        // Store paths are read-only: make them writable first.
        let _ = std::process::Command::new("chmod").args(["-R", "u+w"]).arg(s.root()).status();
        std::fs::remove_dir_all(s.root()).unwrap();
    });
    let again = summary(&build(&s, &mirror, &["-A", "hello"]))["outputs"].clone();
    let again_out =
        again.as_object().unwrap().values().next().unwrap()["out"].as_str().unwrap().to_owned();
    assert_eq!(again_out, hello_out, "the same path, from the same contents");
    let store = s.open();
    assert_eq!(
        store.query_info(&store.resolve(&again_out).unwrap()).unwrap().unwrap().nar_hash,
        before
    );
}
