//! Data-driven tests: every `tests/data/eval-okay-*.nix` must evaluate (strictly) to the text in
//! its `.exp`, every `tests/data/eval-fail-*.nix` must fail with the error summary in its
//! `.err` (a snapshot; `KILN_UPDATE_SNAPSHOTS=1` rewrites them), and every ```nix example in
//! `lang-spec/` followed by an ```expected block must print that text.

use std::path::{Path, PathBuf};

use kiln_evaluator::{EvalOptions, Evaluator, PlainIo};

fn evaluator() -> Evaluator {
    let opts = EvalOptions {
        home: Some("/fake-home".into()),
        system: "x86_64-linux".into(),
        // CppNix's later default, which the recursion snapshots were written against; what
        // happens without it (the stack runs out) is tested end to end in tests/kiln/limits.rs.
        max_call_depth: 10_000,
        ..EvalOptions::default()
    };
    Evaluator::new(Box::new(PlainIo::default()), opts)
}

/// Evaluates `text` strictly on a thread with a large stack, as the command line does.
fn run(name: &str, path: Option<PathBuf>, text: &str, dir: &Path) -> Result<String, String> {
    let (name, text, dir) = (name.to_string(), text.to_string(), dir.to_path_buf());
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || run_here(&name, path, &text, &dir))
        .unwrap()
        .join()
        .unwrap()
}

fn run_here(name: &str, path: Option<PathBuf>, text: &str, dir: &Path) -> Result<String, String> {
    let mut ev = evaluator();
    let expr = match ev.load(name.to_string(), path, text.into(), dir) {
        Ok(e) => e,
        Err(ds) => return Err(ds.iter().map(|d| d.summary(&ev.sources, false)).collect()),
    };
    let v = ev.eval_root(&expr).map_err(|d| d.summary(&ev.sources, false))?;
    ev.print_strict(&v).map_err(|d| d.summary(&ev.sources, false))
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[test]
fn data_files() {
    let dir = data_dir();
    let update = std::env::var_os("KILN_UPDATE_SNAPSHOTS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/data exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.ends_with(".nix") && (n.starts_with("eval-okay-") || n.starts_with("eval-fail-"))
        })
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut failures = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let pwd = dir.to_string_lossy().into_owned();
        let got = run(&name, Some(path.clone()), &text, &dir)
            .map(|s| s.replace(&pwd, "/pwd"))
            .map_err(|e| e.replace(&pwd, "/pwd"));
        let (exp_path, got_text) = if name.starts_with("eval-okay-") {
            match got {
                Ok(s) => (path.with_extension("exp"), s),
                Err(e) => {
                    failures.push(format!("{name}: failed:\n{e}"));
                    continue;
                }
            }
        } else {
            match got {
                Err(e) => (path.with_extension("err"), e),
                Ok(s) => {
                    failures.push(format!("{name}: evaluated to {s}"));
                    continue;
                }
            }
        };
        if update {
            std::fs::write(&exp_path, format!("{}\n", got_text.trim_end())).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&exp_path).unwrap_or_default();
        if expected.trim_end() != got_text.trim_end() {
            failures.push(format!(
                "{name}:\n expected: {}\n      got: {}",
                expected.trim_end(),
                got_text.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `tests/data/parse-okay-*.nix` prints (as `kiln parse` does) the text of its `.exp`,
/// with the data folder written `/pwd`.
#[test]
fn parse_files() {
    let dir = data_dir();
    let update = std::env::var_os("KILN_UPDATE_SNAPSHOTS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("parse-okay-") && n.ends_with(".nix"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut ev = evaluator();
        let expr = ev
            .load(name.clone(), Some(path.clone()), text.into(), &dir)
            .unwrap_or_else(|ds| panic!("{name}: {}", ds[0].message));
        let got = kiln_evaluator::show::show(&expr).replace(&*dir.to_string_lossy(), "/pwd");
        let exp_path = path.with_extension("exp");
        if update {
            std::fs::write(&exp_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&exp_path).unwrap_or_default();
        assert_eq!(expected.trim_end(), got, "{name}");
    }
}

#[test]
fn lang_spec_examples() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lang-spec");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&spec)
        .expect("lang-spec exists")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].trim() != "```nix" {
                i += 1;
                continue;
            }
            let start = i + 1;
            let mut j = start;
            while j < lines.len() && lines[j].trim() != "```" {
                j += 1;
            }
            let code = lines[start..j].join("\n");
            let mut k = j + 1;
            while k < lines.len() && lines[k].trim().is_empty() {
                k += 1;
            }
            if k < lines.len() && lines[k].trim() == "```expected" {
                let mut m = k + 1;
                while m < lines.len() && lines[m].trim() != "```" {
                    m += 1;
                }
                let expected = lines[k + 1..m].join("\n");
                let got = match run("«example»", None, &code, &spec) {
                    Ok(s) => s,
                    Err(e) => format!("error: {}", e.lines().next().unwrap_or("")),
                };
                checked += 1;
                if got.trim_end() != expected.trim_end() {
                    failures.push(format!(
                        "{}:{}:\n{code}\n expected: {expected}\n      got: {got}",
                        file.display(),
                        start
                    ));
                }
                i = m + 1;
            } else {
                i = j + 1;
            }
        }
    }
    assert!(checked > 0, "no examples found in lang-spec/");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
