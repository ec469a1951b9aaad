//! Reads tar streams (ustar, PAX and GNU long names), the way Python's `tarfile` reads them.
//!
//! Every header field is parsed here, once, into plain values with no way to overflow or panic:
//! numbers may be octal or base-256 (negative included), PAX records override the ustar fields
//! (`path`, `linkpath`, `size`, `mtime`), names and link targets stay raw bytes (Python writes
//! names that are not UTF-8 as `hdrcharset=BINARY`), and extension headers are capped in size so
//! a small compressed archive cannot make us hold gigabytes in memory.

use std::io::{self, Read, Seek, SeekFrom};

use super::tar_header::BLOCK;

/// Largest PAX or GNU long-name payload accepted: far above any real path (PATH_MAX is 4096).
const MAX_EXTENSION: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// The stream is not a tar we can read: a bad checksum, field or record, or truncation.
    #[error("{0}")]
    Invalid(String),
    /// Reading the stream itself failed (the file, the decompressor or the decryptor).
    #[error(transparent)]
    Read(#[from] io::Error),
}

fn invalid(reason: impl Into<String>) -> TarError {
    TarError::Invalid(reason.into())
}

/// A member's type, from its header's type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    CharDevice,
    BlockDevice,
    Fifo,
    /// GNU sparse files (type `S` or PAX `GNU.sparse.*` records).
    Sparse,
    /// Anything else, with its type byte.
    Other(u8),
}

#[derive(Debug, Clone)]
pub struct Member {
    /// As stored: raw bytes, PAX `path` or GNU long name applied, never decoded.
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Bytes of data that follow the header.
    pub size: u64,
    /// Permission bits only (`& 0o7777`).
    pub mode: u32,
    /// Seconds since the epoch, PAX `mtime` (integer part) when present; may be negative.
    pub mtime: i64,
    /// Offset of the member's data from the start of the stream.
    pub data_offset: u64,
}

/// What extension headers (PAX `x`, GNU `L`/`K`) say about the member that follows them.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
    sparse: bool,
    any: bool,
}

type SkipFn<R> = fn(&mut R, u64) -> io::Result<()>;

pub struct TarReader<R> {
    inner: R,
    /// Bytes consumed from `inner` so far.
    pos: u64,
    /// Unread data (and padding) of the current member, skipped before the next header.
    remaining: u64,
    padding: u64,
    skip: SkipFn<R>,
}

fn skip_by_reading<R: Read>(reader: &mut R, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut reader.by_ref().take(n), &mut io::sink())?;
    if copied < n {
        return Err(truncated());
    }
    Ok(())
}

fn skip_by_seeking<R: Read + Seek>(reader: &mut R, n: u64) -> io::Result<()> {
    let n = i64::try_from(n).map_err(|_| truncated())?;
    reader.seek(SeekFrom::Current(n)).map(|_| ())
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the tar stream ends early")
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
            skip: skip_by_reading::<R>,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next member, or `None` at the end-of-archive marker or a clean end of stream.
    pub fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        let mut pending = Pending::default();
        loop {
            self.skip_rest()?;
            let mut block = [0u8; BLOCK];
            if !self.read_block(&mut block)? {
                if pending.any {
                    return Err(invalid("an extended header is not followed by its member"));
                }
                return Ok(None);
            }
            if block.iter().all(|&b| b == 0) {
                if pending.any {
                    return Err(invalid("an extended header is not followed by its member"));
                }
                return Ok(None);
            }
            let header = parse_header(&block)?;
            self.remaining = pending.size.unwrap_or(header.size);
            self.padding = padding(self.remaining);
            match header.type_byte {
                b'x' | b'g' | b'L' | b'K' => {
                    let data = self.read_extension()?;
                    match header.type_byte {
                        b'x' => apply_pax(&data, &mut pending)?,
                        // Global PAX records describe the writer, not a member: ignored, as
                        // GNU tar's listing and the tar crate ignore them.
                        b'g' => {}
                        b'L' => pending.path = Some(until_nul(&data).to_vec()),
                        _ => pending.link = Some(until_nul(&data).to_vec()),
                    }
                    if header.type_byte != b'g' {
                        pending.any = true;
                    }
                }
                _ => return Ok(Some(self.member(header, pending))),
            }
        }
    }

    fn member(&self, header: Header, pending: Pending) -> Member {
        let mut kind = match header.type_byte {
            b'0' | b'\0' | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Directory,
            b'6' => Kind::Fifo,
            b'S' => Kind::Sparse,
            other => Kind::Other(other),
        };
        if pending.sparse {
            kind = Kind::Sparse;
        }
        let name = pending.path.unwrap_or(header.name);
        // Old (v7) tar marks directories only by a trailing slash; tarfile reads them so.
        if header.type_byte == b'\0' && name.ends_with(b"/") {
            kind = Kind::Directory;
        }
        Member {
            name,
            link: pending.link.unwrap_or(header.link),
            kind,
            size: self.remaining,
            mode: header.mode,
            mtime: pending.mtime.unwrap_or(header.mtime),
            data_offset: self.pos,
        }
    }

    /// Reads the current member's data: an extension header's payload, capped.
    fn read_extension(&mut self) -> Result<Vec<u8>, TarError> {
        if self.remaining > MAX_EXTENSION {
            return Err(invalid(format!(
                "an extended header claims {} bytes (at most {MAX_EXTENSION} accepted)",
                self.remaining
            )));
        }
        let mut data = Vec::with_capacity(self.remaining as usize);
        self.data().read_to_end(&mut data)?;
        Ok(data)
    }

    /// The unread data of the current member.
    pub fn data(&mut self) -> MemberData<'_, R> {
        MemberData { reader: self }
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        if n > 0 {
            (self.skip)(&mut self.inner, n)?;
            self.pos += n;
            self.remaining = 0;
            self.padding = 0;
        }
        Ok(())
    }

    /// Fills `block`; false at a clean end of stream, an error for a partial block.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool, TarError> {
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += filled as u64;
        match filled {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(invalid("truncated: the tar stream ends inside a header")),
        }
    }
}

impl<R: Read + Seek> TarReader<R> {
    /// A reader that seeks over member data it does not read (for the outer tar, a file).
    pub fn seekable(inner: R) -> Self {
        TarReader {
            skip: skip_by_seeking::<R>,
            ..TarReader::new(inner)
        }
    }
}

/// `Read` over one member's data; ends exactly at the member's size, and reports a stream that
/// ends before as an `UnexpectedEof` error.
pub struct MemberData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = &mut *self.reader;
        if reader.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(reader.remaining).unwrap_or(usize::MAX));
        let n = reader.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(truncated());
        }
        reader.remaining -= n as u64;
        reader.pos += n as u64;
        Ok(n)
    }
}

struct Header {
    name: Vec<u8>,
    link: Vec<u8>,
    type_byte: u8,
    size: u64,
    mode: u32,
    mtime: i64,
}

fn parse_header(block: &[u8; BLOCK]) -> Result<Header, TarError> {
    let stored = number(&block[148..156])
        .map_err(|_| invalid("a tar header has an unreadable checksum field"))?;
    // tarfile accepts both the unsigned sum and the signed one some old writers computed.
    let unsigned: i128 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i128::from(b)
            }
        })
        .sum();
    let signed: i128 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i128::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && stored != signed {
        return Err(invalid("a tar header does not match its checksum"));
    }
    let field = |what: &str, range: std::ops::Range<usize>| {
        number(&block[range])
            .map_err(|_| invalid(format!("a tar header has an invalid {what} field")))
    };
    let size = field("size", 124..136)?;
    let size = u64::try_from(size).map_err(|_| invalid("a tar header has a negative size"))?;
    let mode = field("mode", 100..108)?;
    let mtime = field("mtime", 136..148)?;
    let mut name = until_nul(&block[0..100]).to_vec();
    // POSIX ustar splits long names: the prefix field holds the leading directories.
    if &block[257..263] == b"ustar\0" {
        let prefix = until_nul(&block[345..500]);
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
    }
    Ok(Header {
        name,
        link: until_nul(&block[157..257]).to_vec(),
        type_byte: block[156],
        size,
        // Only the permission bits mean anything; wider values are cut, never an error.
        mode: (mode & 0o7777) as u32,
        mtime: clamp_i64(mtime),
    })
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// A numeric header field: octal text (spaces and NULs around it), or base-256 when the first
/// byte is 0x80 (positive) or 0xff (negative), as tarfile and GNU tar write large values.
fn number(field: &[u8]) -> Result<i128, ()> {
    match field.first() {
        Some(&marker @ (0x80 | 0xff)) => {
            // At most 11 value bytes (88 bits): fits an i128 without overflow.
            let mut n: i128 = 0;
            for &b in &field[1..] {
                n = (n << 8) | i128::from(b);
            }
            if marker == 0xff {
                n -= 1i128 << (8 * (field.len() - 1));
            }
            Ok(n)
        }
        _ => {
            let text = until_nul(field);
            let text = std::str::from_utf8(text).map_err(|_| ())?.trim();
            if text.is_empty() {
                return Ok(0);
            }
            i128::from_str_radix(text, 8).map_err(|_| ())
        }
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Applies the records of a PAX extended header (`"<len> <key>=<value>\n"`, the length counting
/// the whole record) to the member that follows.
fn apply_pax(data: &[u8], pending: &mut Pending) -> Result<(), TarError> {
    let malformed = || invalid("a PAX extended header has a malformed record");
    let mut rest = data;
    // Some writers pad the payload with NULs.
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(malformed)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(malformed());
        }
        let record = &rest[space + 1..len - 1];
        rest = &rest[len..];
        let equals = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(malformed)?;
        let (key, value) = (&record[..equals], &record[equals + 1..]);
        match key {
            b"path" => pending.path = Some(value.to_vec()),
            b"linkpath" => pending.link = Some(value.to_vec()),
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| invalid("a PAX header has an invalid size"))?;
                pending.size = Some(size);
            }
            b"mtime" => pending.mtime = Some(pax_time(value)?),
            k if k.starts_with(b"GNU.sparse.") => pending.sparse = true,
            _ => {}
        }
    }
    Ok(())
}

/// A PAX time (`[-]seconds[.fraction]`): its whole seconds, rounded down, clamped to i64.
fn pax_time(value: &[u8]) -> Result<i64, TarError> {
    let bad = || invalid("a PAX header has an invalid mtime");
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let (negative, digits) = match whole.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, whole),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if digits.is_empty() || !all_digits(digits) || !all_digits(fraction) {
        return Err(bad());
    }
    // Digits only: the parse can fail only by overflow, which clamps.
    let seconds = digits.parse::<i64>().unwrap_or(i64::MAX);
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    Ok(match (negative, has_fraction) {
        (false, _) => seconds,
        (true, false) => -seconds,
        (true, true) => (-seconds).saturating_sub(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_encoding() {
        assert_eq!(number(b"0000644\0"), Ok(0o644));
        assert_eq!(number(b"  644 \0\0"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert_eq!(number(&[0xff; 12]), Ok(-1));
        assert_eq!(number(&[0xff; 8]), Ok(-1));
        assert!(number(b"12x4\0\0\0\0").is_err());
        assert!(number(&[0xc3, 0xa9, 0, 0]).is_err());
    }

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"1700000000.5").unwrap(), 1_700_000_000);
        assert_eq!(pax_time(b"-1.5").unwrap(), -2);
        assert_eq!(pax_time(b"-3").unwrap(), -3);
        assert_eq!(pax_time(b"99999999999999999999999").unwrap(), i64::MAX);
        assert!(pax_time(b"1e9").is_err());
        assert!(pax_time(b"").is_err());
    }

    #[test]
    fn pax_records() {
        let mut pending = Pending::default();
        apply_pax(
            b"21 hdrcharset=BINARY\n12 path=a\xffb\n13 size=1234\n",
            &mut pending,
        )
        .unwrap();
        assert_eq!(pending.path.as_deref(), Some(&b"a\xffb"[..]));
        assert_eq!(pending.size, Some(1234));
        for bad in [
            &b"5 path=a\n"[..],
            b"99 path=a\n",
            b"x path=a\n",
            b"9 patha\n\n",
        ] {
            assert!(apply_pax(bad, &mut Pending::default()).is_err(), "{bad:?}");
        }
    }
}
