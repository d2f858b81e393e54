//! BARE primitives (§3.5) and the 2-byte version prefix (§3.6).
//!
//! Multi-byte fixed-width numbers are little-endian. `uint` is unsigned LEB128 of at most 10
//! bytes; it is always written in its shortest form and read in any form that fits 64 bits.
//! `bool` and the presence byte of an `optional` must be 0 or 1. A message must use every byte.

use super::error::CodecError;

/// Reads one BARE message.
#[derive(Debug)]
pub(crate) struct BareReader<'a> {
    input: &'a [u8],
    /// Index of the next unread byte; never beyond `input.len()`.
    pos: usize,
}

impl<'a> BareReader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        BareReader { input, pos: 0 }
    }

    fn error(&self, reason: &'static str) -> CodecError {
        CodecError::Bare {
            offset: self.pos,
            reason,
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let slice = self
            .pos
            .checked_add(len)
            .and_then(|end| self.input.get(self.pos..end))
            .ok_or_else(|| self.error("truncated input"))?;
        self.pos += len;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or_else(|| self.error("truncated input"))?;
        self.pos += 1;
        Ok(b)
    }

    /// The vbare version prefix: a little-endian `u16`.
    pub(crate) fn version(&mut self) -> Result<u16, CodecError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    /// An unsigned LEB128 integer of at most 10 bytes.
    pub(crate) fn uint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(self.error("uint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("uint longer than 10 bytes"))
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, CodecError> {
        let bytes = self.take(8)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(le))
    }

    /// A strict boolean.
    pub(crate) fn bool(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.pos -= 1;
                Err(self.error("bool must be 0 or 1"))
            }
        }
    }

    /// The presence byte of an `optional<T>`.
    pub(crate) fn present(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                self.pos -= 1;
                Err(self.error("optional tag must be 0 or 1"))
            }
        }
    }

    /// Length-prefixed bytes.
    pub(crate) fn data(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.uint()?;
        let len = usize::try_from(len).map_err(|_| self.error("truncated input"))?;
        self.take(len)
    }

    /// A length-prefixed UTF-8 string.
    pub(crate) fn str(&mut self) -> Result<String, CodecError> {
        let start = self.pos;
        let bytes = self.data()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::Bare {
                offset: start,
                reason: "string is not valid utf-8",
            })
    }

    /// An `optional<str>`.
    pub(crate) fn optional_str(&mut self) -> Result<Option<String>, CodecError> {
        self.present()?.then(|| self.str()).transpose()
    }

    /// An `optional<data>`.
    pub(crate) fn optional_data(&mut self) -> Result<Option<&'a [u8]>, CodecError> {
        self.present()?.then(|| self.data()).transpose()
    }

    /// An `optional<uint>`.
    pub(crate) fn optional_uint(&mut self) -> Result<Option<u64>, CodecError> {
        self.present()?.then(|| self.uint()).transpose()
    }

    /// The offset of the next unread byte, for error messages.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// Ends the message: every byte must have been read.
    pub(crate) fn finish(self) -> Result<(), CodecError> {
        match self.input.len() - self.pos {
            0 => Ok(()),
            count => Err(CodecError::TrailingBytes { count }),
        }
    }
}

/// Writes one BARE message, starting with its version prefix.
#[derive(Debug)]
pub(crate) struct BareWriter {
    out: Vec<u8>,
}

impl BareWriter {
    pub(crate) fn new(version: u16) -> Self {
        BareWriter {
            out: version.to_le_bytes().to_vec(),
        }
    }

    /// An unsigned LEB128 integer in its shortest form.
    pub(crate) fn uint(&mut self, mut n: u64) {
        while n >= 0x80 {
            // invariant: the mask keeps 7 bits, which fit in a u8.
            self.out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        // invariant: n < 0x80 here.
        self.out.push(n as u8);
    }

    pub(crate) fn u64(&mut self, n: u64) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    pub(crate) fn bool(&mut self, b: bool) {
        self.out.push(u8::from(b));
    }

    pub(crate) fn data(&mut self, bytes: &[u8]) {
        self.uint(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        self.out.extend_from_slice(bytes);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.data(s.as_bytes());
    }

    /// The presence byte of an `optional<T>`; the caller writes `T` after `true`.
    pub(crate) fn present(&mut self, present: bool) {
        self.bool(present);
    }

    pub(crate) fn optional_str(&mut self, s: Option<&str>) {
        self.present(s.is_some());
        if let Some(s) = s {
            self.str(s);
        }
    }

    pub(crate) fn optional_data(&mut self, bytes: Option<&[u8]>) {
        self.present(bytes.is_some());
        if let Some(bytes) = bytes {
            self.data(bytes);
        }
    }

    pub(crate) fn optional_uint(&mut self, n: Option<u64>) {
        self.present(n.is_some());
        if let Some(n) = n {
            self.uint(n);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint_bytes(n: u64) -> Vec<u8> {
        let mut w = BareWriter::new(0);
        w.uint(n);
        w.finish()[2..].to_vec()
    }

    #[test]
    fn uints_are_minimal_leb128() {
        assert_eq!(uint_bytes(0), [0x00]);
        assert_eq!(uint_bytes(127), [0x7f]);
        assert_eq!(uint_bytes(128), [0x80, 0x01]);
        assert_eq!(uint_bytes(300), [0xac, 0x02]);
        assert_eq!(uint_bytes(u64::MAX).len(), 10);
        for n in [0, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let bytes = uint_bytes(n);
            let mut r = BareReader::new(&bytes);
            assert_eq!(r.uint().unwrap(), n);
            r.finish().unwrap();
        }
    }

    #[test]
    fn uint_limits() {
        // Non-minimal but in range: accepted.
        assert_eq!(BareReader::new(&[0x80, 0x00]).uint().unwrap(), 0);
        // Eleven bytes, or a tenth byte beyond bit 63: rejected.
        assert!(BareReader::new(&[0x80; 11]).uint().is_err());
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(BareReader::new(&over).uint().is_err());
        assert!(BareReader::new(&[0x80]).uint().is_err());
    }

    #[test]
    fn strict_bools_and_optionals() {
        assert!(BareReader::new(&[2]).bool().is_err());
        assert!(BareReader::new(&[2]).present().is_err());
        assert!(BareReader::new(&[1]).bool().unwrap());
        assert_eq!(BareReader::new(&[0]).optional_str().unwrap(), None);
        assert_eq!(
            BareReader::new(&[1, 1, b'q'])
                .optional_str()
                .unwrap()
                .as_deref(),
            Some("q")
        );
    }

    #[test]
    fn strings_data_and_trailing_bytes() {
        assert!(BareReader::new(&[2, 0xc3, 0x28]).str().is_err());
        assert!(BareReader::new(&[5, 1]).data().is_err());
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(BareReader::new(&huge).data().is_err());
        let mut r = BareReader::new(&[4, 0, 9]);
        assert_eq!(r.version().unwrap(), 4);
        assert!(matches!(
            r.finish(),
            Err(CodecError::TrailingBytes { count: 1 })
        ));
        let mut w = BareWriter::new(4);
        w.u64(1000);
        assert_eq!(w.finish(), [4, 0, 0xe8, 3, 0, 0, 0, 0, 0, 0]);
    }
}
