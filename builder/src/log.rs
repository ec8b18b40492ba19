//! Build logs: each build's output, gzip-compressed, at `ROOT/logs/<drv>.log.gz`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use kiln_store::{Store, StorePath};

use crate::Error;

/// Returns where the log of a build of `drv` is kept.
pub fn log_path(store: &Store, drv: &StorePath) -> PathBuf {
    store.root().join("logs").join(format!("{drv}.log.gz"))
}

/// Reads a log; the flag is false when the log ends early (its build was killed).
pub fn read_log(path: &Path) -> Result<(String, bool), Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        op: "open the build log",
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::new();
    let complete = MultiGzDecoder::new(file).read_to_end(&mut bytes).is_ok();
    Ok((String::from_utf8_lossy(&bytes).into_owned(), complete))
}

/// Writes a log as the build prints it.
pub(crate) struct LogWriter {
    out: GzEncoder<std::fs::File>,
    path: PathBuf,
}

impl LogWriter {
    pub(crate) fn create(path: &Path) -> Result<LogWriter, Error> {
        let file = std::fs::File::create(path).map_err(|source| Error::Io {
            op: "create the build log",
            path: path.to_owned(),
            source,
        })?;
        Ok(LogWriter { out: GzEncoder::new(file, Compression::fast()), path: path.to_owned() })
    }

    pub(crate) fn line(&mut self, line: &str) {
        // A log that cannot be written must not fail the build; the lines still reach the user.
        let _ = writeln!(self.out, "{line}");
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        self.out.finish().map(drop).map_err(|source| Error::Io {
            op: "write the build log",
            path: self.path,
            source,
        })
    }
}
