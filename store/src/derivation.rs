//! Derivations and their `.drv` files, in Nix's ATerm text form.
//!
//! A `.drv` file is one line: `Derive([outputs],[input derivations],[input sources],"system",
//! "builder",[args],[environment])`. Every list is sorted (outputs and environment by name,
//! inputs by path), so a derivation has exactly one text and one store path. The writer here
//! and the parser in `parse` are inverses; the tests check that on every shape.

mod parse;

use std::collections::{BTreeMap, BTreeSet};

use crate::path::{StoreDir, StorePath};

pub use parse::parse;

/// A derivation: how to build one or more outputs from inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Derivation {
    /// The outputs, by name (`out`, `dev`, ...).
    pub outputs: BTreeMap<String, DerivationOutput>,
    /// Other derivations whose outputs this one needs, with the names of those outputs.
    pub input_drvs: BTreeMap<StorePath, BTreeSet<String>>,
    /// Store paths this one needs that no derivation here produces (sources).
    pub input_srcs: BTreeSet<StorePath>,
    /// The system it builds on, such as `x86_64-linux`.
    pub platform: String,
    /// The program to run.
    pub builder: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The environment the program gets, before the builder adds its fixed variables.
    pub env: BTreeMap<String, String>,
}

/// One output of a derivation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivationOutput {
    /// Where it goes; `None` when only the build decides (a content-addressed output).
    pub path: Option<StorePath>,
    /// For a fixed or content-addressed output, the hash algorithm with an `r:` prefix when
    /// the hash is over a NAR (`r:sha256`); empty otherwise.
    pub hash_algo: String,
    /// For a fixed output, the expected hash in hexadecimal; empty otherwise.
    pub hash: String,
}

impl Derivation {
    /// Writes the ATerm text of the derivation, with paths made absolute in `dir`.
    pub fn to_aterm(&self, dir: &StoreDir) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("Derive([");
        for (i, (name, o)) in self.outputs.iter().enumerate() {
            comma(&mut out, i);
            out.push('(');
            push_str(&mut out, name);
            out.push(',');
            push_str(&mut out, &o.path.as_ref().map(|p| dir.render(p)).unwrap_or_default());
            out.push(',');
            push_str(&mut out, &o.hash_algo);
            out.push(',');
            push_str(&mut out, &o.hash);
            out.push(')');
        }
        out.push_str("],[");
        for (i, (drv, outputs)) in self.input_drvs.iter().enumerate() {
            comma(&mut out, i);
            out.push('(');
            push_str(&mut out, &dir.render(drv));
            out.push_str(",[");
            for (j, o) in outputs.iter().enumerate() {
                comma(&mut out, j);
                push_str(&mut out, o);
            }
            out.push_str("])");
        }
        out.push_str("],[");
        for (i, src) in self.input_srcs.iter().enumerate() {
            comma(&mut out, i);
            push_str(&mut out, &dir.render(src));
        }
        out.push_str("],");
        push_str(&mut out, &self.platform);
        out.push(',');
        push_str(&mut out, &self.builder);
        out.push_str(",[");
        for (i, a) in self.args.iter().enumerate() {
            comma(&mut out, i);
            push_str(&mut out, a);
        }
        out.push_str("],[");
        for (i, (k, v)) in self.env.iter().enumerate() {
            comma(&mut out, i);
            out.push('(');
            push_str(&mut out, k);
            out.push(',');
            push_str(&mut out, v);
            out.push(')');
        }
        out.push_str("])");
        out
    }

    /// Returns every store path the derivation file refers to: input derivations and sources.
    pub fn references(&self) -> BTreeSet<StorePath> {
        self.input_drvs.keys().chain(&self.input_srcs).cloned().collect()
    }
}

fn comma(out: &mut String, i: usize) {
    if i > 0 {
        out.push(',');
    }
}

/// Writes a quoted ATerm string: `"` and `\` are escaped, and so are newline, carriage return
/// and tab, as Nix writes them.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Blake3Hash;
    use std::path::Path;

    fn dir() -> StoreDir {
        StoreDir::new(Path::new("/k/store")).unwrap()
    }

    fn sample() -> Derivation {
        let d = dir();
        let src = d.make_source_path(&Blake3Hash::of(b"src"), "src", [], false).unwrap();
        let dep = d.make_text_path("dep.drv", b"Derive()", []).unwrap();
        let out = d.make_path("output:out", &Blake3Hash::of(b"o"), "hello").unwrap();
        Derivation {
            outputs: BTreeMap::from([
                ("out".into(), DerivationOutput { path: Some(out), ..Default::default() }),
                (
                    "dev".into(),
                    DerivationOutput {
                        path: None,
                        hash_algo: "r:sha256".into(),
                        hash: String::new(),
                    },
                ),
            ]),
            input_drvs: BTreeMap::from([(dep, BTreeSet::from(["out".into(), "dev".into()]))]),
            input_srcs: BTreeSet::from([src]),
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), "echo \"hi\"\n\ttab\\back\r".into(), String::new()],
            env: BTreeMap::from([
                ("name".into(), "hello".into()),
                ("weird".into(), "quote\" newline\n unicode \u{e9}".into()),
                ("empty".into(), String::new()),
            ]),
        }
    }

    #[test]
    fn round_trip() {
        let drv = sample();
        let text = drv.to_aterm(&dir());
        assert!(text.starts_with("Derive([(\"dev\",\"\",\"r:sha256\",\"\"),(\"out\",\"/k/store/"));
        assert!(text.contains(r#""-c","echo \"hi\"\n\ttab\\back\r","""#), "{text}");
        let back = parse(&text, &dir(), "test.drv").unwrap();
        assert_eq!(back, drv);
        assert_eq!(back.to_aterm(&dir()), text);
    }

    #[test]
    fn empty_lists_round_trip() {
        let drv = Derivation { platform: "p".into(), builder: "b".into(), ..Default::default() };
        let text = drv.to_aterm(&dir());
        assert_eq!(text, r#"Derive([],[],[],"p","b",[],[])"#);
        assert_eq!(parse(&text, &dir(), "x.drv").unwrap(), drv);
    }

    #[test]
    fn malformed_files_give_the_offset() {
        let d = dir();
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected `Derive(`"),
            ("Derive([],[],[],\"p\",\"b\",[],[]", 29, "expected `)`"),
            ("Derive([],[],[],\"p\",\"b\",[],[])x", 30, "trailing bytes"),
            ("Derive([],[],[],\"p,\"b\",[],[])", 20, "expected `,`"),
            ("Derive([],[],[],\"p\",\"b\",[],[(\"a\"])", 32, "expected `,`"),
            ("Derive([],[],[\"/elsewhere/x\"],\"p\",\"b\",[],[])", 14, "not in the store"),
            ("Derive([],[],[],\"p\",\"b\",[],[(\"k\",\"unterminated", 33, "unterminated string"),
            ("Derive([],[],[],\"p\",\"b\",[\"\\", 25, "unterminated string"),
            (
                "Derive([(\"out\",\"\",\"\",\"\")],[],[],\"p\",\"b\",[],[(\"b\",\"\"),(\"a\",\"\")])",
                43,
                "not sorted",
            ),
        ];
        for (text, offset, message) in cases {
            let err = parse(text, &d, "bad.drv").unwrap_err().to_string();
            assert!(
                err.contains(&format!("`bad.drv` at byte {offset}:")) && err.contains(message),
                "{text:?} gave {err:?}, wanted offset {offset} and {message:?}"
            );
        }
    }
}
