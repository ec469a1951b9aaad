//! `sftp://` and `smb://` URLs and their options, turned into stores for `config.rs`. Nothing
//! here touches the network or the disk: a key file named by `private_key` is read when
//! connecting.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use url::{Host, Url};

use super::fs::FsStore;
use super::sftp::Sftp;
use super::smb::{Smb, SmbTarget};
use super::ssh::{parse_key, Secret, SshTarget};
use crate::store::webdav::percent_decode;
use crate::store::StoreError;
use crate::store::Tuning;

const SFTP_KEYS: &[&str] = &[
    "password",
    "private_key",
    "private_key_passphrase",
    "host_key",
];
const SMB_KEYS: &[&str] = &["password"];

fn invalid(message: String) -> StoreError {
    StoreError::InvalidConfig(message)
}

/// The options `scheme` knows, by lower-case key; anything else is an error naming it.
fn known<'a>(
    scheme: &str,
    keys: &[&'a str],
    options: &'a [(String, String)],
) -> Result<Vec<(&'a str, &'a str)>, StoreError> {
    options
        .iter()
        .map(|(key, value)| {
            let lower = key.to_ascii_lowercase();
            match keys.iter().find(|k| **k == lower) {
                Some(k) => Ok((*k, value.as_str())),
                None => Err(invalid(format!(
                    "unknown option {key:?} for {scheme}:// (it takes {} and habackup's own \
                     tuning options)",
                    keys.join(", ")
                ))),
            }
        })
        .collect()
}

fn option<'a>(given: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    given.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Host (without IPv6 brackets), port, user and password from the URL.
fn endpoint(
    url: &Url,
    display_url: &str,
    default_port: u16,
) -> Result<(String, u16, String, Option<String>), StoreError> {
    let host = match url.host() {
        Some(Host::Domain(name)) if !name.is_empty() => name.to_string(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(invalid(format!("{display_url}: the URL needs a host"))),
    };
    let user = percent_decode(url.username());
    if user.is_empty() {
        return Err(invalid(format!(
            "{display_url}: the URL needs a user ({}://user@host/...)",
            url.scheme()
        )));
    }
    let password = url.password().map(percent_decode);
    Ok((host, url.port().unwrap_or(default_port), user, password))
}

fn prefix(path: &str, display_url: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::from_url_path(path)
        .map_err(|e| invalid(format!("{display_url}: invalid path: {e}")))
}

/// `sftp://user[:password]@host[:port]/path`; `/~/path` is under the user's home folder.
pub fn sftp(
    url: &Url,
    display_url: &str,
    tuning: &Tuning,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), StoreError> {
    let given = known("sftp", SFTP_KEYS, options)?;
    let (host, port, user, url_password) = endpoint(url, display_url, 22)?;
    let passphrase = option(&given, "private_key_passphrase");
    let mut secrets = Vec::new();
    if let Some(key) = option(&given, "private_key") {
        if key.contains("-----BEGIN") || key.starts_with("PuTTY-User-Key-File-") {
            secrets.push(Secret::Key(Arc::new(parse_key(key, passphrase)?)));
        } else {
            secrets.push(Secret::KeyFile {
                path: key.to_string(),
                passphrase: passphrase.map(str::to_string),
            });
        }
    }
    if let Some(password) = option(&given, "password")
        .map(str::to_string)
        .or(url_password)
    {
        secrets.push(Secret::Password(password));
    }
    if secrets.is_empty() {
        return Err(invalid(format!(
            "{display_url}: give the option password or private_key (or user:password@ in the URL)"
        )));
    }
    let target = SshTarget::new(
        host,
        port,
        user,
        secrets,
        option(&given, "host_key"),
        tuning.connect_timeout,
        tuning.timeout,
    )?;
    let (home_relative, path) = match url.path().strip_prefix("/~") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => (true, rest),
        _ => (false, url.path()),
    };
    let store = FsStore::new(Sftp::new(target, home_relative), tuning.retry.clone());
    Ok((Arc::new(store), prefix(path, display_url)?))
}

/// `smb://[domain;]user[:password]@host[:port]/share/path`.
pub fn smb(
    url: &Url,
    display_url: &str,
    tuning: &Tuning,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), StoreError> {
    let given = known("smb", SMB_KEYS, options)?;
    let (host, port, login, url_password) = endpoint(url, display_url, 445)?;
    let (domain, user) = match login.split_once(';') {
        Some((domain, user)) => (domain.to_string(), user.to_string()),
        None => (String::new(), login),
    };
    let Some(password) = option(&given, "password")
        .map(str::to_string)
        .or(url_password)
    else {
        return Err(invalid(format!(
            "{display_url}: give the option password (or user:password@ in the URL)"
        )));
    };
    let path = url.path().trim_start_matches('/');
    let (share, rest) = path.split_once('/').unwrap_or((path, ""));
    let share = percent_decode(share);
    if share.is_empty() {
        return Err(invalid(format!(
            "{display_url}: the URL needs a share: smb://user@host/share/folder"
        )));
    }
    let target = SmbTarget {
        host,
        port,
        domain,
        user,
        password,
        share,
        connect_timeout: tuning.connect_timeout,
        timeout: tuning.timeout,
    };
    let store = FsStore::new(Smb::new(target), tuning.retry.clone());
    Ok((Arc::new(store), prefix(rest, display_url)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, options: &[(&str, &str)]) -> Result<ObjectPath, StoreError> {
        let options: Vec<_> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let parsed = Url::parse(url).unwrap();
        let tuning = Tuning::default();
        match parsed.scheme() {
            "sftp" => sftp(&parsed, url, &tuning, &options).map(|(_, p)| p),
            _ => smb(&parsed, url, &tuning, &options).map(|(_, p)| p),
        }
    }

    #[test]
    fn urls_and_options() {
        let p = parse("sftp://me@nas:2222/volume1/backups", &[("password", "x")]).unwrap();
        assert_eq!(p.as_ref(), "volume1/backups");
        let p = parse("sftp://me:pw@nas/~/backups", &[]).unwrap();
        assert_eq!(p.as_ref(), "backups");
        assert!(parse("sftp://nas/x", &[("password", "x")]).is_err());
        assert!(parse("sftp://me@nas/x", &[]).is_err());
        let err = parse("sftp://me@nas/x", &[("pasword", "x")]).unwrap_err();
        assert!(err.to_string().contains("pasword"), "{err}");
        let err = parse("sftp://me@nas/x", &[("private_key", "-----BEGIN x")]).unwrap_err();
        assert!(err.to_string().contains("private_key"), "{err}");

        let p = parse("smb://WORK;me@nas/share/a/b", &[("password", "x")]).unwrap();
        assert_eq!(p.as_ref(), "a/b");
        assert_eq!(parse("smb://me:pw@nas/share", &[]).unwrap().as_ref(), "");
        assert!(parse("smb://me:pw@nas/", &[]).is_err());
        assert!(parse("smb://me@nas/share", &[]).is_err());
        assert!(parse("smb://me:pw@nas/share", &[("host_key", "x")]).is_err());
    }
}
