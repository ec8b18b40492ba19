//! The content-addressed store: store paths, NAR archives, `.drv` files and the SQLite database
//! that says which paths are valid.
//!
//! A store lives in one root folder:
//!
//! - `store/` holds the store paths, each read-only and normalised;
//! - `db.sqlite` is the database (valid paths, references, derivation outputs, build trace);
//! - `locks/` holds one lock file per path being written;
//! - `tmp/` holds paths while they are being written, before they are renamed into `store/`;
//! - `logs/` and `gcroots/` are for build logs and garbage-collector roots.
//!
//! Invariant: a path is valid if and only if the database registers it, and a registered path
//! is complete on disk. Writing goes copy to `tmp/`, normalise, hash, rename into `store/`,
//! register, all under the path's lock, so a crash at any point leaves either a valid path or
//! debris that the next writer of that path removes.

mod ca;
mod db;
mod derivation;
mod error;
pub mod fault;
mod fsutil;
mod gc;
mod hash;
mod lock;
pub mod nar;
pub mod nix32;
mod optimise;
mod path;
mod query;
pub mod references;
mod verify;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use ca::{CA_HASH_ALGO, input_placeholder, own_placeholder, scratch_path};
pub use db::{BuildTrace, PathInfo, SCHEMA_VERSION};
pub use derivation::{
    Derivation, DerivationOutput, fixed_output_path, output_path_name, parse as parse_derivation,
};
pub use error::Error;
use error::IoContext;
pub use gc::{GcOptions, GcReport, GcRoot};
pub use hash::{Blake3Hash, HashingWriter};
pub use lock::LockFile;
pub use optimise::{AUTO_OPTIMISE, OptimiseReport};
pub use path::{DIGEST_BYTES, DIGEST_CHARS, MAX_NAME_LEN, StoreDir, StorePath, check_name};
pub use query::ReferenceSite;
pub use verify::{Problem, VerifyOptions, VerifyReport};

/// The settings a store keeps in its database, with what each means.
pub const SETTINGS: &[(&str, &str)] =
    &[(AUTO_OPTIMISE, "deduplicate each new path's files as it is registered (true or false)")];

/// An open store.
pub struct Store {
    root: PathBuf,
    dir: StoreDir,
    db: Mutex<db::Db>,
    /// The `auto-optimise` setting, as it was when the store was opened.
    auto_optimise: bool,
    /// Whether text files wait in [`Pending`] to be registered together (see [`Store::batched`]).
    batched: bool,
    pending: Mutex<Pending>,
}

/// Text files this store has moved into the store folder but not yet registered. Each stays
/// locked until [`Store::flush`] registers it: to other processes it is a path being written,
/// which they wait for and which no collection or verification removes as debris.
#[derive(Default)]
struct Pending {
    entries: Vec<(PathInfo, Vec<(String, StorePath)>)>,
    paths: std::collections::HashSet<StorePath>,
    locks: Vec<LockFile>,
}

/// How many text files wait at most before [`Store::flush`] registers them: each holds a lock
/// (an open file) until then.
const PENDING_MAX: usize = 256;

impl Store {
    /// Opens the store at `root`, creating its folders and database on first use.
    pub fn open(root: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(root).at("create the store root", root)?;
        let root = std::fs::canonicalize(root).at("resolve the store root", root)?;
        for sub in ["store", "locks", "tmp", "logs", "gcroots", "temproots"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).at("create the folder", &p)?;
        }
        let dir = StoreDir::new(&root.join("store"))?;
        let db = db::Db::open(&root.join("db.sqlite"))?;
        let auto_optimise = db.setting(AUTO_OPTIMISE)?.is_some_and(|v| v == "true");
        tracing::debug!(root = %root.display(), "opened the store");
        Ok(Store {
            root,
            dir,
            db: Mutex::new(db),
            auto_optimise,
            batched: false,
            pending: Mutex::default(),
        })
    }

    /// Makes text files (`.drv` files among them) wait to be registered together, by
    /// [`Store::flush`] or when this store is dropped: one sync of the file system and one
    /// transaction for many files instead of three syncs each. Until then this store, and
    /// nothing else, counts them as valid.
    pub fn batched(mut self) -> Store {
        self.batched = true;
        self
    }

    /// Registers the text files waiting to be (see [`Store::batched`]): their contents are
    /// synced to disk first, then they are rooted and registered in one transaction.
    pub fn flush(&self) -> Result<(), Error> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.entries.is_empty() {
            return Ok(());
        }
        let tmp = self.root.join("tmp");
        let file = std::fs::File::open(&tmp).at("open", &tmp)?;
        nix::unistd::syncfs(&file)
            .map_err(std::io::Error::from)
            .at("sync the file system of", self.dir.as_path())?;
        fault::point("batch.synced");
        self.register_all_rooted(&pending.entries)?;
        for (info, _) in &pending.entries {
            self.auto_optimise(&info.path);
        }
        tracing::debug!(paths = pending.entries.len(), "registered a batch");
        Ok(())
    }

    /// Runs `f` with the queries it makes through this store reading one snapshot of the
    /// database: many small queries then cost one lock instead of one each. `f` must not write
    /// through this store, and no other thread may use it meanwhile; what `f` learns may be
    /// stale by the time it returns (root what is to be kept with [`Store::add_temp_roots`]
    /// after, not within).
    pub fn read_snapshot<T, E: From<Error>>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.db().read_transaction(true)?;
        let result = f();
        self.db().read_transaction(false)?;
        result
    }

    pub(crate) fn is_pending(&self, path: &StorePath) -> bool {
        self.batched && self.pending.lock().unwrap_or_else(|e| e.into_inner()).paths.contains(path)
    }

    /// Returns the store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the folder of store paths.
    pub fn dir(&self) -> &StoreDir {
        &self.dir
    }

    fn db(&self) -> MutexGuard<'_, db::Db> {
        // A panic while holding the lock leaves no half-done transaction behind (SQLite rolls
        // it back), so the database is still usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the absolute text of a store path.
    pub fn render(&self, path: &StorePath) -> String {
        self.dir.render(path)
    }

    /// Returns where a store path is on disk.
    pub fn locate(&self, path: &StorePath) -> PathBuf {
        self.dir.locate(path)
    }

    /// Resolves a command-line argument to a store path: an absolute path in the store (or a
    /// file inside one), or a file or link elsewhere (such as `./result`) that resolves into
    /// the store.
    pub fn resolve(&self, arg: &str) -> Result<StorePath, Error> {
        if let Ok((path, _)) = self.dir.split(arg) {
            return Ok(path);
        }
        let real = std::fs::canonicalize(arg).at("resolve", arg)?;
        let text = real.to_str().ok_or_else(|| Error::NotInStore {
            path: arg.to_owned(),
            store: self.dir.as_str().to_owned(),
        })?;
        self.dir.split(text).map(|(path, _)| path).map_err(|_| Error::NotInStore {
            path: arg.to_owned(),
            store: self.dir.as_str().to_owned(),
        })
    }

    /// Tells whether a path is valid (registered, hence complete on disk).
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, Error> {
        Ok(self.is_pending(path) || self.db().is_valid(path)?)
    }

    /// Returns what the store knows of a path, or `None` if it is not valid.
    pub fn query_info(&self, path: &StorePath) -> Result<Option<PathInfo>, Error> {
        self.db().query_info(path)
    }

    fn require_info(&self, path: &StorePath) -> Result<PathInfo, Error> {
        self.query_info(path)?.ok_or_else(|| Error::NotValid { path: self.render(path) })
    }

    /// Returns the paths a valid path refers to.
    pub fn references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, Error> {
        Ok(self.require_info(path)?.references)
    }

    /// Returns the valid paths that refer to a valid path.
    pub fn referrers(&self, path: &StorePath) -> Result<Vec<StorePath>, Error> {
        self.require_valid(path)?;
        self.db().referrers(path)
    }

    /// Tells whether a path about to be added is there already, intact, and now rooted.
    fn reusable(&self, path: &StorePath) -> Result<bool, Error> {
        if self.is_pending(path) {
            return Ok(true);
        }
        Ok(self.is_valid(path)?
            && self.add_temp_roots(std::slice::from_ref(path)).is_ok()
            && self.damage(path)?.is_none())
    }

    fn require_valid(&self, path: &StorePath) -> Result<(), Error> {
        if self.is_valid(path)? { Ok(()) } else { Err(Error::NotValid { path: self.render(path) }) }
    }

    /// Returns the closure of valid paths under references, sorted, with its total NAR size.
    pub fn closure(&self, roots: &[StorePath]) -> Result<(Vec<StorePath>, u64), Error> {
        for root in roots {
            self.require_valid(root)?;
        }
        self.db().closure(roots)
    }

    /// Returns every valid path, sorted.
    pub fn all_paths(&self) -> Result<Vec<StorePath>, Error> {
        self.db().all_paths()
    }

    /// Writes the NAR of a valid path that is not known to be damaged. The archive is hashed
    /// as it goes: if it does not match the registered hash, the path is recorded as damaged
    /// and the export fails (after the bytes went out, so a reader must check the status).
    pub fn dump(&self, path: &StorePath, out: impl Write) -> Result<(), Error> {
        let info = self.require_info(path)?;
        self.require_intact(std::slice::from_ref(path))?;
        let mut tee = HashingTee { out, hasher: HashingWriter::default() };
        nar::dump_to(&self.locate(path), &mut tee)?;
        let (hash, size) = tee.hasher.finish();
        if (hash, size) != (info.nar_hash, info.nar_size) {
            let problem = format!(
                "its contents changed: registered {}, found {hash} ({size} bytes of archive)",
                info.nar_hash
            );
            self.mark_damaged(path, &problem)?;
            return Err(Error::Damaged { path: self.render(path), problem });
        }
        Ok(())
    }

    /// Returns a setting's value, if set; the name must be one of [`SETTINGS`].
    pub fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        check_setting(name, None)?;
        self.db().setting(name)
    }

    /// Sets a setting (one of [`SETTINGS`]), or with `None` returns it to its default. It
    /// takes effect for stores opened afterwards.
    pub fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), Error> {
        check_setting(name, value)?;
        self.db().set_setting(name, value)
    }

    /// Adds a file, folder or symlink as it is (no references), named after its last component
    /// unless `name` says otherwise, and returns its store path.
    pub fn add_path(&self, src: &Path, name: Option<&str>) -> Result<StorePath, Error> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => src
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::BadName {
                    name: src.display().to_string(),
                    reason: "the file has no name to use".into(),
                })?
                .to_owned(),
        };
        path::check_name(&name)?;
        let (nar_hash, nar_size) = nar::hash_path(src)?;
        let path = self.dir.make_source_path(&nar_hash, &name, [], false)?;
        if self.reusable(&path)? {
            return Ok(path);
        }
        let info = self.new_info(&path, nar_hash, nar_size, BTreeSet::new(), Some("source"));
        self.install(&info, &[], |tmp| {
            fsutil::copy_tree(src, tmp)?;
            Ok(())
        })
        .map_err(|e| match e {
            Error::ChangedWhileAdding { .. } => Error::ChangedWhileAdding { path: src.to_owned() },
            e => e,
        })?;
        Ok(path)
    }

    /// Adds the file, folder or symlink a NAR archive holds, as [`Store::add_path`] adds one,
    /// and returns its store path. The archive is unpacked in a temporary folder of the store
    /// root first: one that is malformed or would write anywhere else is refused there by
    /// [`nar::restore`], naming the offset of the offending bytes, and leaves nothing behind.
    pub fn import_nar(&self, input: impl std::io::Read, name: &str) -> Result<StorePath, Error> {
        path::check_name(name)?;
        let stage = tempfile::Builder::new()
            .prefix("import-")
            .suffix(&self.temp_suffix()?)
            .tempdir_in(self.root.join("tmp"))
            .at("create a staging folder in", self.root.join("tmp"))?;
        let staged = stage.path().join("tree");
        nar::restore(input, &staged)?;
        self.add_path(&staged, Some(name))
    }

    /// Adds a file or folder leaving out what `keep` refuses (a path and everything below it),
    /// as `builtins.path` with a filter does: the kept tree is staged, then added.
    pub fn add_path_filtered(
        &self,
        src: &Path,
        name: Option<&str>,
        keep: &dyn Fn(&Path) -> bool,
    ) -> Result<StorePath, Error> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => src.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned(),
        };
        let stage = tempfile::Builder::new()
            .prefix("stage-")
            .suffix(&self.temp_suffix()?)
            .tempdir_in(self.root.join("tmp"))
            .at("create a staging folder in", self.root.join("tmp"))?;
        let staged = stage.path().join("tree");
        fsutil::copy_tree_filtered(src, &staged, keep)?;
        self.add_path(&staged, Some(&name))
    }

    /// Adds a text file with the references it holds and returns its store path.
    pub fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, Error> {
        self.add_text_with_outputs(name, contents, references, &[])
    }

    fn add_text_with_outputs(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
        drv_outputs: &[(String, StorePath)],
    ) -> Result<StorePath, Error> {
        let path = self.dir.make_text_path(name, contents, references)?;
        if self.reusable(&path)? {
            return Ok(path);
        }
        let (nar_hash, nar_size) = text_nar_hash(contents);
        let info = self.new_info(&path, nar_hash, nar_size, references.clone(), Some("text"));
        if self.batched {
            let lock = LockFile::acquire(&self.root.join("locks").join(format!("{path}.lock")))?;
            // Unless another process registered it while we waited (or it is damaged, which
            // `install` handles), it goes in now and is registered later.
            if !self.db().is_valid(&path)? {
                return self.install_pending(info, drv_outputs, contents, lock);
            }
        }
        self.install(&info, drv_outputs, |tmp| std::fs::write(tmp, contents).at("write", tmp))?;
        Ok(path)
    }

    /// Moves a text file into the store, holding its lock, and leaves it to [`Store::flush`].
    fn install_pending(
        &self,
        info: PathInfo,
        drv_outputs: &[(String, StorePath)],
        contents: &[u8],
        lock: LockFile,
    ) -> Result<StorePath, Error> {
        let path = info.path.clone();
        let target = self.locate(&path);
        fsutil::remove_tree(&target)?;
        self.remove_temporaries(&path)?;
        let tmp = self.temp_name(path.as_str())?;
        let written = std::fs::write(&tmp, contents)
            .at("write", &tmp)
            .and_then(|()| fsutil::normalise(&tmp))
            .and_then(|()| std::fs::rename(&tmp, &target).at("move into the store", &target));
        if let Err(e) = written {
            fsutil::remove_tree(&tmp)?;
            return Err(e);
        }
        fault::point("batch.moved");
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.paths.insert(path.clone());
            pending.entries.push((info, drv_outputs.to_vec()));
            pending.locks.push(lock);
            pending.entries.len() >= PENDING_MAX
        };
        if full {
            self.flush()?;
        }
        Ok(path)
    }

    /// Writes a derivation as `<name>.drv` and returns its store path. Its references (input
    /// derivations and sources) must be valid.
    pub fn write_derivation(&self, name: &str, drv: &Derivation) -> Result<StorePath, Error> {
        let text = drv.to_aterm(&self.dir);
        let outputs: Vec<(String, StorePath)> =
            drv.outputs.iter().filter_map(|(n, o)| Some((n.clone(), o.path.clone()?))).collect();
        self.add_text_with_outputs(
            &format!("{name}.drv"),
            text.as_bytes(),
            &drv.references(),
            &outputs,
        )
    }

    /// Reads and parses a valid `.drv` store path.
    pub fn read_derivation(&self, path: &StorePath) -> Result<Derivation, Error> {
        self.require_valid(path)?;
        self.require_intact(std::slice::from_ref(path))?;
        let file = self.locate(path);
        let text = std::fs::read_to_string(&file).at("read the derivation", &file)?;
        derivation::parse(&text, &self.dir, &self.render(path))
    }

    /// Returns the outputs a valid derivation declares with fixed paths, as registered.
    pub fn derivation_outputs(&self, drv: &StorePath) -> Result<Vec<(String, StorePath)>, Error> {
        self.require_valid(drv)?;
        self.db().derivation_outputs(drv)
    }

    /// Records that a build of a derivation (as written) produced an output.
    pub fn record_build(&self, trace: &BuildTrace) -> Result<(), Error> {
        self.db().record_build(trace, false)
    }

    /// Records that a build of a resolved derivation produced an output: the entry that lets
    /// later builds with the same inputs reuse it.
    pub fn record_resolved_build(&self, trace: &BuildTrace) -> Result<(), Error> {
        self.db().record_build(trace, true)
    }

    /// Returns the previous build of the same package (a derivation with the same file name,
    /// other than `drv`), with when it finished.
    pub fn previous_build_of(&self, drv: &StorePath) -> Result<Option<(StorePath, i64)>, Error> {
        self.db().previous_build_named(drv.name(), drv)
    }

    /// Records that building `drv` failed.
    pub fn record_failure(&self, drv: &StorePath, message: &str) -> Result<(), Error> {
        self.db().record_failure(drv, now(), message)
    }

    /// Returns when the last failed build of `drv` failed and why.
    pub fn last_failure(&self, drv: &StorePath) -> Result<Option<(i64, String)>, Error> {
        self.db().last_failure(drv)
    }

    /// Returns the most recent build of a derivation's output.
    pub fn last_build(&self, drv: &StorePath, output: &str) -> Result<Option<BuildTrace>, Error> {
        self.db().last_build(drv, output)
    }

    /// Takes a path's write lock, waiting for it. Builds hold the locks of their outputs from
    /// before they start until their outputs are registered.
    pub fn lock_path(&self, path: &StorePath) -> Result<LockFile, Error> {
        LockFile::acquire(&self.root.join("locks").join(format!("{path}.lock")))
    }

    /// Removes whatever is on disk at a path that is not valid, so a build can write there.
    /// The caller holds the path's lock.
    pub fn clear_invalid(&self, path: &StorePath, _lock: &LockFile) -> Result<(), Error> {
        if self.is_valid(path)? {
            return Ok(());
        }
        self.remove_temporaries(path)?;
        fsutil::remove_tree(&self.locate(path))
    }

    /// Registers the outputs of a build: each `(location, path)` holds what was built for
    /// `path`, at its final place or elsewhere. Each is normalised, scanned for references to
    /// `candidates` and to the outputs themselves, hashed, moved into place and registered,
    /// outputs that others refer to first. The caller holds every output's lock.
    pub fn register_built_outputs(
        &self,
        outputs: &[(PathBuf, StorePath)],
        candidates: &BTreeSet<StorePath>,
        deriver: &StorePath,
    ) -> Result<Vec<PathInfo>, Error> {
        let mut all_candidates = candidates.clone();
        all_candidates.extend(outputs.iter().map(|(_, p)| p.clone()));
        let mut pending = Vec::new();
        for (location, path) in outputs {
            fsutil::normalise(location)?;
            let references = references::scan(location, &all_candidates)?;
            let (nar_hash, nar_size) = nar::hash_path(location)?;
            let mut info = self.new_info(path, nar_hash, nar_size, references, None);
            info.deriver = Some(deriver.clone());
            pending.push((location.clone(), info));
        }

        // Register in an order where every reference among the outputs is registered first.
        let mut done = Vec::new();
        while !pending.is_empty() {
            let ready = pending.iter().position(|(_, info)| {
                info.references
                    .iter()
                    .all(|r| r == &info.path || !pending.iter().any(|(_, other)| &other.path == r))
            });
            let Some(i) = ready else {
                let names = pending
                    .iter()
                    .map(|(_, i)| i.path.to_string())
                    .collect::<Vec<_>>()
                    .join("`, `");
                return Err(Error::OutputCycle { outputs: names });
            };
            let (location, info) = pending.remove(i);
            let target = self.locate(&info.path);
            if location != target {
                fsutil::remove_tree(&target)?;
                std::fs::rename(&location, &target).at("move into the store", &target)?;
            }
            fsutil::sync_path(self.dir.as_path())?;
            fault::point("build.moved");
            self.register_rooted(&info, &[])?;
            self.auto_optimise(&info.path);
            done.push(info);
        }
        Ok(done)
    }

    /// Registers a content-addressed output built at `location` for the scratch path
    /// `scratch` (see the `ca` module): computes its final path from its contents, rewrites
    /// its self-references, moves it there and registers it. If the final path is already
    /// valid, the new copy is dropped: the build changed nothing. The caller holds the
    /// scratch path's lock.
    pub fn register_content_addressed(
        &self,
        location: &Path,
        scratch: &StorePath,
        candidates: &BTreeSet<StorePath>,
        deriver: &StorePath,
    ) -> Result<PathInfo, Error> {
        fsutil::normalise(location)?;
        let (path, mut references, self_ref) =
            ca::final_path(&self.dir, location, scratch, candidates)?;
        let lock = self.lock_path(&path)?;
        if let Some(info) = self.query_info(&path)? {
            fsutil::remove_tree(location)?;
            return Ok(info);
        }
        if self_ref {
            ca::rewrite_tree(
                location,
                scratch.digest_text().as_bytes(),
                path.digest_text().as_bytes(),
            )?;
            // Rewriting touched the files: back to the normal form (mtime 1).
            fsutil::normalise(location)?;
            references.insert(path.clone());
        }
        let (nar_hash, nar_size) = nar::hash_path(location)?;
        let mut info = self.new_info(&path, nar_hash, nar_size, references, Some("content"));
        info.deriver = Some(deriver.clone());
        self.clear_invalid(&path, &lock)?;
        std::fs::rename(location, self.locate(&path))
            .at("move into the store", self.locate(&path))?;
        fsutil::sync_path(self.dir.as_path())?;
        fault::point("ca.moved");
        self.register_rooted(&info, &[])?;
        self.auto_optimise(&info.path);
        Ok(info)
    }

    /// Rewrites the digest of `from` to that of `to` in every file and symlink of the tree at
    /// `location` (outside the store): how a rebuild of a content-addressed output is compared
    /// with the registered one.
    pub fn rewrite_references(
        &self,
        location: &Path,
        from: &StorePath,
        to: &StorePath,
    ) -> Result<(), Error> {
        ca::rewrite_tree(location, from.digest_text().as_bytes(), to.digest_text().as_bytes())
    }

    /// Registers `link` (such as `./result`) as an indirect garbage-collector root: the store
    /// keeps what the link points to for as long as the link exists and points into the store.
    pub fn add_indirect_root(&self, link: &Path) -> Result<(), Error> {
        let link = std::path::absolute(link).at("resolve", link)?;
        let dir = self.root.join("gcroots").join("auto");
        std::fs::create_dir_all(&dir).at("create the folder", &dir)?;
        let text = link.to_string_lossy();
        let name = Blake3Hash::of(text.as_bytes()).to_hex();
        let entry = dir.join(&name[..32]);
        let tmp = dir.join(format!(".{}.{}", &name[..32], std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&link, &tmp).at("create the root", &tmp)?;
        fault::point("root.linked");
        std::fs::rename(&tmp, &entry).at("create the root", &entry)
    }

    fn new_info(
        &self,
        path: &StorePath,
        nar_hash: Blake3Hash,
        nar_size: u64,
        references: BTreeSet<StorePath>,
        ca: Option<&str>,
    ) -> PathInfo {
        PathInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            references,
            deriver: None,
            registration_time: now(),
            ca: ca.map(str::to_owned),
        }
    }

    /// Writes a path through `tmp/` and registers it, under the path's lock. `fill` creates the
    /// contents at the temporary location it is given; they must hash to `info.nar_hash`.
    fn install(
        &self,
        info: &PathInfo,
        drv_outputs: &[(String, StorePath)],
        fill: impl FnOnce(&Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let path = &info.path;
        let _lock = LockFile::acquire(&self.root.join("locks").join(format!("{path}.lock")))?;
        // Another process may have finished it while we waited for the lock.
        if self.is_valid(path)? && self.add_temp_roots(std::slice::from_ref(path)).is_ok() {
            if self.damage(path)?.is_none() {
                return Ok(());
            }
            // Added again while damaged: the new copy has the registered hash (the path
            // comes from it), so it replaces the damaged one.
            let tmp = self.temp_name(path.as_str())?;
            fsutil::remove_tree(&tmp)?;
            let result =
                self.write_checked(info, &tmp, fill).and_then(|()| self.swap_in(path, &tmp));
            if result.is_err() {
                fsutil::remove_tree(&tmp)?;
            }
            return result;
        }

        // Whatever is on disk under this name now is unregistered, hence untrusted debris of a
        // writer that died; so is any temporary copy, since only the lock holder makes those.
        let target = self.locate(path);
        fsutil::remove_tree(&target)?;
        self.remove_temporaries(path)?;

        let tmp = self.temp_name(path.as_str())?;
        let result = self.write_checked(info, &tmp, fill);
        if result.is_err() {
            fsutil::remove_tree(&tmp)?;
            return result;
        }

        fault::point("add.copied");
        std::fs::rename(&tmp, &target).at("move into the store", &target)?;
        fsutil::sync_path(self.dir.as_path())?;
        fault::point("add.moved");
        self.register_rooted(info, drv_outputs)?;
        fault::point("add.registered");
        self.auto_optimise(path);
        tracing::debug!(path = %path, "registered");
        Ok(())
    }

    fn write_checked(
        &self,
        info: &PathInfo,
        tmp: &Path,
        fill: impl FnOnce(&Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        fill(tmp)?;
        fsutil::normalise(tmp)?;
        let (hash, size) = nar::hash_path(tmp)?;
        if (hash, size) != (info.nar_hash, info.nar_size) {
            return Err(Error::ChangedWhileAdding { path: tmp.to_owned() });
        }
        // One call flushes the whole tree's data before the rename makes it visible.
        let file = std::fs::File::open(self.root.join("tmp")).at("open", self.root.join("tmp"))?;
        nix::unistd::syncfs(&file).map_err(std::io::Error::from).at("sync the file system of", tmp)
    }

    fn remove_temporaries(&self, path: &StorePath) -> Result<(), Error> {
        let tmp_dir = self.root.join("tmp");
        let prefix = format!("{path}.");
        for entry in std::fs::read_dir(&tmp_dir).at("list the folder", &tmp_dir)? {
            let entry = entry.at("list the folder", &tmp_dir)?;
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                fsutil::remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            // What was not registered is debris that the next writer, collection or
            // verification removes; the caller that wanted it registered should have flushed.
            tracing::error!(error = %e, "could not register the files written last");
        }
    }
}

/// Passes bytes on to `out` and hashes them.
struct HashingTee<W> {
    out: W,
    hasher: HashingWriter,
}

impl<W: Write> Write for HashingTee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn check_setting(name: &str, value: Option<&str>) -> Result<(), Error> {
    if !SETTINGS.iter().any(|(n, _)| *n == name) {
        let known = SETTINGS.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        return Err(Error::UnknownSetting { name: name.to_owned(), known });
    }
    match value {
        Some(v) if v != "true" && v != "false" => Err(Error::BadSetting {
            name: name.to_owned(),
            value: v.to_owned(),
            wanted: "`true` or `false`",
        }),
        _ => Ok(()),
    }
}

/// The NAR hash and size of a single regular, non-executable file with these contents.
fn text_nar_hash(contents: &[u8]) -> (Blake3Hash, u64) {
    let mut sink = HashingWriter::default();
    nar::write_regular(&mut sink, contents, false).expect("hashing cannot fail");
    sink.finish()
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
