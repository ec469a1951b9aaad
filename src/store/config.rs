//! Turns `(url, options)` into a configured store, refusing what it does not understand before
//! any request is made.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use super::error::StoreError;
use super::webdav::WebDav;

const MIB: u64 = 1024 * 1024;
const MAX_SINGLE_PUT: u64 = 64 * MIB;
/// S3 and GCS refuse multipart parts below 5 MiB (the last one excepted).
const MIN_CLOUD_PART: usize = 5 * MIB as usize;

/// How transfers are cut up and retried; options override these by key.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Files above this go up as multipart uploads; smaller ones in one request.
    pub multipart_threshold: u64,
    /// S3 wants parts of at least 5 MiB (the last excepted).
    pub part_size: usize,
    /// Parts in flight at once; memory held is about `part_size * (max_concurrency + 1)`.
    pub max_concurrency: usize,
    pub retry: RetryConfig,
    pub connect_timeout: Duration,
    /// Per request: one part, not a whole backup, has to fit in it.
    pub timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB as usize,
            max_concurrency: 4,
            // object_store's default (10 retries within 3 minutes) makes a dead server look
            // like a hang; a few quick retries ride out a blip and still fail fast.
            retry: RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(120),
            },
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(300),
        }
    }
}

/// Which kind of store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    Memory,
    S3,
    Gcs,
    Azure,
    WebDav,
    Sftp,
    Smb,
}

/// A parsed agent URL: the store, where in it backups live, and the URL to show people.
#[derive(Debug)]
pub struct StoreConfig {
    pub kind: Kind,
    pub store: Arc<dyn ObjectStore>,
    /// Streaming PUTs for WebDAV, whose object_store client buffers a whole put in memory.
    pub webdav: Option<WebDav>,
    pub prefix: ObjectPath,
    /// The URL without credentials or query string.
    pub display_url: String,
    pub tuning: Tuning,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidConfig(message.into())
}

fn parse_size(key: &str, value: &str) -> Result<u64, StoreError> {
    let value = value.trim();
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a size")))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => MIB,
        "g" | "gib" | "gb" => 1024 * MIB,
        _ => return Err(invalid(format!("option {key}: {value:?} is not a size"))),
    };
    Ok(number * factor)
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, StoreError> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a duration")))?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" | "" => number,
        "m" | "min" => number * 60.0,
        _ => {
            return Err(invalid(format!(
                "option {key}: {value:?} is not a duration"
            )))
        }
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a duration")))
}

fn parse_count(key: &str, value: &str) -> Result<usize, StoreError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("option {key}: {value:?} is not a whole number")))
}

/// Takes habackup's own keys out of `options` and returns the rest, for the store's builder.
fn take_tuning(
    options: &[(String, String)],
) -> Result<(Tuning, Vec<(String, String)>), StoreError> {
    let mut tuning = Tuning::default();
    let mut rest = Vec::new();
    for (key, value) in options {
        match key.to_ascii_lowercase().as_str() {
            "multipart_threshold" => {
                // Below the threshold a backup is sent from memory in one request.
                tuning.multipart_threshold = parse_size(key, value)?;
                if tuning.multipart_threshold > MAX_SINGLE_PUT {
                    return Err(invalid(format!(
                        "option multipart_threshold: {value:?} is above 64 MiB (the most a \
                         single request holds in memory)"
                    )));
                }
            }
            "part_size" => {
                let size = parse_size(key, value)?;
                if !(MIB..=5 * 1024 * MIB).contains(&size) {
                    return Err(invalid(format!(
                        "option part_size: {value:?} must be between 1 MiB and 5 GiB"
                    )));
                }
                tuning.part_size = size as usize;
            }
            "max_concurrency" => {
                tuning.max_concurrency = parse_count(key, value)?;
                if tuning.max_concurrency == 0 {
                    return Err(invalid("option max_concurrency must be at least 1"));
                }
            }
            "max_retries" => tuning.retry.max_retries = parse_count(key, value)?,
            "retry_timeout" => tuning.retry.retry_timeout = parse_duration(key, value)?,
            "retry_backoff" => tuning.retry.backoff.init_backoff = parse_duration(key, value)?,
            "timeout" => tuning.timeout = parse_duration(key, value)?,
            "connect_timeout" => tuning.connect_timeout = parse_duration(key, value)?,
            _ => rest.push((key.clone(), value.clone())),
        }
    }
    Ok((tuning, rest))
}

/// Whether S3 parts get the default sha256 checksum: yes unless `aws_checksum_algorithm` says
/// otherwise ("none" drops the key, any other value goes to object_store's own parser).
fn take_checksum(rest: &mut Vec<(String, String)>) -> bool {
    let at = rest.iter().position(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "aws_checksum_algorithm" | "checksum_algorithm"
        )
    });
    match at {
        None => true,
        Some(at) if rest[at].1.eq_ignore_ascii_case("none") => {
            rest.remove(at);
            false
        }
        Some(_) => false,
    }
}

const TUNING_KEYS: &str = "multipart_threshold, part_size, max_concurrency, max_retries, \
                           retry_timeout, retry_backoff, timeout, connect_timeout";

fn client_options(tuning: &Tuning) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(tuning.timeout)
        .with_connect_timeout(tuning.connect_timeout)
}

/// Applies `options` to a builder through its own key parser, so a typo is an error, not a
/// silently ignored setting.
fn configure<B, K: FromStr>(
    mut builder: B,
    options: &[(String, String)],
    scheme: &str,
    with: impl Fn(B, K, &str) -> B,
) -> Result<B, StoreError> {
    for (key, value) in options {
        let parsed = key.to_ascii_lowercase().parse::<K>().map_err(|_| {
            invalid(format!(
                "unknown option {key:?} for {scheme}:// (habackup's own options: {TUNING_KEYS})"
            ))
        })?;
        builder = with(builder, parsed, value);
    }
    Ok(builder)
}

fn build_error(display_url: &str, err: object_store::Error) -> StoreError {
    invalid(crate::redact::redact_urls(&format!(
        "cannot use {display_url}: {err}"
    )))
}

/// The URL as people may see it: no userinfo, no query (where SAS tokens live).
fn display(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string().trim_end_matches('/').to_string()
}

fn prefix_of(path: &str, display_url: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::from_url_path(path)
        .map_err(|e| invalid(format!("{display_url}: invalid path: {e}")))
}

/// Parses `url` and `options` into a store; nothing touches the network or the disk.
pub fn parse(url: &str, options: &[(String, String)]) -> Result<StoreConfig, StoreError> {
    let parsed = Url::parse(url).map_err(|e| {
        // A URL that does not parse cannot be trusted to redact: never echo one with userinfo.
        let shown = if url.contains('@') {
            "<redacted>".to_string()
        } else {
            format!("{url:?}")
        };
        invalid(format!("invalid URL {shown}: {e}"))
    })?;
    let display_url = display(&parsed);
    let (tuning, mut rest) = take_tuning(options)?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let no_options = |kind: Kind| -> Result<Kind, StoreError> {
        match rest.first() {
            Some((key, _)) => Err(invalid(format!(
                "unknown option {key:?} for {scheme}:// (it takes only habackup's own: {TUNING_KEYS})"
            ))),
            None => Ok(kind),
        }
    };
    let client = client_options(&tuning);
    let (kind, store, webdav, prefix): (Kind, Arc<dyn ObjectStore>, Option<WebDav>, ObjectPath) =
        match scheme.as_str() {
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(invalid(format!(
                        "{display_url}: a file:// URL needs an absolute path (file:///dir)"
                    )));
                }
                let kind = no_options(Kind::Local)?;
                // The root store, not one rooted at the folder: it would have to exist already.
                let prefix = prefix_of(parsed.path(), &display_url)?;
                (kind, Arc::new(LocalFileSystem::new()), None, prefix)
            }
            "memory" => {
                let kind = no_options(Kind::Memory)?;
                let path = format!("{}{}", parsed.host_str().unwrap_or(""), parsed.path());
                (
                    kind,
                    Arc::new(InMemory::new()),
                    None,
                    prefix_of(&path, &display_url)?,
                )
            }
            "s3" | "s3a" => {
                // Every part carries its sha256 for the server to check (S3 rejects a part
                // damaged on the way). "none" turns this off for servers that refuse the header.
                let checksum = take_checksum(&mut rest);
                let mut builder = AmazonS3Builder::from_env()
                    .with_url(url)
                    .with_retry(tuning.retry.clone())
                    .with_client_options(client);
                if checksum {
                    builder = builder.with_checksum_algorithm(Checksum::SHA256);
                }
                let builder = configure(builder, &rest, &scheme, |b, k: AmazonS3ConfigKey, v| {
                    b.with_config(k, v)
                })?;
                let store = builder.build().map_err(|e| build_error(&display_url, e))?;
                let prefix = prefix_of(parsed.path(), &display_url)?;
                (Kind::S3, Arc::new(store), None, prefix)
            }
            "gs" => {
                let builder = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(tuning.retry.clone())
                    .with_client_options(client);
                let builder = configure(builder, &rest, &scheme, |b, k: GoogleConfigKey, v| {
                    b.with_config(k, v)
                })?;
                let store = builder.build().map_err(|e| build_error(&display_url, e))?;
                let prefix = prefix_of(parsed.path(), &display_url)?;
                (Kind::Gcs, Arc::new(store), None, prefix)
            }
            "az" | "azure" | "abfs" | "abfss" | "adl" => {
                let builder = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(tuning.retry.clone())
                    .with_client_options(client);
                let builder = configure(builder, &rest, &scheme, |b, k: AzureConfigKey, v| {
                    b.with_config(k, v)
                })?;
                let store = builder.build().map_err(|e| build_error(&display_url, e))?;
                let prefix = prefix_of(parsed.path(), &display_url)?;
                (Kind::Azure, Arc::new(store), None, prefix)
            }
            "http" | "https" => {
                let webdav = WebDav::new(&parsed, &display_url, &tuning)?;
                let base = webdav.base_url().clone();
                let builder = HttpBuilder::new()
                    .with_url(base.as_str())
                    .with_retry(tuning.retry.clone())
                    .with_client_options(
                        client
                            .with_default_headers(webdav.auth_headers())
                            // The URL's scheme already says whether plain HTTP is wanted.
                            .with_allow_http(scheme == "http"),
                    );
                let builder = configure(builder, &rest, &scheme, |b, k: ClientConfigKey, v| {
                    b.with_config(k, v)
                })?;
                let store = builder.build().map_err(|e| build_error(&display_url, e))?;
                (
                    Kind::WebDav,
                    Arc::new(store),
                    Some(webdav),
                    ObjectPath::default(),
                )
            }
            "sftp" => {
                let (store, prefix) =
                    super::net_config::sftp(&parsed, &display_url, &tuning, &rest)?;
                (Kind::Sftp, store, None, prefix)
            }
            "smb" => {
                let (store, prefix) =
                    super::net_config::smb(&parsed, &display_url, &tuning, &rest)?;
                (Kind::Smb, store, None, prefix)
            }
            other => {
                return Err(invalid(format!(
                    "unsupported URL scheme {other:?} in {display_url} (use file://, memory://, \
                     s3://, gs://, az://, http(s):// for WebDAV, sftp:// or smb://)"
                )))
            }
        };
    if matches!(kind, Kind::S3 | Kind::Gcs) && tuning.part_size < MIN_CLOUD_PART {
        return Err(invalid(format!(
            "option part_size: {display_url} needs parts of at least 5 MiB"
        )));
    }
    Ok(StoreConfig {
        kind,
        store,
        webdav,
        prefix,
        display_url,
        tuning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_keys_are_refused_per_scheme() {
        let err = parse("s3://bucket/p", &opts(&[("aws_endpointt", "x")])).unwrap_err();
        assert!(err.to_string().contains("aws_endpointt"), "{err}");
        let err = parse("file:///tmp/x", &opts(&[("aws_region", "x")])).unwrap_err();
        assert!(err.to_string().contains("aws_region"), "{err}");
        assert!(parse("s3://bucket/p", &opts(&[("aws_region", "eu-west-1")])).is_ok());
    }

    #[test]
    fn tuning_keys_are_parsed() {
        let cfg = parse(
            "memory://",
            &opts(&[
                ("part_size", "5MiB"),
                ("max_retries", "0"),
                ("timeout", "1.5s"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.tuning.part_size, 5 * 1024 * 1024);
        assert_eq!(cfg.tuning.retry.max_retries, 0);
        assert_eq!(cfg.tuning.timeout, Duration::from_millis(1500));
        assert!(parse("memory://", &opts(&[("part_size", "1k")])).is_err());
    }

    #[test]
    fn credentials_never_reach_the_display_url() {
        let cfg = parse("http://user:hunter2@127.0.0.1:1/dav/backups?sig=abc", &[]).unwrap();
        assert_eq!(cfg.display_url, "http://127.0.0.1:1/dav/backups");
        let err = parse("ftp://user:hunter2@host/x", &[]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = parse("not a url :// user:hunter2@", &[]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn s3_checksum_can_be_turned_off_or_changed() {
        let mut rest = opts(&[("aws_checksum_algorithm", "NONE"), ("aws_region", "x")]);
        assert!(!take_checksum(&mut rest));
        assert_eq!(rest, opts(&[("aws_region", "x")]));
        let mut rest = opts(&[("aws_checksum_algorithm", "crc64nvme")]);
        assert!(!take_checksum(&mut rest));
        assert_eq!(rest.len(), 1);
        assert!(take_checksum(&mut opts(&[])));
        assert!(parse("s3://b/x", &opts(&[("aws_checksum_algorithm", "none")])).is_ok());
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse("s3://b/x/y", &[]).unwrap().prefix.as_ref(), "x/y");
        assert_eq!(
            parse("file:///tmp/a b", &[]).unwrap().prefix.as_ref(),
            "tmp/a b"
        );
        assert_eq!(parse("memory://", &[]).unwrap().prefix.as_ref(), "");
    }
}
