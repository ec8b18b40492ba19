//! `kiln store import`: archives that `kiln store dump` writes come back as the same path, and
//! archives that try to write outside their folder, or could be read two ways, are refused
//! with the offset of the offending bytes, leaving the store as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use crate::support::{TestStore, write};

/// Builds NAR bytes from its strings: each a little-endian length, the bytes, zero padding.
fn nar(tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        out.extend_from_slice(&(t.len() as u64).to_le_bytes());
        out.extend_from_slice(t);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    out
}

const FILE: &[&[u8]] = &[b"(", b"type", b"regular", b"contents", b"x", b")"];

/// A folder archive with the given entries, each a name and a node's strings.
fn folder(entries: &[(&[u8], &[&[u8]])]) -> Vec<&'static [u8]> {
    let mut t: Vec<&'static [u8]> = vec![b"nix-archive-1", b"(", b"type", b"directory"];
    for (name, node) in entries {
        t.extend_from_slice(&[b"entry", b"(", b"name"]);
        t.push(Vec::leak(name.to_vec()));
        t.push(b"node");
        t.extend(node.iter().map(|s| &*Vec::leak(s.to_vec())));
        t.push(b")");
    }
    t.push(b")");
    t
}

fn import(s: &TestStore, archive: &[u8], name: &str) -> std::process::Output {
    let mut child = s
        .kiln()
        .args(["store", "import", "-", "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kiln");
    // The reader may stop early on a bad archive: a closed pipe is fine.
    let _ = std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), archive);
    child.wait_with_output().expect("wait for kiln")
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_dumped_path_imports_as_the_same_path_with_the_same_bytes() {
    let s = TestStore::new();
    let tree = s.scratch("tree");
    write(&tree.join("bin/run"), b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(tree.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&tree.join("share/empty"), b"");
    write(&tree.join("share/caf\u{e9}.txt"), &[0u8, 1, 2, 255]);
    std::os::unix::fs::symlink("../bin/run", tree.join("share/link")).unwrap();
    std::fs::create_dir_all(tree.join("empty-folder")).unwrap();
    let added = s.ok(&["store", "add", tree.to_str().unwrap()]).trim().to_owned();
    let dumped = s.kiln().args(["store", "dump", &added]).output().unwrap().stdout;

    // Into the same store: the same path. Into another: the same archive bytes.
    let archive = s.scratch("tree.nar");
    std::fs::write(&archive, &dumped).unwrap();
    assert_eq!(s.ok(&["store", "import", archive.to_str().unwrap()]).trim(), added);
    let other = TestStore::new();
    let out = import(&other, &dumped, "tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let imported = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let again = other.kiln().args(["store", "dump", &imported]).output().unwrap().stdout;
    assert_eq!(again, dumped);
    other.ok(&["store", "verify", "--check-contents"]);
}

#[test]
fn archives_that_escape_or_mislead_are_refused_and_leave_nothing() {
    let s = TestStore::new();
    write(&s.scratch("seed"), b"a path the store holds before");
    s.ok(&["store", "add", s.scratch("seed").to_str().unwrap()]);
    let before = s.open().all_paths().unwrap();
    let escaped: &[&[u8]] = &[b"(", b"type", b"regular", b"contents", b"escaped", b")"];
    let dir_with_escapee: Vec<&[u8]> = {
        let mut t: Vec<&[u8]> = vec![b"(", b"type", b"directory", b"entry", b"(", b"name"];
        t.extend_from_slice(&[b"escaped", b"node"]);
        t.extend_from_slice(escaped);
        t.extend_from_slice(&[b")", b")"]);
        t
    };
    let symlink_out: &[&[u8]] = &[b"(", b"type", b"symlink", b"target", b"/", b")"];
    let mut deep: Vec<&[u8]> = vec![b"nix-archive-1"];
    for _ in 0..300 {
        deep.extend_from_slice(&[
            b"(",
            b"type",
            b"directory",
            b"entry",
            b"(",
            b"name",
            b"d",
            b"node",
        ]);
    }
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("parent", nar(&folder(&[(b"..", &dir_with_escapee)])), "entry named `..`"),
        ("dot", nar(&folder(&[(b".", FILE)])), "entry named `.`"),
        ("slash", nar(&folder(&[(b"../escaped", FILE)])), "entry named `../escaped`"),
        ("absolute", nar(&folder(&[(b"/tmp/escaped", FILE)])), "entry named `/tmp/escaped`"),
        ("nul", nar(&folder(&[(b"a\0b", FILE)])), "entry named `a\\0b`"),
        ("empty name", nar(&folder(&[(b"", FILE)])), "entry named ``"),
        ("unsorted", nar(&folder(&[(b"b", FILE), (b"a", FILE)])), "out of order or repeated"),
        ("duplicate", nar(&folder(&[(b"a", FILE), (b"a", FILE)])), "out of order or repeated"),
        (
            "symlink then a folder of the same name",
            nar(&folder(&[(b"l", symlink_out), (b"l", &dir_with_escapee)])),
            "out of order or repeated",
        ),
        ("bad magic", nar(&[b"nix-archive-2", b"(", b")"]), "not a NAR archive"),
        ("truncated", nar(&folder(&[(b"a", FILE)]))[..90].to_vec(), "ends too early"),
        ("trailing bytes", [nar(&folder(&[(b"a", FILE)])), vec![0; 8]].concat(), "after the end"),
        (
            "unknown type",
            nar(&[b"nix-archive-1", b"(", b"type", b"fifo", b")"]),
            "unknown file type",
        ),
        ("deep", nar(&deep), "nested deeper than 256"),
        (
            "empty symlink target",
            nar(&folder(&[(b"l", &[b"(", b"type", b"symlink", b"target", b"", b")"])])),
            "symlink target that is empty",
        ),
    ];
    // A name whose length says 2^62 bytes: refused before anything is allocated for it.
    let mut huge = nar(&[b"nix-archive-1", b"(", b"type", b"directory", b"entry", b"(", b"name"]);
    huge.extend_from_slice(&(1u64 << 62).to_le_bytes());
    cases.push(("huge name", huge, "where at most 255 fit"));
    // Padding that is not zero: the same archive could be written two ways.
    let mut padded = nar(&folder(&[(b"a", FILE)]));
    let at = padded.len() - 8 * 4 - 7; // the padding after the file's contents `x`
    padded[at] = 1;
    cases.push(("padding", padded, "padding that is not zero"));

    for (what, archive, message) in &cases {
        let out = import(&s, archive, "hostile");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains("malformed archive at byte"), "{what}: {stderr}");
        assert!(stderr.contains(message), "{what}: expected `{message}` in {stderr}");
        assert_eq!(s.open().all_paths().unwrap(), before, "{what}: a path was added");
        assert!(files_under(&s.root().join("tmp")).is_empty(), "{what}: debris left");
        let stray: Vec<String> = files_under(s.tmp.path())
            .into_iter()
            .filter(|f| f.ends_with("escaped") || f.ends_with("/d"))
            .collect();
        assert!(stray.is_empty(), "{what}: written outside the archive's folder: {stray:?}");
    }
    s.ok(&["store", "verify", "--check-contents"]);
}
