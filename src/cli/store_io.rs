//! The evaluator's door to the real store: files are read from disk, `./file` in a string and
//! `builtins.path` add to the store, and `derivation` writes `.drv` files with kiln's paths.
//!
//! A derivation is written in one of four forms (see `lang-spec/builds.md`): input-addressed,
//! with its output paths computed from its identity; fixed-output (a declared hash);
//! content-addressed (`__contentAddressed = true`), whose outputs are placeholders until built;
//! or deferred, when it uses a content-addressed output, so that its own paths wait for the
//! real inputs. The store is opened on the first operation that needs it.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use kiln_evaluator::io::{DerivationPaths, DerivationRequest, EvalIo, FileType, PlainIo};
use kiln_store::{
    Blake3Hash, CA_HASH_ALGO, Derivation, DerivationOutput, Store, StorePath, input_placeholder,
    own_placeholder,
};

/// `EvalIo` over a real store.
pub(crate) struct StoreIo {
    root: PathBuf,
    store: OnceCell<Store>,
    plain: PlainIo,
    /// Identities of the derivations written or read so far.
    identities: RefCell<HashMap<StorePath, Blake3Hash>>,
    /// The outputs without a path yet (content-addressed or deferred) of the derivations
    /// written or read so far.
    unknown_outputs: RefCell<HashMap<StorePath, BTreeSet<String>>>,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl StoreIo {
    /// Returns an `EvalIo` for the store at `root`, opened when first needed.
    pub(crate) fn new(root: PathBuf) -> StoreIo {
        StoreIo {
            root,
            store: OnceCell::new(),
            plain: PlainIo::default(),
            identities: RefCell::default(),
            unknown_outputs: RefCell::default(),
        }
    }

    fn store(&self) -> io::Result<&Store> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = Store::open(&self.root).map_err(|e| {
            io_err(format!("cannot open the store at `{}`: {e}", self.root.display()))
        })?;
        // `.drv` and `toFile` files are registered in batches; see `flush`.
        let store = store.batched();
        Ok(self.store.get_or_init(|| store))
    }

    fn parse(&self, path: &str) -> io::Result<StorePath> {
        self.store()?.dir().parse(path).map_err(io_err)
    }

    /// The identity of a derivation already in the store, computed once.
    fn identity(&self, drv_path: &StorePath) -> Result<Blake3Hash, kiln_store::Error> {
        if let Some(id) = self.identities.borrow().get(drv_path) {
            return Ok(*id);
        }
        let store = self.store().map_err(|e| kiln_store::Error::Io {
            op: "open",
            path: self.root.clone(),
            source: e,
        })?;
        let drv = store.read_derivation(drv_path)?;
        let id = drv.identity(store.dir(), |input| self.identity(input))?;
        self.identities.borrow_mut().insert(drv_path.clone(), id);
        Ok(id)
    }

    /// Tells whether output `output` of the derivation `drv` is known only after a build.
    fn is_pending(&self, drv: &StorePath, output: &str) -> io::Result<bool> {
        if let Some(unknown) = self.unknown_outputs.borrow().get(drv) {
            return Ok(unknown.contains(output));
        }
        let d = self.store()?.read_derivation(drv).map_err(io_err)?;
        self.remember_unknown_outputs(drv, &d);
        Ok(d.outputs.get(output).is_some_and(|o| o.path.is_none()))
    }

    fn remember_unknown_outputs(&self, drv_path: &StorePath, drv: &Derivation) {
        let unknown = drv.outputs.iter().filter(|(_, o)| o.path.is_none());
        let unknown = unknown.map(|(name, _)| name.clone()).collect();
        self.unknown_outputs.borrow_mut().insert(drv_path.clone(), unknown);
    }
}

impl EvalIo for StoreIo {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.plain.read_file(path)
    }

    fn path_exists(&self, path: &Path) -> bool {
        self.plain.path_exists(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.plain.is_dir(path)
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        self.plain.file_type(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        self.plain.read_dir(path)
    }

    fn store_dir(&self) -> String {
        match self.store() {
            Ok(store) => store.dir().as_str().to_owned(),
            // Without a store there is no store folder to name; the error shows on first use.
            Err(_) => self.root.join("store").to_string_lossy().into_owned(),
        }
    }

    fn add_path_to_store(
        &self,
        path: &Path,
        name: Option<&str>,
        _recursive: bool,
        excluded: &[PathBuf],
    ) -> io::Result<String> {
        // FIXME: a flat (non-recursive) add gets the same path as a recursive one; only
        // fixed-output downloads distinguish the two, and they do not come through here.
        let store = self.store()?;
        let added = if excluded.is_empty() {
            store.add_path(path, name)
        } else {
            store.add_path_filtered(path, name, &|p| !excluded.iter().any(|x| p.starts_with(x)))
        };
        added.map(|p| store.render(&p)).map_err(io_err)
    }

    fn add_text_to_store(&self, name: &str, text: &[u8], refs: &[String]) -> io::Result<String> {
        let store = self.store()?;
        let refs = refs.iter().map(|r| self.parse(r)).collect::<io::Result<BTreeSet<_>>>()?;
        store.add_text(name, text, &refs).map(|p| store.render(&p)).map_err(io_err)
    }

    fn write_derivation(&self, req: &DerivationRequest) -> io::Result<DerivationPaths> {
        let store = self.store()?;
        let mut input_drvs = BTreeMap::new();
        let mut uses_pending = false;
        for (path, outputs) in &req.input_drvs {
            let drv = self.parse(path)?;
            for o in outputs {
                uses_pending |= self.is_pending(&drv, o)?;
            }
            input_drvs.insert(drv, outputs.clone());
        }
        let input_srcs = req.input_srcs.iter().map(|p| self.parse(p)).collect::<io::Result<_>>()?;
        let content_addressed = req.env.get("__contentAddressed").is_some_and(|v| v == "1");

        let mut env = req.env.clone();
        let mut outputs = BTreeMap::new();
        for name in &req.outputs {
            let mut o = DerivationOutput::default();
            if let Some((algo, hash)) = &req.fixed {
                (o.hash_algo, o.hash) = (algo.clone(), hash.clone());
            } else if content_addressed {
                o.hash_algo = CA_HASH_ALGO.to_owned();
                env.insert(name.clone(), own_placeholder(name));
            }
            outputs.insert(name.clone(), o);
        }
        let mut drv = Derivation {
            outputs,
            input_drvs,
            input_srcs,
            platform: req.platform.clone(),
            builder: req.builder.clone(),
            args: req.args.clone(),
            env,
        };
        // Content-addressed and deferred derivations get their paths when built.
        let pending = req.fixed.is_none() && (content_addressed || uses_pending);
        let identity = if pending {
            drv.identity(store.dir(), |p| self.identity(p))
        } else {
            drv.fill_output_paths(store.dir(), &req.name, |p| self.identity(p))
        }
        .map_err(io_err)?;
        let drv_path = store.write_derivation(&req.name, &drv).map_err(io_err)?;
        self.identities.borrow_mut().insert(drv_path.clone(), identity);
        self.remember_unknown_outputs(&drv_path, &drv);

        let outputs = drv
            .outputs
            .iter()
            .map(|(name, o)| {
                let shown = match &o.path {
                    Some(p) => store.render(p),
                    None => input_placeholder(&drv_path, name),
                };
                (name.clone(), shown)
            })
            .collect();
        Ok(DerivationPaths { drv_path: store.render(&drv_path), outputs })
    }

    fn report(&self, text: &str) {
        eprintln!("{text}");
    }

    fn get_env(&self, name: &str) -> Option<String> {
        self.plain.get_env(name)
    }

    fn flush(&self) -> io::Result<()> {
        match self.store.get() {
            Some(store) => store.flush().map_err(io_err),
            None => Ok(()),
        }
    }
}
