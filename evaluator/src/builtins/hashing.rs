//! Hashing builtins (`hashString`, `hashFile`, `convertHash`, `placeholder`) and the hash
//! encodings Nix uses: base16, nix32 ("base32"), base64 and SRI.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::error::ErrorKind;
use crate::eval::{Evaluator, R, err};
use crate::syntax::Span;
use crate::value::{Symbol, Thunk, Value};

const NIX32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Hashes `data` with the named algorithm (`md5`, `sha1`, `sha256`, `sha512`).
pub(crate) fn digest(algo: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match algo {
        "md5" => Md5::digest(data).to_vec(),
        "sha1" => Sha1::digest(data).to_vec(),
        "sha256" => Sha256::digest(data).to_vec(),
        "sha512" => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn hash_len(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

/// Lowercase hexadecimal.
pub(crate) fn base16(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nix's own base-32 encoding.
pub(crate) fn nix32(h: &[u8]) -> String {
    if h.is_empty() {
        return String::new();
    }
    let len = (h.len() * 8 - 1) / 5 + 1;
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let lo = u16::from(h[i]) >> j;
        let hi = if i + 1 < h.len() { u16::from(h[i + 1]) << (8 - j) } else { 0 };
        out.push(NIX32[((lo | hi) & 0x1f) as usize] as char);
    }
    out
}

fn nix32_decode(s: &str, size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size];
    let bytes = s.as_bytes();
    for (n, c) in bytes.iter().rev().enumerate() {
        let digit = NIX32.iter().position(|x| x == c)? as u16;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        out[i] |= (digit << j) as u8;
        let carry = digit >> (8 - j);
        if i + 1 < size {
            out[i + 1] |= carry as u8;
        } else if carry != 0 {
            return None;
        }
    }
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(B64[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Parses a hash in any of Nix's encodings; `algo` may come from an SRI prefix.
fn parse_hash(s: &str, algo: Option<&str>) -> Result<(String, Vec<u8>), String> {
    let (algo, body, sri) = if let Some((a, b)) =
        s.split_once('-').filter(|(a, _)| hash_len(a).is_some())
    {
        (a.to_string(), b, true)
    } else if let Some((a, b)) = s.split_once(':').filter(|(a, _)| hash_len(a).is_some()) {
        (a.to_string(), b, false)
    } else {
        match algo {
            Some(a) => (a.to_string(), s, false),
            None => {
                return Err(format!(
                    "hash `{s}` does not include a type, nor is the type otherwise known from context"
                ));
            }
        }
    };
    let len = hash_len(&algo).ok_or_else(|| format!("unknown hash algorithm `{algo}`"))?;
    let bytes = if sri {
        base64_decode(body)
    } else if body.len() == len * 2 {
        (0..len).map(|i| u8::from_str_radix(&body[2 * i..2 * i + 2], 16).ok()).collect()
    } else if body.len() == (len * 8 - 1) / 5 + 1 {
        nix32_decode(body, len)
    } else {
        base64_decode(body).filter(|b| b.len() == len)
    };
    match bytes {
        Some(b) if b.len() == len => Ok((algo, b)),
        _ => Err(format!("hash `{s}` has wrong length for hash type `{algo}`")),
    }
}

fn encode(algo: &str, h: &[u8], format: &str) -> Option<String> {
    Some(match format {
        "base16" => base16(h),
        "nix32" | "base32" => nix32(h),
        "base64" => base64(h),
        "sri" => format!("{algo}-{}", base64(h)),
        _ => return None,
    })
}

/// Parses a hash in any encoding and returns its algorithm and base-16 form.
pub(crate) fn to_base16(hash: &str, algo: Option<&str>) -> Result<(String, String), String> {
    let (algo, bytes) = parse_hash(hash, algo)?;
    Ok((algo, base16(&bytes)))
}

pub(super) fn prim_hash_string(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let algo = ev.force_string(&a[0], span)?;
    let s = ev.force_string(&a[1], span)?;
    match digest(&algo.s, s.s.as_bytes()) {
        Some(h) => Ok(Value::string(base16(&h))),
        None => err(ErrorKind::Invalid, format!("unknown hash algorithm `{}`", algo.s), span),
    }
}

pub(super) fn prim_hash_file(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let algo = ev.force_string(&a[0], span)?;
    let path = ev.coerce_path(&a[1], span)?;
    let data = match ev.io.read_file(&path) {
        Ok(d) => d,
        Err(e) => return err(ErrorKind::Io, format!("reading `{}`: {e}", path.display()), span),
    };
    match digest(&algo.s, &data) {
        Some(h) => Ok(Value::string(base16(&h))),
        None => err(ErrorKind::Invalid, format!("unknown hash algorithm `{}`", algo.s), span),
    }
}

pub(super) fn prim_convert_hash(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let args = ev.force_attrs(&a[0], span)?;
    let Some(h) = args.get(&Symbol::new("hash")).map(|e| e.value.clone()) else {
        return err(
            ErrorKind::MissingAttr,
            "attribute `hash` missing in `builtins.convertHash`",
            span,
        );
    };
    let hash = ev.force_string(&h, span)?;
    let algo = match args.get(&Symbol::new("hashAlgo")).map(|e| e.value.clone()) {
        Some(t) => Some(ev.force_string(&t, span)?.s.to_string()),
        None => None,
    };
    let Some(f) = args.get(&Symbol::new("toHashFormat")).map(|e| e.value.clone()) else {
        return err(
            ErrorKind::MissingAttr,
            "attribute `toHashFormat` missing in `builtins.convertHash`",
            span,
        );
    };
    let format = ev.force_string(&f, span)?;
    if &*format.s == "base32" {
        ev.io.report("warning: \"base32\" is a deprecated alias for hash format \"nix32\".");
    }
    let (algo, bytes) = match parse_hash(&hash.s, algo.as_deref()) {
        Ok(x) => x,
        Err(m) => return err(ErrorKind::Invalid, m, span),
    };
    match encode(&algo, &bytes, &format.s) {
        Some(s) => Ok(Value::string(s)),
        None => err(ErrorKind::Invalid, format!("unknown hash format `{}`", format.s), span),
    }
}

pub(super) fn prim_placeholder(ev: &mut Evaluator, a: &[Thunk], span: Span) -> R<Value> {
    let name = ev.force_string(&a[0], span)?;
    let h = Sha256::digest(format!("nix-output:{}", name.s).as_bytes());
    Ok(Value::string(format!("/{}", nix32(&h))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let h = digest("sha256", b"hello").unwrap();
        assert_eq!(base16(&h), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let n = nix32(&h);
        assert_eq!(nix32_decode(&n, 32).unwrap(), h);
        assert_eq!(base64_decode(&base64(&h)).unwrap(), h);
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
