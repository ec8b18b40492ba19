//! Nix's base-32 text encoding of digests.
//!
//! The alphabet leaves out `e`, `o`, `t` and `u`, and the encoding runs from the last bit group
//! to the first, exactly as CppNix writes hashes, so that a kiln digest looks like a Nix one and
//! tools that know the alphabet can read it.

/// The 32 characters, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Returns the length of the encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    if n == 0 { 0 } else { (n * 8 - 1) / 5 + 1 }
}

/// Encodes bytes in Nix's base-32.
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let bit = n * 5;
        let (i, j) = (bit / 8, bit % 8);
        let low = u16::from(bytes[i]) >> j;
        let high = bytes.get(i + 1).map_or(0, |&b| u16::from(b) << (8 - j));
        out.push(ALPHABET[usize::from((low | high) & 0x1f)] as char);
    }
    out
}

/// Decodes Nix's base-32 into exactly `n` bytes, or `None` if the text is not such an encoding.
pub fn decode(text: &str, n: usize) -> Option<Vec<u8>> {
    if text.len() != encoded_len(n) {
        return None;
    }
    let mut bytes = vec![0u8; n];
    for (pos, c) in text.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&a| a == c)? as u16;
        let bit = pos * 5;
        let (i, j) = (bit / 8, bit % 8);
        bytes[i] |= (digit << j) as u8;
        let carry = digit >> (8 - j);
        match bytes.get_mut(i + 1) {
            Some(next) => *next |= carry as u8,
            // Bits past the last byte must be zero, or the text encodes more than `n` bytes.
            None if carry != 0 => return None,
            None => {}
        }
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // sha256("") as CppNix prints it with `nix-hash --type sha256 --to-base32`.
        let empty_sha256 = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        assert_eq!(encode(&empty_sha256), "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73");
        assert_eq!(encode(&[0u8; 20]), "00000000000000000000000000000000");
        assert_eq!(encode(&[0xff; 1]), "7z");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn round_trip_and_rejects() {
        for n in [1usize, 16, 20, 32, 64] {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), encoded_len(n));
            assert_eq!(decode(&text, n).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(decode("e0", 1), None, "`e` is not in the alphabet");
        assert_eq!(decode("zz", 1), None, "bits past the last byte are set");
        assert_eq!(decode("000", 1), None, "wrong length");
    }
}
