//! Store paths: `<store dir>/<digest>-<name>`, validated once when they are made or parsed.
//!
//! The digest is 160 bits of a blake3 hash over a fingerprint string, written in Nix's base-32
//! (32 characters). `lang-spec/store-paths.md` documents the fingerprint so that a second
//! implementation can compute the same paths.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::hash::Blake3Hash;
use crate::{Error, nix32};

/// Bytes of a store path digest.
pub const DIGEST_BYTES: usize = 20;
/// Characters of a store path digest in base-32.
pub const DIGEST_CHARS: usize = nix32::encoded_len(DIGEST_BYTES);
/// The longest name a store path may carry, as in Nix.
pub const MAX_NAME_LEN: usize = 211;

/// The absolute folder that holds the store paths, `ROOT/store`. It is part of every digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoreDir(String);

impl StoreDir {
    /// Wraps an absolute, normalised folder path that is valid UTF-8.
    pub fn new(path: &Path) -> Result<StoreDir, Error> {
        let text = path.to_str().ok_or_else(|| Error::BadStoreDir {
            path: path.to_owned(),
            reason: "it is not valid UTF-8",
        })?;
        let normal = path.is_absolute()
            && !text.ends_with('/')
            && path.components().all(|c| {
                matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_))
            });
        if !normal {
            return Err(Error::BadStoreDir {
                path: path.to_owned(),
                reason: "it must be an absolute path without `.`, `..` or a trailing slash",
            });
        }
        Ok(StoreDir(text.to_owned()))
    }

    /// Returns the folder as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the folder as a path.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// Returns the absolute path of a store path in this store.
    pub fn render(&self, path: &StorePath) -> String {
        format!("{}/{}", self.0, path)
    }

    /// Returns the file-system location of a store path in this store.
    pub fn locate(&self, path: &StorePath) -> PathBuf {
        Path::new(&self.0).join(path.to_string())
    }

    /// Parses an absolute store path of this store; a path inside a store path is refused.
    pub fn parse(&self, text: &str) -> Result<StorePath, Error> {
        let base = text
            .strip_prefix(&self.0)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| Error::NotInStore { path: text.to_owned(), store: self.0.clone() })?;
        StorePath::from_base_name(base)
    }

    /// Splits an absolute path inside this store into its store path and the rest
    /// (`/s/abc-foo/bin/x` gives `abc-foo` and `bin/x`).
    pub fn split<'a>(&self, text: &'a str) -> Result<(StorePath, &'a str), Error> {
        let rest = text
            .strip_prefix(&self.0)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| Error::NotInStore { path: text.to_owned(), store: self.0.clone() })?;
        let (base, inner) = rest.split_once('/').unwrap_or((rest, ""));
        Ok((StorePath::from_base_name(base)?, inner.trim_start_matches('/')))
    }

    /// Computes a store path from its kind, the digest of its contents and its name.
    ///
    /// The fingerprint is `kiln1:<kind>:blake3:<hex of inner>:<store dir>:<name>`, and the
    /// path's digest is the first 20 bytes of its blake3 hash.
    pub fn make_path(
        &self,
        kind: &str,
        inner: &Blake3Hash,
        name: &str,
    ) -> Result<StorePath, Error> {
        check_name(name)?;
        let fingerprint = format!("kiln1:{kind}:blake3:{}:{}:{name}", inner.to_hex(), self.0);
        let full = blake3::hash(fingerprint.as_bytes());
        let mut digest = [0u8; DIGEST_BYTES];
        digest.copy_from_slice(&full.as_bytes()[..DIGEST_BYTES]);
        Ok(StorePath::from_parts(&digest, name))
    }

    /// Computes the path of files added as they are (`kind` `source`), with their references.
    pub fn make_source_path<'a>(
        &self,
        nar_hash: &Blake3Hash,
        name: &str,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_reference: bool,
    ) -> Result<StorePath, Error> {
        let kind = self.kind_with_refs("source", references, self_reference);
        self.make_path(&kind, nar_hash, name)
    }

    /// Computes the path of a text file such as a `.drv` (`kind` `text`), with its references.
    pub fn make_text_path<'a>(
        &self,
        name: &str,
        contents: &[u8],
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, Error> {
        let kind = self.kind_with_refs("text", references, false);
        self.make_path(&kind, &Blake3Hash::of(contents), name)
    }

    fn kind_with_refs<'a>(
        &self,
        kind: &str,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_reference: bool,
    ) -> String {
        let mut refs: Vec<String> = references.into_iter().map(|r| self.render(r)).collect();
        refs.sort();
        refs.dedup();
        let mut out = kind.to_owned();
        for r in refs {
            out.push(':');
            out.push_str(&r);
        }
        if self_reference {
            out.push_str(":self");
        }
        out
    }
}

/// A path in the store, without the store folder: `<digest>-<name>`.
///
/// It orders as its text does, which is the order `.drv` files and Nix use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    base: Box<str>,
}

impl StorePath {
    /// Parses `<digest>-<name>`, the base name of a store path.
    pub fn from_base_name(base: &str) -> Result<StorePath, Error> {
        let bad = |reason: &'static str| Error::BadStorePath { path: base.to_owned(), reason };
        if base.len() < DIGEST_CHARS + 2 || base.as_bytes()[DIGEST_CHARS] != b'-' {
            return Err(bad("it must be a 32-character digest, a dash and a name"));
        }
        if !base.as_bytes()[..DIGEST_CHARS].iter().all(|c| nix32::ALPHABET.contains(c)) {
            return Err(bad("its digest is not in Nix's base-32 alphabet"));
        }
        check_name(&base[DIGEST_CHARS + 1..])?;
        Ok(StorePath { base: base.into() })
    }

    fn from_parts(digest: &[u8; DIGEST_BYTES], name: &str) -> StorePath {
        StorePath { base: format!("{}-{name}", nix32::encode(digest)).into() }
    }

    /// Returns the name after the digest.
    pub fn name(&self) -> &str {
        &self.base[DIGEST_CHARS + 1..]
    }

    /// Returns the digest's 20 bytes.
    pub fn digest(&self) -> [u8; DIGEST_BYTES] {
        let bytes = nix32::decode(self.digest_text(), DIGEST_BYTES).expect("checked when parsed");
        bytes.try_into().expect("decode returns the length asked for")
    }

    /// Returns the digest in base-32, the part a reference scanner looks for.
    pub fn digest_text(&self) -> &str {
        &self.base[..DIGEST_CHARS]
    }

    /// Returns `<digest>-<name>`.
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// Tells whether this is a derivation file.
    pub fn is_derivation(&self) -> bool {
        self.name().ends_with(".drv")
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.base)
    }
}

/// Checks a store path name against Nix's rules: 1 to 211 characters from `A-Za-z0-9+-._?=`,
/// not starting with a period.
pub fn check_name(name: &str) -> Result<(), Error> {
    let bad = |reason: String| Error::BadName { name: name.to_owned(), reason };
    if name.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(format!("it is longer than {MAX_NAME_LEN} characters")));
    }
    if name.starts_with('.') {
        return Err(bad("it starts with a period".into()));
    }
    if let Some(c) = name.chars().find(|&c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(c))) {
        return Err(bad(format!("it contains {c:?}; allowed are letters, digits and `+-._?=`")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> StoreDir {
        StoreDir::new(Path::new("/kiln/store")).unwrap()
    }

    #[test]
    fn fixed_vectors() {
        // Written down once from this implementation and kept: a change here changes every
        // store path, which lang-spec/store-paths.md would then have to say.
        let nar = Blake3Hash::of(b"nar bytes");
        let p = dir().make_source_path(&nar, "hello-2.10", [], false).unwrap();
        assert_eq!(p.to_string(), "19s04m1p038pblyrkhz8kv1g5a2avrb2-hello-2.10");
        let q = dir().make_text_path("hello.drv", b"Derive()", [&p]).unwrap();
        assert_eq!(q.to_string(), "01k4h6gjjwim019m43rcprs06vwcpyip-hello.drv");
        // The fingerprint is plain text; check it by hand once.
        let fp = format!("kiln1:source:blake3:{}:/kiln/store:hello-2.10", nar.to_hex());
        let full = blake3::hash(fp.as_bytes());
        assert_eq!(&p.digest()[..], &full.as_bytes()[..20]);
    }

    #[test]
    fn references_and_store_dir_change_the_path() {
        let nar = Blake3Hash::of(b"x");
        let a = dir().make_source_path(&nar, "a", [], false).unwrap();
        let b = dir().make_source_path(&nar, "a", [&a], false).unwrap();
        let c = dir().make_source_path(&nar, "a", [], true).unwrap();
        let other = StoreDir::new(Path::new("/other/store")).unwrap();
        let d = other.make_source_path(&nar, "a", [], false).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn parse_round_trip() {
        let p = dir().make_text_path("x.drv", b"", []).unwrap();
        let abs = dir().render(&p);
        assert_eq!(dir().parse(&abs).unwrap(), p);
        assert!(p.is_derivation());
        let inner = format!("{abs}/bin/x");
        let (q, rest) = dir().split(&inner).unwrap();
        assert_eq!((q, rest), (p, "bin/x"));
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", ".hidden", "a/b", "caf\u{e9}", "sp ace", &"x".repeat(212)] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains("invalid store path name"), "{name:?}: {err}");
        }
        for name in ["a", "hello-2.10", "a+b=c?d_e.f", &"x".repeat(211)] {
            check_name(name).unwrap();
        }
    }

    #[test]
    fn bad_paths_are_refused() {
        let d = dir();
        assert!(d.parse("/elsewhere/abc-x").unwrap_err().to_string().contains("not in the store"));
        assert!(d.parse("/kiln/store/short-x").is_err());
        assert!(d.parse("/kiln/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x").is_err());
        assert!(StoreDir::new(Path::new("relative/store")).is_err());
        assert!(StoreDir::new(Path::new("/a/../store")).is_err());
    }
}

#[cfg(test)]
mod spec_examples {
    //! Checks the worked examples of `lang-spec/store-paths.md`, so the document cannot drift
    //! from the code.

    use super::*;

    #[test]
    fn store_paths_md_examples_hold() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../lang-spec/store-paths.md"
        ))
        .expect("lang-spec/store-paths.md exists");
        let mut checked = 0;
        for block in doc.split("```store-path\n").skip(1) {
            let block = block.split("```").next().unwrap();
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key).map(str::trim))
                    .unwrap_or_else(|| panic!("example lacks `{key}`:\n{block}"))
            };
            let dir = StoreDir::new(Path::new(field("store dir:"))).unwrap();
            let inner = Blake3Hash::of(field("inner bytes:").as_bytes());
            assert_eq!(inner.to_hex(), field("inner digest:"), "{block}");
            let fingerprint = format!(
                "kiln1:{}:blake3:{}:{}:{}",
                field("kind:"),
                inner.to_hex(),
                dir.as_str(),
                field("name:")
            );
            assert_eq!(fingerprint, field("fingerprint:"), "{block}");
            let path = dir.make_path(field("kind:"), &inner, field("name:")).unwrap();
            assert_eq!(dir.render(&path), field("store path:"), "{block}");
            checked += 1;
        }
        assert!(checked >= 2, "the document should carry worked examples");
    }
}
