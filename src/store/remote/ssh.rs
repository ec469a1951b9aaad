//! SSH sessions for the SFTP store: connecting within `connect_timeout`, checking the server's
//! host key against the one the user pinned, and logging in with a key or a password.
//!
//! Client: `russh` (pure Rust, maintained, aws-lc-rs crypto, which the tree has already for TLS;
//! Ed25519/ECDSA/RSA keys, password and public-key auth, a host-key callback we decide in).
//! The alternatives bind C: `ssh2`/`async-ssh2-lite` (libssh2 + OpenSSL) or run the `ssh`
//! binary (`openssh-sftp-client`).
//!
//! Host keys are never accepted silently. Without the `host_key` option the first connection
//! is refused with the fingerprint the server presented, to check and pin: an unpinned key is
//! exactly what a man in the middle would present, so trusting it on first use would defeat
//! the check for a backup agent that nobody watches connect.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{cipher, ChannelStream, Preferred};

use super::fs::{RemoteFsError, RemoteResult};
use crate::store::StoreError;

/// A pinned host key: the whole public key, or its SHA256 fingerprint.
#[derive(Debug, Clone)]
enum Pin {
    Key(PublicKey),
    Fingerprint(String),
}

/// How to log in.
#[derive(Clone)]
pub enum Secret {
    Password(String),
    /// Read from disk when connecting (never on the caller's thread).
    KeyFile {
        path: String,
        passphrase: Option<String>,
    },
    Key(Arc<PrivateKey>),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(***)"),
            Secret::KeyFile { path, .. } => write!(f, "KeyFile({path})"),
            Secret::Key(_) => f.write_str("Key(***)"),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Tried in order until one is accepted.
    pub secrets: Vec<Secret>,
    pins: Vec<Pin>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

fn invalid(message: String) -> StoreError {
    StoreError::InvalidConfig(message)
}

/// Parses the `host_key` option: OpenSSH public-key lines (`ssh-ed25519 AAAA... [comment]`, as
/// in a `.pub` file, or a `known_hosts`/`ssh-keyscan` line with the host first) or `SHA256:`
/// fingerprints, one per line or comma-separated.
fn parse_pins(value: &str) -> Result<Vec<Pin>, StoreError> {
    let mut pins = Vec::new();
    for item in value
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(hash) = item.strip_prefix("SHA256:") {
            let hash = hash.trim_end_matches('=');
            if hash.is_empty()
                || !hash
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/".contains(c))
            {
                return Err(invalid(format!(
                    "option host_key: {item:?} is not a SHA256 fingerprint"
                )));
            }
            pins.push(Pin::Fingerprint(format!("SHA256:{hash}")));
            continue;
        }
        let key = PublicKey::from_openssh(item).or_else(|first| {
            // A known_hosts line: "host[,host] key-type base64".
            match item.split_once(char::is_whitespace) {
                Some((_, rest)) => PublicKey::from_openssh(rest.trim()).map_err(|_| first),
                None => Err(first),
            }
        });
        match key {
            Ok(key) => pins.push(Pin::Key(key)),
            Err(err) => {
                return Err(invalid(format!(
                    "option host_key: expected an OpenSSH public key line \
                     (\"ssh-ed25519 AAAA...\") or a SHA256: fingerprint: {err}"
                )))
            }
        }
    }
    Ok(pins)
}

impl SshTarget {
    pub fn new(
        host: String,
        port: u16,
        user: String,
        secrets: Vec<Secret>,
        host_key: Option<&str>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<SshTarget, StoreError> {
        let pins = match host_key {
            Some(value) => parse_pins(value)?,
            None => Vec::new(),
        };
        Ok(SshTarget {
            host,
            port,
            user,
            secrets,
            pins,
            connect_timeout,
            timeout,
        })
    }

    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn config(&self) -> client::Config {
        // Ask first for the kinds of key that are pinned, so that a server with several host
        // keys presents one we can check.
        let mut algorithms: Vec<_> = self
            .pins
            .iter()
            .filter_map(|pin| match pin {
                Pin::Key(key) => Some(key.algorithm()),
                Pin::Fingerprint(_) => None,
            })
            .collect();
        for algorithm in Preferred::DEFAULT.key.iter() {
            if !algorithms.contains(algorithm) {
                algorithms.push(algorithm.clone());
            }
        }
        let preferred = Preferred {
            key: Cow::Owned(algorithms),
            // AES-GCM runs on aws-lc's hardware AES; russh's ChaCha20 is portable Rust, slower.
            cipher: Cow::Borrowed(&[
                cipher::AES_256_GCM,
                cipher::AES_128_GCM,
                cipher::CHACHA20_POLY1305,
                cipher::AES_256_CTR,
                cipher::AES_128_CTR,
            ]),
            ..Preferred::DEFAULT
        };
        client::Config {
            preferred,
            // Big windows keep a fast link busy; memory stays bounded by our own request limits.
            window_size: 16 * 1024 * 1024,
            nodelay: true,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            ..Default::default()
        }
    }

    fn host_key_error(&self, seen: Option<String>) -> RemoteFsError {
        let seen = seen.unwrap_or_else(|| "an unreadable key".into());
        let address = self.address();
        if self.pins.is_empty() {
            RemoteFsError::Config(format!(
                "the SSH host key of {address} is not known: the server presents {seen}. \
                 Check that this is your server's key (ssh-keygen -lf on its host key, or the \
                 fingerprint ssh shows) and set the option host_key to that SHA256:... \
                 fingerprint or to the public key line"
            ))
        } else {
            RemoteFsError::Config(format!(
                "the SSH host key of {address} does not match the option host_key: the server \
                 presents {seen}. Refusing to connect: the connection may be intercepted. If the \
                 server's key was changed on purpose, set host_key to the new one"
            ))
        }
    }

    /// Connects, checks the host key, logs in and opens the `sftp` subsystem's channel.
    pub async fn connect(
        &self,
    ) -> RemoteResult<(Handle<HostKeyCheck>, ChannelStream<client::Msg>)> {
        let address = self.address();
        let unreachable =
            |what: &str| RemoteFsError::Unreachable(format!("cannot connect to {address}: {what}"));
        let socket = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| unreachable("timed out"))?
        .map_err(|e| unreachable(&e.to_string()))?;
        let seen = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            pins: self.pins.clone(),
            seen: seen.clone(),
        };
        let sort = |err: russh::Error| -> RemoteFsError {
            match err {
                russh::Error::UnknownKey => {
                    self.host_key_error(seen.lock().ok().and_then(|s| s.clone()))
                }
                other => sort_ssh_error(&address, other),
            }
        };
        let mut handle = tokio::time::timeout(
            self.connect_timeout,
            client::connect_stream(Arc::new(self.config()), socket, check),
        )
        .await
        .map_err(|_| unreachable("no SSH handshake within the connect timeout"))?
        .map_err(sort)?;
        let login = async {
            self.login(&mut handle).await?;
            let channel = handle.channel_open_session().await.map_err(sort)?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(sort)?;
            Ok::<_, RemoteFsError>(channel.into_stream())
        };
        let stream = tokio::time::timeout(self.timeout, login)
            .await
            .map_err(|_| unreachable("the SSH login timed out"))??;
        Ok((handle, stream))
    }

    async fn login(&self, handle: &mut Handle<HostKeyCheck>) -> RemoteResult<()> {
        let address = self.address();
        let mut tried = Vec::new();
        for secret in &self.secrets {
            let accepted = match secret {
                Secret::Password(password) => {
                    tried.push("password");
                    handle
                        .authenticate_password(&self.user, password)
                        .await
                        .map_err(|e| sort_ssh_error(&address, e))?
                        .success()
                }
                Secret::Key(_) | Secret::KeyFile { .. } => {
                    tried.push("private_key");
                    let key = load_key(secret).await?;
                    let hash = handle
                        .best_supported_rsa_hash()
                        .await
                        .map_err(|e| sort_ssh_error(&address, e))?
                        .flatten();
                    handle
                        .authenticate_publickey(&self.user, PrivateKeyWithHashAlg::new(key, hash))
                        .await
                        .map_err(|e| sort_ssh_error(&address, e))?
                        .success()
                }
            };
            if accepted {
                return Ok(());
            }
        }
        Err(RemoteFsError::Auth(format!(
            "{address} refused the login of user {:?} (tried: {})",
            self.user,
            tried.join(", ")
        )))
    }
}

async fn load_key(secret: &Secret) -> RemoteResult<Arc<PrivateKey>> {
    match secret {
        Secret::Key(key) => Ok(key.clone()),
        Secret::KeyFile { path, passphrase } => {
            let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                RemoteFsError::Config(format!("option private_key: cannot read {path}: {e}"))
            })?;
            russh::keys::decode_secret_key(&text, passphrase.as_deref())
                .map(Arc::new)
                .map_err(|e| {
                    RemoteFsError::Config(format!("option private_key: {path} is not usable: {e}"))
                })
        }
        Secret::Password(_) => Err(RemoteFsError::Failed("not a key".into())),
    }
}

/// Parses an inline private key (from the `private_key` option) now, so a bad one is a
/// configuration error at construction.
pub fn parse_key(text: &str, passphrase: Option<&str>) -> Result<PrivateKey, StoreError> {
    russh::keys::decode_secret_key(text, passphrase)
        .map_err(|e| invalid(format!("option private_key: not a usable private key: {e}")))
}

/// Connection-level failures are worth another try; protocol ones are not.
fn sort_ssh_error(address: &str, err: russh::Error) -> RemoteFsError {
    use russh::Error as E;
    let message = format!("{address}: {err}");
    match err {
        E::IO(_)
        | E::HUP
        | E::Disconnect
        | E::ConnectionTimeout
        | E::KeepaliveTimeout
        | E::InactivityTimeout
        | E::SendError
        | E::RecvError
        | E::Elapsed(_) => RemoteFsError::Unreachable(message),
        _ => RemoteFsError::Failed(message),
    }
}

/// Accepts the server only when its key is one of the pins; remembers what it presented.
pub struct HostKeyCheck {
    pins: Vec<Pin>,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key: PublicKey = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // A certificate is checked by the key it certifies: no CA is configured.
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone().into(),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let accepted = self.pins.iter().any(|pin| match pin {
            Pin::Key(pinned) => pinned.key_data() == key.key_data(),
            Pin::Fingerprint(pinned) => *pinned == fingerprint,
        });
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(format!("{} {fingerprint}", key.algorithm()));
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0CIaGmIJ0zhr5wR0IsvHHpXr4OZ4ZgcdbplLUJDeTF me@host";

    #[test]
    fn pins_are_keys_known_hosts_lines_or_fingerprints() {
        let pins = parse_pins(&format!(
            "{ED25519}\n[nas]:2222 {}, SHA256:abc+/09",
            ED25519.trim_end_matches(" me@host")
        ))
        .unwrap();
        assert_eq!(pins.len(), 3);
        assert!(matches!(&pins[2], Pin::Fingerprint(f) if f == "SHA256:abc+/09"));
        assert!(parse_pins("SHA256:").is_err());
        assert!(parse_pins("ssh-ed25519 notbase64").is_err());
        assert!(parse_pins("MD5:aa:bb").is_err());
    }
}
