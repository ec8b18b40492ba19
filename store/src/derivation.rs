//! Derivations and their `.drv` files, in Nix's ATerm text form.
//!
//! A `.drv` file is one line: `Derive([outputs],[input derivations],[input sources],"system",
//! "builder",[args],[environment])`. Every list is sorted (outputs and environment by name,
//! inputs by path), so a derivation has exactly one text and one store path. The writer here
//! and the parser in `parse` are inverses; the tests check that on every shape.

mod parse;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::hash::Blake3Hash;
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
        let inputs: BTreeMap<String, &BTreeSet<String>> =
            self.input_drvs.iter().map(|(p, o)| (dir.render(p), o)).collect();
        self.write_aterm(dir, &inputs, false)
    }

    /// Writes the ATerm text with input derivations given as `inputs` (paths, or identities in
    /// hex), and with output paths and the environment variables named after outputs emptied
    /// when `mask_outputs` is set.
    fn write_aterm(
        &self,
        dir: &StoreDir,
        inputs: &BTreeMap<String, &BTreeSet<String>>,
        mask_outputs: bool,
    ) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("Derive([");
        for (i, (name, o)) in self.outputs.iter().enumerate() {
            comma(&mut out, i);
            out.push('(');
            push_str(&mut out, name);
            out.push(',');
            let path = if mask_outputs { None } else { o.path.as_ref() };
            push_str(&mut out, &path.map(|p| dir.render(p)).unwrap_or_default());
            out.push(',');
            push_str(&mut out, &o.hash_algo);
            out.push(',');
            push_str(&mut out, &o.hash);
            out.push(')');
        }
        out.push_str("],[");
        for (i, (drv, outputs)) in inputs.iter().enumerate() {
            comma(&mut out, i);
            out.push('(');
            push_str(&mut out, drv);
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
            let masked = mask_outputs && self.outputs.contains_key(k);
            push_str(&mut out, if masked { "" } else { v });
            out.push(')');
        }
        out.push_str("])");
        out
    }

    /// Returns every store path the derivation file refers to: input derivations and sources.
    pub fn references(&self) -> BTreeSet<StorePath> {
        self.input_drvs.keys().chain(&self.input_srcs).cloned().collect()
    }

    /// Tells whether this is a fixed-output derivation: one output, `out`, whose hash is
    /// declared in advance (a download, say).
    pub fn is_fixed_output(&self) -> bool {
        self.outputs.len() == 1 && self.outputs.get("out").is_some_and(|o| !o.hash.is_empty())
    }

    /// Computes the derivation's identity, the digest its input-addressed output paths derive
    /// from. `input_identity` gives the identity of each input derivation.
    ///
    /// A fixed output's identity is that of its declared hash and path, so how it is fetched
    /// does not matter downstream. Otherwise it is blake3 of the ATerm text with each input
    /// derivation replaced by its identity in hex, and the output paths (and the environment
    /// variables named after outputs) emptied, since they are what is being computed.
    pub fn identity<E>(
        &self,
        dir: &StoreDir,
        mut input_identity: impl FnMut(&StorePath) -> Result<Blake3Hash, E>,
    ) -> Result<Blake3Hash, E> {
        if self.is_fixed_output() {
            let out = &self.outputs["out"];
            let path = out.path.as_ref().map(|p| dir.render(p)).unwrap_or_default();
            let text = format!("fixed:out:{}:{}:{path}", out.hash_algo, out.hash);
            return Ok(Blake3Hash::of(text.as_bytes()));
        }
        let mut inputs = BTreeMap::new();
        for (drv, outputs) in &self.input_drvs {
            inputs.insert(input_identity(drv)?.to_hex(), outputs);
        }
        Ok(Blake3Hash::of(self.write_aterm(dir, &inputs, true).as_bytes()))
    }

    /// Fills in the paths of input-addressed outputs (and the environment variables named
    /// after them) from the derivation's identity; `name` is the derivation's name.
    pub fn fill_output_paths<E: From<Error>>(
        &mut self,
        dir: &StoreDir,
        name: &str,
        input_identity: impl FnMut(&StorePath) -> Result<Blake3Hash, E>,
    ) -> Result<Blake3Hash, E> {
        if self.is_fixed_output() {
            let out = self.outputs.get_mut("out").expect("a fixed output is `out`");
            let path = fixed_output_path(dir, name, &out.hash_algo, &out.hash)?;
            self.env.insert("out".into(), dir.render(&path));
            out.path = Some(path);
            return self.identity(dir, input_identity);
        }
        let identity = self.identity(dir, input_identity)?;
        for (output, o) in self.outputs.iter_mut() {
            if !o.hash_algo.is_empty() {
                continue; // content-addressed: the build decides
            }
            let path = dir.make_path(
                &format!("output:{output}"),
                &identity,
                &output_path_name(name, output),
            )?;
            self.env.insert(output.clone(), dir.render(&path));
            o.path = Some(path);
        }
        Ok(identity)
    }
}

/// Returns the name of a derivation's output path: the derivation's name, with `-<output>`
/// added for outputs other than `out`.
pub fn output_path_name(drv_name: &str, output: &str) -> String {
    if output == "out" { drv_name.to_owned() } else { format!("{drv_name}-{output}") }
}

/// Returns the path of a fixed output, which depends only on its declared hash (`hash_algo`
/// such as `sha256` or `r:sha256`, `hash` in hex) and its name.
pub fn fixed_output_path(
    dir: &StoreDir,
    name: &str,
    hash_algo: &str,
    hash: &str,
) -> Result<StorePath, Error> {
    let inner = Blake3Hash::of(format!("fixed:out:{hash_algo}:{hash}:").as_bytes());
    dir.make_path("fixed:out", &inner, name)
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
    fn identity_ignores_outputs_and_follows_inputs() {
        let d = dir();
        let mut drv = sample();
        drv.outputs.get_mut("dev").unwrap().hash_algo.clear();
        // As `derivation` does, every output is also an environment variable.
        drv.env.insert("out".into(), String::new());
        drv.env.insert("dev".into(), String::new());
        let id = |_: &StorePath| Ok::<_, Error>(Blake3Hash::of(b"input"));
        let before = drv.identity(&d, id).unwrap();
        let mut filled = drv.clone();
        filled.fill_output_paths(&d, "hello", id).unwrap();
        assert_eq!(
            filled.identity(&d, id).unwrap(),
            before,
            "output paths do not feed the identity"
        );
        let out = filled.outputs["out"].path.clone().unwrap();
        assert_eq!(filled.env["out"], d.render(&out));
        assert!(out.to_string().ends_with("-hello"));
        assert!(filled.outputs["dev"].path.as_ref().unwrap().to_string().ends_with("-hello-dev"));

        let other_input = |_: &StorePath| Ok::<_, Error>(Blake3Hash::of(b"changed input"));
        assert_ne!(drv.identity(&d, other_input).unwrap(), before);
        drv.env.insert("extra".into(), "1".into());
        assert_ne!(drv.identity(&d, id).unwrap(), before);
    }

    #[test]
    fn fixed_outputs_depend_only_on_their_hash() {
        let d = dir();
        let fixed = |builder: &str| {
            let mut drv = Derivation {
                outputs: BTreeMap::from([(
                    "out".into(),
                    DerivationOutput {
                        path: None,
                        hash_algo: "sha256".into(),
                        hash: "ab".repeat(32),
                    },
                )]),
                builder: builder.into(),
                ..Default::default()
            };
            let id = drv
                .fill_output_paths(&d, "src.tar.gz", |_| Ok::<_, Error>(Blake3Hash::of(b"")))
                .unwrap();
            (drv, id)
        };
        let (a, id_a) = fixed("curl");
        let (b, id_b) = fixed("wget");
        assert!(a.is_fixed_output());
        assert_eq!(a.outputs["out"].path, b.outputs["out"].path);
        assert_eq!(id_a, id_b);
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
