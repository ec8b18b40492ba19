//! Finding which store paths a tree refers to, by looking for their digests in its bytes.
//!
//! A reference is the 32-character digest of a candidate path appearing anywhere in a file's
//! contents or a symlink's target, as Nix scans. Only candidates count (the inputs' closure and
//! the build's own outputs), so text that merely looks like a digest is not a reference.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoContext};
use crate::nar::sorted_entries;
use crate::nix32::ALPHABET;
use crate::path::{DIGEST_CHARS, StorePath};

/// Returns the candidates whose digests occur in the file, folder or symlink at `path`.
pub fn scan(path: &Path, candidates: &BTreeSet<StorePath>) -> Result<BTreeSet<StorePath>, Error> {
    let mut scanner = Scanner {
        wanted: candidates.iter().map(|c| (c.digest_text().as_bytes().to_vec(), c)).collect(),
        found: BTreeSet::new(),
        buf: vec![0u8; 256 * 1024],
    };
    scanner.walk(path)?;
    Ok(scanner.found)
}

struct Scanner<'a> {
    wanted: HashMap<Vec<u8>, &'a StorePath>,
    found: BTreeSet<StorePath>,
    buf: Vec<u8>,
}

impl Scanner<'_> {
    fn walk(&mut self, path: &Path) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(path).at("read the metadata of", path)?;
        if meta.is_symlink() {
            let target = std::fs::read_link(path).at("read the symlink", path)?;
            self.search(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()));
        } else if meta.is_dir() {
            for (_, child) in sorted_entries(path)? {
                self.walk(&child)?;
            }
        } else {
            self.file(path)?;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) -> Result<(), Error> {
        let mut file = std::fs::File::open(path).at("open", path)?;
        // Keep the last DIGEST_CHARS - 1 bytes of each chunk so a digest across chunks is seen.
        let keep = DIGEST_CHARS - 1;
        let mut filled = 0;
        loop {
            let n = file.read(&mut self.buf[filled..]).at("read", path)?;
            if n == 0 {
                break;
            }
            let end = filled + n;
            let chunk = std::mem::take(&mut self.buf);
            self.search(&chunk[..end]);
            self.buf = chunk;
            let tail = end.min(keep);
            self.buf.copy_within(end - tail..end, 0);
            filled = tail;
        }
        Ok(())
    }

    fn search(&mut self, bytes: &[u8]) {
        if self.wanted.is_empty() {
            return;
        }
        let mut run_start = 0;
        for (i, b) in bytes.iter().enumerate() {
            if !ALPHABET.contains(b) {
                run_start = i + 1;
                continue;
            }
            if i + 1 - run_start >= DIGEST_CHARS {
                let window = &bytes[i + 1 - DIGEST_CHARS..=i];
                if let Some(p) = self.wanted.get(window) {
                    self.found.insert((*p).clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Blake3Hash, StoreDir};

    #[test]
    fn finds_digests_in_files_and_links_only_of_candidates() {
        let dir = StoreDir::new(Path::new("/s/store")).unwrap();
        let p = |n: &str| dir.make_path("source", &Blake3Hash::of(n.as_bytes()), n).unwrap();
        let (a, b, c, d) = (p("a"), p("b"), p("c"), p("d"));
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("f"), format!("xx{}/bin", dir.render(&a))).unwrap();
        // A digest split across the scanner's chunk boundary is still found.
        let mut big = vec![b' '; 256 * 1024 - 10];
        big.extend_from_slice(b.digest_text().as_bytes());
        std::fs::write(root.join("big"), big).unwrap();
        std::os::unix::fs::symlink(dir.render(&c), root.join("link")).unwrap();
        std::fs::write(root.join("noise"), format!("z{}z", d.digest_text())).unwrap();
        let candidates = BTreeSet::from([a.clone(), b.clone(), c.clone()]);
        assert_eq!(scan(root, &candidates).unwrap(), BTreeSet::from([a, b, c]));
    }
}
