//! Writes POSIX (ustar + PAX) tar headers.
//!
//! Python's `tarfile` and GNU tar both read this; names that do not fit ustar (longer than 100
//! bytes or not ASCII) go into a PAX extended header, the way Python's PAX format does it: as
//! UTF-8, or, when a name is not UTF-8, as raw bytes after a `hdrcharset=BINARY` record.

pub const BLOCK: usize = 512;
/// Python's `tarfile.RECORDSIZE`: a finished tar is padded to a multiple of it.
pub const RECORD: u64 = 20 * BLOCK as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    File,
    Directory,
    Symlink,
}

impl EntryType {
    fn flag(self) -> u8 {
        match self {
            EntryType::File => b'0',
            EntryType::Directory => b'5',
            EntryType::Symlink => b'2',
        }
    }
}

#[derive(Debug, Clone)]
pub struct HeaderFields<'a> {
    /// Raw bytes: a name from disk need not be UTF-8.
    pub name: &'a [u8],
    pub entry_type: EntryType,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub uid: u64,
    pub gid: u64,
    pub link_name: &'a [u8],
}

const NAME_LEN: usize = 100;
const SIZE_DIGITS: usize = 11;
const ID_DIGITS: usize = 7;

/// Encodes the header blocks for one entry: an optional PAX header (with its data) then the ustar
/// block.
pub fn encode(fields: &HeaderFields<'_>) -> Vec<u8> {
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    if needs_pax_string(fields.name, NAME_LEN) {
        pax.push(("path", fields.name.to_vec()));
    }
    if needs_pax_string(fields.link_name, NAME_LEN) {
        pax.push(("linkpath", fields.link_name.to_vec()));
    }
    if fields.mtime < 0 || fields.mtime >= 8i64.pow(SIZE_DIGITS as u32) {
        pax.push(("mtime", fields.mtime.to_string().into_bytes()));
    }
    if fields.uid >= 8u64.pow(ID_DIGITS as u32) {
        pax.push(("uid", fields.uid.to_string().into_bytes()));
    }
    if fields.gid >= 8u64.pow(ID_DIGITS as u32) {
        pax.push(("gid", fields.gid.to_string().into_bytes()));
    }
    // Python's tarfile marks a header whose values are not all UTF-8, first thing, and then
    // writes every value as raw bytes.
    if pax
        .iter()
        .any(|(_, value)| std::str::from_utf8(value).is_err())
    {
        pax.insert(0, ("hdrcharset", b"BINARY".to_vec()));
    }

    let mut out = Vec::with_capacity(BLOCK * 3);
    if !pax.is_empty() {
        let body = pax_records(&pax);
        let pax_header = ustar_block(&HeaderFields {
            name: b"././@PaxHeader",
            entry_type: EntryType::File,
            size: body.len() as u64,
            mode: 0o644,
            mtime: 0,
            uid: 0,
            gid: 0,
            link_name: b"",
        });
        let mut pax_header = pax_header;
        pax_header[156] = b'x';
        set_checksum(&mut pax_header);
        out.extend_from_slice(&pax_header);
        out.extend_from_slice(&body);
        pad_to_block(&mut out);
    }
    out.extend_from_slice(&ustar_block(fields));
    out
}

fn needs_pax_string(value: &[u8], limit: usize) -> bool {
    value.len() > limit || !value.is_ascii()
}

fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        // The length prefix counts itself, so grow it until it is consistent.
        let mut payload = format!(" {key}=").into_bytes();
        payload.extend_from_slice(value);
        payload.push(b'\n');
        let mut len = payload.len() + 1;
        while len.to_string().len() + payload.len() != len {
            len = len.to_string().len() + payload.len();
        }
        body.extend_from_slice(len.to_string().as_bytes());
        body.extend_from_slice(&payload);
    }
    body
}

fn ustar_block(fields: &HeaderFields<'_>) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    put_str(&mut block[0..100], fields.name);
    put_octal(&mut block[100..108], u64::from(fields.mode & 0o7777));
    put_octal(&mut block[108..116], clamp(fields.uid, ID_DIGITS));
    put_octal(&mut block[116..124], clamp(fields.gid, ID_DIGITS));
    let size = if fields.entry_type == EntryType::File {
        fields.size
    } else {
        0
    };
    if size >= 8u64.pow(SIZE_DIGITS as u32) {
        // GNU base-256: keeps the header one block long whatever the size, so the outer header
        // patched in after the data fits the placeholder. tarfile and GNU tar read it.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    } else {
        put_octal(&mut block[124..136], size);
    }
    put_octal(
        &mut block[136..148],
        clamp(u64::try_from(fields.mtime).unwrap_or(0), SIZE_DIGITS),
    );
    block[156] = fields.entry_type.flag();
    put_str(&mut block[157..257], fields.link_name);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    set_checksum(&mut block);
    block
}

fn clamp(value: u64, digits: usize) -> u64 {
    value.min(8u64.pow(digits as u32) - 1)
}

/// Copies an ASCII value that fits (longer or non-ASCII values are carried by PAX and only
/// truncated here, as Python's tarfile does).
fn put_str(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

pub fn pad_to_block(buf: &mut Vec<u8>) {
    let rem = buf.len() % BLOCK;
    if rem != 0 {
        buf.resize(buf.len() + BLOCK - rem, 0);
    }
}

/// Bytes of zero padding after `len` bytes of member data.
pub fn padding_after(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK - rem
    }
}

/// Bytes of the end-of-archive marker plus the padding to a full record, for a tar of `len` bytes.
pub fn trailer_len(len: u64) -> u64 {
    let with_end = len + 2 * BLOCK as u64;
    with_end.div_ceil(RECORD) * RECORD - len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_tar_crate() {
        let long = format!("data/{}/été.txt", "x".repeat(150));
        let mut buf = encode(&HeaderFields {
            name: long.as_bytes(),
            entry_type: EntryType::File,
            size: 3,
            mode: 0o640,
            mtime: 1_700_000_000,
            uid: 1000,
            gid: 1000,
            link_name: b"",
        });
        buf.extend_from_slice(b"abc");
        pad_to_block(&mut buf);
        buf.extend_from_slice(&encode(&HeaderFields {
            name: b"data/link",
            entry_type: EntryType::Symlink,
            size: 0,
            mode: 0o777,
            mtime: 1,
            uid: 0,
            gid: 0,
            link_name: b"target",
        }));
        buf.resize(buf.len() + trailer_len(buf.len() as u64) as usize, 0);
        assert_eq!(buf.len() as u64 % RECORD, 0);

        let mut archive = tar::Archive::new(&buf[..]);
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(first.path().unwrap().to_str().unwrap(), long);
        assert_eq!(first.header().mode().unwrap(), 0o640);
        assert_eq!(first.header().mtime().unwrap(), 1_700_000_000);
        let mut content = String::new();
        std::io::Read::read_to_string(&mut first, &mut content).unwrap();
        assert_eq!(content, "abc");
        let second = entries.next().unwrap().unwrap();
        assert_eq!(
            second.link_name().unwrap().unwrap().to_str().unwrap(),
            "target"
        );
        assert!(entries.next().is_none());
    }

    #[test]
    fn huge_sizes_keep_one_block() {
        let fields = |size| HeaderFields {
            name: b"homeassistant.tar.gz",
            entry_type: EntryType::File,
            size,
            mode: 0o644,
            mtime: 1,
            uid: 0,
            gid: 0,
            link_name: b"",
        };
        let huge = 9 * 1024 * 1024 * 1024u64;
        let header = encode(&fields(huge));
        assert_eq!(header.len(), encode(&fields(0)).len());
        let parsed = tar::Header::from_byte_slice(&header);
        assert_eq!(parsed.entry_size().unwrap(), huge);
    }

    #[test]
    fn pax_length_prefix_counts_itself() {
        let body = pax_records(&[("path", "a".repeat(95).into_bytes())]);
        let text = String::from_utf8(body).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }
}
