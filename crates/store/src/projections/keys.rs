//! Owns the byte encoding of projection keys: big-endian integers (so scans come back in
//! numeric order), signed values offset by 2^63 (so negative times sort first), raw 16-byte
//! UUIDs, and a checked reader that turns short or malformed keys into errors.

use uuid::Uuid;

use super::error::ProjectionError;

/// Maps a signed value to an unsigned one with the same order.
pub fn order_i64(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

/// Inverse of [`order_i64`].
pub fn unorder_i64(value: u64) -> i64 {
    (value ^ (1 << 63)) as i64
}

/// Builds a key from parts, starting with a one-byte keyspace prefix.
#[derive(Clone, Debug, Default)]
pub struct Key(Vec<u8>);

impl Key {
    /// A key in keyspace `prefix`.
    pub fn new(prefix: u8) -> Key {
        let mut bytes = Vec::with_capacity(64);
        bytes.push(prefix);
        Key(bytes)
    }

    /// Appends a raw UUID (16 bytes).
    pub fn uuid(mut self, id: Uuid) -> Key {
        self.0.extend_from_slice(id.as_bytes());
        self
    }

    /// Appends a big-endian u64.
    pub fn u64(mut self, value: u64) -> Key {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a signed value in order-preserving form (8 bytes).
    pub fn i64(self, value: i64) -> Key {
        self.u64(order_i64(value))
    }

    /// Appends one byte.
    pub fn u8(mut self, value: u8) -> Key {
        self.0.push(value);
        self
    }

    /// Appends raw bytes.
    pub fn bytes(mut self, value: &[u8]) -> Key {
        self.0.extend_from_slice(value);
        self
    }

    /// Appends bytes preceded by their length (u32 BE), so a value is never a prefix of
    /// another value's key.
    pub fn sized(self, value: &[u8]) -> Key {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.bytes(&len.to_be_bytes()).bytes(value)
    }

    /// The finished key.
    pub fn build(self) -> Vec<u8> {
        self.0
    }

    /// The key built so far, borrowed.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such
/// key exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads parts back out of a key or fixed-layout value, reporting short input as corruption.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `bytes`, naming them `what` in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, what }
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ProjectionError> {
        self.take(n).map(|_| ())
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProjectionError> {
        if self.bytes.len() < n {
            return Err(ProjectionError::corrupt(format!(
                "{} is too short ({} bytes left, {n} needed)",
                self.what,
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, ProjectionError> {
        Ok(self.take(1)?[0])
    }

    /// The next big-endian u32.
    pub fn u32(&mut self) -> Result<u32, ProjectionError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(buf))
    }

    /// The next big-endian u64.
    pub fn u64(&mut self) -> Result<u64, ProjectionError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    /// The next order-preserving signed value.
    pub fn i64(&mut self) -> Result<i64, ProjectionError> {
        self.u64().map(unorder_i64)
    }

    /// The next raw UUID.
    pub fn uuid(&mut self) -> Result<Uuid, ProjectionError> {
        let mut buf = [0u8; 16];
        buf.copy_from_slice(self.take(16)?);
        Ok(Uuid::from_bytes(buf))
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// Turns a UUID read from a key into a typed id, reporting a non-v7 UUID as corruption.
pub fn typed<T: TryFrom<Uuid>>(uuid: Uuid, what: &'static str) -> Result<T, ProjectionError> {
    T::try_from(uuid)
        .map_err(|_| ProjectionError::corrupt(format!("{what} {uuid} in a key is not a UUID v7")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_order_is_preserved() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in values.windows(2) {
            assert!(order_i64(pair[0]) < order_i64(pair[1]));
            assert!(Key::new(1).i64(pair[0]).build() < Key::new(1).i64(pair[1]).build());
        }
        for v in values {
            assert_eq!(unorder_i64(order_i64(v)), v);
        }
    }

    #[test]
    fn prefix_end_and_reader() {
        assert_eq!(prefix_end(&[1, 2, 0xff]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        let key = Key::new(b'E').u64(9).i64(-3).u8(4).build();
        let mut r = Reader::new(&key, "test key");
        assert_eq!(r.u8().ok(), Some(b'E'));
        assert_eq!(r.u64().ok(), Some(9));
        assert_eq!(r.i64().ok(), Some(-3));
        assert_eq!(r.u8().ok(), Some(4));
        assert!(r.u8().is_err());
    }
}
