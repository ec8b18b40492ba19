//! `kiln store diff` and the summary of `kiln store info --closure` end to end, on two versions
//! of a small package set built by the test.

use serde_json::Value;

use crate::support::{TestStore, write};

/// Two versions of `app-1.0`'s closure. From `old` to `new`: `libfoo` goes from 1.0 to 1.1 (same
/// size), `libold` goes, `libnew` comes and brings a second `libbar`, `data` grows by 2 KiB;
/// `zlib` stays the same path and `app` is rebuilt at the same version and size.
///
/// Each package writes its name and then the digests of its dependencies, one a line, so every
/// size is fixed whatever the store's folder: a file of N bytes has a NAR of 112 + N rounded up
/// to 8 bytes.
const SETS: &str = r##"
let
  mk = name: script: extra: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
  } // extra);
  digests = deps:
    if deps == [ ] then ""
    else " for p in ${toString deps}; do h=\${p##*/}; echo \${h%%-*}; done;";
  pkg = name: deps: mk name "{ echo ${name};${digests deps} } > $out" { };
  set = new:
    let
      zlib = pkg "zlib-1.3" [ ];
      libfoo = pkg (if new then "libfoo-1.1" else "libfoo-1.0") [ ];
      libbar = pkg "libbar-2.0" [ ];
      libbar21 = pkg "libbar-2.1" [ ];
      libold = pkg "libold-0.9" [ ];
      libnew = pkg "libnew-2.0" [ libbar21 ];
      data = mk "data-1" "printf %s \"$payload\" > $out" {
        payload = builtins.concatStringsSep "" (builtins.genList (_: "x") (if new then 3072 else 1024));
      };
    in pkg "app-1.0" [ zlib libfoo (if new then libnew else libold) data libbar ];
in { old = set false; new = set true; }
"##;

/// Builds both sets, linked as `old` and `new` beside the store, and returns the links.
fn build_both(s: &TestStore) -> (String, String) {
    let file = s.scratch("sets.nix");
    write(&file, SETS.as_bytes());
    let f = file.to_str().unwrap();
    s.build_json(&[f, "-A", "old", "-o", "old"], true);
    s.build_json(&[f, "-A", "new", "-o", "new"], true);
    let link = |name: &str| s.scratch(name).to_str().unwrap().to_owned();
    (link("old"), link("new"))
}

#[test]
fn diff_reports_added_removed_version_and_size_changes() {
    let s = TestStore::new();
    let (old, new) = build_both(&s);

    // `zlib` (the same path) and `app` (rebuilt, same version and size) are left out. Added and
    // removed packages carry their size: 112 + 16 bytes for a name, 32 more for a digest line.
    let diff = s.ok(&["store", "diff", &old, &new]);
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines[..lines.len() - 1],
        [
            "data: +2.0 KiB",
            "libbar: 2.0 → {2.0, 2.1}, +128 B",
            "libfoo: 1.0 → 1.1",
            "libnew: added 2.0, +160 B",
            "libold: removed 0.9, -128 B",
        ],
        "{diff}"
    );
    // 2048 + 128 + 160 - 128 bytes more, one path more.
    let total = lines.last().unwrap();
    assert!(total.starts_with("total: +2.2 KiB (") && total.ends_with(", 6 → 7 paths)"), "{diff}");

    // The other way round, everything turns over.
    let back = s.ok(&["store", "diff", &new, &old]);
    assert!(back.contains("libnew: removed 2.0, -160 B\n"), "{back}");
    assert!(back.contains("libfoo: 1.1 → 1.0\n") && back.contains("data: -2.0 KiB\n"), "{back}");
    assert!(back.lines().last().unwrap().starts_with("total: -2.2 KiB"), "{back}");

    // A closure compared with itself has no package lines.
    let same = s.ok(&["store", "diff", &old, &old]);
    assert_eq!(same.lines().count(), 1, "{same}");
    assert!(same.starts_with("total: ±0 B"), "{same}");
}

#[test]
fn diff_json_has_the_same_data() {
    let s = TestStore::new();
    let (old, new) = build_both(&s);
    let diff: Value =
        serde_json::from_str(&s.ok(&["store", "diff", "--json", &old, &new])).unwrap();

    let packages = diff["packages"].as_array().unwrap();
    let names: Vec<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["data", "libbar", "libfoo", "libnew", "libold"], "{diff:#}");
    let by_name = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap();
    let libbar = by_name("libbar");
    assert_eq!(libbar["change"], "changed");
    assert_eq!(libbar["versionsBefore"], serde_json::json!(["2.0"]));
    assert_eq!(libbar["versionsAfter"], serde_json::json!(["2.0", "2.1"]));
    assert_eq!(libbar["sizeDelta"], 128);
    let libnew = by_name("libnew");
    assert_eq!((&libnew["change"], &libnew["sizeAfter"]), (&"added".into(), &160.into()));
    assert_eq!(by_name("libold")["change"], "removed");
    assert_eq!(by_name("data")["sizeDelta"], 2048);

    let store = s.open();
    let size = |link: &str| store.closure(&[store.resolve(link).unwrap()]).unwrap().1;
    assert_eq!(diff["before"]["narSize"], size(&old));
    assert_eq!(diff["after"]["narSize"], size(&new));
    assert_eq!(diff["before"]["pathCount"], 6);
    assert_eq!(diff["sizeDelta"], 2048 + 128 + 160 - 128);
    let resolved = store.render(&store.resolve(&new).unwrap());
    assert_eq!(diff["after"]["path"], resolved.as_str());
}

#[test]
fn info_closure_ends_with_the_total_and_the_biggest_paths() {
    let s = TestStore::new();
    let (_, new) = build_both(&s);
    let store = s.open();
    let total = store.closure(&[store.resolve(&new).unwrap()]).unwrap().1;

    let info = s.ok(&["store", "info", "--closure", &new]);
    let summary = info.split("\nclosure: ").nth(1).expect("a summary after the listing");
    let mut lines = summary.lines();
    assert!(lines.next().unwrap().starts_with("7 paths, "), "{summary}");
    assert_eq!(lines.next(), Some("biggest contributors:"), "{summary}");
    // `data` (3,072 bytes of file) is the biggest, then `app` (its name and five digests).
    let first = lines.next().unwrap();
    assert!(first.trim_start().starts_with("3.1 KiB"), "{summary}");
    assert!(first.ends_with("-data-1"), "{summary}");
    let share = format!("{:.1}%", 3184.0 * 100.0 / total as f64);
    assert!(first.contains(&share), "{first} should contain {share}");
    assert!(lines.next().unwrap().ends_with("-app-1.0"), "{summary}");
    assert_eq!(lines.count(), 5, "all seven paths are shown, fewer than ten: {summary}");

    let json: Value =
        serde_json::from_str(&s.ok(&["store", "info", "--closure", "--json", &new])).unwrap();
    let paths = json["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 7);
    let sum: u64 = paths.iter().map(|p| p["narSize"].as_u64().unwrap()).sum();
    assert_eq!((json["closure"]["narSize"].as_u64(), sum), (Some(total), total));
    assert_eq!(json["closure"]["pathCount"], 7);
    let biggest = json["closure"]["biggest"].as_array().unwrap();
    assert_eq!(biggest[0]["narSize"], 3184);
    assert!(biggest[0]["path"].as_str().unwrap().ends_with("-data-1"));
    let sizes: Vec<u64> = biggest.iter().map(|b| b["narSize"].as_u64().unwrap()).collect();
    assert!(sizes.is_sorted_by(|a, b| a >= b), "{sizes:?}");

    // Without `--closure` the JSON stays an array of path infos.
    let plain: Value = serde_json::from_str(&s.ok(&["store", "info", "--json", &new])).unwrap();
    assert!(plain[0]["path"].as_str().unwrap().ends_with("-app-1.0"));
}
