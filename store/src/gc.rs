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
//!
//! What a process puts in `ROOT/tmp/` (paths being written, build folders, staging folders)
//! ends in `.PID`, and the process holds its temporary-roots lock before making any of it; a
//! collection removes the entries of processes whose lock is free, such as a build killed with
//! `kill -9`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::db::Graph;
use crate::error::{Error, IoContext};
use crate::lock::LockFile;
use crate::{PathInfo, Store, StorePath, fsutil};

/// This process's temporary roots: a file, and the lock that says the process is alive.
struct TempRoots {
    file: File,
    _lock: LockFile,
}

/// This process's temporary-roots file of each store root it has opened, kept (and locked)
/// until the process ends: every `Store` the process opens on a root adds to the same file, so
/// what one part of the process added (the evaluator's `.drv` files) stays rooted while another
/// builds.
static TEMP_ROOTS: std::sync::Mutex<BTreeMap<PathBuf, TempRoots>> =
    std::sync::Mutex::new(BTreeMap::new());

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
    /// Leftovers of dead processes in `ROOT/tmp/` (half-written paths, build folders), removed.
    pub temporaries: usize,
    /// Entries of the deduplication index that no store file used any more, removed, and
    /// the disk space they held (the last copies of files of deleted paths).
    pub links: (usize, u64),
}

impl Store {
    pub(crate) fn gc_lock_path(&self) -> PathBuf {
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

    /// Roots and registers paths in one transaction, in order.
    pub(crate) fn register_all_rooted(
        &self,
        entries: &[(PathInfo, Vec<(String, StorePath)>)],
    ) -> Result<(), Error> {
        let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
        let paths: Vec<StorePath> = entries.iter().map(|(info, _)| info.path.clone()).collect();
        self.write_temp_roots(&paths)?;
        self.db().register_all(entries)?;
        Ok(())
    }

    /// Returns the name under `ROOT/tmp/` for this process's temporary `stem`: `stem.PID`.
    /// The process holds its temporary-roots lock from now on, which tells a collection that
    /// the entry is not debris.
    pub fn temp_name(&self, stem: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("tmp").join(format!("{stem}{}", self.temp_suffix()?)))
    }

    /// Returns the suffix of this process's entries in `ROOT/tmp/` (`.PID`), as
    /// [`Store::temp_name`] does, for names made elsewhere (`tempfile`'s).
    pub fn temp_suffix(&self) -> Result<String, Error> {
        let held = TEMP_ROOTS.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&self.root);
        if !held {
            // Taken under the collector's lock, so no collection judges this process dead
            // while its lock is being made.
            let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
            self.write_temp_roots(&[])?;
        }
        Ok(format!(".{}", std::process::id()))
    }

    /// Tells whether the process whose temporary roots are `roots_file` (`temproots/PID`) has
    /// ended, in which case its roots file and lock are removed.
    fn temp_roots_ended(roots_file: &Path) -> Result<bool, Error> {
        let lock_path = roots_file.with_extension("lock");
        let Some(free) = LockFile::try_acquire(&lock_path)? else {
            return Ok(false);
        };
        let _ = std::fs::remove_file(roots_file);
        let _ = std::fs::remove_file(&lock_path);
        drop(free);
        Ok(true)
    }

    /// Removes the entries of `ROOT/tmp/` whose process (the `.PID` their name ends in) no
    /// longer holds its temporary-roots lock. The caller holds the collector's lock, so no
    /// process is taking its lock meanwhile. Returns how many went.
    fn remove_dead_temporaries(&self) -> Result<usize, Error> {
        let dir = self.root.join("tmp");
        let me = std::process::id();
        let mut dead: BTreeMap<u32, bool> = BTreeMap::new();
        let mut removed = 0;
        for entry in std::fs::read_dir(&dir).at("list the folder", &dir)? {
            let entry = entry.at("list the folder", &dir)?;
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.rsplit_once('.'))
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
                .filter(|&pid| pid != me)
            else {
                continue;
            };
            let is_dead = match dead.get(&pid) {
                Some(&d) => d,
                None => {
                    let roots_file = self.root.join("temproots").join(pid.to_string());
                    let d = Self::temp_roots_ended(&roots_file)?;
                    dead.insert(pid, d);
                    d
                }
            };
            if is_dead {
                fsutil::remove_tree(&entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Keeps `paths` from being collected while this process runs. Fails, naming the path, if
    /// one is no longer valid (a collection deleted it before it was rooted).
    pub fn add_temp_roots(&self, paths: &[StorePath]) -> Result<(), Error> {
        let _gc = LockFile::acquire_shared(&self.gc_lock_path())?;
        self.write_temp_roots(paths)?;
        let registered: Vec<StorePath> =
            paths.iter().filter(|p| !self.is_pending(p)).cloned().collect();
        match self.db().first_invalid(&registered)? {
            Some(p) => Err(Error::NotValid { path: self.render(&p) }),
            None => Ok(()),
        }
    }

    fn write_temp_roots(&self, paths: &[StorePath]) -> Result<(), Error> {
        let mut open = TEMP_ROOTS.lock().unwrap_or_else(|e| e.into_inner());
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
            if Self::temp_roots_ended(&path)? {
                // Its process is gone: so are its temporary roots.
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
        let automatic = dir.ends_with("gcroots/auto");
        for entry in std::fs::read_dir(dir).at("list the folder", dir)? {
            let entry = entry.at("list the folder", dir)?;
            let link = entry.path();
            // `.NAME.PID` in `auto/` is a root being made (see `Store::add_indirect_root`): not
            // a root yet, and the process making it holds its paths in its temporary roots.
            if automatic && entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let meta = match std::fs::symlink_metadata(&link) {
                Ok(meta) => meta,
                // Removed since the folder was listed (another process repointed or removed it).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at("read the metadata of", &link),
            };
            if meta.is_dir() {
                self.link_roots(&link, roots)?;
                continue;
            }
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
    ///
    /// The reference graph is read once; the live set is one walk over it in memory. Dead
    /// paths are unregistered in batches of [`GC_BATCH`], one transaction each, and each
    /// batch's files go after its transaction commits.
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcReport, Error> {
        // This process's temporary-roots lock must exist before the exclusive lock is taken:
        // `temp_name` then needs no lock of its own for the trash named below.
        self.temp_suffix()?;
        let _gc = LockFile::acquire(&self.gc_lock_path())?;
        let roots: Vec<StorePath> = self.roots()?.into_iter().map(|r| r.path).collect();
        let graph = self.db().graph()?;
        let live = live_set(&graph, &roots, options);
        let order = deletion_order(&graph, &live);

        let mut report = GcReport::default();
        let mut batch = Vec::new();
        let mut order = order.into_iter().peekable();
        while let Some(i) = order.next() {
            if options.max_freed.is_some_and(|max| report.freed >= max) {
                break;
            }
            report.freed += graph.nodes[i].nar_size;
            batch.push(graph.nodes[i].path.clone());
            let full = batch.len() == GC_BATCH || order.peek().is_none();
            let enough = options.max_freed.is_some_and(|max| report.freed >= max);
            if full || enough {
                self.delete_batch(&batch, options.dry_run)?;
                report.deleted.append(&mut batch);
            }
        }
        if !options.dry_run && options.max_freed.is_none() {
            let registered: Vec<StorePath> = graph.nodes.into_iter().map(|n| n.path).collect();
            report.debris = self.remove_debris(&registered)?;
        }
        if !options.dry_run {
            report.temporaries = self.remove_dead_temporaries()?;
            report.links = self.remove_unused_links()?;
        }
        Ok(report)
    }

    fn delete_batch(&self, batch: &[StorePath], dry_run: bool) -> Result<(), Error> {
        if dry_run {
            return Ok(());
        }
        // Unregistered first: a crash before the files are gone leaves debris, never a
        // registered path without its files.
        self.db().unregister(batch)?;
        crate::fault::point("gc.unregistered");
        for path in batch {
            self.remove_from_disk(path)?;
        }
        Ok(())
    }

    /// Removes a path's files: moved out of the store folder first, so a half-deleted tree is
    /// never found under its name.
    fn remove_from_disk(&self, path: &StorePath) -> Result<(), Error> {
        let location = self.locate(path);
        if std::fs::symlink_metadata(&location).is_err() {
            return Ok(());
        }
        // No lock taken: `collect_garbage` made this process's temporary roots before its own.
        let trash = self.temp_name(&format!("gc-{path}"))?;
        std::fs::rename(&location, &trash).at("move out of the store", &location)?;
        crate::fault::point("gc.trashed");
        fsutil::remove_tree(&trash)
    }

    /// Removes entries of the store folder that no registration vouches for and that no
    /// writer holds. Returns how many.
    fn remove_debris(&self, registered: &[StorePath]) -> Result<usize, Error> {
        let registered: Vec<&StorePath> = registered.iter().collect();
        let mut removed = 0;
        for name in self.unregistered_entries(&registered)? {
            if self.remove_unregistered(&name)? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// How many dead paths one transaction unregisters.
const GC_BATCH: usize = 1000;

/// Marks what the roots keep alive: their closures, and with the options the derivers of live
/// paths and the outputs of live derivations, with their closures in turn.
fn live_set(graph: &Graph, roots: &[StorePath], options: &GcOptions) -> Vec<bool> {
    let mut live = vec![false; graph.nodes.len()];
    let mut stack: Vec<usize> = roots.iter().filter_map(|r| graph.find(r)).collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut live[i], true) {
            continue;
        }
        let node = &graph.nodes[i];
        stack.extend(node.references.iter().copied().filter(|&r| !live[r]));
        if options.keep_derivations {
            stack.extend(node.deriver.as_ref().and_then(|d| graph.find(d)));
        }
        if options.keep_outputs {
            stack.extend(node.outputs.iter().filter_map(|o| graph.find(o)));
        }
    }
    live
}

/// Orders the dead paths so that each comes after every dead path that refers to it.
fn deletion_order(graph: &Graph, live: &[bool]) -> Vec<usize> {
    let mut waiting = vec![0usize; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        if !live[i] {
            for &r in node.references.iter().filter(|&&r| !live[r]) {
                waiting[r] += 1;
            }
        }
    }
    let mut ready: Vec<usize> =
        (0..graph.nodes.len()).filter(|&i| !live[i] && waiting[i] == 0).collect();
    let mut order = Vec::new();
    while let Some(i) = ready.pop() {
        for &r in graph.nodes[i].references.iter().filter(|&&r| !live[r]) {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(r);
            }
        }
        order.push(i);
    }
    order
}
