//! Owns opaque paging cursors: fixed-length byte strings (a key suffix) written as unpadded
//! base64url. Decoding is strict (exact length, alphabet, zero padding bits) so a cursor that
//! was not handed out is refused with [`ProjectionError::InvalidCursor`].

use super::error::ProjectionError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `bytes` as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

fn value_of(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes a cursor that must hold exactly `len` bytes.
pub fn decode(text: &str, len: usize) -> Result<Vec<u8>, ProjectionError> {
    let bad = |why: &str| ProjectionError::InvalidCursor(why.to_owned());
    let expected_chars = (len * 4).div_ceil(3);
    if text.len() != expected_chars {
        return Err(bad("wrong length"));
    }
    let mut out = Vec::with_capacity(len);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value_of(c).ok_or_else(|| bad("not base64url"))?;
            n |= v << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        let all = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&all[..bytes]);
        if all[bytes..].iter().any(|&b| b != 0) {
            return Err(bad("not canonical"));
        }
    }
    if out.len() != len {
        return Err(bad("wrong length"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(decode(&text, len).ok(), Some(bytes));
        }
    }

    #[test]
    fn refuses_malformed() {
        let good = encode(&[1u8; 16]);
        assert!(decode(&good, 17).is_err());
        assert!(decode("", 16).is_err());
        assert!(decode(&good.replace('A', "+"), 16).is_err() || !good.contains('A'));
        let mut chars: Vec<char> = good.chars().collect();
        chars[0] = '!';
        assert!(decode(&chars.iter().collect::<String>(), 16).is_err());
        // Non-zero padding bits in the last character.
        let mut last: Vec<char> = good.chars().collect();
        if let Some(c) = last.last_mut() {
            *c = '_';
        }
        assert!(decode(&last.iter().collect::<String>(), 16).is_err());
        assert!(decode("ÄÄÄÄÄÄÄÄÄÄÄ", 16).is_err());
    }
}
