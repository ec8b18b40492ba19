//! Parsing and lowering never panic: every file of `tests/data`, damaged in many deterministic
//! ways (bytes removed, tokens inserted), is loaded; errors are fine, panics are not. A cheap
//! stand-in for a fuzz target that runs on every `cargo test`.

use std::path::Path;

use kiln_evaluator::{EvalOptions, Evaluator, PlainIo};

const TOKENS: &[&str] = &[
    "\"", "''", "${", "}", "{", "(", ")", "[", "]", ";", "=", ".", "?", "@", ":", "\\", "/", "<",
    ">", "rec", "let", "in", "#", "/*", "or", "inherit", "~/", "./", "\n", "$", "'''", "...",
];

/// A small deterministic generator (an LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below.max(1)
    }
}

#[test]
fn damaged_sources_load_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut rng = Lcg(42);
    let mut ev = Evaluator::new(Box::new(PlainIo::default()), EvalOptions::default());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for _ in 0..40 {
            let mut t: Vec<char> = text.chars().collect();
            for _ in 0..=rng.next(3) {
                let pos = rng.next(t.len() + 1);
                if rng.next(10) < 4 && !t.is_empty() {
                    let end = (pos + 1 + rng.next(5)).min(t.len());
                    t.drain(pos.min(t.len())..end.max(pos.min(t.len())));
                } else {
                    let tok = TOKENS[rng.next(TOKENS.len())];
                    for (i, c) in tok.chars().enumerate() {
                        t.insert(pos + i, c);
                    }
                }
            }
            let damaged: String = t.into_iter().collect();
            let _ = ev.load("«damaged»".into(), None, damaged.into(), &dir);
        }
    }
}
