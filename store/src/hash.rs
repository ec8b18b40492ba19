//! The store's digest type: blake3 over bytes or over a NAR serialisation.

use std::fmt;

use crate::nix32;

/// A 256-bit blake3 digest, the content hash of everything kiln stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Blake3Hash([u8; 32]);

impl Blake3Hash {
    /// The prefix of the textual form, `blake3:<nix32>`.
    pub const PREFIX: &'static str = "blake3:";

    /// Returns the digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Blake3Hash {
        Blake3Hash(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Blake3Hash {
        Blake3Hash(bytes)
    }

    /// Takes a digest from a byte slice, which must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Blake3Hash> {
        Some(Blake3Hash(bytes.try_into().ok()?))
    }

    /// Returns the raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the lower-case hexadecimal form.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the `blake3:<nix32>` form that `Display` writes.
    pub fn parse(text: &str) -> Option<Blake3Hash> {
        let digits = text.strip_prefix(Self::PREFIX)?;
        Blake3Hash::from_slice(&nix32::decode(digits, 32)?)
    }
}

impl fmt::Display for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, nix32::encode(&self.0))
    }
}

impl fmt::Debug for Blake3Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A `Write` sink that hashes what goes through it and counts the bytes.
#[derive(Default)]
pub struct HashingWriter {
    hasher: blake3::Hasher,
    len: u64,
}

impl HashingWriter {
    /// Returns the digest and the number of bytes written.
    pub fn finish(&self) -> (Blake3Hash, u64) {
        (Blake3Hash(*self.hasher.finalize().as_bytes()), self.len)
    }
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let h = Blake3Hash::of(b"kiln");
        let text = h.to_string();
        assert!(text.starts_with("blake3:") && text.len() == 7 + 52);
        assert_eq!(Blake3Hash::parse(&text), Some(h));
        assert_eq!(Blake3Hash::parse("sha256:abc"), None);
    }

    #[test]
    fn known_blake3_vector() {
        // The blake3 reference test vector for the empty input.
        assert_eq!(
            Blake3Hash::of(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
