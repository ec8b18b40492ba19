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
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
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

/// The longest name of a folder entry a NAR may hold (Linux's limit).
const MAX_NAME: usize = 255;
/// The longest symlink target a NAR may hold (Linux's `PATH_MAX`, less the NUL).
const MAX_TARGET: usize = 4095;
/// How deep folders may nest in a NAR: bounds the reader's recursion on hostile input.
const MAX_DEPTH: usize = 256;

/// Unpacks the NAR read from `input` at `target`, which must not exist yet (its parent must).
///
/// The archive is checked as it is read, and anything that could make it write elsewhere or
/// mean two things is refused with [`Error::BadNar`] and the offset of the offending bytes:
/// entry names that are empty, `.` or `..`, hold `/` or NUL or are too long; entries out of
/// order or repeated; symlink targets that are empty, hold NUL or are too long; unknown or
/// misplaced fields; non-zero padding; bytes after the archive; folders nested deeper than
/// 256. Files are created new and never opened through a symlink, so nothing is written
/// outside `target`; on error, what was written below `target` is left for the caller to
/// remove (it stages archives in a temporary folder). Returns the archive's size.
pub fn restore(input: impl Read, target: &Path) -> Result<u64, Error> {
    let mut r = NarReader { input, offset: 0, buf: vec![0u8; 64 * 1024] };
    let magic = r.token(MAGIC.len())?;
    if magic != MAGIC {
        return Err(r.bad(0, "not a NAR archive (the magic string is missing)"));
    }
    r.node(target, 0)?;
    let end = r.offset;
    let mut extra = [0u8; 1];
    if r.input.read(&mut extra).map_err(|e| r.io(e))? != 0 {
        return Err(r.bad(end, "bytes after the end of the archive"));
    }
    Ok(end)
}

struct NarReader<R> {
    input: R,
    /// Bytes read so far: where errors are.
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> NarReader<R> {
    fn bad(&self, offset: u64, message: impl Into<String>) -> Error {
        Error::BadNar { offset, message: message.into() }
    }

    fn io(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.bad(self.offset, "the archive ends too early")
        } else {
            self.bad(self.offset, format!("cannot read the archive: {e}"))
        }
    }

    fn exact(&mut self, out: &mut [u8]) -> Result<(), Error> {
        self.input.read_exact(out).map_err(|e| self.io(e))?;
        self.offset += out.len() as u64;
        Ok(())
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn padding(&mut self, len: u64) -> Result<(), Error> {
        let rem = (len % 8) as usize;
        if rem != 0 {
            let at = self.offset;
            let mut pad = [0u8; 8];
            self.exact(&mut pad[..8 - rem])?;
            if pad.iter().any(|&b| b != 0) {
                return Err(self.bad(at, "padding that is not zero"));
            }
        }
        Ok(())
    }

    /// A string of at most `max` bytes.
    fn token(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let at = self.offset;
        let len = self.u64()?;
        if len > max as u64 {
            return Err(self.bad(at, format!("a string of {len} bytes where at most {max} fit")));
        }
        let mut s = vec![0u8; len as usize];
        self.exact(&mut s)?;
        self.padding(len)?;
        Ok(s)
    }

    /// Reads the next string and checks it is `want`.
    fn expect(&mut self, want: &str) -> Result<(), Error> {
        let at = self.offset;
        let got = self.token(16)?;
        if got != want.as_bytes() {
            return Err(self
                .bad(at, format!("expected `{want}`, found `{}`", String::from_utf8_lossy(&got))));
        }
        Ok(())
    }

    fn node(&mut self, path: &Path, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(self.bad(self.offset, format!("folders nested deeper than {MAX_DEPTH}")));
        }
        self.expect("(")?;
        self.expect("type")?;
        let at = self.offset;
        match self.token(16)?.as_slice() {
            b"regular" => self.regular(path)?,
            b"symlink" => {
                self.expect("target")?;
                let at = self.offset;
                let target = self.token(MAX_TARGET)?;
                if target.is_empty() || target.contains(&0) {
                    return Err(self.bad(at, "a symlink target that is empty or holds NUL"));
                }
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), path)
                    .at("create the symlink", path)?;
            }
            b"directory" => {
                fs::create_dir(path).at("create the folder", path)?;
                let mut previous: Option<Vec<u8>> = None;
                loop {
                    let at = self.offset;
                    match self.token(16)?.as_slice() {
                        b")" => return Ok(()),
                        b"entry" => {}
                        other => {
                            return Err(self.bad(
                                at,
                                format!(
                                    "expected `entry` or `)`, found `{}`",
                                    String::from_utf8_lossy(other)
                                ),
                            ));
                        }
                    }
                    self.expect("(")?;
                    self.expect("name")?;
                    let at = self.offset;
                    let name = self.token(MAX_NAME)?;
                    if name.is_empty()
                        || name == b"."
                        || name == b".."
                        || name.iter().any(|&b| b == b'/' || b == 0)
                    {
                        return Err(self.bad(
                            at,
                            format!(
                                "an entry named `{}`: names must not be empty, `.` or `..`, or hold `/` or NUL",
                                String::from_utf8_lossy(&name).escape_debug()
                            ),
                        ));
                    }
                    if previous.as_ref().is_some_and(|p| *p >= name) {
                        return Err(self.bad(
                            at,
                            format!(
                                "entry `{}` is out of order or repeated",
                                String::from_utf8_lossy(&name).escape_debug()
                            ),
                        ));
                    }
                    self.expect("node")?;
                    let child = path.join(std::ffi::OsStr::from_bytes(&name));
                    self.node(&child, depth + 1)?;
                    self.expect(")")?;
                    previous = Some(name);
                }
            }
            other => {
                return Err(
                    self.bad(at, format!("unknown file type `{}`", String::from_utf8_lossy(other)))
                );
            }
        }
        self.expect(")")
    }

    fn regular(&mut self, path: &Path) -> Result<(), Error> {
        let at = self.offset;
        let mut field = self.token(16)?;
        let executable = field == b"executable";
        if executable {
            self.expect("")?;
            field = self.token(16)?;
        }
        if field != b"contents" {
            return Err(self.bad(
                at,
                format!("expected `contents`, found `{}`", String::from_utf8_lossy(&field)),
            ));
        }
        let len = self.u64()?;
        // A new file, never an existing one or one reached through a symlink.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .custom_flags(libc_nofollow())
            .open(path)
            .at("create", path)?;
        let mut left = len;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let mut chunk = std::mem::take(&mut self.buf);
            let read = self.exact(&mut chunk[..want]);
            let written = read.and_then(|()| file.write_all(&chunk[..want]).at("write", path));
            self.buf = chunk;
            written?;
            left -= want as u64;
        }
        self.padding(len)
    }
}

/// `O_NOFOLLOW`: opening fails rather than follow a symlink at the last component.
fn libc_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}
