//! Questions about the reference graph: why one path depends on another, and where in its files
//! a path names another.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext};
use crate::nar::sorted_entries;
use crate::{Store, StorePath};

/// Where a path's files name another path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceSite {
    /// The file, relative to the holding path (empty for the path itself), or a symlink.
    pub file: PathBuf,
    /// The byte offset of the other path's digest in that file (or link target).
    pub offset: usize,
    /// The bytes around it, unprintable ones shown as `.`.
    pub context: String,
}

impl Store {
    /// Returns a shortest chain of references from `from` to `to` (both included), or `None`
    /// if `from` does not depend on `to`.
    pub fn why_depends(
        &self,
        from: &StorePath,
        to: &StorePath,
    ) -> Result<Option<Vec<StorePath>>, Error> {
        let mut parent: HashMap<StorePath, StorePath> = HashMap::new();
        let mut seen = BTreeSet::from([from.clone()]);
        let mut queue = VecDeque::from([from.clone()]);
        while let Some(p) = queue.pop_front() {
            if &p == to {
                let mut chain = vec![p.clone()];
                let mut cur = p;
                while let Some(prev) = parent.get(&cur) {
                    chain.push(prev.clone());
                    cur = prev.clone();
                }
                chain.reverse();
                return Ok(Some(chain));
            }
            for r in self.references(&p)? {
                if seen.insert(r.clone()) {
                    parent.insert(r.clone(), p.clone());
                    queue.push_back(r);
                }
            }
        }
        Ok(None)
    }

    /// Returns the first place in `holder`'s files (in NAR order) that names `target`.
    pub fn find_reference(
        &self,
        holder: &StorePath,
        target: &StorePath,
    ) -> Result<Option<ReferenceSite>, Error> {
        let root = self.locate(holder);
        find_in(&root, &root, target.digest_text().as_bytes())
    }
}

fn find_in(root: &Path, path: &Path, needle: &[u8]) -> Result<Option<ReferenceSite>, Error> {
    let meta = std::fs::symlink_metadata(path).at("read the metadata of", path)?;
    let bytes = if meta.is_symlink() {
        let target = std::fs::read_link(path).at("read the symlink", path)?;
        target.into_os_string().into_encoded_bytes()
    } else if meta.is_dir() {
        for (_, child) in sorted_entries(path)? {
            if let Some(site) = find_in(root, &child, needle)? {
                return Ok(Some(site));
            }
        }
        return Ok(None);
    } else {
        std::fs::read(path).at("read", path)?
    };
    let Some(offset) = bytes.windows(needle.len()).position(|w| w == needle) else {
        return Ok(None);
    };
    let (start, end) = (offset.saturating_sub(24), (offset + needle.len() + 24).min(bytes.len()));
    let context = bytes[start..end]
        .iter()
        .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
        .collect();
    let file = path.strip_prefix(root).unwrap_or(path).to_owned();
    Ok(Some(ReferenceSite { file, offset, context }))
}
