//! NAR, the Nix archive format: a canonical serialisation of a file, folder or symlink.
//!
//! The bytes are exactly those of CppNix's `nix-store --dump`: every string is a little-endian
//! 64-bit length followed by the bytes and zero padding to a multiple of eight; folders list
//! their entries sorted by name as bytes; a regular file records only whether it is executable.
//! Nothing else (owners, times, other permission bits) is recorded, so equal trees give equal
//! archives. The content hash of a store path is blake3 over its NAR.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, IoContext};
use crate::hash::{Blake3Hash, HashingWriter};

const MAGIC: &[u8] = b"nix-archive-1";

/// Writes the NAR of the file, folder or symlink at `path` to `out`.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<(), Error> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = NarWriter { out, path, buf: &mut buf };
    w.str(MAGIC)?;
    w.node(path)
}

/// Returns the blake3 hash and the size of the NAR of `path`, without keeping the archive.
pub fn hash_path(path: &Path) -> Result<(Blake3Hash, u64), Error> {
    let mut sink = HashingWriter::default();
    dump(path, &mut sink)?;
    Ok(sink.finish())
}

struct NarWriter<'a, W: Write> {
    out: &'a mut W,
    /// The top of the tree, for error messages about writing.
    path: &'a Path,
    buf: &'a mut [u8],
}

impl<W: Write> NarWriter<'_, W> {
    fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).at("write the archive of", self.path)
    }

    fn len_prefix(&mut self, len: u64) -> Result<(), Error> {
        self.raw(&len.to_le_bytes())
    }

    fn pad(&mut self, len: u64) -> Result<(), Error> {
        let rem = (len % 8) as usize;
        if rem != 0 {
            self.raw(&[0u8; 8][..8 - rem])?;
        }
        Ok(())
    }

    fn str(&mut self, s: &[u8]) -> Result<(), Error> {
        self.len_prefix(s.len() as u64)?;
        self.raw(s)?;
        self.pad(s.len() as u64)
    }

    fn strs(&mut self, items: &[&[u8]]) -> Result<(), Error> {
        items.iter().try_for_each(|s| self.str(s))
    }

    fn node(&mut self, path: &Path) -> Result<(), Error> {
        let meta = fs::symlink_metadata(path).at("read the metadata of", path)?;
        let ft = meta.file_type();
        self.str(b"(")?;
        if ft.is_symlink() {
            let target = fs::read_link(path).at("read the symlink", path)?;
            self.strs(&[b"type", b"symlink", b"target", target.as_os_str().as_bytes()])?;
        } else if ft.is_file() {
            self.strs(&[b"type", b"regular"])?;
            if meta.permissions().mode() & 0o100 != 0 {
                self.strs(&[b"executable", b""])?;
            }
            self.str(b"contents")?;
            self.contents(path, meta.len())?;
        } else if ft.is_dir() {
            self.strs(&[b"type", b"directory"])?;
            for (name, child) in sorted_entries(path)? {
                self.strs(&[b"entry", b"(", b"name", &name, b"node"])?;
                self.node(&child)?;
                self.str(b")")?;
            }
        } else {
            return Err(Error::UnsupportedFileType { path: path.to_owned(), kind: kind_name(&ft) });
        }
        self.str(b")")
    }

    fn contents(&mut self, path: &Path, len: u64) -> Result<(), Error> {
        self.len_prefix(len)?;
        let mut file = fs::File::open(path).at("open", path)?;
        let mut left = len;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = file.read(&mut self.buf[..want]).at("read", path)?;
            if n == 0 {
                return Err(Error::ChangedWhileAdding { path: path.to_owned() });
            }
            self.out.write_all(&self.buf[..n]).at("write the archive of", self.path)?;
            left -= n as u64;
        }
        // A file that grew while being read would give an archive that lies about it.
        if file.read(&mut self.buf[..1]).at("read", path)? != 0 {
            return Err(Error::ChangedWhileAdding { path: path.to_owned() });
        }
        self.pad(len)
    }
}

/// Returns a folder's entries as (name bytes, full path), sorted by name bytes as NAR wants.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<(Vec<u8>, std::path::PathBuf)>, Error> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).at("list the folder", dir)? {
        let entry = entry.at("list the folder", dir)?;
        entries.push((entry.file_name().as_bytes().to_vec(), entry.path()));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

pub(crate) fn kind_name(ft: &fs::FileType) -> &'static str {
    if ft.is_socket() {
        "socket"
    } else if ft.is_fifo() {
        "named pipe"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

/// Writes a NAR to a `Write` while counting; used where the archive goes to a stream.
pub fn dump_to(path: &Path, out: impl Write) -> Result<(), Error> {
    let mut out = io::BufWriter::with_capacity(256 * 1024, out);
    dump(path, &mut out)?;
    out.flush().at("write the archive of", path)
}

/// Writes the NAR of a single regular file with the given contents.
pub fn write_regular(out: &mut impl Write, contents: &[u8], executable: bool) -> io::Result<()> {
    let mut str = |s: &[u8]| -> io::Result<()> {
        out.write_all(&(s.len() as u64).to_le_bytes())?;
        out.write_all(s)?;
        out.write_all(&[0u8; 8][..(8 - s.len() % 8) % 8])
    };
    for s in [MAGIC, b"(", b"type", b"regular"] {
        str(s)?;
    }
    if executable {
        str(b"executable")?;
        str(b"")?;
    }
    for s in [b"contents".as_slice(), contents, b")"] {
        str(s)?;
    }
    Ok(())
}
