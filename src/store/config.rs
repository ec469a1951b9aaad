//! Turns `(url, options)` into a configured store, refusing what it does not understand before
//! any request is made.

use std::str::FromStr;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore};
use url::Url;

use super::error::StoreError;
use super::tuning::{invalid, take_tuning, Tuning, MIN_CLOUD_PART, TUNING_KEYS};
use super::webdav::WebDav;

type Store = Arc<dyn ObjectStore>;

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
    /// The store listings go through: `store` itself, except for WebDAV (see [`webdav_stores`]).
    pub listing: Arc<dyn ObjectStore>,
    /// Streaming PUTs for WebDAV, whose object_store client buffers a whole put in memory.
    pub webdav: Option<WebDav>,
    pub prefix: ObjectPath,
    /// The URL without credentials or query string.
    pub display_url: String,
    pub tuning: Tuning,
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
    invalid(crate::common::redact::redact_urls(&format!(
        "cannot use {display_url}: {err}"
    )))
}

/// The URL as people may see it: no userinfo, no query (where SAS tokens live), no trailing
/// slash after a path (`s3://bucket/prefix`), but never cut into its scheme (`memory://`).
fn display(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let text = shown.to_string();
    let trimmed = text.trim_end_matches('/');
    if trimmed.ends_with(':') {
        text
    } else {
        trimmed.to_string()
    }
}

/// The bucket (container) of a cloud URL must be there: object_store's own message for
/// `s3://` alone ("URL did not match any known pattern") does not say what is missing.
fn require_bucket(parsed: &Url, scheme: &str, display_url: &str) -> Result<(), StoreError> {
    if parsed.host_str().is_some_and(|h| !h.is_empty()) {
        return Ok(());
    }
    let what = if matches!(scheme, "s3" | "s3a" | "gs") {
        "bucket"
    } else {
        "container"
    };
    Err(invalid(format!(
        "{display_url} names no {what}: use {scheme}://{}/PREFIX",
        what.to_uppercase()
    )))
}

/// object_store's HTTP store appends each key's segments to its base URL, so a base ending in
/// `/` reads `GET /dav//x.tar`, and it lists (PROPFIND) exactly its base URL, where a
/// collection's own URL ends in `/` (servers answer `/dav` with a redirect, and a redirected
/// PROPFIND becomes a GET). Objects therefore go through a store based at `/dav`, listings
/// through one based at `/dav/`.
fn webdav_stores(
    base: &Url,
    options: &ClientOptions,
    retry: &object_store::RetryConfig,
    rest: &[(String, String)],
    display_url: &str,
) -> Result<(Store, Store), StoreError> {
    let build = |url: &str| -> Result<Store, StoreError> {
        let builder = HttpBuilder::new()
            .with_url(url)
            .with_retry(retry.clone())
            .with_client_options(options.clone());
        let builder = configure(builder, rest, base.scheme(), |b, k: ClientConfigKey, v| {
            b.with_config(k, v)
        })?;
        let store = builder.build().map_err(|e| build_error(display_url, e))?;
        Ok(Arc::new(store))
    };
    let collection = base.as_str();
    let objects = build(collection.trim_end_matches('/'))?;
    let listing = build(collection)?;
    Ok((objects, listing))
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
    let mut listing_store = None;
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
                require_bucket(&parsed, &scheme, &display_url)?;
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
                require_bucket(&parsed, &scheme, &display_url)?;
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
                require_bucket(&parsed, &scheme, &display_url)?;
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
                let client = client
                    .with_default_headers(webdav.auth_headers())
                    // The URL's scheme already says whether plain HTTP is wanted.
                    .with_allow_http(scheme == "http");
                let (store, listing) = webdav_stores(
                    webdav.base_url(),
                    &client,
                    &tuning.retry,
                    &rest,
                    &display_url,
                )?;
                listing_store = Some(listing);
                (Kind::WebDav, store, Some(webdav), ObjectPath::default())
            }
            "sftp" => {
                let (store, prefix) =
                    super::remote::sftp_store(&parsed, &display_url, &tuning, &rest)?;
                (Kind::Sftp, store, None, prefix)
            }
            "smb" => {
                let (store, prefix) =
                    super::remote::smb_store(&parsed, &display_url, &tuning, &rest)?;
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
        listing: listing_store.unwrap_or_else(|| store.clone()),
        store,
        webdav,
        prefix,
        display_url,
        tuning,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn display_urls_keep_their_scheme_and_lose_trailing_slashes() {
        let shown = |url: &str| parse(url, &[]).unwrap().display_url;
        assert_eq!(shown("memory://"), "memory://");
        assert_eq!(shown("file:///"), "file:///");
        assert_eq!(shown("file:///tmp/x/"), "file:///tmp/x");
        assert_eq!(shown("s3://bucket"), "s3://bucket");
        assert_eq!(shown("s3://bucket/"), "s3://bucket");
        assert_eq!(shown("s3://bucket/p/"), "s3://bucket/p");
    }

    #[test]
    fn cloud_urls_need_a_bucket() {
        for (url, what) in [
            ("s3://", "names no bucket"),
            ("gs://", "names no bucket"),
            ("az://", "names no container"),
        ] {
            let err = parse(url, &[]).unwrap_err().to_string();
            assert!(err.contains(what), "{url}: {err}");
            assert!(err.starts_with(url), "{url}: {err}");
        }
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
