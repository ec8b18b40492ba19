//! `kiln store optimise` end to end: files two packages share become one inode, the store
//! still verifies, collection cleans the index, new paths are deduplicated when the store is set
//! to, damage in a shared file is repaired in every path, and optimising while builds run
//! leaves a store that verifies.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use crate::support::{TestStore, first_out};

/// Two packages that share a large file and a small one, and each have one of their own.
const SET: &str = r#"
{ n ? 0 }:
let
  @mk@
  shared = "seq 1 20000 > $out/big; echo licence text > $out/COPYING";
  pkg = name: mk name "mkdir $out; ${shared}; echo ${name} > $out/own";
in {
  one = pkg "one";
  two = pkg "two";
  three = pkg "three";
  many = builtins.genList (i: pkg "many-${toString n}-${toString i}") 6;
}
"#;

fn build(s: &TestStore, f: &str, attr: &str, link: &str) -> String {
    first_out(&s.build_json(&[f, "-A", attr, "-o", link], true))
}

fn inode(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().ino()
}

/// Runs `kiln store optimise` and returns what it said on stderr.
fn optimise(s: &TestStore) -> String {
    let out = s.kiln().args(["store", "optimise"]).output().unwrap();
    crate::support::assert_success(&out, &"store optimise");
    String::from_utf8(out.stderr).unwrap()
}

fn verifies(s: &TestStore) {
    let out = s.kiln().args(["store", "verify", "--check-contents"]).output().unwrap();
    crate::support::assert_success(&out, &"store verify --check-contents");
}

#[test]
fn shared_files_become_one_copy_and_the_store_still_verifies() {
    let s = TestStore::new();
    let f = &s.nix_file("set.nix", SET);
    let one = build(&s, f, "one", "r1");
    let two = build(&s, f, "two", "r2");
    let big = |p: &str| Path::new(p).join("big");
    assert_ne!(inode(&big(&one)), inode(&big(&two)));
    let size = std::fs::metadata(big(&one)).unwrap().len();
    assert!(size > 100_000);

    let said = optimise(&s);
    assert!(said.starts_with("linked 2 files to identical ones"), "{said}");
    assert_eq!(inode(&big(&one)), inode(&big(&two)));
    assert_eq!(inode(&Path::new(&one).join("COPYING")), inode(&Path::new(&two).join("COPYING")));
    assert_ne!(inode(&Path::new(&one).join("own")), inode(&Path::new(&two).join("own")));
    // The big file's copy went: at least its size was saved.
    let saved: f64 =
        said.split("saving ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(said.trim_end().ends_with("KiB") && saved * 1024.0 >= size as f64, "{said}");
    assert!(optimise(&s).starts_with("linked 0 files"), "a second run finds nothing to do");
    verifies(&s);
    assert_eq!(std::fs::read(big(&two)).unwrap(), std::fs::read(big(&one)).unwrap());

    // The index keeps an entry while some path uses it; collection drops unused ones.
    let links = s.root().join("links");
    let entries = || std::fs::read_dir(&links).unwrap().count();
    let before = entries();
    std::fs::remove_file(s.tmp.path().join("r1")).unwrap();
    s.ok(&["store", "gc"]);
    assert!(!Path::new(&one).exists());
    assert_eq!(std::fs::read(big(&two)).unwrap().len() as u64, size, "two keeps the data");
    assert!(entries() < before, "one's own files left the index");
    verifies(&s);
    std::fs::remove_file(s.tmp.path().join("r2")).unwrap();
    s.ok(&["store", "gc"]);
    assert_eq!(entries(), 0);
}

#[test]
fn auto_optimise_links_new_paths_as_they_are_registered() {
    let s = TestStore::new();
    let f = &s.nix_file("set.nix", SET);
    assert_eq!(s.ok(&["store", "config", "auto-optimise"]).trim(), "false");
    s.ok(&["store", "config", "auto-optimise", "true"]);
    assert_eq!(s.ok(&["store", "config", "auto-optimise"]).trim(), "true");
    let one = build(&s, f, "one", "r1");
    let three = build(&s, f, "three", "r3");
    assert_eq!(inode(&Path::new(&one).join("big")), inode(&Path::new(&three).join("big")));
    assert!(optimise(&s).starts_with("linked 0 files"));
    verifies(&s);

    s.ok(&["store", "config", "auto-optimise", "--unset"]);
    let two = build(&s, f, "two", "r2");
    assert_ne!(inode(&Path::new(&one).join("big")), inode(&Path::new(&two).join("big")));
    let err = s.fails(&["store", "config", "auto-optimise", "yes"], 1);
    assert!(err.contains("takes `true` or `false`"), "{err}");
}

#[test]
fn damage_to_a_shared_file_is_repaired_in_every_path() {
    let s = TestStore::new();
    let f = &s.nix_file("set.nix", SET);
    let one = build(&s, f, "one", "r1");
    let two = build(&s, f, "two", "r2");
    optimise(&s);
    let copying = Path::new(&one).join("COPYING");
    let dir = Path::new(&one);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&copying, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&copying, b"scribbled\n").unwrap();

    let out = s.kiln().args(["store", "verify", "--check-contents"]).output().unwrap();
    let found = String::from_utf8(out.stdout).unwrap();
    assert!(found.contains(&format!("{one}: its contents changed")), "{found}");
    assert!(
        found.contains(&format!("{two}: its contents changed")),
        "one inode, two paths: {found}"
    );
    assert!(found.contains("does not hold what its name says"), "{found}");

    let out = s.kiln().args(["store", "verify", "--check-contents", "--repair"]).output().unwrap();
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&copying).unwrap(), b"licence text\n");
    assert_eq!(std::fs::read(Path::new(&two).join("COPYING")).unwrap(), b"licence text\n");
    verifies(&s);
    // Optimising again shares the repaired copies, never the damaged one.
    optimise(&s);
    assert_eq!(inode(&copying), inode(&Path::new(&two).join("COPYING")));
    verifies(&s);
}

#[test]
fn optimising_while_builds_register_paths_leaves_a_store_that_verifies() {
    let s = TestStore::new();
    let f = &s.nix_file("set.nix", SET);
    s.ok(&["store", "config", "auto-optimise", "true"]);
    build(&s, f, "one", "r1");
    let builds: Vec<_> = (1..=3)
        .map(|n| {
            s.kiln()
                .args([
                    "build",
                    "--no-link",
                    "-j",
                    "2",
                    f,
                    "-A",
                    "many",
                    "--arg",
                    "n",
                    &n.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for _ in 0..5 {
        optimise(&s);
    }
    for b in builds {
        let out = b.wait_with_output().unwrap();
        crate::support::assert_success(&out, &"a build while optimising");
    }
    optimise(&s);
    verifies(&s);
    // Every copy of the big file, in 1 + 18 paths, is one inode.
    let store = s.root().join("store");
    let inodes: std::collections::BTreeSet<u64> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path().join("big"))
        .filter(|p| p.exists())
        .map(|p| inode(&p))
        .collect();
    assert_eq!(inodes.len(), 1, "{inodes:?}");
}
