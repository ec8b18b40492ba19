//! File-system steps of adding and removing store paths: copying a tree, normalising it as
//! Nix does, and removing read-only trees.
//!
//! Normal form: regular files are 0444, or 0555 when the owner could execute them; folders
//! are 0555; every entry, symlinks included, has mtime 1 (one second after the epoch). No
//! setuid, setgid or sticky bit survives, since the mode is replaced whole.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{Error, IoContext};
use crate::nar::{kind_name, sorted_entries};

/// Copies the file, folder or symlink `src` to `dst`, which must not exist.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    copy_tree_filtered(src, dst, &|_| true)
}

/// Copies like `copy_tree`, leaving out every entry below `src` that `keep` refuses (and what
/// is below it).
pub(crate) fn copy_tree_filtered(
    src: &Path,
    dst: &Path,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<(), Error> {
    let meta = fs::symlink_metadata(src).at("read the metadata of", src)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).at("read the symlink", src)?;
        symlink(&target, dst).at("create the symlink", dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst).at("copy", src)?;
    } else if ft.is_dir() {
        fs::create_dir(dst).at("create the folder", dst)?;
        for (_, child) in sorted_entries(src)? {
            if keep(&child) {
                let name = child.file_name().expect("a folder entry has a name");
                copy_tree_filtered(&child, &dst.join(name), keep)?;
            }
        }
    } else {
        return Err(Error::UnsupportedFileType { path: src.to_owned(), kind: kind_name(&ft) });
    }
    Ok(())
}

/// Puts a tree into the store's normal form (see the module documentation).
pub(crate) fn normalise(path: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(path).at("read the metadata of", path)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        // Children first: the folder stays writable until they are done.
        for (_, child) in sorted_entries(path)? {
            normalise(&child)?;
        }
        set_mode(path, 0o555)?;
    } else if ft.is_file() {
        let exec = meta.permissions().mode() & 0o100 != 0;
        set_mode(path, if exec { 0o555 } else { 0o444 })?;
    } else if !ft.is_symlink() {
        return Err(Error::UnsupportedFileType { path: path.to_owned(), kind: kind_name(&ft) });
    }
    // Builds may run as another user; what enters the store belongs to the store's owner.
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    if std::os::unix::fs::MetadataExt::uid(&meta) != uid
        || std::os::unix::fs::MetadataExt::gid(&meta) != gid
    {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).at("change the owner of", path)?;
    }
    let one = TimeSpec::new(1, 0);
    utimensat(nix::fcntl::AT_FDCWD, path, &one, &one, UtimensatFlags::NoFollowSymlink)
        .map_err(std::io::Error::from)
        .at("set the modification time of", path)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at("set the mode of", path)
}

/// Removes a file or a tree, first making read-only folders writable. A missing path is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).at("read the metadata of", path),
    };
    if meta.is_dir() {
        set_mode(path, 0o755)?;
        for (_, child) in sorted_entries(path)? {
            remove_tree(&child)?;
        }
        fs::remove_dir(path).at("remove the folder", path)
    } else {
        fs::remove_file(path).at("remove", path)
    }
}

/// Flushes a file's or folder's data and metadata to disk.
pub(crate) fn sync_path(path: &Path) -> Result<(), Error> {
    fs::File::open(path).and_then(|f| f.sync_all()).at("sync", path)
}

/// Returns the first entry of a tree (in NAR order, relative to its top) that is not in normal
/// form, and how.
pub(crate) fn first_abnormal(path: &Path) -> Option<(std::path::PathBuf, String)> {
    fn walk(top: &Path, path: &Path) -> Option<(std::path::PathBuf, String)> {
        let rel = || path.strip_prefix(top).unwrap_or(path).to_owned();
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return Some((rel(), format!("cannot be read: {e}"))),
        };
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if meta.is_dir() || (meta.is_file() && mode & 0o100 != 0) {
            Some(0o555)
        } else if meta.is_file() {
            Some(0o444)
        } else {
            None
        };
        if let Some(wanted) = wanted
            && mode != wanted
        {
            let how = if mode & 0o222 != 0 { "is writable" } else { "has the wrong mode" };
            return Some((rel(), format!("{how} (mode {mode:04o}, not {wanted:04o})")));
        }
        if std::os::unix::fs::MetadataExt::mtime(&meta) != 1 {
            return Some((rel(), "was touched (its modification time is not 1)".to_owned()));
        }
        if meta.is_dir() {
            for (_, child) in sorted_entries(path).ok()? {
                if let Some(found) = walk(top, &child) {
                    return Some(found);
                }
            }
        }
        None
    }
    walk(path, path)
}
