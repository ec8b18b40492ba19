//! Runs CppNix's own language tests (`../shared/nix-lang-tests`, next to the repository) against
//! `kiln eval --strict` and `kiln parse -`, and fails if fewer tests pass than the committed
//! threshold in `tests/conformance-threshold.txt`. The tests that do not pass, and why, are
//! listed in `lang-spec/conformance.md`.

use std::path::Path;
use std::process::Command;

#[test]
fn conformance_does_not_regress() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("../shared/nix-lang-tests");
    if !corpus.join("run-conformance.sh").exists() {
        println!(
            "skipping: the conformance corpus is not at `{}` (CI and the dev machine have it there)",
            corpus.display()
        );
        return;
    }
    // Run a copy: another build in the same target folder may relink the binary meanwhile.
    let bin_dir = tempfile::tempdir().expect("a temporary folder");
    let kiln_copy = bin_dir.path().join("kiln");
    std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &kiln_copy).expect("the kiln binary can be copied");
    let kiln = kiln_copy.to_string_lossy().into_owned();
    // Evaluation writes sources and derivations to a store: a fresh one, not the user's.
    let store = tempfile::tempdir().expect("a temporary store");
    let store = store.path().to_string_lossy().into_owned();
    let log = tempfile::NamedTempFile::new().expect("a temporary log file");
    let output = Command::new("bash")
        .arg("run-conformance.sh")
        .args(["-e", &format!("{kiln} --store {store} eval --strict")])
        .args(["-p", &format!("{kiln} parse -")])
        .args(["-l", &log.path().to_string_lossy()])
        .args(["-j", "2"])
        .arg(".")
        .current_dir(&corpus)
        .output()
        .expect("bash runs run-conformance.sh");
    let log_text = std::fs::read_to_string(log.path()).expect("the runner writes its log");
    let passed = log_text.lines().filter(|l| l.starts_with("PASS ")).count();
    let threshold: usize = std::fs::read_to_string(root.join("tests/conformance-threshold.txt"))
        .expect("tests/conformance-threshold.txt exists")
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .and_then(|l| l.trim().parse().ok())
        .expect("the threshold file holds a number");
    let failed: Vec<&str> = log_text.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        passed >= threshold,
        "only {passed} conformance tests pass, below the threshold of {threshold}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        failed.join("\n")
    );
}
