//! Snapshot tests of the error text `kiln eval` draws: every `tests/eval-errors/NAME.nix` must
//! fail with exit status 1 and the stderr in `NAME.stderr` (the test folder's absolute path is
//! written `/pwd`); extra arguments come from `NAME.flags` if it exists.
//! `KILN_UPDATE_SNAPSHOTS=1` rewrites the snapshots.

use std::path::Path;
use std::process::Command;

#[test]
fn rendered_errors_match_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval-errors");
    let update = std::env::var_os("KILN_UPDATE_SNAPSHOTS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/eval-errors exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nix"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut failures = Vec::new();
    for name in names {
        let flags =
            std::fs::read_to_string(dir.join(name.replace(".nix", ".flags"))).unwrap_or_default();
        let output = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["eval", "--strict"])
            .args(flags.split_whitespace())
            .arg(&name)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("kiln runs");
        let stderr = String::from_utf8_lossy(&output.stderr)
            .replace(&*dir.canonicalize().unwrap().to_string_lossy(), "/pwd");
        let snapshot = dir.join(name.replace(".nix", ".stderr"));
        if output.status.code() != Some(1) {
            failures.push(format!("{name}: exit status {:?}, expected 1", output.status.code()));
        }
        if update {
            std::fs::write(&snapshot, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != stderr {
            failures.push(format!("{name}:\n--- expected\n{expected}\n--- got\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
