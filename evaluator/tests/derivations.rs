//! `derivationStrict` hands the store exactly the derivation CppNix would write: checks the
//! request a recording I/O receives.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiln_evaluator::io::{DerivationPaths, DerivationRequest, EvalIo, FileType, PlainIo};
use kiln_evaluator::{EvalOptions, Evaluator};

struct Recording {
    plain: PlainIo,
    seen: Rc<RefCell<Vec<DerivationRequest>>>,
}

impl EvalIo for Recording {
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.plain.read_file(path)
    }
    fn path_exists(&self, path: &Path) -> bool {
        self.plain.path_exists(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.plain.is_dir(path)
    }
    fn file_type(&self, path: &Path) -> std::io::Result<FileType> {
        self.plain.file_type(path)
    }
    fn read_dir(&self, path: &Path) -> std::io::Result<Vec<(String, FileType)>> {
        self.plain.read_dir(path)
    }
    fn store_dir(&self) -> String {
        self.plain.store_dir()
    }
    fn add_path_to_store(
        &self,
        path: &Path,
        name: Option<&str>,
        recursive: bool,
        excluded: &[PathBuf],
    ) -> std::io::Result<String> {
        self.plain.add_path_to_store(path, name, recursive, excluded)
    }
    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[String],
    ) -> std::io::Result<String> {
        self.plain.add_text_to_store(name, text, refs)
    }
    fn write_derivation(&self, drv: &DerivationRequest) -> std::io::Result<DerivationPaths> {
        self.seen.borrow_mut().push(drv.clone());
        self.plain.write_derivation(drv)
    }
    fn report(&self, _: &str) {}
    fn get_env(&self, _: &str) -> Option<String> {
        None
    }
}

fn requests(expr: &str) -> Vec<DerivationRequest> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let io = Recording { plain: PlainIo::default(), seen: seen.clone() };
    let mut ev = Evaluator::new(Box::new(io), EvalOptions::default());
    let e = ev
        .load("«test»".into(), None, expr.into(), Path::new("/"))
        .unwrap_or_else(|_| panic!("{expr}"));
    let v = ev.eval_root(&e).unwrap_or_else(|d| panic!("{}", d.message));
    ev.print_strict(&v).unwrap_or_else(|d| panic!("{}", d.message));
    seen.borrow().clone()
}

#[test]
fn environment_inputs_and_outputs() {
    let reqs = requests(
        r#"let
             dep = derivation { name = "dep"; builder = "/bin/sh"; system = "x86_64-linux"; outputs = [ "out" "dev" ]; };
             src = builtins.toFile "script" "echo hi";
           in (derivation {
             name = "hello"; builder = "/bin/sh"; system = "x86_64-linux";
             args = [ "-e" src ]; flag = true; nothing = null; n = 3; list = [ "a" 1 ];
             inherit (dep) dev;
           }).drvPath"#,
    );
    let hello = reqs.iter().find(|r| r.name == "hello").expect("hello was written");
    assert_eq!(hello.builder, "/bin/sh");
    assert_eq!(hello.platform, "x86_64-linux");
    assert_eq!(hello.outputs, ["out"]);
    assert_eq!(hello.env["flag"], "1");
    assert_eq!(hello.env["nothing"], "");
    assert_eq!(hello.env["n"], "3");
    assert_eq!(hello.env["list"], "a 1");
    assert_eq!(hello.env["out"], "");
    assert!(hello.args[1].starts_with("/nix/store/") && hello.args[1].ends_with("-script"));
    assert_eq!(hello.input_srcs.len(), 1);
    let (dep_drv, outs) = hello.input_drvs.iter().next().expect("an input derivation");
    assert!(dep_drv.ends_with("-dep.drv"));
    assert_eq!(outs.iter().collect::<Vec<_>>(), ["dev"]);
    assert!(hello.fixed.is_none());
}

#[test]
fn fixed_outputs_are_given_in_hex_with_the_mode() {
    let reqs = requests(
        r#"(derivation { name = "f"; builder = "b"; system = "s";
             outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; outputHashMode = "recursive"; }).outPath"#,
    );
    let (algo, hex) = reqs[0].fixed.clone().expect("a fixed output");
    assert_eq!(algo, "r:sha256");
    assert_eq!(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

#[test]
fn structured_attributes_go_to_json() {
    let reqs = requests(
        r#"(derivation { name = "s"; builder = "b"; system = "s"; __structuredAttrs = true; xs = [ 1 2 ]; }).outPath"#,
    );
    let json = &reqs[0].env["__json"];
    assert!(json.contains(r#""xs":[1,2]"#), "{json}");
    assert!(!reqs[0].env.contains_key("xs"));
}
