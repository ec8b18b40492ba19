//! Every input kept for the fuzz targets runs through its target without a panic: the seeds in
//! `fuzz/seeds/TARGET/` and the inputs that once crashed a target, kept in
//! `fuzz/regressions/TARGET/` when they were fixed. `fuzz/run.sh` fuzzes with libFuzzer by
//! hand; here, so that CI fuzzes too, each target also gets a few seconds of seeds mutated at
//! random (no coverage guidance, a fixed random sequence).

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code, unreachable_pub)]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn kept(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

/// xorshift64*: a fixed sequence of random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random change: a byte replaced, a run inserted, deleted or repeated, a piece of another
/// seed spliced in, or an interesting byte (quotes, brackets, NUL, high bytes) put in.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    const INTERESTING: &[u8] = b"\0\xff\x7f\"'{}[]()$;:=.\\/\n?@";
    let at = rng.below(data.len() + 1);
    match rng.below(6) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] = rng.next() as u8;
        }
        1 => {
            let byte = INTERESTING[rng.below(INTERESTING.len())];
            data.insert(at, byte);
        }
        2 if at < data.len() => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at..end);
        }
        3 if at < data.len() => {
            let end = (at + 1 + rng.below(32)).min(data.len());
            let run = data[at..end].to_vec();
            for _ in 0..=rng.below(4) {
                data.splice(at..at, run.iter().copied());
            }
        }
        4 if !other.is_empty() => {
            let from = rng.below(other.len());
            let end = (from + 1 + rng.below(64)).min(other.len());
            data.splice(at..at, other[from..end].iter().copied());
        }
        _ => data.truncate(at),
    }
}

#[test]
fn kept_fuzz_inputs_run_clean() {
    let mut failures = Vec::new();
    for target in targets::TARGETS {
        let mut seeds = 0;
        for kind in ["seeds", "regressions"] {
            for file in kept(kind, target) {
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

#[test]
fn mutated_seeds_run_clean_for_a_while() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (n, target) in targets::TARGETS.iter().enumerate() {
        let seeds: Vec<Vec<u8>> =
            kept("seeds", target).iter().map(|f| std::fs::read(f).expect("read a seed")).collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let mut data = seeds[rng.below(seeds.len())].clone();
            let other = &seeds[rng.below(seeds.len())];
            for _ in 0..=rng.below(8) {
                mutate(&mut rng, &mut data, other);
            }
            total += 1;
            if std::panic::catch_unwind(|| targets::run(target, &data)).is_err() {
                failures.push(format!("{target}: {:?}", String::from_utf8_lossy(&data)));
            }
        }
    }
    eprintln!("{total} mutated inputs run");
    assert!(
        failures.is_empty(),
        "inputs that fail their target (keep each in fuzz/regressions/ once fixed): {failures:#?}"
    );
}
