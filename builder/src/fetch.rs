//! Fixed outputs: kiln's built-in `fetchurl` and the check of every declared output hash.
//!
//! `builtin:fetchurl` derivations are run by kiln itself, not by a process: the file is looked
//! up first in the mirrors (`--mirror DIR-OR-URL`), by its file name and by its hash through a
//! mirror's `SHA256SUMS` file, and only then at its URL. Whatever the source, the bytes must
//! have the declared hash; a mirror with other bytes is skipped, and the URL itself with other
//! bytes is an error that names both hashes. URLs may be `file://` or `http://`.
//!
//! FIXME: `https://` URLs are not fetched (kiln has no TLS client yet); use a mirror.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use sha2::Digest as _;

/// A hash algorithm a fixed output may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algo {
    Sha256,
    Sha512,
}

impl Algo {
    /// Parses a `.drv` hash algorithm (`sha256`, `r:sha256`, ...), returning it and whether the
    /// hash is over the NAR (`r:`).
    pub(crate) fn parse(text: &str) -> Option<(Algo, bool)> {
        let (recursive, name) = match text.strip_prefix("r:") {
            Some(name) => (true, name),
            None => (false, text),
        };
        let algo = match name {
            "sha256" => Algo::Sha256,
            "sha512" => Algo::Sha512,
            _ => return None,
        };
        Some((algo, recursive))
    }

    fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
        }
    }

    fn digest(self, bytes: &[u8]) -> String {
        let raw = match self {
            Algo::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            Algo::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
        };
        raw.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Returns the hash of a built fixed output, as declared: of the file's bytes, or of the NAR.
pub(crate) fn hash_output(location: &Path, algo: Algo, recursive: bool) -> Result<String, String> {
    let bytes = if recursive {
        let mut nar = Vec::new();
        kiln_store::nar::dump(location, &mut nar).map_err(|e| e.to_string())?;
        nar
    } else {
        let meta = std::fs::symlink_metadata(location).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("a flat fixed output must be a single regular file".into());
        }
        std::fs::read(location).map_err(|e| e.to_string())?
    };
    Ok(algo.digest(&bytes))
}

/// Checks that a fixed output has the declared hash.
pub(crate) fn check_hash(location: &Path, algo_text: &str, expected: &str) -> Result<(), String> {
    let (algo, recursive) = Algo::parse(algo_text)
        .ok_or_else(|| format!("unsupported hash algorithm `{algo_text}`"))?;
    let actual = hash_output(location, algo, recursive)?;
    if actual != expected {
        let name = algo.name();
        return Err(format!("hash mismatch: expected {name}:{expected}, got {name}:{actual}"));
    }
    Ok(())
}

/// Fetches `url` (or a mirror's copy) into `dest`, checking it has the `expected` hash.
/// `log` hears where the file came from.
pub(crate) fn fetch(
    url: &str,
    mirrors: &[String],
    algo: Algo,
    expected: &str,
    dest: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let name = url.rsplit('/').next().unwrap_or(url);
    let mut tried = Vec::new();
    for mirror in mirrors {
        let mirror = mirror.trim_end_matches('/');
        let mut candidates = vec![format!("{mirror}/{name}")];
        if algo == Algo::Sha256
            && let Ok(sums) = get(&format!("{mirror}/SHA256SUMS"))
        {
            let sums = String::from_utf8_lossy(&sums).into_owned();
            candidates.extend(
                sums.lines()
                    .filter_map(|l| l.split_once(char::is_whitespace))
                    .filter(|(hash, _)| hash.eq_ignore_ascii_case(expected))
                    .map(|(_, file)| format!("{mirror}/{}", file.trim().trim_start_matches('*'))),
            );
        }
        for candidate in candidates {
            match get(&candidate) {
                Ok(bytes) if algo.digest(&bytes) == expected => {
                    log(&format!("fetched `{name}` from the mirror `{candidate}`"));
                    return write(dest, &bytes);
                }
                Ok(_) => tried.push(format!("`{candidate}` has other contents")),
                Err(e) => tried.push(format!("`{candidate}`: {e}")),
            }
        }
    }
    match get(url) {
        Ok(bytes) => {
            let actual = algo.digest(&bytes);
            if actual != expected {
                let n = algo.name();
                return Err(format!(
                    "hash mismatch for `{url}`: expected {n}:{expected}, got {n}:{actual}"
                ));
            }
            log(&format!("fetched `{url}`"));
            write(dest, &bytes)
        }
        Err(e) => {
            tried.push(format!("`{url}`: {e}"));
            Err(format!("cannot fetch `{name}`; tried {}", tried.join("; ")))
        }
    }
}

/// Fetches `url` (or a mirror's copy by name) without checking a hash: for outputs hashed as
/// a NAR, which the caller checks once the file is in place.
pub(crate) fn fetch_unchecked(
    url: &str,
    mirrors: &[String],
    dest: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let name = url.rsplit('/').next().unwrap_or(url);
    for mirror in mirrors {
        let candidate = format!("{}/{name}", mirror.trim_end_matches('/'));
        if let Ok(bytes) = get(&candidate) {
            log(&format!("fetched `{name}` from the mirror `{candidate}`"));
            return write(dest, &bytes);
        }
    }
    let bytes = get(url).map_err(|e| format!("cannot fetch `{url}`: {e}"))?;
    log(&format!("fetched `{url}`"));
    write(dest, &bytes)
}

fn write(dest: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(dest, bytes).map_err(|e| format!("cannot write `{}`: {e}", dest.display()))
}

/// Reads a file by path or `file://` URL, or downloads an `http://` URL.
fn get(location: &str) -> Result<Vec<u8>, String> {
    if let Some(rest) = location.strip_prefix("http://") {
        return http_get(rest, 5);
    }
    if location.starts_with("https://") || location.starts_with("ftp://") {
        return Err("only `http://` and `file://` URLs can be fetched; use a mirror".into());
    }
    let path = location.strip_prefix("file://").unwrap_or(location);
    std::fs::read(path).map_err(|e| e.to_string())
}

/// A plain HTTP/1.0 GET, following up to `redirects` redirections.
fn http_get(rest: &str, redirects: u32) -> Result<Vec<u8>, String> {
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr =
        if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:80") };
    let mut stream =
        TcpStream::connect(&addr).map_err(|e| format!("cannot connect to `{addr}`: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: kiln\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let split =
        response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("a malformed HTTP response")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("a malformed HTTP status line")?;
    match status {
        200 => Ok(body),
        301 | 302 | 303 | 307 | 308 if redirects > 0 => {
            let location = head
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                        .map(|(_, v)| v.trim().to_owned())
                })
                .ok_or("a redirection without a location")?;
            match location.strip_prefix("http://") {
                Some(next) => http_get(next, redirects - 1),
                None if location.starts_with('/') => {
                    http_get(&format!("{host_port}{location}"), redirects - 1)
                }
                None => Err(format!("a redirection to `{location}`, which kiln cannot follow")),
            }
        }
        _ => Err(format!("the server answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_and_modes_parse() {
        assert_eq!(Algo::parse("sha256"), Some((Algo::Sha256, false)));
        assert_eq!(Algo::parse("r:sha512"), Some((Algo::Sha512, true)));
        assert_eq!(Algo::parse("md5"), None);
        assert_eq!(
            Algo::Sha256.digest(b"hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
