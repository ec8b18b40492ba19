//! What each fuzz target does with its input. Each function must return normally for every
//! input: an error is an answer, a panic, an abort or a hang is a finding.
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets/`) and by kiln's test
//! `tests/fuzz_regressions.rs`, which runs every input kept in `fuzz/regressions/TARGET/`.

use std::path::Path;
use std::rc::Rc;

use kiln_evaluator::io::{DerivationPaths, DerivationRequest};
use kiln_evaluator::value::{AttrEntry, Attrs, Symbol, Thunk};
use kiln_evaluator::{EvalIo, EvalOptions, Evaluator, FileType, PlainIo, Value};

/// The names of the targets, as `fuzz/Cargo.toml` and `fuzz/regressions/` name them.
pub const TARGETS: &[&str] = &["parse", "eval", "derivation", "nar", "store_path", "formats"];

/// Runs the target called `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "parse" => parse(data),
        "eval" => eval(data),
        "derivation" => derivation(data),
        "nar" => nar(data),
        "store_path" => store_path(data),
        "formats" => formats(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// Evaluation with bounds that keep one input short: a step budget, little memory, a shallow
/// call depth, and no file system.
fn evaluator() -> Evaluator {
    let opts = EvalOptions {
        system: "x86_64-linux".into(),
        max_call_depth: 2_000,
        max_memory: 256 << 20,
        max_steps: 2_000_000,
        ..EvalOptions::default()
    };
    Evaluator::new(Box::new(NoFiles(PlainIo::default())), opts)
}

/// The parser and the lowering to kiln's intermediate form.
pub fn parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ev = evaluator();
    let _ = ev.load("fuzz.nix".into(), None, text.into(), Path::new("/"));
}

/// The evaluator, on arbitrary expressions, printed strictly.
pub fn eval(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ev = evaluator();
    let Ok(e) = ev.load("fuzz.nix".into(), None, text.into(), Path::new("/")) else { return };
    if let Ok(v) = ev.eval_root(&e) {
        let _ = ev.print_strict(&v);
    }
}

/// The `.drv` parser.
pub fn derivation(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = kiln_store::StoreDir::new(Path::new("/nix/store")).expect("a valid store dir");
    if let Ok(drv) = kiln_store::parse_derivation(text, &dir, "fuzz.drv") {
        // What parses must print and parse again to the same.
        let again = drv.to_aterm(&dir);
        let reparsed = kiln_store::parse_derivation(&again, &dir, "fuzz.drv")
            .expect("a printed derivation parses");
        assert_eq!(reparsed.to_aterm(&dir), again, "printing is stable");
    }
}

/// Unpacking a NAR archive: whatever the input, nothing lands outside the target folder.
pub fn nar(data: &[u8]) {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let inside = tmp.path().join("inside");
    std::fs::create_dir(&inside).expect("a folder");
    let target = inside.join("out");
    let result = kiln_store::nar::restore(data, &target);
    let outside: Vec<_> = std::fs::read_dir(tmp.path()).expect("list").flatten().collect();
    assert_eq!(outside.len(), 1, "only `inside` is in the temporary folder: {outside:?}");
    let within: Vec<_> = std::fs::read_dir(&inside).expect("list").flatten().collect();
    assert!(within.len() <= 1, "only `out` is in `inside`: {within:?}");
    if result.is_ok() {
        // An archive that unpacks dumps to the same bytes.
        let mut again = Vec::new();
        kiln_store::nar::dump(&target, &mut again).expect("dump what was unpacked");
        assert_eq!(again, data, "an accepted archive is canonical");
    }
}

/// Store path parsing, and names.
pub fn store_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = kiln_store::StoreDir::new(Path::new("/nix/store")).expect("a valid store dir");
    if let Ok(p) = dir.parse(text) {
        assert_eq!(dir.parse(&dir.render(&p)).expect("a rendered path parses"), p);
    }
    let _ = kiln_store::StorePath::from_base_name(text);
    let _ = kiln_store::check_name(text);
}

/// `fromJSON` and `fromTOML` on the input as a string, printed strictly.
pub fn formats(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut ev = evaluator();
    let entry = AttrEntry { value: Thunk::value(Value::string(text)), pos: None };
    let scope: Attrs = [(Symbol::new("s"), entry)].into_iter().collect();
    let scope = Rc::new(scope);
    for expr in ["builtins.fromJSON s", "builtins.fromTOML s"] {
        if let Ok(v) = ev.eval_in_scope("fuzz.nix", expr, Path::new("/"), &scope) {
            let _ = ev.print_strict(&v);
        }
    }
}

/// The evaluator's I/O without a file system: reading anything fails, store paths are computed
/// as `PlainIo` computes them.
struct NoFiles(PlainIo);

fn denied() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no files while fuzzing")
}

impl EvalIo for NoFiles {
    fn read_file(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Err(denied())
    }
    fn path_exists(&self, _: &Path) -> bool {
        false
    }
    fn is_dir(&self, _: &Path) -> bool {
        false
    }
    fn file_type(&self, _: &Path) -> std::io::Result<FileType> {
        Err(denied())
    }
    fn read_dir(&self, _: &Path) -> std::io::Result<Vec<(String, FileType)>> {
        Err(denied())
    }
    fn store_dir(&self) -> String {
        self.0.store_dir()
    }
    fn add_path_to_store(
        &self,
        _: &Path,
        _: Option<&str>,
        _: bool,
        _: &[std::path::PathBuf],
    ) -> std::io::Result<String> {
        Err(denied())
    }
    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[String],
    ) -> std::io::Result<String> {
        self.0.add_text_to_store(name, text, refs)
    }
    fn write_derivation(&self, drv: &DerivationRequest) -> std::io::Result<DerivationPaths> {
        self.0.write_derivation(drv)
    }
    fn report(&self, _: &str) {}
    fn get_env(&self, _: &str) -> Option<String> {
        None
    }
}
