//! Verification: does the disk hold what the database says, and the database hold together?
//!
//! `verify` checks SQLite's own structure and foreign keys, that every registered path is on
//! disk and, with `check_contents`, that it still hashes to what was registered and is still in
//! normal form (hashing runs on every core). Checking the whole store also lists what lies in
//! the store folder without a registration. Paths found missing or changed are recorded as
//! damaged: the store then refuses to hand them out (exports, builds that would use them) until
//! they are replaced by a copy with the registered hash ([`Store::replace_damaged`], which the
//! command line feeds with rebuilds) or found intact again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::{Error, IoContext};
use crate::hash::Blake3Hash;
use crate::lock::LockFile;
use crate::{Store, StorePath, fsutil, nar};

/// What to verify.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Hash every path and compare with its registered hash, and check its normal form.
    pub check_contents: bool,
    /// The paths to check; empty means the whole store, unregistered entries included.
    pub paths: Vec<StorePath>,
}

/// One thing wrong with the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// SQLite's checks of the database failed.
    Database { detail: String },
    /// A registered path is not on disk.
    Missing { path: StorePath },
    /// A registered path no longer hashes to its registered hash.
    Changed { path: StorePath, expected: Blake3Hash, found: Blake3Hash, size: (u64, u64) },
    /// A registered path cannot be read as a store path (a special file, no permission).
    Unreadable { path: StorePath, detail: String },
    /// A registered path has the right contents, but an entry in it lost the normal form (made
    /// writable, touched), so it could change unseen.
    NotNormal { path: StorePath, file: PathBuf, detail: String },
    /// A path an earlier check found damaged, not hashed again this time.
    KnownDamage { path: StorePath, problem: String },
    /// An entry of the store folder that no registration vouches for and no writer holds.
    Unregistered { name: String },
    /// An entry of the deduplication index whose contents no longer match its name.
    BadLink { name: String },
}

impl Problem {
    /// Returns the store path concerned, if the problem is about one.
    pub fn path(&self) -> Option<&StorePath> {
        match self {
            Problem::Missing { path }
            | Problem::Changed { path, .. }
            | Problem::Unreadable { path, .. }
            | Problem::NotNormal { path, .. }
            | Problem::KnownDamage { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Tells whether the path concerned is damaged: its registered contents are not on disk.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Problem::Missing { .. }
                | Problem::Changed { .. }
                | Problem::Unreadable { .. }
                | Problem::KnownDamage { .. }
        )
    }

    /// Says what is wrong, after the path or name concerned.
    pub fn describe(&self) -> String {
        match self {
            Problem::Database { detail } => format!("the database: {detail}"),
            Problem::Missing { .. } => MISSING.to_owned(),
            Problem::Changed { expected, found, size, .. } => {
                let sizes = if size.0 == size.1 {
                    format!("{} bytes of archive, as registered", size.1)
                } else {
                    format!("{} bytes of archive where {} were registered", size.1, size.0)
                };
                format!("its contents changed: registered {expected}, found {found} ({sizes})")
            }
            Problem::Unreadable { detail, .. } => format!("it cannot be read: {detail}"),
            Problem::NotNormal { file, detail, .. } => {
                let file = if file.as_os_str().is_empty() { Path::new(".") } else { file };
                format!("`{}` {detail}", file.display())
            }
            Problem::KnownDamage { problem, .. } => {
                format!("{problem} (found earlier; `--check-contents` checks it again)")
            }
            Problem::Unregistered { .. } => "it is in the store folder but not registered".into(),
            Problem::BadLink { .. } => {
                "this entry of the deduplication index does not hold what its name says".into()
            }
        }
    }
}

/// How a missing path is described, in reports and in the damage record.
const MISSING: &str = "it is registered but missing from the disk";

/// What a verification found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// How many registered paths were checked.
    pub checked: usize,
    /// How many bytes of archive were hashed.
    pub hashed: u64,
    /// Everything wrong, database first, then by path.
    pub problems: Vec<Problem>,
}

impl Store {
    /// Checks the store (see the module documentation) and records damaged paths.
    pub fn verify(&self, options: &VerifyOptions) -> Result<VerifyReport, Error> {
        let mut report = VerifyReport::default();
        for detail in self.db().check_integrity()? {
            report.problems.push(Problem::Database { detail });
        }

        let whole = options.paths.is_empty();
        let registered = self.db().hashes()?;
        let targets: Vec<(StorePath, Blake3Hash, u64)> = if whole {
            registered.clone()
        } else {
            let mut chosen = Vec::new();
            for p in &options.paths {
                let Ok(i) = registered.binary_search_by(|(r, _, _)| r.cmp(p)) else {
                    return Err(Error::NotValid { path: self.render(p) });
                };
                chosen.push(registered[i].clone());
            }
            chosen
        };
        report.checked = targets.len();

        let hashed = AtomicU64::new(0);
        let mut found = self.check_paths(&targets, options.check_contents, &hashed)?;
        report.hashed = hashed.into_inner();
        self.record_damage(&targets, &found, options.check_contents)?;
        // Damage an earlier check found stays a problem until a check finds it gone.
        let paths: Vec<StorePath> = targets.iter().map(|(p, _, _)| p.clone()).collect();
        for (path, problem) in self.db().damaged_among(&paths)? {
            if !found.iter().any(|p| p.is_damage() && p.path() == Some(&path)) {
                found.push(Problem::KnownDamage { path, problem });
            }
        }
        found.sort_by(|a, b| a.path().cmp(&b.path()));
        report.problems.extend(found);

        if whole {
            let names: Vec<&StorePath> = registered.iter().map(|(p, _, _)| p).collect();
            for name in self.unregistered_entries(&names)? {
                report.problems.push(Problem::Unregistered { name });
            }
            if options.check_contents {
                for name in self.bad_links()? {
                    report.problems.push(Problem::BadLink { name });
                }
            }
        }
        Ok(report)
    }

    /// Checks paths on every core; a path that stopped being valid meanwhile (collected) is
    /// not a problem.
    fn check_paths(
        &self,
        targets: &[(StorePath, Blake3Hash, u64)],
        contents: bool,
        hashed: &AtomicU64,
    ) -> Result<Vec<Problem>, Error> {
        let next = AtomicUsize::new(0);
        let found = Mutex::new(Vec::new());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|scope| {
            for _ in 0..threads.min(targets.len().max(1)) {
                scope.spawn(|| {
                    while let Some((path, hash, size)) =
                        targets.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        if let Some(problem) = self.check_path(path, *hash, *size, contents) {
                            found.lock().unwrap_or_else(|e| e.into_inner()).push(problem);
                        }
                        if contents {
                            hashed.fetch_add(*size, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut still = Vec::with_capacity(found.len());
        for problem in found {
            if self.is_valid(problem.path().expect("a path's problem"))? {
                still.push(problem);
            }
        }
        Ok(still)
    }

    fn check_path(
        &self,
        path: &StorePath,
        expected: Blake3Hash,
        size: u64,
        contents: bool,
    ) -> Option<Problem> {
        let location = self.locate(path);
        match std::fs::symlink_metadata(&location) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Some(Problem::Missing { path: path.clone() });
            }
            Err(e) => {
                return Some(Problem::Unreadable { path: path.clone(), detail: e.to_string() });
            }
            Ok(_) if !contents => return None,
            Ok(_) => {}
        }
        let (found, found_size) = match nar::hash_path(&location) {
            Ok(h) => h,
            Err(e) => {
                return Some(Problem::Unreadable { path: path.clone(), detail: error_chain(&e) });
            }
        };
        if (found, found_size) != (expected, size) {
            return Some(Problem::Changed {
                path: path.clone(),
                expected,
                found,
                size: (size, found_size),
            });
        }
        let (file, detail) = fsutil::first_abnormal(&location)?;
        Some(Problem::NotNormal { path: path.clone(), file, detail })
    }

    /// Records damage found, and forgets damage that a check found gone: any, after the
    /// contents were checked; a missing path, once it is there.
    fn record_damage(
        &self,
        targets: &[(StorePath, Blake3Hash, u64)],
        found: &[Problem],
        contents: bool,
    ) -> Result<(), Error> {
        let now = crate::now();
        let paths: Vec<StorePath> = targets.iter().map(|(p, _, _)| p.clone()).collect();
        let db = self.db();
        for (path, recorded) in db.damaged_among(&paths)? {
            let gone = !found.iter().any(|p| p.is_damage() && p.path() == Some(&path));
            if gone && (contents || recorded == MISSING) {
                db.clear_damaged(&path)?;
            }
        }
        for problem in found.iter().filter(|p| p.is_damage()) {
            db.mark_damaged(problem.path().expect("damage is a path's"), now, &problem.describe())?;
        }
        Ok(())
    }

    /// Returns what was found wrong with a path, if it is recorded as damaged.
    pub fn damage(&self, path: &StorePath) -> Result<Option<String>, Error> {
        Ok(self.db().damaged_among(std::slice::from_ref(path))?.pop().map(|(_, p)| p))
    }

    /// Fails, naming the first, if any of `paths` is recorded as damaged.
    pub fn require_intact(&self, paths: &[StorePath]) -> Result<(), Error> {
        match self.db().damaged_among(paths)?.into_iter().next() {
            Some((path, problem)) => Err(Error::Damaged { path: self.render(&path), problem }),
            None => Ok(()),
        }
    }

    /// Fails, naming the first, if the closure of `paths` holds a path recorded as damaged.
    pub fn require_intact_closure(&self, paths: &[StorePath]) -> Result<(), Error> {
        if !self.db().any_damaged()? {
            return Ok(());
        }
        let (closure, _) = self.closure(paths)?;
        self.require_intact(&closure)
    }

    /// Records that a path's files are not what was registered, as an export found.
    pub(crate) fn mark_damaged(&self, path: &StorePath, problem: &str) -> Result<(), Error> {
        self.db().mark_damaged(path, crate::now(), problem)
    }

    /// Puts a path whose contents are right back into normal form (read-only, mtime 1).
    pub fn renormalise(&self, path: &StorePath) -> Result<(), Error> {
        let _lock = self.lock_path(path)?;
        let info = self.require_info(path)?;
        let location = self.locate(path);
        fsutil::normalise(&location)?;
        let (hash, _) = nar::hash_path(&location)?;
        if hash != info.nar_hash {
            return Err(Error::RepairMismatch {
                path: self.render(path),
                expected: info.nar_hash.to_string(),
                found: hash.to_string(),
            });
        }
        Ok(())
    }

    /// Replaces a valid path's files with the tree at `location` (in the store root's `tmp/`,
    /// where builds happen), which must have the registered hash, and forgets any damage. The
    /// old files and the new are swapped in one atomic step, so readers see one or the other.
    pub fn replace_damaged(&self, path: &StorePath, location: &Path) -> Result<(), Error> {
        let _lock = self.lock_path(path)?;
        self.swap_in(path, location)
    }

    /// Does what [`Store::replace_damaged`] says; the caller holds the path's lock.
    pub(crate) fn swap_in(&self, path: &StorePath, location: &Path) -> Result<(), Error> {
        let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
        let info = self.require_info(path)?;
        fsutil::normalise(location)?;
        let (hash, size) = nar::hash_path(location)?;
        if (hash, size) != (info.nar_hash, info.nar_size) {
            return Err(Error::RepairMismatch {
                path: self.render(path),
                expected: info.nar_hash.to_string(),
                found: hash.to_string(),
            });
        }
        let tmp = self.root.join("tmp");
        let file = std::fs::File::open(&tmp).at("open", &tmp)?;
        nix::unistd::syncfs(&file)
            .map_err(std::io::Error::from)
            .at("sync the file system of", location)?;

        let target = self.locate(path);
        if std::fs::symlink_metadata(&target).is_ok() {
            use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
            renameat2(AT_FDCWD, location, AT_FDCWD, &target, RenameFlags::RENAME_EXCHANGE)
                .map_err(std::io::Error::from)
                .at("swap in the repaired copy of", &target)?;
        } else {
            std::fs::rename(location, &target).at("move into the store", &target)?;
        }
        fsutil::sync_path(self.dir.as_path())?;
        self.db().clear_damaged(path)?;
        // After the exchange, `location` holds the damaged copy.
        fsutil::remove_tree(location)
    }

    /// Lists the entries of the store folder that are not among `registered` and that no
    /// writer holds the lock of (a writer putting a path in place holds it).
    pub(crate) fn unregistered_entries(
        &self,
        registered: &[&StorePath],
    ) -> Result<Vec<String>, Error> {
        let registered: std::collections::BTreeSet<&str> =
            registered.iter().map(|p| p.as_str()).collect();
        let mut found = Vec::new();
        let dir = self.dir.as_path();
        for entry in std::fs::read_dir(dir).at("list the folder", dir)? {
            let name = entry.at("list the folder", dir)?.file_name().to_string_lossy().into_owned();
            if registered.contains(name.as_str()) {
                continue;
            }
            let lock = self.root.join("locks").join(format!("{name}.lock"));
            if let Some(_free) = LockFile::try_acquire(&lock)? {
                let valid = match StorePath::from_base_name(&name) {
                    Ok(p) => self.is_valid(&p)?,
                    Err(_) => false,
                };
                if !valid {
                    found.push(name);
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Removes an entry of the store folder that is not registered, unless a writer holds it
    /// or it was registered meanwhile. Returns whether it went.
    pub fn remove_unregistered(&self, name: &str) -> Result<bool, Error> {
        if name.contains('/') || name == "." || name == ".." {
            return Err(Error::BadName {
                name: name.to_owned(),
                reason: "not a store entry".into(),
            });
        }
        let lock = self.root.join("locks").join(format!("{name}.lock"));
        let Some(_held) = LockFile::try_acquire(&lock)? else { return Ok(false) };
        if let Ok(p) = StorePath::from_base_name(name)
            && self.is_valid(&p)?
        {
            return Ok(false);
        }
        fsutil::remove_tree(&self.dir.as_path().join(name))?;
        Ok(true)
    }
}

/// An error with its causes, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
