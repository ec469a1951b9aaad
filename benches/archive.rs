//! Criterion benchmarks of the archive engine on a small, deterministic config dir.
//!
//! `cargo bench --bench archive` builds ~64 MiB of half compressible JSON text, half
//! incompressible bytes in a tempdir, then times `create_archive` and `extract_archive` on it.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use habackup::archive::{create_archive, extract_archive, CancelToken, CreateOptions};

const MIB: usize = 1 << 20;

/// xorshift64*: deterministic and fast; its output does not deflate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
        out
    }

    /// Recorder/registry-like JSON lines: repetitive keys, varying values.
    fn json(&mut self, len: usize) -> Vec<u8> {
        const ROOMS: [&str; 6] = [
            "kitchen", "bedroom", "office", "garage", "garden", "hallway",
        ];
        const KINDS: [&str; 5] = ["temperature", "humidity", "power", "motion", "battery"];
        let mut out = Vec::with_capacity(len + 512);
        while out.len() < len {
            let room = ROOMS[self.below(ROOMS.len() as u64) as usize];
            let kind = KINDS[self.below(KINDS.len() as u64) as usize];
            let line = format!(
                "{{\"entity_id\": \"sensor.{room}_{kind}_{}\", \"state\": \"{}.{}\", \
                 \"attributes\": {{\"friendly_name\": \"{room} {kind}\", \"device_class\": \
                 \"{kind}\", \"state_class\": \"measurement\", \"context_id\": \"{:016x}\"}}, \
                 \"last_updated\": \"2025-04-01T{:02}:{:02}:{:02}+00:00\"}}\n",
                self.below(400),
                self.below(40),
                self.below(100),
                self.next_u64(),
                self.below(24),
                self.below(60),
                self.below(60),
            );
            out.extend_from_slice(line.as_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Writes the config dir and returns the bytes of file data in it.
fn build_config_dir(root: &Path) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (".HA_VERSION".into(), b"2025.4.4".to_vec()),
        (
            "configuration.yaml".into(),
            b"default_config:\nrecorder:\n".to_vec(),
        ),
        ("home-assistant_v2.db".into(), rng.json(16 * MIB)),
    ];
    for name in [
        "entity_registry",
        "device_registry",
        "restore_state",
        "config_entries",
    ] {
        files.push((format!(".storage/core.{name}"), rng.json(2 * MIB)));
    }
    // Many small files, so per-entry overhead shows up too.
    for i in 0..512 {
        files.push((format!("www/cards/card_{i:03}.json"), rng.json(16 * 1024)));
    }
    for i in 0..4 {
        files.push((format!("media/clip_{i}.mp4"), rng.bytes(6 * MIB)));
    }
    for i in 0..64 {
        files.push((
            format!("www/images/photo_{i:02}.jpg"),
            rng.bytes(128 * 1024),
        ));
    }
    let mut total = 0;
    for (rel, data) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("file has a parent")).expect("create dir");
        fs::write(&path, &data).expect("write file");
        total += data.len() as u64;
    }
    total
}

fn bench_archive(c: &mut Criterion) {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("config");
    let input_bytes = build_config_dir(&config);
    let backup = work.path().join("backup.tar");
    let options = CreateOptions::new("bench");
    // Made up front so that `cargo bench -- extract` alone has something to extract.
    create_archive(&config, &backup, &options, &CancelToken::new(), None).expect("create_archive");

    let mut group = c.benchmark_group("archive");
    group.sample_size(10);
    // Each extraction sample also pays (untimed) for deleting the previous one.
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(input_bytes));

    group.bench_function("create_archive", |b| {
        b.iter_batched(
            // Untimed: a backup never replaces a file, so the previous one goes first.
            || fs::remove_file(&backup).expect("remove previous backup"),
            |()| {
                let info = create_archive(&config, &backup, &options, &CancelToken::new(), None);
                black_box(info.expect("create_archive"))
            },
            BatchSize::PerIteration,
        );
    });

    let dest = work.path().join("restored");
    group.bench_function("extract_archive", |b| {
        b.iter_batched(
            // Untimed: the destination must be absent or empty.
            || {
                if dest.exists() {
                    fs::remove_dir_all(&dest).expect("remove previous extraction");
                }
            },
            |()| {
                black_box(
                    extract_archive(&backup, &dest, &CancelToken::new()).expect("extract_archive"),
                )
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_archive);
criterion_main!(benches);
