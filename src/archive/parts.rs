//! The create pipeline's stages one at a time, on one thread, each timed on its own: what one
//! backup's time is made of (benches/parts.rs). Only built with the `bench` feature; not API.
//!
//! The stages are the ones `create_archive` runs, with the same code: the walk, reading files
//! (`read`), the inner tar around them (`tar`), CRC32, the stored-block decision (`detect`),
//! deflate, sha256 of the output, securetar encryption (and its key derivation) and writing the
//! output with a final fsync. Times are the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so
//! other load on the machine slows them less than wall time; `write` is wall time (it waits).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::beneath::Tree;
use super::deflate::{looks_random, ChunkCompressor, SEGMENT, WINDOW};
use super::gzip::CHUNK;
use super::inner_tar::{write_chunked, write_inner_tar, Reporter, TarSink};
use super::walk::{walk, EntryKind};
use super::{ArchiveError, CancelToken, Excludes, IoContext};
use crate::securetar::Encryptor;

/// Seconds spent per stage, and the bytes in and out.
#[derive(Debug, Default, Clone)]
pub struct Breakdown {
    pub walk: f64,
    pub read: f64,
    pub tar: f64,
    pub crc: f64,
    pub detect: f64,
    pub deflate: f64,
    pub sha256: f64,
    pub key_derivation: f64,
    pub encrypt: f64,
    pub write: f64,
    /// File data read from the config dir.
    pub file_bytes: u64,
    /// The inner tar stream (what deflate sees).
    pub tar_bytes: u64,
    /// Of which in segments stored rather than deflated.
    pub stored_bytes: u64,
    pub deflated_bytes: u64,
    /// The deflate stream written (before encryption).
    pub compressed_bytes: u64,
}

/// CPU time of the calling thread, in seconds.
pub fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn timed<T>(slot: &mut f64, work: impl FnOnce() -> T) -> T {
    let start = thread_cpu();
    let value = work();
    *slot += thread_cpu() - start;
    value
}

/// Runs every stage over `config_dir` (Home Assistant's default excludes); the output goes to
/// `out` (a file that must not exist; removed at the end), encrypted when `password` is set.
/// `search` replaces the zlib-rs match search that `level` uses (to compare searches).
pub fn measure(
    config_dir: &Path,
    out: &Path,
    level: u32,
    search: Option<u32>,
    password: Option<&str>,
) -> Result<Breakdown, ArchiveError> {
    let mut parts = Breakdown::default();
    let listing = timed(&mut parts.walk, || {
        walk(config_dir, &Excludes::defaults(true))
    })?;
    let tree = Tree::open(config_dir).at(config_dir)?;

    // Reading alone: every file once, as the tar writer reads them.
    let mut buffer = vec![0u8; 256 * 1024];
    for entry in listing.entries.iter().filter(|e| e.kind == EntryKind::File) {
        let start = thread_cpu();
        let mut file = tree
            .open_entry(&entry.relative, libc::O_RDONLY | libc::O_NOFOLLOW)
            .at(&entry.full)?;
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => parts.file_bytes += n as u64,
                Err(e) => return Err(ArchiveError::io(&entry.full, e)),
            }
        }
        parts.read += thread_cpu() - start;
    }

    let sink = File::create_new(out).at(out)?;
    let compressor = match search {
        Some(search) => ChunkCompressor::with_search(level, search),
        None => ChunkCompressor::new(level),
    };
    let mut stages = Stages::new(compressor, sink, password, &mut parts).at(out)?;
    let start = thread_cpu();
    let mut reporter = Reporter::new(None, listing.file_bytes);
    let cancel = CancelToken::new();
    write_inner_tar(&mut stages, &tree, &listing.entries, &cancel, &mut reporter)?;
    stages.flush_chunk().at(out)?;
    let producer = thread_cpu() - start - stages.inside;
    let written = stages.finish().at(out);
    std::fs::remove_file(out).at(out)?;
    let mut parts = written?;
    // The tar writer's own time: framing, plus reading the files again.
    parts.tar = (producer - parts.read).max(0.0);
    Ok(parts)
}

/// The `Write` end the tar writer fills: cuts chunks as the pipeline does and runs each stage
/// on them in turn.
struct Stages<'a> {
    parts: &'a mut Breakdown,
    chunk: Vec<u8>,
    previous: Vec<u8>,
    compressor: ChunkCompressor,
    compressed: Vec<u8>,
    crc: crc32fast::Hasher,
    sha: Sha256,
    output: Output,
    /// CPU time spent in the stages, to take off the tar writer's.
    inside: f64,
}

enum Output {
    Plain(File),
    Encrypted(Encryptor<File>),
}

impl<'a> Stages<'a> {
    fn new(
        compressor: ChunkCompressor,
        file: File,
        password: Option<&str>,
        parts: &'a mut Breakdown,
    ) -> io::Result<Self> {
        let output = match password {
            None => Output::Plain(file),
            Some(password) => {
                let encryptor = timed(&mut parts.key_derivation, || {
                    Encryptor::new(file, password, 3)
                })?;
                Output::Encrypted(encryptor)
            }
        };
        Ok(Stages {
            parts,
            chunk: Vec::with_capacity(CHUNK),
            previous: Vec::new(),
            compressor,
            compressed: Vec::new(),
            crc: crc32fast::Hasher::new(),
            sha: Sha256::new(),
            output,
            inside: 0.0,
        })
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let start = thread_cpu();
        let parts = &mut *self.parts;
        let data = &self.chunk;
        parts.tar_bytes += data.len() as u64;
        timed(&mut parts.crc, || self.crc.update(data));
        // The decision alone; `compress` makes it again, so it is taken off deflate's time.
        let mut detect_spent = 0.0;
        let detect = timed(&mut detect_spent, || {
            data.chunks(SEGMENT)
                .map(|s| (s.len(), looks_random(s)))
                .collect::<Vec<_>>()
        });
        parts.detect += detect_spent;
        let stored: usize = detect.iter().filter(|(_, r)| *r).map(|(n, _)| n).sum();
        parts.stored_bytes += stored as u64;
        parts.deflated_bytes += (data.len() - stored) as u64;
        self.compressed.clear();
        let mut deflate = 0.0;
        timed(&mut deflate, || {
            self.compressor
                .compress(&self.previous, data, &mut self.compressed)
        })?;
        parts.deflate += (deflate - detect_spent).max(0.0);
        let out = &self.compressed;
        parts.compressed_bytes += out.len() as u64;
        timed(&mut parts.sha256, || self.sha.update(out));
        match &mut self.output {
            Output::Plain(file) => {
                let begin = Instant::now();
                file.write_all(out)?;
                parts.write += begin.elapsed().as_secs_f64();
            }
            Output::Encrypted(encryptor) => {
                // The encryptor writes through to the file: its time includes the write.
                timed(&mut parts.encrypt, || encryptor.write_all(out))?;
            }
        }
        self.previous = self.chunk[self.chunk.len().saturating_sub(WINDOW)..].to_vec();
        self.chunk.clear();
        self.inside += thread_cpu() - start;
        Ok(())
    }

    fn finish(self) -> io::Result<Breakdown> {
        let begin = Instant::now();
        let file = match self.output {
            Output::Plain(file) => file,
            Output::Encrypted(encryptor) => encryptor.finish()?.0,
        };
        file.sync_all()?;
        self.parts.write += begin.elapsed().as_secs_f64();
        let _ = self.crc.finalize();
        let _ = self.sha.finalize();
        Ok(self.parts.clone())
    }
}

impl TarSink for Stages<'_> {
    fn chunk(&mut self) -> &mut Vec<u8> {
        &mut self.chunk
    }

    fn chunk_full(&mut self) -> io::Result<()> {
        self.flush_chunk()
    }
}

impl Write for Stages<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_chunked(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
