//! Compresses one chunk of the tar stream into raw deflate blocks that can be concatenated.
//!
//! Each chunk is primed with the 32 KiB that precede it, so splitting the stream across threads
//! costs almost nothing in ratio (pigz does the same). Segments whose bytes look random (already
//! compressed media, encrypted files) are written as stored blocks: deflate cannot shrink them, and
//! trying is the slowest thing zlib does.

use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Method, Status, Strategy};

/// Size of deflate's window: the dictionary a chunk is primed with.
pub const WINDOW: usize = 32 * 1024;
/// Unit of the compressible / incompressible decision.
pub const SEGMENT: usize = 64 * 1024;
/// Largest payload of one stored block.
const STORED_MAX: usize = 65_535;
/// Order-0 entropy (bits per byte) above which a segment is stored: at 7.98 Huffman coding alone
/// could save at most 0.25%, and repeated strings in such data are vanishingly rare.
const STORED_ENTROPY: f64 = 7.98;

/// An empty final stored block: ends the deflate stream after the last chunk.
pub const FINAL_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

/// The zlib-rs level whose match search a habackup level uses. Level 6 (the default, and Home
/// Assistant's) searches as zlib-rs's level 5 does: 32 candidates and a 32-byte "good enough"
/// match instead of 128 and 128. On Home Assistant's data that deflates about 20 % faster for
/// 0.2-1.2 % more compressed bytes, and a backup stays no larger than Home Assistant's own
/// level-6 one (benches/README.md, "Deflate search"). Every other level is zlib-rs's own.
fn search_level(level: u32) -> u32 {
    if level == 6 {
        5
    } else {
        level
    }
}

/// zlib's `memLevel`: 9 (zlib's default is 8) doubles the symbols gathered per deflate block, so
/// the Huffman trees are built half as often; 2-4 % faster on Home Assistant's data for the same
/// size, at 128 KiB more per compressing thread.
const MEM_LEVEL: i32 = 9;

pub struct ChunkCompressor {
    level: u32,
    compress: Deflate,
}

impl ChunkCompressor {
    pub fn new(level: u32) -> Self {
        Self::with_search(level, search_level(level))
    }

    /// `level`'s stored-block and dictionary behaviour with zlib-rs's match search of level
    /// `search`: benches/parts.rs compares searches with it.
    pub(crate) fn with_search(level: u32, search: u32) -> Self {
        ChunkCompressor {
            level,
            compress: Deflate::new_with_config(DeflateConfig {
                level: search as i32,
                method: Method::Deflated,
                // Negative: raw deflate, no zlib header.
                window_bits: -15,
                mem_level: MEM_LEVEL,
                strategy: Strategy::Default,
            }),
        }
    }

    /// Appends to `out` the deflate blocks for `data`; `before` is the stream's bytes just before
    /// `data` (at most one window, empty at the start). The output ends on a byte boundary and
    /// holds no final block.
    pub fn compress(
        &mut self,
        before: &[u8],
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        if self.level == 0 {
            write_stored(data, out);
            return Ok(());
        }
        let random: Vec<bool> = data.chunks(SEGMENT).map(looks_random).collect();
        let mut first = 0;
        while first < random.len() {
            let mut last = first + 1;
            while last < random.len() && random[last] == random[first] {
                last += 1;
            }
            let (start, end) = (first * SEGMENT, (last * SEGMENT).min(data.len()));
            if random[first] {
                write_stored(&data[start..end], out);
            } else {
                let dictionary = window_before(before, data, start);
                self.deflate_run(&dictionary, &data[start..end], out)?;
            }
            first = last;
        }
        Ok(())
    }

    fn deflate_run(
        &mut self,
        dictionary: &[u8],
        run: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.compress.reset();
        if !dictionary.is_empty() {
            self.compress
                .set_dictionary(dictionary)
                .map_err(|e| std::io::Error::other(format!("deflate dictionary refused: {e:?}")))?;
        }
        // deflateBound-like headroom so the whole run normally completes in one call.
        out.reserve(run.len() + run.len() / 8 + 1024);
        let mut input = run;
        loop {
            let (before_in, before_out) = (self.compress.total_in(), self.compress.total_out());
            let status = self
                .compress
                .compress_uninit(input, out.spare_capacity_mut(), DeflateFlush::SyncFlush)
                .map_err(|e| std::io::Error::other(format!("deflate failed: {e:?}")))?;
            let produced = (self.compress.total_out() - before_out) as usize;
            // SAFETY: `compress_uninit` wrote `produced` bytes at the start of the spare capacity.
            unsafe { out.set_len(out.len() + produced) };
            let used = (self.compress.total_in() - before_in) as usize;
            input = &input[used..];
            // zlib's contract: a sync flush is complete once it returns with output space left.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
            if status == Status::StreamEnd {
                return Err(std::io::Error::other("deflate ended early"));
            }
            out.reserve(out.capacity().max(64 * 1024));
        }
    }
}

/// The window of stream bytes that precede `data[start..]`.
fn window_before(before: &[u8], data: &[u8], start: usize) -> Vec<u8> {
    let from_data = &data[start.saturating_sub(WINDOW)..start];
    let need_before = WINDOW - from_data.len();
    let from_before = &before[before.len().saturating_sub(need_before)..];
    let mut window = Vec::with_capacity(from_before.len() + from_data.len());
    window.extend_from_slice(from_before);
    window.extend_from_slice(from_data);
    window
}

fn write_stored(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / STORED_MAX * 5 + 5);
    for block in data.chunks(STORED_MAX) {
        // BFINAL=0, BTYPE=00, padded to the byte boundary the previous block left us on.
        out.push(0x00);
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

/// Bytes judged from each [`SAMPLE_STRIDE`] of a segment: a quarter of it. Judging every byte
/// cost as much as hashing the whole backup; a quarter gives nearly the same verdicts on media,
/// text and databases (1.1 MB of 1035 differ on the db bench set; the estimate is corrected for
/// its smaller sample below). A wrong verdict only costs speed or a few bytes, never data.
const SAMPLE: usize = 4 * 1024;
const SAMPLE_STRIDE: usize = 16 * 1024;

pub fn looks_random(segment: &[u8]) -> bool {
    // Short tails are cheap to deflate and too small to judge.
    if segment.len() < 4096 {
        return false;
    }
    let mut counts = [[0u32; 256]; 4];
    let mut total = 0usize;
    for stride in segment.chunks(SAMPLE_STRIDE) {
        let sample = &stride[..stride.len().min(SAMPLE)];
        total += sample.len();
        let mut quads = sample.chunks_exact(4);
        for q in &mut quads {
            counts[0][q[0] as usize] += 1;
            counts[1][q[1] as usize] += 1;
            counts[2][q[2] as usize] += 1;
            counts[3][q[3] as usize] += 1;
        }
        for &b in quads.remainder() {
            counts[0][b as usize] += 1;
        }
    }
    let total = total as f64;
    let mut entropy = 0.0;
    let mut seen = 0u32;
    #[allow(clippy::needless_range_loop)] // four lanes are summed per byte value
    for i in 0..256 {
        let c: u32 = counts.iter().map(|lane| lane[i]).sum();
        if c > 0 {
            seen += 1;
            let p = f64::from(c) / total;
            entropy -= p * p.log2();
        }
    }
    // Miller-Madow: a sample's entropy reads low by about (values seen - 1) / 2N nats; adding it
    // back judges 16 KiB as a whole 64 KiB segment would be judged.
    entropy += f64::from(seen.saturating_sub(1)) / (2.0 * total * std::f64::consts::LN_2);
    entropy >= STORED_ENTROPY
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate_all(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut stream: Vec<u8> = parts.concat();
        stream.extend_from_slice(&FINAL_BLOCK);
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&stream[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn chunks_concatenate_to_the_original() {
        let text: Vec<u8> = (0..300_000)
            .flat_map(|i| format!("{{\"state\": {}}}\n", i % 977).into_bytes())
            .collect();
        let mut data = text.clone();
        data.extend(pseudo_random(200_000, 7));
        data.extend_from_slice(&text[..50_000]);
        let mut compressor = ChunkCompressor::new(6);
        let mut parts = Vec::new();
        let mut prev: &[u8] = &[];
        for chunk in data.chunks(100_000) {
            let mut out = Vec::new();
            compressor.compress(prev, chunk, &mut out).unwrap();
            parts.push(out);
            prev = chunk;
        }
        assert_eq!(inflate_all(&parts), data);
    }

    #[test]
    fn segments_are_judged_from_a_sample() {
        // What judging every byte decides, for comparison.
        fn whole(segment: &[u8]) -> bool {
            let mut counts = [0u32; 256];
            segment.iter().for_each(|&b| counts[usize::from(b)] += 1);
            let total = segment.len() as f64;
            let entropy: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| -(f64::from(c) / total) * (f64::from(c) / total).log2())
                .sum();
            entropy >= STORED_ENTROPY
        }
        // Numbers as text, and that text deflated: bytes as dense as a photo's.
        let numbers: Vec<u8> = pseudo_random(600_000, 3)
            .chunks(3)
            .flat_map(|c| {
                format!("{},{}\n", c[0], u16::from(c[1]) * 7 + u16::from(c[2])).into_bytes()
            })
            .collect();
        let mut deflated = Vec::new();
        let mut encoder =
            flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::new(9));
        std::io::Write::write_all(&mut encoder, &numbers).unwrap();
        encoder.finish().unwrap();
        let random = pseudo_random(2 * SEGMENT, 11);
        let cases: [(&str, &[u8]); 4] = [
            ("random", &random[..SEGMENT]),
            ("deflated text", &deflated[..SEGMENT]),
            ("text", &numbers[..SEGMENT]),
            ("zeros", &[0u8; SEGMENT]),
        ];
        for (what, segment) in cases {
            assert_eq!(looks_random(segment), whole(segment), "{what}");
        }
        assert!(looks_random(&random[..SEGMENT]) && looks_random(&deflated[..SEGMENT]));
        assert!(!looks_random(&numbers[..SEGMENT]));
        // Corrected for its size, a short random tail is judged random too (judging every byte
        // without the correction read 5000 random bytes as 7.96 bits each).
        assert!(looks_random(&random[..5000]) && !whole(&random[..5000]));
        // A segment random only outside its sample is deflated: still a correct stream, only a
        // slower one.
        let mut mixed = random[..SEGMENT].to_vec();
        for stride in mixed.chunks_mut(SAMPLE_STRIDE) {
            stride[..SAMPLE].copy_from_slice(&numbers[..SAMPLE]);
        }
        assert!(!looks_random(&mixed));
    }

    #[test]
    fn random_data_is_stored_and_text_compressed() {
        let random = pseudo_random(3 * SEGMENT, 42);
        let mut out = Vec::new();
        ChunkCompressor::new(6)
            .compress(&[], &random, &mut out)
            .unwrap();
        assert!(out.len() < random.len() + 32);
        assert_eq!(inflate_all(&[out]), random);

        let text = "sensor.temperature 21.5\n".repeat(10_000).into_bytes();
        let mut out = Vec::new();
        ChunkCompressor::new(6)
            .compress(&[], &text, &mut out)
            .unwrap();
        assert!(out.len() < text.len() / 20);
    }

    #[test]
    fn level_zero_and_empty_input() {
        let mut out = Vec::new();
        ChunkCompressor::new(0)
            .compress(&[], b"hello", &mut out)
            .unwrap();
        ChunkCompressor::new(6)
            .compress(&[], b"", &mut out)
            .unwrap();
        assert_eq!(inflate_all(&[out]), b"hello");
    }
}
