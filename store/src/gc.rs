//! Garbage collection: deleting every path no root keeps alive.
//!
//! Roots are the links under `ROOT/gcroots/` (followed: `gcroots/auto/*` point at `result`
//! links, which stop counting when deleted or repointed out of the store) and the temporary
//! roots of running kiln processes. Each process that opens a store writes the paths it adds,
//! builds or is about to use into its own file under `ROOT/temproots/`, locked for as long as
//! the process lives; a file whose lock is free belongs to a dead process and is removed.
//!
//! `ROOT/gc.lock` orders the two: a process takes it shared while it adds a temporary root and
//! registers a path; the collector takes it exclusively from reading the roots until it has
//! deleted the dead paths, so a path is either rooted before the collector looks, or registered
//! after it is done. The dead set comes from one recursive query over the reference graph.
//! Paths are unregistered before their files go, referrers before what they refer to, so a
//! registered path never lacks a reference.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext};
use crate::lock::LockFile;
use crate::{PathInfo, Store, StorePath, fsutil};

/// This process's temporary roots: a file, and the lock that says the process is alive.
struct TempRoots {
    file: File,
    _lock: LockFile,
}

/// A root and the store path it keeps alive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcRoot {
    /// The link (under `gcroots/`, or the `result` link an automatic root points at), or the
    /// temporary roots file of a running process.
    pub link: PathBuf,
    /// What it keeps alive, with its closure.
    pub path: StorePath,
}

/// How to collect.
#[derive(Clone, Debug, Default)]
pub struct GcOptions {
    /// Only say what would be deleted.
    pub dry_run: bool,
    /// Stop once this many bytes (of NAR size) are freed.
    pub max_freed: Option<u64>,
    /// Keep the outputs of live derivations.
    pub keep_outputs: bool,
    /// Keep the derivations that built live paths.
    pub keep_derivations: bool,
}

/// What a collection did (or, dry, would do).
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// The paths deleted, in the order they went.
    pub deleted: Vec<StorePath>,
    /// Their total NAR size.
    pub freed: u64,
    /// Files in the store folder that no registration vouched for, removed.
    pub debris: usize,
}

impl Store {
    fn gc_lock_path(&self) -> PathBuf {
        self.root.join("gc.lock")
    }

    /// Registers a path after rooting it for this process, under the shared collector lock.
    pub(crate) fn register_rooted(
        &self,
        info: &PathInfo,
        drv_outputs: &[(String, StorePath)],
    ) -> Result<bool, Error> {
        let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
        self.write_temp_roots(std::slice::from_ref(&info.path))?;
        self.db().register(info, drv_outputs)
    }

    /// Keeps `paths` from being collected while this process runs. Fails, naming the path, if
    /// one is no longer valid (a collection deleted it before it was rooted).
    pub fn add_temp_roots(&self, paths: &[StorePath]) -> Result<(), Error> {
        let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
        self.write_temp_roots(paths)?;
        for p in paths {
            if !self.is_valid(p)? {
                return Err(Error::NotValid { path: self.render(p) });
            }
        }
        Ok(())
    }

    fn write_temp_roots(&self, paths: &[StorePath]) -> Result<(), Error> {
        // One file per process and store, kept (and locked) until the process ends: every
        // `Store` the process opens on this root adds to it, so what one part of the process
        // added (the evaluator's `.drv` files) stays rooted while another builds.
        static OPEN: std::sync::Mutex<BTreeMap<PathBuf, TempRoots>> =
            std::sync::Mutex::new(BTreeMap::new());
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if !open.contains_key(&self.root) {
            let path = self.root.join("temproots").join(std::process::id().to_string());
            let lock = LockFile::acquire(&path.with_extension("lock"))?;
            let file =
                OpenOptions::new().create(true).append(true).open(&path).at("create", &path)?;
            open.insert(self.root.clone(), TempRoots { file, _lock: lock });
        }
        let roots = open.get_mut(&self.root).expect("opened above");
        let text: String = paths.iter().map(|p| format!("{p}\n")).collect();
        roots
            .file
            .write_all(text.as_bytes())
            .at("write the temporary roots in", self.root.join("temproots"))
    }

    /// Returns the roots: links under `gcroots/` (stale automatic ones are removed) and the
    /// temporary roots of running processes (files of dead ones are removed).
    pub fn roots(&self) -> Result<Vec<GcRoot>, Error> {
        let mut roots = Vec::new();
        self.link_roots(&self.root.join("gcroots"), &mut roots)?;
        let dir = self.root.join("temproots");
        for entry in std::fs::read_dir(&dir).at("list the folder", &dir)? {
            let path = entry.at("list the folder", &dir)?.path();
            if path.extension().is_some_and(|e| e == "lock") {
                continue;
            }
            let lock_path = path.with_extension("lock");
            if let Some(free) = LockFile::try_acquire(&lock_path)? {
                // Its process is gone: so are its temporary roots.
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(&lock_path);
                drop(free);
                continue;
            }
            let text = std::fs::read_to_string(&path).at("read", &path)?;
            for line in text.lines().filter(|l| !l.is_empty()) {
                if let Ok(p) = StorePath::from_base_name(line) {
                    roots.push(GcRoot { link: path.clone(), path: p });
                }
            }
        }
        Ok(roots)
    }

    fn link_roots(&self, dir: &Path, roots: &mut Vec<GcRoot>) -> Result<(), Error> {
        for entry in std::fs::read_dir(dir).at("list the folder", dir)? {
            let entry = entry.at("list the folder", dir)?;
            let link = entry.path();
            let meta = std::fs::symlink_metadata(&link).at("read the metadata of", &link)?;
            if meta.is_dir() {
                self.link_roots(&link, roots)?;
                continue;
            }
            let automatic = dir.ends_with("gcroots/auto");
            let shown = if automatic {
                std::fs::read_link(&link).unwrap_or(link.clone())
            } else {
                link.clone()
            };
            let target = std::fs::canonicalize(&link).ok().and_then(|t| {
                let text = t.to_str()?.to_owned();
                self.dir.split(&text).ok().map(|(p, _)| p)
            });
            match target {
                Some(path) if self.is_valid(&path)? => roots.push(GcRoot { link: shown, path }),
                // A `result` link that is gone or points elsewhere no longer keeps anything.
                _ if automatic => {
                    let _ = std::fs::remove_file(&link);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes every valid path that no root keeps alive (or says which, with `dry_run`).
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcReport, Error> {
        let _gc = LockFile::acquire(&self.gc_lock_path())?;
        let roots: Vec<StorePath> = self.roots()?.into_iter().map(|r| r.path).collect();
        let live = self.live_set(&roots, options)?;
        let all = self.all_paths()?;
        let dead: BTreeSet<StorePath> =
            all.iter().filter(|p| !live.contains(*p)).cloned().collect();

        let mut report = GcReport::default();
        for path in self.deletion_order(&dead)? {
            if options.max_freed.is_some_and(|max| report.freed >= max) {
                break;
            }
            let size = self.query_info(&path)?.map_or(0, |i| i.nar_size);
            if !options.dry_run {
                self.db().unregister(std::slice::from_ref(&path))?;
                self.remove_from_disk(&path)?;
            }
            report.freed += size;
            report.deleted.push(path);
        }
        if !options.dry_run && options.max_freed.is_none() {
            report.debris = self.remove_debris(&all)?;
        }
        Ok(report)
    }

    /// The closure of the roots, with derivers and outputs as the options ask.
    fn live_set(
        &self,
        roots: &[StorePath],
        options: &GcOptions,
    ) -> Result<BTreeSet<StorePath>, Error> {
        let mut live: BTreeSet<StorePath> = self.db().closure(roots)?.0.into_iter().collect();
        loop {
            let mut more = Vec::new();
            for p in &live {
                if options.keep_derivations
                    && let Some(d) = self.query_info(p)?.and_then(|i| i.deriver)
                    && !live.contains(&d)
                    && self.is_valid(&d)?
                {
                    more.push(d);
                }
                if options.keep_outputs && p.is_derivation() {
                    for (_, out) in self.db().derivation_outputs(p)? {
                        if !live.contains(&out) && self.is_valid(&out)? {
                            more.push(out);
                        }
                    }
                }
            }
            if more.is_empty() {
                return Ok(live);
            }
            live.extend(self.db().closure(&more)?.0);
        }
    }

    /// Orders dead paths so that each comes after every dead path that refers to it.
    fn deletion_order(&self, dead: &BTreeSet<StorePath>) -> Result<Vec<StorePath>, Error> {
        let mut waiting: BTreeMap<StorePath, usize> = dead.iter().map(|p| (p.clone(), 0)).collect();
        let mut refs: BTreeMap<StorePath, Vec<StorePath>> = BTreeMap::new();
        for p in dead {
            let these: Vec<StorePath> =
                self.references(p)?.into_iter().filter(|r| r != p && dead.contains(r)).collect();
            for r in &these {
                *waiting.get_mut(r).expect("dead") += 1;
            }
            refs.insert(p.clone(), these);
        }
        let mut ready: Vec<StorePath> =
            waiting.iter().filter(|(_, n)| **n == 0).map(|(p, _)| p.clone()).collect();
        let mut order = Vec::new();
        while let Some(p) = ready.pop() {
            for r in &refs[&p] {
                let n = waiting.get_mut(r).expect("dead");
                *n -= 1;
                if *n == 0 {
                    ready.push(r.clone());
                }
            }
            order.push(p);
        }
        Ok(order)
    }

    /// Removes a path's files: moved out of the store folder first, so a half-deleted tree is
    /// never found under its name.
    fn remove_from_disk(&self, path: &StorePath) -> Result<(), Error> {
        let location = self.locate(path);
        if std::fs::symlink_metadata(&location).is_err() {
            return Ok(());
        }
        let trash = self.root.join("tmp").join(format!("gc-{path}-{}", std::process::id()));
        std::fs::rename(&location, &trash).at("move out of the store", &location)?;
        fsutil::remove_tree(&trash)
    }

    /// Removes entries of the store folder that no registration vouches for and that no
    /// writer holds. Returns how many.
    fn remove_debris(&self, registered: &[StorePath]) -> Result<usize, Error> {
        let registered: BTreeSet<&str> = registered.iter().map(|p| p.as_str()).collect();
        let mut removed = 0;
        let dir = self.dir.as_path();
        for entry in std::fs::read_dir(dir).at("list the folder", dir)? {
            let entry = entry.at("list the folder", dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if registered.contains(name.as_str()) {
                continue;
            }
            let lock = self.root.join("locks").join(format!("{name}.lock"));
            // A writer holds the lock of a path it is putting in place.
            if let Some(_held) = LockFile::try_acquire(&lock)? {
                let valid = match StorePath::from_base_name(&name) {
                    Ok(p) => self.is_valid(&p)?,
                    Err(_) => false,
                };
                if !valid {
                    fsutil::remove_tree(&entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
