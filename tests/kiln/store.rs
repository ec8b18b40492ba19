//! `kiln store ...` end to end: adding, dumping, querying, bad input, concurrency and crashes.

use std::collections::BTreeSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{TestStore, assert_success, nix_store, write};

/// A tree with a file, an executable, a symlink, an empty folder and odd names.
fn odd_tree(root: &std::path::Path) {
    write(&root.join("plain"), b"hello\n");
    write(&root.join("bin/run"), b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(root.join("bin/run"), std::fs::Permissions::from_mode(0o751)).unwrap();
    symlink("../plain", root.join("bin/link")).unwrap();
    symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    write(&root.join("with space"), b"");
    write(&root.join("caf\u{e9} \u{2603}"), b"unicode name");
    write(&root.join("new\nline"), b"a newline in a name");
    write(&root.join("Upper"), b"sorts before lower case");
    write(&root.join(".hidden"), &[0u8, 1, 2, 255]);
    write(&root.join("seven-b"), b"1234567");
    write(&root.join("eight-b"), b"12345678");
    write(&root.join("deep/a/b/c/d"), &vec![b'x'; 70_000]);
}

#[test]
fn nar_bytes_match_cppnix() {
    let s = TestStore::new();
    let src = s.scratch("tree");
    odd_tree(&src);
    let path = s.ok(&["store", "add", src.to_str().unwrap()]);
    let path = path.trim();
    let ours = s.kiln().args(["store", "dump", path]).output().unwrap();
    assert_success(&ours, &"store dump");

    // The dump of the stored copy equals the dump of the source: normalisation keeps what a
    // NAR records.
    let mut again = Vec::new();
    kiln_store::nar::dump(&src, &mut again).unwrap();
    assert_eq!(ours.stdout, again);

    if let Some(nix_store) = nix_store() {
        for tree in [src.as_path(), std::path::Path::new(path)] {
            let theirs = Command::new(&nix_store).arg("--dump").arg(tree).output().unwrap();
            assert_success(&theirs, &"nix-store --dump");
            assert_eq!(
                ours.stdout,
                theirs.stdout,
                "NAR of {} differs from CppNix's",
                tree.display()
            );
        }
    }
}

#[test]
fn nar_of_a_single_file_is_byte_exact() {
    // Written out from the format, independent of any implementation: each string is a
    // little-endian length, the bytes and zero padding to eight; 112 bytes plus the contents.
    let s = TestStore::new();
    let file = s.scratch("f");
    write(&file, b"abc");
    let mut nar = Vec::new();
    kiln_store::nar::dump(&file, &mut nar).unwrap();
    let mut want = Vec::new();
    for part in [&b"nix-archive-1"[..], b"(", b"type", b"regular", b"contents", b"abc", b")"] {
        want.extend_from_slice(&(part.len() as u64).to_le_bytes());
        want.extend_from_slice(part);
        want.resize(want.len().next_multiple_of(8), 0);
    }
    assert_eq!(nar, want);
}

#[test]
fn added_paths_are_normalised_and_read_only() {
    let s = TestStore::new();
    let src = s.scratch("tree");
    odd_tree(&src);
    std::fs::set_permissions(src.join("plain"), std::fs::Permissions::from_mode(0o6644)).unwrap();
    let path = s.ok(&["store", "add", src.to_str().unwrap()]).trim().to_owned();
    let stored = std::path::Path::new(&path);
    let mode =
        |p: &str| std::fs::symlink_metadata(stored.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("plain"), 0o444, "setuid and setgid bits are dropped");
    assert_eq!(mode("bin/run"), 0o555);
    assert_eq!(mode("bin"), 0o555);
    assert_eq!(mode(""), 0o555);
    for p in ["plain", "bin", "bin/link", "dangling", ""] {
        let meta = std::fs::symlink_metadata(stored.join(p)).unwrap();
        assert_eq!(meta.modified().unwrap(), std::time::UNIX_EPOCH + Duration::from_secs(1), "{p}");
    }
    assert_eq!(std::fs::read_link(stored.join("bin/link")).unwrap().to_str(), Some("../plain"));
}

#[test]
fn add_register_query_round_trip() {
    let s = TestStore::new();
    let a = s.scratch("a.txt");
    write(&a, b"first");
    let b = s.scratch("b");
    write(&b.join("x"), b"second");
    let out = s.ok(&["store", "add", a.to_str().unwrap(), b.to_str().unwrap()]);
    let added: Vec<&str> = out.lines().collect();
    assert_eq!(added.len(), 2);
    assert!(added[0].ends_with("-a.txt") && added[1].ends_with("-b"), "{added:?}");

    // Adding again gives the same paths and registers nothing new.
    assert_eq!(s.ok(&["store", "add", a.to_str().unwrap(), b.to_str().unwrap()]), out);
    let store = s.open();
    assert_eq!(store.all_paths().unwrap().len(), 2);

    // A text file that refers to both, added through the library.
    let pa = store.resolve(added[0]).unwrap();
    let pb = store.resolve(added[1]).unwrap();
    let text = format!("uses {} and {}", added[0], added[1]);
    let refs = BTreeSet::from([pa.clone(), pb.clone()]);
    let top = store.add_text("top", text.as_bytes(), &refs).unwrap();
    let top_abs = store.render(&top);

    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["store", "info", "--json", &top_abs])).unwrap();
    let info = &json[0];
    assert_eq!(info["path"], top_abs.as_str());
    assert_eq!(info["narSize"], 112 + text.len().next_multiple_of(8) as u64);
    let a_size = std::fs::read(&a).unwrap().len().next_multiple_of(8) as u64 + 112;
    let closure_size = info["closureSize"].as_u64().unwrap();
    assert!(closure_size > info["narSize"].as_u64().unwrap() + a_size, "{info}");
    let mut sorted = added.clone();
    sorted.sort();
    assert_eq!(info["references"], serde_json::json!(sorted));
    assert_eq!(info["deriver"], serde_json::Value::Null);
    assert_eq!(info["ca"], "text");
    let hash = kiln_store::Blake3Hash::parse(info["narHash"].as_str().unwrap()).unwrap();
    let mut nar = kiln_store::HashingWriter::default();
    kiln_store::nar::dump(std::path::Path::new(&top_abs), &mut nar).unwrap();
    assert_eq!(nar.finish().0, hash);

    assert_eq!(s.ok(&["store", "refs", &top_abs]), format!("{}\n{}\n", sorted[0], sorted[1]));
    assert_eq!(s.ok(&["store", "referrers", added[0]]), format!("{top_abs}\n"));
    assert_eq!(s.ok(&["store", "referrers", &top_abs]), "");
    let closure = s.ok(&["store", "closure", &top_abs]);
    let mut want = [added[0].to_owned(), added[1].to_owned(), top_abs.clone()];
    want.sort();
    assert_eq!(closure, want.iter().map(|p| format!("{p}\n")).collect::<String>());

    // `--closure` lists every path of the closure; the text form is readable.
    let text_info = s.ok(&["store", "info", "--closure", &top_abs]);
    assert_eq!(text_info.matches("nar hash      blake3:").count(), 3, "{text_info}");
    assert!(text_info.contains("closure size  ") && text_info.contains("(3 paths)"), "{text_info}");

    // A file inside a store path, and a link into the store, name the store path.
    let inner = format!("{}/x", added[1]);
    assert_eq!(s.ok(&["store", "refs", &inner]), "");
    let link = s.scratch("result");
    symlink(added[1], &link).unwrap();
    assert!(s.ok(&["store", "info", link.to_str().unwrap()]).starts_with(added[1]));
}

#[test]
fn bad_input_gets_clear_errors() {
    let s = TestStore::new();
    let bad = s.scratch("bad name!");
    write(&bad, b"x");
    let err = s.fails(&["store", "add", bad.to_str().unwrap()], 1);
    assert!(err.starts_with("error: cannot add"), "{err}");
    assert!(err.contains("caused by: invalid store path name `bad name!`"), "{err}");

    let fifo = s.scratch("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = s.fails(&["store", "add", fifo.to_str().unwrap()], 1);
    assert!(err.contains("it is a named pipe"), "{err}");

    let err = s.fails(&["store", "info", "/definitely/not/there"], 1);
    assert!(err.contains("`/definitely/not/there`"), "{err}");
    let outside = s.scratch("outside");
    write(&outside, b"");
    let err = s.fails(&["store", "refs", outside.to_str().unwrap()], 1);
    assert!(err.contains("is not in the store"), "{err}");

    let root = s.root();
    let fake = format!("{}/store/00000000000000000000000000000000-missing", root.display());
    let err = s.fails(&["store", "dump", &fake], 1);
    assert!(err.contains("is not a valid path in the store"), "{err}");

    let err = s.fails(&["store", "frobnicate"], 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
    // Nothing above registered anything.
    assert_eq!(s.open().all_paths().unwrap(), vec![]);
}

#[test]
fn two_processes_add_the_same_and_different_paths() {
    let s = TestStore::new();
    let shared = s.scratch("shared");
    for i in 0..200 {
        write(&shared.join(format!("f{i}")), format!("file {i}\n").repeat(500).as_bytes());
    }
    let mine = s.scratch("mine");
    let yours = s.scratch("yours");
    write(&mine.join("m"), b"mine");
    write(&yours.join("y"), b"yours");

    for _round in 0..3 {
        let spawn = |own: &std::path::Path| {
            s.kiln()
                .args(["store", "add"])
                .arg(&shared)
                .arg(own)
                .arg(&shared)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (p1, p2) = (spawn(&mine), spawn(&yours));
        let (o1, o2) = (p1.wait_with_output().unwrap(), p2.wait_with_output().unwrap());
        assert_success(&o1, &"first process");
        assert_success(&o2, &"second process");
        let l1: Vec<_> = String::from_utf8(o1.stdout).unwrap().lines().map(str::to_owned).collect();
        let l2: Vec<_> = String::from_utf8(o2.stdout).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(l1[0], l2[0], "both got the same path for the same tree");
        assert_ne!(l1[1], l2[1]);
    }
    let store = s.open();
    let all = store.all_paths().unwrap();
    assert_eq!(all.len(), 3, "the shared tree is registered once: {all:?}");
    for p in &all {
        let info = store.query_info(p).unwrap().unwrap();
        let (hash, size) = kiln_store::nar::hash_path(&store.locate(p)).unwrap();
        assert_eq!((hash, size), (info.nar_hash, info.nar_size), "{p}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(s.root().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "temporary copies were left: {leftovers:?}");
}

#[test]
fn kill_during_a_large_add_leaves_a_valid_store() {
    let source = TestStore::new();
    let big = source.scratch("big");
    // About 60 MB in 300 files: long enough to be killed at different stages.
    let chunk: Vec<u8> =
        (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    for i in 0..300 {
        write(&big.join(format!("d{}/f{i}", i % 7)), &chunk);
    }
    let mut outcomes = BTreeSet::new();
    for delay_ms in [5u64, 40, 120, 250, 400, 700, 1000] {
        let s = TestStore::new();
        let mut child =
            s.kiln().args(["store", "add"]).arg(&big).stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();

        // The next command reads the store without error; the path is fully valid or absent.
        let store = s.open();
        match store.all_paths().unwrap().as_slice() {
            [] => {
                outcomes.insert("absent");
            }
            [p] => {
                let info = store.query_info(p).unwrap().unwrap();
                assert_eq!(
                    kiln_store::nar::hash_path(&store.locate(p)).unwrap(),
                    (info.nar_hash, info.nar_size)
                );
                assert_eq!(s.ok(&["store", "closure", &store.render(p)]).trim(), store.render(p));
                outcomes.insert(if status.success() { "finished" } else { "valid" });
            }
            more => panic!("more than one path registered: {more:?}"),
        }

        // And adding again just works and leaves no debris.
        let path = s.ok(&["store", "add", big.to_str().unwrap()]);
        assert!(store.is_valid(&store.resolve(path.trim()).unwrap()).unwrap());
        assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
    }
    eprintln!("outcomes of the kills: {outcomes:?}");
    assert!(outcomes.contains("absent"), "no kill landed in the middle of the add: {outcomes:?}");
}

#[test]
fn queries_explain_the_reference_graph() {
    let s = TestStore::new();
    let store = s.open();
    let c = store.add_text("c", b"the leaf", &BTreeSet::new()).unwrap();
    let b_text = format!("b uses {}", store.render(&c));
    let b = store.add_text("b", b_text.as_bytes(), &BTreeSet::from([c.clone()])).unwrap();
    let a_text = format!("a starts here and uses {} too", store.render(&b));
    let a =
        store.add_text("a", a_text.as_bytes(), &BTreeSet::from([b.clone(), c.clone()])).unwrap();
    let [a, b, c] = [&a, &b, &c].map(|p| store.render(p));

    // Two hops: a -> b -> c is not the shortest chain (a names c directly), so ask from b and
    // check a chain of two hops from a path that only reaches c through b.
    let d = store
        .add_text(
            "d",
            format!("d names {b}").as_bytes(),
            &BTreeSet::from([store.resolve(&b).unwrap()]),
        )
        .unwrap();
    let d = store.render(&d);
    let why = s.ok(&["store", "why-depends", &d, &c]);
    let lines: Vec<&str> = why.lines().collect();
    assert_eq!(lines[0], d);
    assert_eq!(lines[1], format!("└── {b}"));
    let digest = |p: &str| p[p.rfind('/').unwrap() + 1..][..32].to_owned();
    let offset_b = format!("d names {b}").find(&digest(&b)).unwrap();
    assert!(lines[2].starts_with(&format!("    named at byte {offset_b}: ")), "{why}");
    assert!(lines[2].contains(&digest(&b)), "{why}");
    assert_eq!(lines[3], format!("    └── {c}"));
    assert!(lines[4].contains(&digest(&c)) && lines[4].contains("named at byte"), "{why}");
    let err = s.fails(&["store", "why-depends", &c, &a], 1);
    assert!(err.contains("does not depend on"), "{err}");
    let all = s.ok(&["store", "why-depends", "--all", &a, &c]);
    assert!(all.contains(&format!("└── {b}")) && all.contains(&format!("└── {c}")), "{all}");

    let tree = s.ok(&["store", "tree", &a]);
    assert_eq!(tree, format!("{a}\n├── {b}\n│   └── {c}\n└── {c}\n"));

    let graph: serde_json::Value =
        serde_json::from_str(&s.ok(&["store", "graph", "--format", "json", &a])).unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(graph["edges"].as_array().unwrap().len(), 3);
    let dot = s.ok(&["store", "graph", &a]);
    assert!(dot.starts_with("digraph closure {") && dot.matches(" -> ").count() == 3, "{dot}");

    // Looking inside without knowing the layout.
    let src = s.scratch("tree");
    crate::support::write(&src.join("bin/tool"), b"#!/bin/sh\n");
    std::fs::set_permissions(src.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    crate::support::write(&src.join("README"), b"read me\n");
    let added = s.ok(&["store", "add", src.to_str().unwrap()]);
    let added = added.trim();
    assert_eq!(
        s.ok(&["store", "ls", added]),
        "-r--r--r--          8  README\ndr-xr-xr-x          0  bin/\n"
    );
    assert!(s.ok(&["store", "ls", "-R", added]).contains("-r-xr-xr-x         10  bin/tool\n"));
    assert_eq!(s.ok(&["store", "cat", &format!("{added}/README")]), "read me\n");
    let err = s.fails(&["store", "cat", &format!("{added}/missing")], 1);
    assert!(err.contains("cannot read"), "{err}");
}
