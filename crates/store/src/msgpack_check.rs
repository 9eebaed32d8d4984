//! Owns the structural check that a byte string is exactly one well-formed
//! MessagePack value: known markers only (`0xc1` is rejected), lengths
//! within the input, UTF-8 strings, and no trailing bytes. It walks the
//! input iteratively, so deep nesting cannot overflow the stack.

/// Checks that `bytes` holds exactly one well-formed MessagePack value.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut reader = Reader { bytes, at: 0 };
    // Values still to read: one top-level value plus every array element and
    // map key/value announced so far.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = reader.byte()?;
        let children = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => 2 * u64::from(marker & 0x0f),
            0x90..=0x9f => u64::from(marker & 0x0f),
            0xa0..=0xbf => reader.string(u64::from(marker & 0x1f))?,
            0xc1 => {
                return Err(format!(
                    "uses the reserved marker 0xc1 at byte {}",
                    reader.at - 1
                ))
            }
            0xc4 => reader.skip_sized(1)?,
            0xc5 => reader.skip_sized(2)?,
            0xc6 => reader.skip_sized(4)?,
            0xc7 => reader.skip_ext(1)?,
            0xc8 => reader.skip_ext(2)?,
            0xc9 => reader.skip_ext(4)?,
            0xca | 0xce | 0xd2 => reader.skip(4)?,
            0xcb | 0xcf | 0xd3 => reader.skip(8)?,
            0xcc | 0xd0 => reader.skip(1)?,
            0xcd | 0xd1 => reader.skip(2)?,
            0xd4 => reader.skip(2)?,
            0xd5 => reader.skip(3)?,
            0xd6 => reader.skip(5)?,
            0xd7 => reader.skip(9)?,
            0xd8 => reader.skip(17)?,
            0xd9 => {
                let len = reader.uint(1)?;
                reader.string(len)?
            }
            0xda => {
                let len = reader.uint(2)?;
                reader.string(len)?
            }
            0xdb => {
                let len = reader.uint(4)?;
                reader.string(len)?
            }
            0xdc => reader.uint(2)?,
            0xdd => reader.uint(4)?,
            0xde => 2 * reader.uint(2)?,
            0xdf => 2 * reader.uint(4)?,
        };
        pending += children;
        // Every value takes at least one byte: an announcement of more values
        // than bytes left is truncated input.
        if pending > reader.remaining() {
            return Err(format!(
                "is truncated: {pending} more values announced, {} bytes left",
                reader.remaining()
            ));
        }
    }
    if reader.remaining() > 0 {
        return Err(format!(
            "has {} trailing bytes after one MessagePack value",
            reader.remaining()
        ));
    }
    Ok(())
}

/// A cursor over the input that fails instead of reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.at) as u64
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        if n > self.remaining() {
            return Err(format!("is truncated at byte {}", self.bytes.len()));
        }
        // n <= remaining, which fits in usize.
        let n = n as usize;
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// Skips `n` bytes; no child values.
    fn skip(&mut self, n: u64) -> Result<u64, String> {
        self.take(n)?;
        Ok(0)
    }

    /// Reads a big-endian unsigned integer of `width` bytes.
    fn uint(&mut self, width: u64) -> Result<u64, String> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Skips a length-prefixed blob whose length has `width` bytes.
    fn skip_sized(&mut self, width: u64) -> Result<u64, String> {
        let len = self.uint(width)?;
        self.skip(len)
    }

    /// Skips an extension: length, type byte, data.
    fn skip_ext(&mut self, width: u64) -> Result<u64, String> {
        let len = self.uint(width)?;
        self.skip(len + 1)
    }

    /// Skips a string of `len` bytes, checking it is UTF-8.
    fn string(&mut self, len: u64) -> Result<u64, String> {
        let start = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|_| format!("has a string that is not UTF-8 at byte {start}"))?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_well_formed_values() {
        let value = rmpv::Value::Map(vec![
            (
                "a".into(),
                rmpv::Value::Array(vec![1.into(), (-70_000).into(), 1.5f64.into()]),
            ),
            ("b".into(), rmpv::Value::Binary(vec![0; 300])),
            ("c".into(), rmpv::Value::Ext(5, vec![1, 2, 3])),
            ("d".into(), rmpv::Value::String("x".repeat(70_000).into())),
            ("e".into(), rmpv::Value::Nil),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).expect("encode");
        assert_eq!(check(&bytes), Ok(()));
        assert_eq!(check(&[0xc0]), Ok(()));
        assert_eq!(check(&[0x90]), Ok(()));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &[][..],
            &[0xc1],
            &[0xc0, 0xc0],
            &[0x92, 0x01],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0xa2, 0xff, 0xfe],
            &[0xc7, 0xff, 0x01],
            &[0xcf, 0x00],
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }
}
