//! `kiln derivation show` end to end.

use std::collections::{BTreeMap, BTreeSet};

use kiln_store::{Derivation, DerivationOutput};

use crate::support::{TestStore, write};

#[test]
fn show_prints_a_stored_derivation_as_json() {
    let s = TestStore::new();
    let store = s.open();
    let src_file = s.scratch("builder.sh");
    write(&src_file, b"echo hi > $out\n");
    let src = store.add_path(&src_file, None).unwrap();
    let out =
        store.dir().make_path("output:out", &kiln_store::Blake3Hash::of(b"o"), "demo").unwrap();
    let drv = Derivation {
        outputs: BTreeMap::from([(
            "out".into(),
            DerivationOutput { path: Some(out.clone()), ..Default::default() },
        )]),
        input_srcs: BTreeSet::from([src.clone()]),
        platform: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        args: vec![store.render(&src)],
        env: BTreeMap::from([("name".into(), "demo".into()), ("out".into(), store.render(&out))]),
        ..Default::default()
    };
    let drv_path = store.write_derivation("demo", &drv).unwrap();
    assert!(drv_path.to_string().ends_with("-demo.drv"));
    assert_eq!(store.references(&drv_path).unwrap(), BTreeSet::from([src.clone()]));
    assert_eq!(store.derivation_outputs(&drv_path).unwrap(), vec![("out".to_owned(), out.clone())]);
    assert_eq!(store.read_derivation(&drv_path).unwrap(), drv);

    let abs = store.render(&drv_path);
    let shown: serde_json::Value =
        serde_json::from_str(&s.ok(&["derivation", "show", &abs])).unwrap();
    let d = &shown[&abs];
    assert_eq!(d["outputs"]["out"]["path"], store.render(&out));
    assert_eq!(d["inputSrcs"], serde_json::json!([store.render(&src)]));
    assert_eq!(d["builder"], "/bin/sh");
    assert_eq!(d["env"]["name"], "demo");
    let compact = s.ok(&["derivation", "show", "--json", &abs]);
    assert_eq!(compact.lines().count(), 1);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&compact).unwrap(), shown);
}

#[test]
fn malformed_derivations_are_rejected_with_the_offset() {
    let s = TestStore::new();
    let root = s.root();
    std::fs::create_dir_all(&root).unwrap();
    let bad = s.scratch("bad.drv");
    write(&bad, br#"Derive([("out","","","")],[],[],"x86_64-linux","/bin/sh",["-c"],[("a","1")]"#);
    let err = s.fails(&["derivation", "show", bad.to_str().unwrap()], 1);
    assert!(
        err.contains("malformed derivation") && err.contains("at byte 75: expected `)`"),
        "{err}"
    );

    // The same bytes stored in the store are refused the same way, naming the store path.
    let stored = s.ok(&["store", "add", bad.to_str().unwrap()]);
    let err = s.fails(&["derivation", "show", stored.trim()], 1);
    assert!(err.contains(&format!("malformed derivation `{}` at byte 75", stored.trim())), "{err}");

    let foreign = s.scratch("foreign.drv");
    write(&foreign, br#"Derive([("out","/nix/store/00000000000000000000000000000000-x","","")],[],[],"s","b",[],[])"#);
    let err = s.fails(&["derivation", "show", foreign.to_str().unwrap()], 1);
    assert!(err.contains("at byte 15") && err.contains("is not in the store"), "{err}");
}

#[test]
fn instantiating_many_derivations_registers_every_one_with_its_references() {
    // Evaluation registers `.drv` and `toFile` files in batches of a few hundred; 600 cross
    // several batches, and each refers to the one before it.
    let s = TestStore::new();
    let file = s.nix_file(
        "chain.nix",
        r#"let
          note = builtins.toFile "note" "shared";
          node = i: derivation {
            name = "n${toString i}";
            system = "x86_64-linux";
            builder = "/bin/sh";
            args = [ "-c" "echo ${note} ${if i == 0 then "" else node (i - 1)} > $out" ];
          };
        in node 599"#,
    );
    let drv = s.ok(&["instantiate", &file]);
    let drv = drv.trim();
    let closure = s.ok(&["store", "closure", drv]);
    let drvs = closure.lines().filter(|l| l.ends_with(".drv")).count();
    assert_eq!(drvs, 600, "{closure}");
    assert!(closure.lines().any(|l| l.ends_with("-note")), "{closure}");
    let verified = || {
        let out = s.kiln().args(["store", "verify"]).output().expect("run kiln");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(verified().contains("checked 601 paths: 0 problems"), "{}", verified());
    // Instantiating again finds every file registered and changes nothing.
    assert_eq!(s.ok(&["instantiate", &file]).trim(), drv);
    assert!(verified().contains("checked 601 paths: 0 problems"), "{}", verified());
}
