//! Property test over tar header fields and the extract path: whatever a header says, extract and
//! verify never panic, agree with each other, refuse with `InvalidBackup`, and write nothing
//! outside the destination. Seeded, so a failure names a mutant that can be replayed.

use std::fs;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::tar_header::{encode, pad_to_block, trailer_len, EntryType, HeaderFields, BLOCK};
use super::{extract_archive, verify_archive, ArchiveError, CancelToken};

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn fields<'a>(
    name: &'a [u8],
    entry_type: EntryType,
    size: u64,
    link: &'a [u8],
) -> HeaderFields<'a> {
    HeaderFields {
        name,
        entry_type,
        size,
        mode: 0o644,
        mtime: 1_700_000_000,
        uid: 1000,
        gid: 1000,
        link_name: link,
    }
}

/// A valid inner tar with every kind of member, and the offsets of its header blocks (PAX
/// headers included).
fn base_tar() -> (Vec<u8>, Vec<usize>) {
    let long = format!("data/{}.yaml", "n".repeat(120));
    let members: Vec<(HeaderFields<'_>, &[u8])> = vec![
        (fields(b"data/", EntryType::Directory, 0, b""), b""),
        (fields(b"data/a.txt", EntryType::File, 5, b""), b"hello"),
        (fields(b"data/sub/", EntryType::Directory, 0, b""), b""),
        (
            fields(b"data/sub/b.bin", EntryType::File, 700, b""),
            &[7u8; 700],
        ),
        (fields(b"data/link", EntryType::Symlink, 0, b"a.txt"), b""),
        (
            fields(b"data/out", EntryType::Symlink, 0, b"/etc/passwd"),
            b"",
        ),
        (fields(long.as_bytes(), EntryType::File, 4, b""), b"long"),
        (fields(b"data/caf\xe9", EntryType::File, 3, b""), b"raw"),
        (fields(b"data/hard", EntryType::File, 0, b"data/a.txt"), b""),
    ];
    let mut tar = Vec::new();
    let mut headers = Vec::new();
    for (header, data) in &members {
        let start = tar.len();
        let mut encoded = encode(header);
        if header.name == b"data/hard" {
            // tar_header writes no hard links; make this one by hand.
            let at = encoded.len() - BLOCK;
            encoded[at + 156] = b'1';
            encoded[at + 157..at + 167].copy_from_slice(b"data/a.txt");
            checksum(&mut encoded[at..]);
        }
        headers.extend((0..encoded.len() / BLOCK).map(|i| start + i * BLOCK));
        tar.extend_from_slice(&encoded);
        tar.extend_from_slice(data);
        pad_to_block(&mut tar);
    }
    tar.resize(tar.len() + trailer_len(tar.len() as u64) as usize, 0);
    (tar, headers)
}

fn checksum(block: &mut [u8]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block[..BLOCK].iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

const FIELDS: &[(&str, usize, usize)] = &[
    ("name", 0, 100),
    ("mode", 100, 108),
    ("uid", 108, 116),
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
    ("chksum", 148, 156),
    ("type", 156, 157),
    ("linkname", 157, 257),
    ("magic", 257, 265),
    ("prefix", 345, 500),
];

fn value(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = match rng.below(9) {
        0 => vec![0xff; len],
        1 => [vec![0x80], vec![0xff; len - 1]].concat(),
        2 => [vec![0x80], vec![0; len - 1]].concat(),
        3 => vec![b'7'; len],
        4 => vec![b' '; len],
        5 => vec![0; len],
        6 => rng.bytes(len),
        7 => (0..len).map(|_| b'0' + rng.below(8) as u8).collect(),
        _ => rng
            .pick(&[
                &b"/etc/passwd"[..],
                b"../../x",
                b"data/link/x",
                b"data/out/x",
                b"data",
                b"data/a.txt/x",
                b"x\x1b[31m",
                b"2",
                b"1",
                b"5",
                b"6",
            ])
            .to_vec(),
    };
    v.resize(len, 0);
    v
}

const PAX_RECORDS: &[&[u8]] = &[
    b"30 size=18446744073709551615\n",
    b"20 size=1000000000\n",
    b"39 mtime=-99999999999999999999999.5\n",
    b"16 mtime=1e9\n",
    b"21 hdrcharset=BINARY\n",
    b"20 path=/etc/passwd\n",
    b"21 path=data/../../x\n",
    b"19 path=data/out/x\n",
    b"18 linkpath=/etc\n",
    b"99 path=short\n",
    b"9 path=\n",
    b"25 GNU.sparse.major=1\n",
    b"not a record\n",
];

/// One mutant: header fields overwritten (checksum usually fixed), or a PAX record swapped in.
fn mutate(tar: &[u8], headers: &[usize], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut out = tar.to_vec();
    let at = *rng.pick(headers);
    let is_pax = out[at + 156] == b'x';
    if is_pax && rng.below(2) == 0 {
        let record = *rng.pick(PAX_RECORDS);
        let data = at + BLOCK;
        out[data..data + record.len()].copy_from_slice(record);
        return (
            out,
            format!("pax record {:?} at {at}", String::from_utf8_lossy(record)),
        );
    }
    let (field, lo, hi) = *rng.pick(FIELDS);
    let v = value(rng, hi - lo);
    out[at + lo..at + hi].copy_from_slice(&v);
    let fixed = rng.below(10) != 0 && field != "chksum";
    if fixed {
        checksum(&mut out[at..at + BLOCK]);
    }
    (
        out,
        format!("{field}={v:02x?} at {at} (checksum fixed: {fixed})"),
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn write_backup(path: &Path, inner_tar: &[u8]) {
    let json = br#"{"slug":"1a2b3c4d","name":"fuzz","date":"2025-01-01T00:00:00+00:00","compressed":true,"protected":false}"#;
    let inner = gzip(inner_tar);
    let mut out = encode(&fields(
        b"./backup.json",
        EntryType::File,
        json.len() as u64,
        b"",
    ));
    out.extend_from_slice(json);
    pad_to_block(&mut out);
    out.extend(encode(&fields(
        b"homeassistant.tar.gz",
        EntryType::File,
        inner.len() as u64,
        b"",
    )));
    out.extend_from_slice(&inner);
    pad_to_block(&mut out);
    out.resize(out.len() + trailer_len(out.len() as u64) as usize, 0);
    fs::write(path, out).unwrap();
}

type Outcome = Result<(), String>;

fn outcome<T>(label: &str, run: impl FnOnce() -> Result<T, ArchiveError>) -> Outcome {
    match catch_unwind(AssertUnwindSafe(run)) {
        Err(_) => panic!("{label}: panicked"),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e @ ArchiveError::InvalidBackup { .. })) => Err(e.to_string()),
        Ok(Err(e)) => panic!("{label}: refused with the wrong kind of error: {e:?}"),
    }
}

#[test]
fn any_header_is_clamped_or_refused_and_verify_agrees() {
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("b.tar");
    let (tar, headers) = base_tar();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut extracted, mut refused) = (0, 0);
    for i in 0..1500 {
        let (mut mutant, mut how) = mutate(&tar, &headers, &mut rng);
        if rng.below(4) == 0 {
            let (again, more) = mutate(&mutant, &headers, &mut rng);
            mutant = again;
            how = format!("{how}; {more}");
        }
        let label = format!("mutant {i}: {how}");
        write_backup(&backup, &mutant);
        let dest = work.path().join("dest");
        let cancel = CancelToken::new();
        let verified = outcome(&label, || verify_archive(&backup, None, &cancel));
        let got = outcome(&label, || extract_archive(&backup, &dest, &cancel));
        assert_eq!(verified, got, "{label}: verify and extract disagree");
        assert!(
            got.as_ref().err().is_none_or(|m| !m.contains('\x1b')),
            "{label}: raw bytes in {got:?}"
        );
        if got.is_ok() {
            extracted += 1;
            fs::remove_dir_all(&dest).unwrap();
        } else {
            refused += 1;
        }
        let left: Vec<_> = fs::read_dir(work.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{label}: left files beside the backup");
    }
    assert!(extracted > 300 && refused > 300, "{extracted} / {refused}");
}

#[test]
fn extreme_mtimes_are_clamped() {
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("b.tar");
    for (i, mtime) in [
        vec![0xff; 12],
        [vec![0x80], vec![0xff; 11]].concat(),
        [vec![0xff], vec![0; 11]].concat(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut tar = encode(&fields(b"data/a", EntryType::File, 1, b""));
        tar[136..148].copy_from_slice(&mtime);
        checksum(&mut tar);
        tar.push(b'a');
        pad_to_block(&mut tar);
        tar.resize(tar.len() + 1024, 0);
        write_backup(&backup, &tar);
        let dest = work.path().join(format!("dest{i}"));
        extract_archive(&backup, &dest, &CancelToken::new()).unwrap();
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"a");
    }
}

#[test]
fn oversized_extension_headers_are_refused_before_reading() {
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("b.tar");
    let mut tar = encode(&fields(b"././@PaxHeader", EntryType::File, 0, b""));
    tar[156] = b'x';
    // 8 GiB of PAX records claimed: refused from the header alone.
    tar[124..136].copy_from_slice(b"77777777777\0");
    checksum(&mut tar);
    tar.resize(tar.len() + 4096, 0);
    write_backup(&backup, &tar);
    let err = verify_archive(&backup, None, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("extended header claims"), "{err}");
}
