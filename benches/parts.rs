//! What one backup's time is made of: each stage of `create_archive` on its own thread-CPU clock.
//!
//! cargo bench --bench parts --features bench -- CONFIG_DIR [--level 6] [--search N] [--password PW] [--json]
//!
//! Runs the pipeline's stages one after another on one thread over CONFIG_DIR (Home Assistant's
//! default excludes), then times a whole `create_archive` of a tiny config dir (start-up: thread
//! spin-up, temp file, fsync, rename, sha256). Prints a table (or one JSON line with --json) of
//! CPU seconds and MB/s per stage, and the two-core floor: the stages' CPU total over two cores.

use std::path::{Path, PathBuf};
use std::time::Instant;

use habackup::archive::parts::{measure, Breakdown};
use habackup::archive::{create_archive, CancelToken, CreateOptions};

struct Args {
    config_dir: PathBuf,
    level: u32,
    /// zlib-rs's match search of this level instead of the one `level` uses.
    search: Option<u32>,
    password: Option<String>,
    json: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        config_dir: PathBuf::new(),
        level: 6,
        search: None,
        password: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--level" => args.level = level_arg("--level", it.next()),
            "--search" => args.search = Some(level_arg("--search", it.next())),
            "--password" => args.password = it.next(),
            "--json" => args.json = true,
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other => args.config_dir = PathBuf::from(other),
        }
    }
    if args.config_dir.as_os_str().is_empty() {
        usage("CONFIG_DIR is missing");
    }
    args
}

fn usage(problem: &str) -> ! {
    eprintln!("parts: {problem}");
    eprintln!("usage: cargo bench --bench parts --features bench -- CONFIG_DIR [--level N] [--search N] [--password PW] [--json]");
    std::process::exit(2);
}

/// A gzip level, 0-9 (zlib-rs refuses anything else).
fn level_arg(option: &str, value: Option<String>) -> u32 {
    match value.as_deref().map(str::parse::<u32>) {
        Some(Ok(level)) if level <= 9 => level,
        _ => usage(&format!("{option} takes a level from 0 to 9")),
    }
}

/// Median wall time of a whole `create_archive` of a config dir with two small files.
fn startup_seconds(scratch: &Path, password: Option<&str>) -> Result<f64, String> {
    let failed = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        format!("{what} {}: {e}", path.display())
    };
    let config = scratch.join("tiny");
    std::fs::create_dir_all(&config).map_err(|e| failed("cannot create", &config, &e))?;
    for (name, text) in [
        (".HA_VERSION", "2025.4.4"),
        ("configuration.yaml", "default_config:\n"),
    ] {
        let file = config.join(name);
        std::fs::write(&file, text).map_err(|e| failed("cannot write", &file, &e))?;
    }
    let mut options = CreateOptions::new("startup");
    options.password = password.map(str::to_owned);
    let mut times = Vec::with_capacity(7);
    for i in 0..7 {
        let out = scratch.join(format!("tiny-{i}.tar"));
        let start = Instant::now();
        create_archive(&config, &out, &options, &CancelToken::new(), None)
            .map_err(|e| failed("cannot back up", &config, &e))?;
        times.push(start.elapsed().as_secs_f64());
        std::fs::remove_file(&out).map_err(|e| failed("cannot remove", &out, &e))?;
    }
    std::fs::remove_dir_all(&config).map_err(|e| failed("cannot remove", &config, &e))?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn run(args: &Args, scratch: &Path) -> Result<(Breakdown, f64), String> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let out = scratch.join("inner.out");
    let parts = measure(
        &args.config_dir,
        &out,
        args.level,
        args.search,
        args.password.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let startup = startup_seconds(scratch, args.password.as_deref())?;
    Ok((parts, startup))
}

fn main() -> std::process::ExitCode {
    let args = parse_args();
    let scratch = std::env::temp_dir().join(format!("habackup-parts-{}", std::process::id()));
    let result = run(&args, &scratch);
    // The scratch dir goes whatever happened (it may not exist if creating it failed).
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok((parts, startup)) => {
            if args.json {
                println!("{}", json(&parts, startup));
            } else {
                print_table(&args, &parts, startup);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("parts: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn stages(p: &Breakdown) -> [(&'static str, f64, u64); 10] {
    [
        ("walk", p.walk, 0),
        ("read files", p.read, p.file_bytes),
        ("tar framing", p.tar, p.tar_bytes),
        ("crc32", p.crc, p.tar_bytes),
        ("stored-block detection", p.detect, p.tar_bytes),
        ("deflate (compressible part)", p.deflate, p.deflated_bytes),
        ("sha256 of output", p.sha256, 0),
        ("key derivation", p.key_derivation, 0),
        ("encryption (+ write)", p.encrypt, 0),
        ("write + fsync (wall)", p.write, 0),
    ]
}

fn json(p: &Breakdown, startup: f64) -> String {
    let mut fields: Vec<String> = stages(p)
        .iter()
        .map(|(name, secs, _)| format!("\"{name}\": {secs:.6}"))
        .collect();
    fields.push(format!(
        "\"startup (tiny create_archive, wall)\": {startup:.6}"
    ));
    fields.push(format!("\"file_bytes\": {}", p.file_bytes));
    fields.push(format!("\"tar_bytes\": {}", p.tar_bytes));
    fields.push(format!("\"stored_bytes\": {}", p.stored_bytes));
    fields.push(format!("\"deflated_bytes\": {}", p.deflated_bytes));
    fields.push(format!("\"compressed_bytes\": {}", p.compressed_bytes));
    format!("{{{}}}", fields.join(", "))
}

fn print_table(args: &Args, p: &Breakdown, startup: f64) {
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{}: {:.1} MB of files, {:.1} MB of tar ({:.1} MB stored as is, {:.1} MB deflated) -> {} bytes, level {}{}",
        args.config_dir.display(),
        mb(p.file_bytes),
        mb(p.tar_bytes),
        mb(p.stored_bytes),
        mb(p.deflated_bytes),
        p.compressed_bytes,
        args.level,
        match args.search {
            Some(search) => format!(" (zlib-rs search of level {search})"),
            None => String::new(),
        } + if args.password.is_some() { ", encrypted" } else { "" },
    );
    println!("{:<30} {:>9} {:>9}", "stage", "CPU s", "MB/s");
    let mut total = 0.0;
    for (name, secs, bytes) in stages(p) {
        total += secs;
        let rate = if bytes > 0 && secs > 0.0 {
            format!("{:.0}", mb(bytes) / secs)
        } else {
            "-".into()
        };
        println!("{name:<30} {secs:>9.3} {rate:>9}");
    }
    println!("{:<30} {:>9.3}", "start-up (tiny backup, wall)", startup);
    println!("{:<30} {:>9.3}", "total", total);
    println!(
        "{:<30} {:>9.3}",
        "floor on two cores",
        total / 2.0 + startup
    );
}
