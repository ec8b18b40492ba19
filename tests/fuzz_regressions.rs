//! Every input kept for the fuzz targets runs through its target without a panic: the seeds in
//! `fuzz/seeds/TARGET/` and the inputs that once crashed a target, kept in
//! `fuzz/regressions/TARGET/` when they were fixed. `fuzz/run.sh` fuzzes; this replays.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use std::path::Path;

#[test]
fn kept_fuzz_inputs_run_clean() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for target in targets::TARGETS {
        let mut seeds = 0;
        for kind in ["seeds", "regressions"] {
            let dir = fuzz.join(kind).join(target);
            let mut files: Vec<_> =
                std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).expect("read a kept input");
                if kind == "seeds" {
                    seeds += 1;
                }
                let result = std::panic::catch_unwind(|| targets::run(target, &data));
                if result.is_err() {
                    failures.push(file.display().to_string());
                }
            }
        }
        assert!(seeds > 0, "no seeds for the fuzz target `{target}` in fuzz/seeds/{target}/");
    }
    assert!(failures.is_empty(), "kept fuzz inputs that fail their target: {failures:?}");
}

#[test]
fn the_fuzzing_figures_cover_every_target() {
    let figures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/figures.md");
    let text = std::fs::read_to_string(&figures).expect("fuzz/figures.md, written by fuzz/run.sh");
    for target in targets::TARGETS {
        let row = text.lines().find(|l| l.starts_with(&format!("| `{target}` |")));
        let row = row.unwrap_or_else(|| panic!("fuzz/figures.md has no row for `{target}`"));
        assert!(row.ends_with("| clean |"), "`{target}` did not run clean: {row}");
    }
    let manifest = std::fs::read_to_string(figures.with_file_name("Cargo.toml")).unwrap();
    let bins = manifest.matches("[[bin]]").count();
    assert_eq!(bins, targets::TARGETS.len(), "fuzz/Cargo.toml and TARGETS list the same targets");
}
