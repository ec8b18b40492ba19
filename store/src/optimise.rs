//! Deduplication: identical files across the store become hard links to one copy.
//!
//! `ROOT/links/` is the content index. Each entry is named after the blake3 of one file's NAR
//! (its contents and executable bit, in Nix's base-32) and is a hard link to the one inode that
//! every store file with that NAR shares. Optimising a file hashes it; if the index has no entry
//! yet, the file itself becomes the entry; otherwise, once the entry's bytes are found equal to
//! the file's, a new link to the entry is made in `ROOT/tmp/` and renamed over the file, so the
//! file's name never disappears and readers see the old inode or the new one, both holding the
//! same bytes. Store files are read-only with mtime 1, so the shared inode is in normal form for
//! every path.
//!
//! A path is optimised under its lock and the shared collector lock, so neither a collection
//! nor a repair changes it meanwhile. Replacing a file inside a folder needs the folder writable
//! for a moment; it is put back to mode 0555 and mtime 1 right after. The collector removes
//! index entries that no store file uses any more.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{Error, IoContext};
use crate::lock::LockFile;
use crate::nar::sorted_entries;
use crate::{Store, StorePath, nar, nix32};

/// The setting that makes every registration optimise the new path.
pub const AUTO_OPTIMISE: &str = "auto-optimise";

/// What optimising did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptimiseReport {
    /// Valid paths looked at.
    pub paths: usize,
    /// Files replaced by a link to an identical one.
    pub linked: u64,
    /// Disk space freed (allocated blocks of the copies that went), in bytes.
    pub saved: u64,
}

impl std::ops::AddAssign for OptimiseReport {
    fn add_assign(&mut self, other: OptimiseReport) {
        self.paths += other.paths;
        self.linked += other.linked;
        self.saved += other.saved;
    }
}

impl Store {
    fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    /// Deduplicates the files of `paths`, or of the whole store if `paths` is empty.
    pub fn optimise(&self, paths: &[StorePath]) -> Result<OptimiseReport, Error> {
        let paths = if paths.is_empty() { self.all_paths()? } else { paths.to_vec() };
        let mut report = OptimiseReport::default();
        for path in &paths {
            let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
            let _lock = self.lock_path(path)?;
            // Collected, or never valid: nothing to do.
            if !self.is_valid(path)? {
                continue;
            }
            report += self.optimise_locked(path)?;
        }
        Ok(report)
    }

    /// Optimises a path just registered, if the store is set to; the caller holds its lock
    /// and has rooted it. A failure leaves the path as it was, so it is logged, not returned.
    pub(crate) fn auto_optimise(&self, path: &StorePath) {
        if !self.auto_optimise {
            return;
        }
        if let Err(e) = self.optimise_locked(path) {
            tracing::warn!(path = %path, error = %e, "could not deduplicate a new path");
        }
    }

    fn optimise_locked(&self, path: &StorePath) -> Result<OptimiseReport, Error> {
        let links = self.links_dir();
        fs::create_dir_all(&links).at("create the folder", &links)?;
        let mut report = OptimiseReport { paths: 1, ..OptimiseReport::default() };
        self.optimise_tree(&self.locate(path), &links, &mut report)?;
        Ok(report)
    }

    fn optimise_tree(
        &self,
        location: &Path,
        links: &Path,
        report: &mut OptimiseReport,
    ) -> Result<(), Error> {
        let meta = fs::symlink_metadata(location).at("read the metadata of", location)?;
        if meta.is_dir() {
            for (_, child) in sorted_entries(location)? {
                self.optimise_tree(&child, links, report)?;
            }
            return Ok(());
        }
        // Empty files hold no data to share.
        if !meta.is_file() || meta.len() == 0 {
            return Ok(());
        }
        let (hash, _) = nar::hash_path(location)?;
        let entry = links.join(nix32::encode(hash.as_bytes()));
        let existing = match fs::symlink_metadata(&entry) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The first of its kind: the file itself becomes the index entry.
                match fs::hard_link(location, &entry) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        fs::symlink_metadata(&entry).at("read the metadata of", &entry)?
                    }
                    Err(e) if too_many_links(&e) => return Ok(()),
                    Err(e) => return Err(e).at("add to the deduplication index", &entry),
                }
            }
            Err(e) => return Err(e).at("read the metadata of", &entry),
        };
        if (existing.dev(), existing.ino()) == (meta.dev(), meta.ino()) {
            return Ok(());
        }
        // Never spread a damaged entry: `verify --check-contents` reports it.
        if existing.len() != meta.len() || !same_bytes(&entry, location)? {
            tracing::warn!(entry = %entry.display(), "a deduplication index entry is damaged");
            return Ok(());
        }

        // Unique within the process too: parallel builds may optimise at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.temp_name(&format!("link-{n}"))?;
        let _ = fs::remove_file(&tmp);
        match fs::hard_link(&entry, &tmp) {
            Ok(()) => {}
            // The entry went (a collection) or is full: leave the file as it is.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || too_many_links(&e) => {
                return Ok(());
            }
            Err(e) => return Err(e).at("link to the deduplication index from", &tmp),
        }
        crate::fault::point("optimise.linked");
        let parent = location.parent().expect("a store file has a folder");
        let result = self.with_writable(parent, || {
            fs::rename(&tmp, location).at("replace with a link to an identical file", location)
        });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        report.linked += 1;
        if meta.nlink() == 1 {
            report.saved += meta.blocks() * 512;
        }
        Ok(())
    }

    /// Runs `f` with a folder of a store path writable, then puts the folder back in normal
    /// form. The store folder itself is always writable and is left alone.
    ///
    /// Known shortcoming: a kill between the two mode changes leaves the folder writable,
    /// which `verify` reports as not in normal form; no fault point covers this window yet.
    fn with_writable(
        &self,
        dir: &Path,
        f: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(), Error> {
        if dir == self.dir.as_path() {
            return f();
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).at("set the mode of", dir)?;
        let result = f();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).at("set the mode of", dir)?;
        let one = TimeSpec::new(1, 0);
        utimensat(nix::fcntl::AT_FDCWD, dir, &one, &one, UtimensatFlags::NoFollowSymlink)
            .map_err(std::io::Error::from)
            .at("set the modification time of", dir)?;
        result
    }

    /// Returns the entries of the deduplication index whose contents do not hash to their name.
    pub(crate) fn bad_links(&self) -> Result<Vec<String>, Error> {
        let links = self.links_dir();
        let mut bad = Vec::new();
        let Ok(entries) = fs::read_dir(&links) else { return Ok(bad) };
        for entry in entries {
            let entry = entry.at("list the folder", &links)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ok = nar::hash_path(&entry.path())
                .is_ok_and(|(hash, _)| nix32::encode(hash.as_bytes()) == name);
            if !ok {
                bad.push(name);
            }
        }
        bad.sort();
        Ok(bad)
    }

    /// Removes an entry of the deduplication index (a damaged one): store files linked to it
    /// keep their data, and no file is linked to it again.
    pub fn remove_link(&self, name: &str) -> Result<(), Error> {
        if name.contains('/') || name.starts_with('.') {
            return Err(Error::BadName {
                name: name.to_owned(),
                reason: "not an index entry".into(),
            });
        }
        let entry = self.links_dir().join(name);
        fs::remove_file(&entry).at("remove", &entry)
    }

    /// Removes the index entries that no store file shares any more; returns how many and the
    /// disk space they held. The caller holds the collector lock exclusively.
    pub(crate) fn remove_unused_links(&self) -> Result<(usize, u64), Error> {
        let links = self.links_dir();
        let (mut count, mut bytes) = (0, 0);
        let Ok(entries) = fs::read_dir(&links) else { return Ok((0, 0)) };
        for entry in entries {
            let path = entry.at("list the folder", &links)?.path();
            let meta = fs::symlink_metadata(&path).at("read the metadata of", &path)?;
            if meta.nlink() <= 1 {
                fs::remove_file(&path).at("remove", &path)?;
                count += 1;
                bytes += meta.blocks() * 512;
            }
        }
        Ok((count, bytes))
    }
}

fn too_many_links(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::EMLINK)
}

/// Tells whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> Result<bool, Error> {
    let mut fa = fs::File::open(a).at("open", a)?;
    let mut fb = fs::File::open(b).at("open", b)?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba).at("read", a)?;
        let m = read_full(&mut fb, &mut bb).at("read", b)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
