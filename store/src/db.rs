//! The store's SQLite database: the one module that holds SQL.
//!
//! The database is the source of truth for which store paths are valid: a path on disk that is
//! not registered here is not trusted. It runs in WAL mode so that readers never wait for a
//! writer, with `synchronous = FULL` because, unlike a cache, it cannot be rebuilt from anything
//! else: a registration that returned must survive a power cut. Foreign keys are on, so a
//! reference can only point at a valid path. The schema version lives in `PRAGMA user_version`
//! and each migration below moves it up by one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::Error;
use crate::hash::Blake3Hash;
use crate::path::StorePath;

/// Migrations, in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1: valid paths, references, derivation outputs and the build trace.
    "
    CREATE TABLE valid_paths (
        id                INTEGER PRIMARY KEY,
        path              TEXT NOT NULL UNIQUE,
        nar_hash          BLOB NOT NULL,
        nar_size          INTEGER NOT NULL,
        deriver           TEXT,
        registration_time INTEGER NOT NULL,
        ca                TEXT
    );
    CREATE TABLE refs (
        referrer  INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
        reference INTEGER NOT NULL REFERENCES valid_paths(id),
        PRIMARY KEY (referrer, reference)
    ) WITHOUT ROWID;
    CREATE INDEX refs_by_reference ON refs(reference);
    CREATE TABLE derivation_outputs (
        drv    INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
        output TEXT NOT NULL,
        path   TEXT NOT NULL,
        PRIMARY KEY (drv, output)
    ) WITHOUT ROWID;
    CREATE INDEX derivation_outputs_by_path ON derivation_outputs(path);
    CREATE TABLE build_trace (
        id          INTEGER PRIMARY KEY,
        drv_path    TEXT NOT NULL,
        output      TEXT NOT NULL,
        output_path TEXT NOT NULL,
        nar_hash    BLOB NOT NULL,
        finished_at INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL
    );
    CREATE INDEX build_trace_by_drv ON build_trace(drv_path, output);
    ",
    // Version 2: what `--explain` needs: the package name of each build (to find the previous
    // build of the same package), whether the entry is for a derivation as written or for its
    // resolved form, and the failures.
    "
    ALTER TABLE build_trace ADD COLUMN drv_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE build_trace ADD COLUMN resolved INTEGER NOT NULL DEFAULT 0;
    UPDATE build_trace SET drv_name = substr(drv_path, 34);
    CREATE INDEX build_trace_by_name ON build_trace(drv_name, resolved, id);
    CREATE TABLE build_failures (
        id        INTEGER PRIMARY KEY,
        drv_path  TEXT NOT NULL,
        failed_at INTEGER NOT NULL,
        message   TEXT NOT NULL
    );
    CREATE INDEX build_failures_by_drv ON build_failures(drv_path, id);
    ",
    // Version 3: the valid paths that verification (or an export) found damaged, which are not
    // handed out until repaired, and the store's settings.
    "
    CREATE TABLE damaged_paths (
        path     INTEGER PRIMARY KEY REFERENCES valid_paths(id) ON DELETE CASCADE,
        found_at INTEGER NOT NULL,
        problem  TEXT NOT NULL
    );
    CREATE TABLE settings (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
];

/// The schema version this kiln writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What the store knows about a valid path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// The path itself.
    pub path: StorePath,
    /// blake3 of the path's NAR.
    pub nar_hash: Blake3Hash,
    /// Length of the path's NAR in bytes.
    pub nar_size: u64,
    /// The store paths whose digests occur in the path's files (itself included if it does).
    pub references: BTreeSet<StorePath>,
    /// The derivation that produced the path, if one did.
    pub deriver: Option<StorePath>,
    /// When the path was registered, in seconds since the Unix epoch.
    pub registration_time: i64,
    /// How the path's name was computed from its contents (`source`, `text`), if it was.
    pub ca: Option<String>,
}

/// One entry of the build trace: a derivation's output and what it turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildTrace {
    /// The derivation that was built.
    pub drv_path: StorePath,
    /// Which of its outputs.
    pub output: String,
    /// The store path the output was registered at.
    pub output_path: StorePath,
    /// blake3 of the output's NAR.
    pub nar_hash: Blake3Hash,
    /// When the build finished, in seconds since the Unix epoch.
    pub finished_at: i64,
    /// How long the build took.
    pub duration_ms: u64,
}

/// The store's reference graph, loaded whole (see [`Db::graph`]).
pub(crate) struct Graph {
    /// Every valid path, sorted by path.
    pub(crate) nodes: Vec<GraphNode>,
}

pub(crate) struct GraphNode {
    pub(crate) path: StorePath,
    pub(crate) nar_size: u64,
    pub(crate) deriver: Option<StorePath>,
    /// Indices into `nodes` of the paths this one refers to, itself left out.
    pub(crate) references: Vec<usize>,
    /// For a derivation, the paths recorded as its outputs (valid or not).
    pub(crate) outputs: Vec<StorePath>,
}

impl Graph {
    /// Returns the index of a valid path.
    pub(crate) fn find(&self, path: &StorePath) -> Option<usize> {
        self.nodes.binary_search_by(|n| n.path.cmp(path)).ok()
    }
}

pub(crate) struct Db {
    conn: Connection,
    path: PathBuf,
    /// Whether a read transaction is open (see `Store::read_snapshot`).
    snapshot: bool,
}

impl Db {
    pub(crate) fn open(path: &Path) -> Result<Db, Error> {
        let err = |op| err_at(path, op);
        let conn = Connection::open(path).map_err(err("opening"))?;
        conn.busy_timeout(Duration::from_secs(600)).map_err(err("setting the busy timeout"))?;
        // Switching a new database to WAL needs a moment alone with it and does not wait on the
        // busy timeout, so two processes opening a new store at once retry here.
        let started = std::time::Instant::now();
        loop {
            let pragmas =
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
            match conn.execute_batch(pragmas) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && started.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(err("configuring the connection")(e)),
            }
        }
        let mut db = Db { conn, path: path.to_owned(), snapshot: false };
        db.migrate()?;
        Ok(db)
    }

    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Db { op, path: self.path.clone(), source }
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |op| err_at(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting a migration"))?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err("reading the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: self.path.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tracing::debug!(version = version + 1, "migrating the store database");
            tx.execute_batch(sql).map_err(err("migrating the schema"))?;
            tx.pragma_update(None, "user_version", version as i64 + 1)
                .map_err(err("migrating the schema"))?;
        }
        tx.commit().map_err(err("committing a migration"))
    }

    pub(crate) fn is_valid(&self, path: &StorePath) -> Result<bool, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM valid_paths WHERE path = ?1")
            .map_err(self.err("checking a path"))?;
        stmt.exists([path.to_string()]).map_err(self.err("checking a path"))
    }

    pub(crate) fn query_info(&self, path: &StorePath) -> Result<Option<PathInfo>, Error> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT id, nar_hash, nar_size, deriver, registration_time, ca FROM valid_paths WHERE path = ?1",
            )
            .and_then(|mut s| {
                s.query_row([path.to_string()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })
                .optional()
            })
            .map_err(self.err("reading a path's information"))?;
        let Some((id, hash, size, deriver, time, ca)) = row else { return Ok(None) };
        let nar_hash = Blake3Hash::from_slice(&hash).ok_or_else(|| {
            self.corrupt(format!("`{path}` has a NAR hash of {} bytes", hash.len()))
        })?;
        let deriver = deriver.map(|d| self.parse_path(&d)).transpose()?;
        let references = self.paths_of("SELECT v.path FROM refs r JOIN valid_paths v ON v.id = r.reference WHERE r.referrer = ?1", id)?;
        Ok(Some(PathInfo {
            path: path.clone(),
            nar_hash,
            nar_size: size as u64,
            references: references.into_iter().collect(),
            deriver,
            registration_time: time,
            ca,
        }))
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt { path: self.path.clone(), detail }
    }

    fn parse_path(&self, text: &str) -> Result<StorePath, Error> {
        StorePath::from_base_name(text).map_err(|e| self.corrupt(format!("bad path `{text}`: {e}")))
    }

    fn paths_of(&self, sql: &str, id: i64) -> Result<Vec<StorePath>, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err("querying paths"))?;
        let names = stmt
            .query_map([id], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.err("querying paths"))?;
        names.iter().map(|n| self.parse_path(n)).collect()
    }

    fn id_of(&self, path: &StorePath) -> Result<Option<i64>, Error> {
        self.conn
            .prepare_cached("SELECT id FROM valid_paths WHERE path = ?1")
            .and_then(|mut s| s.query_row([path.to_string()], |r| r.get(0)).optional())
            .map_err(self.err("looking up a path"))
    }

    /// Registers a path with its references and, for a derivation, its outputs, in one
    /// transaction. Registering an already valid path changes nothing and returns `false`.
    pub(crate) fn register(
        &mut self,
        info: &PathInfo,
        drv_outputs: &[(String, StorePath)],
    ) -> Result<bool, Error> {
        let mut added = self.register_all(&[(info.clone(), drv_outputs.to_vec())])?;
        Ok(added.pop().is_some())
    }

    /// Registers paths in one transaction, in order (so a path may refer to one before it).
    /// Returns the ones that were not valid before.
    pub(crate) fn register_all(
        &mut self,
        entries: &[(PathInfo, Vec<(String, StorePath)>)],
    ) -> Result<Vec<StorePath>, Error> {
        // A registration within a read snapshot (a content-addressed derivation resolved while
        // planning) ends the snapshot and starts a new one after it.
        let snapshot = self.snapshot;
        if snapshot {
            self.read_transaction(false)?;
        }
        let path = self.path.clone();
        let err = |op| err_at(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting a registration"))?;
        let mut added = Vec::new();
        for (info, drv_outputs) in entries {
            if insert_path(&tx, &path, info, drv_outputs)? {
                added.push(info.path.clone());
            }
        }
        tx.commit().map_err(err("committing a registration"))?;
        if snapshot {
            self.read_transaction(true)?;
        }
        Ok(added)
    }

    /// Starts (`true`) or ends a read transaction: the queries in between see one snapshot.
    pub(crate) fn read_transaction(&mut self, start: bool) -> Result<(), Error> {
        let sql = if start { "BEGIN DEFERRED" } else { "COMMIT" };
        self.conn.execute_batch(sql).map_err(self.err("reading a snapshot"))?;
        self.snapshot = start;
        Ok(())
    }

    /// Returns the first of `paths` that is not valid, if any, in one statement. It reads the
    /// database as it is now, even within a read snapshot: it confirms temporary roots.
    pub(crate) fn first_invalid(
        &mut self,
        paths: &[StorePath],
    ) -> Result<Option<StorePath>, Error> {
        if self.snapshot {
            self.read_transaction(false)?;
            let found = self.first_invalid(paths);
            self.read_transaction(true)?;
            return found;
        }
        let err = self.err("checking paths");
        let json =
            format!("[{}]", paths.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(","));
        let found: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT j.value FROM json_each(?1) j
                 WHERE NOT EXISTS (SELECT 1 FROM valid_paths v WHERE v.path = j.value) LIMIT 1",
            )
            .and_then(|mut s| s.query_row([json], |r| r.get(0)).optional())
            .map_err(&err)?;
        found.map(|p| self.parse_path(&p)).transpose()
    }

    pub(crate) fn referrers(&self, path: &StorePath) -> Result<Vec<StorePath>, Error> {
        let Some(id) = self.id_of(path)? else { return Ok(Vec::new()) };
        self.paths_of(
            "SELECT v.path FROM refs r JOIN valid_paths v ON v.id = r.referrer WHERE r.reference = ?1 ORDER BY v.path",
            id,
        )
    }

    /// Returns the closure of `roots` under references, sorted by path, and its total NAR size.
    pub(crate) fn closure(&self, roots: &[StorePath]) -> Result<(Vec<StorePath>, u64), Error> {
        let err = self.err("computing a closure");
        // The roots go in as one JSON array so that one statement serves any number of them.
        let json =
            format!("[{}]", roots.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(","));
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE closure(id) AS (
                     SELECT v.id FROM valid_paths v JOIN json_each(?1) j ON v.path = j.value
                     UNION
                     SELECT r.reference FROM refs r JOIN closure c ON r.referrer = c.id
                 )
                 SELECT v.path, v.nar_size FROM valid_paths v JOIN closure c ON v.id = c.id ORDER BY v.path",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([json], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        let size = rows.iter().map(|(_, s)| *s as u64).sum();
        let paths = rows.iter().map(|(p, _)| self.parse_path(p)).collect::<Result<_, _>>()?;
        Ok((paths, size))
    }

    pub(crate) fn derivation_outputs(
        &self,
        drv: &StorePath,
    ) -> Result<Vec<(String, StorePath)>, Error> {
        let err = self.err("reading derivation outputs");
        let Some(id) = self.id_of(drv)? else { return Ok(Vec::new()) };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT output, path FROM derivation_outputs WHERE drv = ?1 ORDER BY output",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        rows.into_iter().map(|(o, p)| Ok((o, self.parse_path(&p)?))).collect()
    }

    pub(crate) fn record_build(&mut self, trace: &BuildTrace, resolved: bool) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "INSERT INTO build_trace
                     (drv_path, output, output_path, nar_hash, finished_at, duration_ms, drv_name, resolved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    trace.drv_path.to_string(),
                    trace.output,
                    trace.output_path.to_string(),
                    trace.nar_hash.as_bytes().as_slice(),
                    trace.finished_at,
                    trace.duration_ms as i64,
                    trace.drv_path.name(),
                    resolved,
                ])
            })
            .map_err(self.err("recording a build"))?;
        Ok(())
    }

    /// Returns the most recent build of a derivation's output.
    pub(crate) fn last_build(
        &self,
        drv: &StorePath,
        output: &str,
    ) -> Result<Option<BuildTrace>, Error> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT output_path, nar_hash, finished_at, duration_ms FROM build_trace
                 WHERE drv_path = ?1 AND output = ?2 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![drv.to_string(), output], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()
            })
            .map_err(self.err("reading the build trace"))?;
        let Some((out, hash, finished_at, duration)) = row else { return Ok(None) };
        let nar_hash = Blake3Hash::from_slice(&hash)
            .ok_or_else(|| self.corrupt(format!("build trace of `{drv}` has a bad hash")))?;
        Ok(Some(BuildTrace {
            drv_path: drv.clone(),
            output: output.to_owned(),
            output_path: self.parse_path(&out)?,
            nar_hash,
            finished_at,
            duration_ms: duration as u64,
        }))
    }

    /// Returns the most recent build of a derivation (as written, not resolved) with the file
    /// name `drv_name` other than `except`: the previous build of the same package.
    pub(crate) fn previous_build_named(
        &self,
        drv_name: &str,
        except: &StorePath,
    ) -> Result<Option<(StorePath, i64)>, Error> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT drv_path, finished_at FROM build_trace
                 WHERE drv_name = ?1 AND resolved = 0 AND drv_path != ?2 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![drv_name, except.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
            })
            .map_err(self.err("reading the build trace"))?;
        row.map(|(p, t)| Ok((self.parse_path(&p)?, t))).transpose()
    }

    pub(crate) fn record_failure(
        &mut self,
        drv: &StorePath,
        at: i64,
        message: &str,
    ) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "INSERT INTO build_failures (drv_path, failed_at, message) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![drv.to_string(), at, message]))
            .map_err(self.err("recording a failure"))?;
        Ok(())
    }

    /// Returns when the last failed build of `drv` failed and why.
    pub(crate) fn last_failure(&self, drv: &StorePath) -> Result<Option<(i64, String)>, Error> {
        self.conn
            .prepare_cached(
                "SELECT failed_at, message FROM build_failures WHERE drv_path = ?1 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row([drv.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err("reading the build failures"))
    }

    /// Unregisters paths in one transaction. Fails, changing nothing, if a path that stays
    /// registered refers to one of them.
    pub(crate) fn unregister(&mut self, paths: &[StorePath]) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |op| err_at(&path, op);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("starting a deletion"))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM valid_paths WHERE path = ?1")
                .map_err(err("deleting paths"))?;
            for p in paths {
                delete.execute([p.to_string()]).map_err(err("deleting paths"))?;
            }
        }
        tx.commit().map_err(err("committing a deletion"))
    }

    /// Reads the whole reference graph in three statements: every valid path with its NAR
    /// size and deriver, every reference between two different paths, and every recorded
    /// derivation output. What the collector and the verifier walk, in memory.
    pub(crate) fn graph(&self) -> Result<Graph, Error> {
        let err = self.err("reading the reference graph");
        let mut nodes = Vec::new();
        let mut index = std::collections::HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id, path, nar_size, deriver FROM valid_paths ORDER BY path")
                .map_err(&err)?;
            let mut rows = stmt.query([]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let id: i64 = r.get(0).map_err(&err)?;
                let path = self.parse_path(&r.get::<_, String>(1).map_err(&err)?)?;
                let size: i64 = r.get(2).map_err(&err)?;
                let deriver: Option<String> = r.get(3).map_err(&err)?;
                index.insert(id, nodes.len());
                nodes.push(GraphNode {
                    path,
                    nar_size: size as u64,
                    deriver: deriver.map(|d| self.parse_path(&d)).transpose()?,
                    references: Vec::new(),
                    outputs: Vec::new(),
                });
            }
        }
        let node_of = |id: i64| {
            index
                .get(&id)
                .copied()
                .ok_or_else(|| self.corrupt(format!("reference to row {id}, which is no path")))
        };
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT referrer, reference FROM refs WHERE referrer != reference")
                .map_err(&err)?;
            let mut rows = stmt.query([]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let (from, to) =
                    (node_of(r.get(0).map_err(&err)?)?, node_of(r.get(1).map_err(&err)?)?);
                nodes[from].references.push(to);
            }
        }
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT drv, path FROM derivation_outputs")
                .map_err(&err)?;
            let mut rows = stmt.query([]).map_err(&err)?;
            while let Some(r) = rows.next().map_err(&err)? {
                let drv = node_of(r.get(0).map_err(&err)?)?;
                let out = self.parse_path(&r.get::<_, String>(1).map_err(&err)?)?;
                nodes[drv].outputs.push(out);
            }
        }
        Ok(Graph { nodes })
    }

    /// Returns every valid path with its registered NAR hash and size, sorted by path.
    pub(crate) fn hashes(&self) -> Result<Vec<(StorePath, Blake3Hash, u64)>, Error> {
        let err = self.err("listing paths");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, nar_hash, nar_size FROM valid_paths ORDER BY path")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        rows.into_iter()
            .map(|(p, h, size)| {
                let hash = Blake3Hash::from_slice(&h).ok_or_else(|| {
                    self.corrupt(format!("`{p}` has a NAR hash of {} bytes", h.len()))
                })?;
                Ok((self.parse_path(&p)?, hash, size as u64))
            })
            .collect()
    }

    /// Runs SQLite's own consistency checks (the file's structure, then every foreign key)
    /// and returns what they found, one line a problem.
    pub(crate) fn check_integrity(&self) -> Result<Vec<String>, Error> {
        let err = self.err("checking the database");
        let mut found = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA quick_check").map_err(&err)?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        found.extend(lines.into_iter().filter(|l| l != "ok"));
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check").map_err(&err)?;
        let broken = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        for (table, row) in broken {
            let row = row.map_or_else(|| "a row".to_owned(), |r| format!("row {r}"));
            found.push(format!("{row} of `{table}` points at a path that is not registered"));
        }
        Ok(found)
    }

    /// Records that a valid path is damaged, replacing what was recorded before.
    pub(crate) fn mark_damaged(
        &self,
        path: &StorePath,
        at: i64,
        problem: &str,
    ) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO damaged_paths (path, found_at, problem)
                 SELECT id, ?2, ?3 FROM valid_paths WHERE path = ?1",
            )
            .and_then(|mut s| s.execute(params![path.to_string(), at, problem]))
            .map_err(self.err("recording a damaged path"))?;
        Ok(())
    }

    /// Forgets that a path was damaged.
    pub(crate) fn clear_damaged(&self, path: &StorePath) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "DELETE FROM damaged_paths WHERE path = (SELECT id FROM valid_paths WHERE path = ?1)",
            )
            .and_then(|mut s| s.execute([path.to_string()]))
            .map_err(self.err("clearing a damaged path"))?;
        Ok(())
    }

    /// Tells whether any path is recorded as damaged.
    pub(crate) fn any_damaged(&self) -> Result<bool, Error> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM damaged_paths)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(self.err("reading the damaged paths"))
    }

    /// Returns the paths among `paths` recorded as damaged, with what was wrong, sorted.
    pub(crate) fn damaged_among(
        &self,
        paths: &[StorePath],
    ) -> Result<Vec<(StorePath, String)>, Error> {
        let err = self.err("reading the damaged paths");
        // Most stores have nothing damaged: one cheap statement answers for any number.
        if paths.is_empty() || !self.any_damaged()? {
            return Ok(Vec::new());
        }
        let json =
            format!("[{}]", paths.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(","));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT v.path, d.problem FROM damaged_paths d
                 JOIN valid_paths v ON v.id = d.path
                 JOIN json_each(?1) j ON v.path = j.value
                 ORDER BY v.path",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([json], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        rows.into_iter().map(|(p, problem)| Ok((self.parse_path(&p)?, problem))).collect()
    }

    /// Returns a setting's value, if it is set.
    pub(crate) fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        self.conn
            .prepare_cached("SELECT value FROM settings WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
            .map_err(self.err("reading a setting"))
    }

    /// Sets a setting, or with `None` removes it.
    pub(crate) fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), Error> {
        let result = match value {
            Some(v) => self
                .conn
                .prepare_cached("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute([name, v])),
            None => self
                .conn
                .prepare_cached("DELETE FROM settings WHERE name = ?1")
                .and_then(|mut s| s.execute([name])),
        };
        result.map_err(self.err("changing a setting"))?;
        Ok(())
    }

    /// Returns every registered path, sorted.
    pub(crate) fn all_paths(&self) -> Result<Vec<StorePath>, Error> {
        let err = self.err("listing paths");
        let mut stmt =
            self.conn.prepare_cached("SELECT path FROM valid_paths ORDER BY path").map_err(&err)?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(&err)?;
        names.iter().map(|n| self.parse_path(n)).collect()
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn err_at(path: &Path, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + use<> {
    let path = path.to_owned();
    move |source| Error::Db { op, path, source }
}

/// Inserts one path, its references and its derivation outputs within `tx`; `false` if it was
/// already valid.
fn insert_path(
    tx: &rusqlite::Transaction<'_>,
    db: &Path,
    info: &PathInfo,
    drv_outputs: &[(String, StorePath)],
) -> Result<bool, Error> {
    let err = |op| err_at(db, op);
    let name = info.path.to_string();
    let exists = tx
        .prepare_cached("SELECT 1 FROM valid_paths WHERE path = ?1")
        .and_then(|mut s| s.exists([&name]))
        .map_err(err("checking a path"))?;
    if exists {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO valid_paths (path, nar_hash, nar_size, deriver, registration_time, ca)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            name,
            info.nar_hash.as_bytes().as_slice(),
            info.nar_size as i64,
            info.deriver.as_ref().map(|d| d.to_string()),
            info.registration_time,
            info.ca,
        ])
    })
    .map_err(err("registering a path"))?;
    let id = tx.last_insert_rowid();
    let mut lookup = tx
        .prepare_cached("SELECT id FROM valid_paths WHERE path = ?1")
        .map_err(err("adding references"))?;
    let mut insert = tx
        .prepare_cached("INSERT INTO refs (referrer, reference) VALUES (?1, ?2)")
        .map_err(err("adding references"))?;
    for reference in &info.references {
        let target: Option<i64> = lookup
            .query_row([reference.to_string()], |r| r.get(0))
            .optional()
            .map_err(err("adding references"))?;
        let target = target.ok_or_else(|| Error::MissingReference {
            path: name.clone(),
            reference: reference.to_string(),
        })?;
        insert.execute([id, target]).map_err(err("adding references"))?;
    }
    let mut outputs = tx
        .prepare_cached("INSERT INTO derivation_outputs (drv, output, path) VALUES (?1, ?2, ?3)")
        .map_err(err("adding derivation outputs"))?;
    for (output, out_path) in drv_outputs {
        outputs
            .execute(params![id, output, out_path.to_string()])
            .map_err(err("adding derivation outputs"))?;
    }
    Ok(true)
}
