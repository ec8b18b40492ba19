//! Content-addressed outputs: their path comes from what the build produced, not from how.
//!
//! A content-addressed output is built at a scratch path, named after the (resolved)
//! derivation. Its final path is computed from the NAR hash of the output with every
//! occurrence of the scratch digest replaced by zeros (so a self-reference does not feed its
//! own name), its references and its name; then occurrences of the scratch digest are
//! rewritten to the final digest. Two builds that produce the same bytes land at the same
//! path, which is what lets a rebuild that changes nothing stop there (early cutoff).
//!
//! Placeholders stand for paths not known when a derivation is written: `own_placeholder`
//! for the derivation's own outputs (CppNix's `builtins.placeholder`), `input_placeholder`
//! for the outputs of content-addressed inputs; the builder replaces both before it runs.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use sha2::Digest as _;

use crate::error::{Error, IoContext};
use crate::hash::{Blake3Hash, HashingWriter};
use crate::nar::sorted_entries;
use crate::path::{DIGEST_CHARS, StoreDir, StorePath};
use crate::{nix32, references};

/// The hash algorithm field of a content-addressed output in a `.drv` file.
pub const CA_HASH_ALGO: &str = "r:blake3";

/// Returns the string that stands for the derivation's own output `output` until it is built:
/// `/` and the base-32 SHA-256 of `nix-output:<output>`, as CppNix's `builtins.placeholder`.
pub fn own_placeholder(output: &str) -> String {
    let digest = sha2::Sha256::digest(format!("nix-output:{output}").as_bytes());
    format!("/{}", nix32::encode(&digest))
}

/// Returns the string that stands for output `output` of the content-addressed (or deferred)
/// derivation `drv` in the derivations that use it: `/` and the base-32 blake3 of
/// `kiln-input:<drv base name>:<output>`.
pub fn input_placeholder(drv: &StorePath, output: &str) -> String {
    format!(
        "/{}",
        nix32::encode(Blake3Hash::of(format!("kiln-input:{drv}:{output}").as_bytes()).as_bytes())
    )
}

/// Returns the scratch path a content-addressed output is built at: it depends only on the
/// resolved derivation and the output, so the same build sees the same `$out` every time.
pub fn scratch_path(
    dir: &StoreDir,
    resolved_drv: &StorePath,
    output: &str,
    name: &str,
) -> Result<StorePath, Error> {
    let inner = Blake3Hash::of(format!("scratch:{resolved_drv}:{output}").as_bytes());
    dir.make_path(&format!("ca-scratch:{output}"), &inner, name)
}

/// Returns the final path of a content-addressed output built at `location` for `scratch`,
/// with its references among `candidates` and whether it refers to itself. Call on a
/// normalised tree.
pub(crate) fn final_path(
    dir: &StoreDir,
    location: &Path,
    scratch: &StorePath,
    candidates: &BTreeSet<StorePath>,
) -> Result<(StorePath, BTreeSet<StorePath>, bool), Error> {
    let mut all = candidates.clone();
    all.insert(scratch.clone());
    let mut refs = references::scan(location, &all)?;
    let self_ref = refs.remove(scratch);
    let mut sink = Rewriter::new(
        HashingWriter::default(),
        scratch.digest_text().as_bytes(),
        &[b'0'; DIGEST_CHARS],
    );
    crate::nar::dump(location, &mut sink)?;
    let (hash, _) = sink.finish().at("hash", location)?.finish();
    let path = dir.make_source_path(&hash, scratch.name(), &refs, self_ref)?;
    Ok((path, refs, self_ref))
}

/// Rewrites every occurrence of `from` to `to` (same length) in the files and symlink targets
/// of a tree, keeping modes.
pub(crate) fn rewrite_tree(path: &Path, from: &[u8], to: &[u8]) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).at("read the metadata of", path)?;
    if meta.is_symlink() {
        let target = std::fs::read_link(path).at("read the symlink", path)?;
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str());
        let new = replace_all(bytes, from, to);
        if new != bytes {
            std::fs::remove_file(path).at("remove", path)?;
            let new = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&new);
            std::os::unix::fs::symlink(new, path).at("create the symlink", path)?;
        }
    } else if meta.is_dir() {
        for (_, child) in sorted_entries(path)? {
            rewrite_tree(&child, from, to)?;
        }
    } else {
        let bytes = std::fs::read(path).at("read", path)?;
        let new = replace_all(&bytes, from, to);
        if new != bytes {
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .at("set the mode of", path)?;
            std::fs::write(path, &new).at("write", path)?;
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .at("set the mode of", path)?;
        }
    }
    Ok(())
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// A `Write` adapter that replaces `from` with `to` (same length) in everything written,
/// also across the boundaries of `write` calls.
struct Rewriter<'a, W: Write> {
    inner: W,
    from: &'a [u8],
    to: &'a [u8],
    /// Bytes held back because they could be the start of `from`.
    pending: Vec<u8>,
}

impl<'a, W: Write> Rewriter<'a, W> {
    fn new(inner: W, from: &'a [u8], to: &'a [u8]) -> Self {
        assert_eq!(from.len(), to.len(), "a rewrite keeps lengths");
        Rewriter { inner, from, to, pending: Vec::new() }
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.inner.write_all(&self.pending)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Rewriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let data = replace_all(&self.pending, self.from, self.to);
        // Keep back a tail that could begin a match completed by the next write.
        let keep = (self.from.len() - 1).min(data.len());
        self.inner.write_all(&data[..data.len() - keep])?;
        self.pending = data[data.len() - keep..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriter_replaces_across_writes() {
        let mut w = Rewriter::new(Vec::new(), b"abcd", b"WXYZ");
        for chunk in [&b"xxab"[..], b"cdyyabc", b"d", b"ab"] {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.finish().unwrap(), b"xxWXYZyyWXYZab");
    }

    #[test]
    fn placeholders_are_distinct_and_stable() {
        // CppNix's `builtins.placeholder "out"`.
        assert_eq!(own_placeholder("out"), "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9");
        let dir = StoreDir::new(Path::new("/s/store")).unwrap();
        let drv = dir.make_text_path("a.drv", b"x", []).unwrap();
        assert_ne!(input_placeholder(&drv, "out"), input_placeholder(&drv, "dev"));
        assert_eq!(input_placeholder(&drv, "out").len(), 53);
    }
}
