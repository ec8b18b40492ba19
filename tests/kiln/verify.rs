//! `kiln store verify` end to end: damage is found, recorded, refused, and repaired from the
//! derivation that built it; what cannot be rebuilt is said; debris and lost normal form are
//! put right.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{TestStore, first_out, write};

/// `tool` writes two files; `app` refers to it; `user` reads it at build time.
const SET: &str = r#"
let
  @mk@
  tool = mk "tool" "mkdir -p $out/share; echo 'the real data' > $out/share/data; echo v1 > $out/version";
  app = mk "app" "mkdir $out; echo ${tool} > $out/uses";
  user = mk "user" "cat ${tool}/share/data > $out";
in { inherit tool app user; }
"#;

/// Builds `app` and returns `tool`, which it refers to.
fn build_tool(s: &TestStore) -> (String, String) {
    let f = s.nix_file("set.nix", SET);
    let app = first_out(&s.build_json(&[&f, "-A", "app"], true));
    let tool = std::fs::read_to_string(Path::new(&app).join("uses")).unwrap().trim().to_owned();
    (f, tool)
}

/// Overwrites a file inside a store path, as a stray process with the store's owner could.
fn tamper(file: &Path, contents: &[u8]) {
    let dir = file.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(file, contents).unwrap();
}

/// Runs `kiln store verify` with `args`; returns its exit status and stdout.
fn verify(s: &TestStore, args: &[&str]) -> (i32, String) {
    let out = s.kiln().args(["store", "verify"]).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_corrupted_file_is_found_refused_and_repaired_from_its_derivation() {
    let s = TestStore::new();
    let (f, tool) = build_tool(&s);
    let f = &f;
    assert_eq!(verify(&s, &["--check-contents"]), (0, String::new()));

    // One byte of the tool changes: only hashing the contents notices.
    let data = Path::new(&tool).join("share/data");
    tamper(&data, b"the real dataX\n");
    assert_eq!(verify(&s, &[]), (0, String::new()), "the files are all there");
    let (code, found) = verify(&s, &["--check-contents"]);
    assert_eq!(code, 1, "{found}");
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(found.starts_with(&format!("{tool}: its contents changed: registered blake3:")));

    // From now on the damaged path is not handed out, and nothing is built from it.
    let err = s.fails(&["store", "dump", &tool], 1);
    assert!(err.contains("is damaged") && err.contains("verify --repair"), "{err}");
    s.fails(&["store", "cat", &format!("{tool}/version")], 1);
    let err = s.fails(&["build", f, "-A", "app", "--no-link"], 1);
    assert!(err.contains(&format!("`{tool}` is damaged")), "asked for what refers to it: {err}");
    let err = s.fails(&["build", f, "-A", "user", "--no-link"], 1);
    assert!(err.contains(&format!("`{tool}` is damaged")), "building from it: {err}");
    let (code, again) = verify(&s, &[]);
    assert_eq!(code, 1, "the damage stays recorded: {again}");
    assert!(again.contains("found earlier"), "{again}");

    // Repair rebuilds the tool in the sandbox and swaps the rebuild in.
    let (code, repaired) = verify(&s, &["--check-contents", "--repair"]);
    assert_eq!(code, 0, "{repaired}");
    assert!(repaired.contains("  repaired: rebuilt from ") && repaired.contains("-tool.drv"));
    assert!(repaired.contains("share/data: different contents"), "{repaired}");
    assert_eq!(std::fs::read(&data).unwrap(), b"the real data\n");
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777, 0o444);
    assert_eq!(verify(&s, &["--check-contents"]), (0, String::new()));
    let nar = s.kiln().args(["store", "dump", &tool]).output().unwrap();
    assert!(nar.status.success());
    s.build_json(&[f, "-A", "user", "--no-link"], true);
}

#[test]
fn a_deleted_path_is_found_without_hashing_and_rebuilt() {
    let s = TestStore::new();
    let (_, tool) = build_tool(&s);
    let tool_dir = Path::new(&tool);
    for dir in [tool_dir, &tool_dir.join("share")] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::remove_dir_all(tool_dir).unwrap();

    let (code, found) = verify(&s, &[]);
    assert_eq!(
        (code, found.trim()),
        (1, &*format!("{tool}: it is registered but missing from the disk"))
    );
    let (code, repaired) = verify(&s, &["--repair"]);
    assert_eq!(code, 0, "{repaired}");
    assert!(repaired.contains("the damaged copy differed in .: missing"), "{repaired}");
    assert_eq!(std::fs::read_to_string(tool_dir.join("version")).unwrap(), "v1\n");
    assert_eq!(verify(&s, &["--check-contents"]), (0, String::new()));
}

#[test]
fn sources_debris_and_lost_normal_form() {
    let s = TestStore::new();
    let src = s.scratch("src");
    write(&src.join("README"), b"read me\n");
    write(&src.join("notes"), b"notes\n");
    let added = s.ok(&["store", "add", src.to_str().unwrap()]).trim().to_owned();

    // Writable but unchanged: reported, and put back in normal form.
    let notes = Path::new(&added).join("notes");
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, found) = verify(&s, &["--check-contents"]);
    assert_eq!(code, 1);
    assert_eq!(found.trim(), format!("{added}: `notes` is writable (mode 0644, not 0444)"));
    let (code, fixed) = verify(&s, &["--check-contents", "--repair"]);
    assert!(code == 0 && fixed.contains("repaired: put back in normal form"), "{fixed}");
    assert_eq!(std::fs::metadata(&notes).unwrap().permissions().mode() & 0o7777, 0o444);

    // Something in the store folder that nothing registered: removed by repair.
    let stray = s.root().join("store/00000000000000000000000000000000-stray");
    std::fs::create_dir(&stray).unwrap();
    let (code, found) = verify(&s, &[]);
    assert_eq!(code, 1);
    assert!(found.contains("-stray: it is in the store folder but not registered"), "{found}");
    assert_eq!(verify(&s, &["--repair"]).0, 0);
    assert!(!stray.exists());

    // A damaged source has no derivation to rebuild it from; adding it again puts it back.
    tamper(&notes, b"scribbled\n");
    let (code, said) = verify(&s, &["--check-contents", "--repair"]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("not repaired: no derivation built it: adding its source again"),
        "{said}"
    );
    assert_eq!(s.ok(&["store", "add", src.to_str().unwrap()]).trim(), added);
    assert_eq!(std::fs::read(&notes).unwrap(), b"notes\n");
    assert_eq!(verify(&s, &["--check-contents"]), (0, String::new()));
}

#[test]
fn json_lists_each_problem_and_its_repair() {
    let s = TestStore::new();
    let src = s.scratch("one");
    write(&src, b"one\n");
    let added = s.ok(&["store", "add", src.to_str().unwrap()]).trim().to_owned();
    tamper(Path::new(&added), b"two\n");
    let (code, text) = verify(&s, &["--check-contents", "--repair", "--json"]);
    assert_eq!(code, 1);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["checked"], 1);
    assert_eq!(value["left"], 1);
    let problem = &value["problems"][0];
    assert_eq!(problem["subject"], added.as_str());
    assert_eq!(problem["damaged"], true);
    assert_eq!(problem["repaired"], false);
}

#[test]
fn a_damaged_source_stops_builds_until_evaluation_adds_it_again() {
    let s = TestStore::new();
    let file = s.scratch("src.nix");
    write(&s.scratch("input.txt"), b"input\n");
    write(
        &file,
        br#"derivation {
  name = "reads";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "read x < ${./input.txt}; echo $x$x > $out" ];
  __impureHostDeps = [ "/bin" "/usr" "/lib" "/lib64" ];
}"#,
    );
    let f = file.to_str().unwrap();
    s.build_json(&[f, "--no-link"], true);
    let store = s.open();
    let source = store.all_paths().unwrap().into_iter().find(|p| p.name() == "input.txt").unwrap();
    let source = store.render(&source);
    let reads = s.scratch("reads.nix");
    write(&reads, std::fs::read_to_string(&file).unwrap().replace("$x$x", "$x-$x").as_bytes());
    let drv = s.ok(&["instantiate", reads.to_str().unwrap()]).trim().to_owned();
    tamper(Path::new(&source), b"evil\n");
    assert_eq!(verify(&s, &["--check-contents"]).0, 1);
    let events = s.build_json(&[&drv, "--no-link"], false);
    let failed = events.iter().find(|e| e["status"] == "failed").unwrap();
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains(&format!("`{source}` is damaged")), "{message}");

    // Evaluating adds the source again: the store takes the new copy in place of the damaged
    // one, since it has the registered hash, and the build goes on.
    let events = s.build_json(&[reads.to_str().unwrap(), "--no-link"], true);
    let out = first_out(&events);
    assert_eq!(std::fs::read_to_string(out).unwrap(), "input-input\n");
    assert_eq!(std::fs::read(&source).unwrap(), b"input\n");
    assert_eq!(verify(&s, &["--check-contents"]), (0, String::new()));
}
