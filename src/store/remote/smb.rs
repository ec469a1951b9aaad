//! `smb://[domain;]user@host[:port]/share/path`: backups on a Windows share or a NAS, with no
//! mount.
//!
//! Client: `smb2` (pure Rust; SMB 2.0.2 to 3.1.1, no SMB1; NTLMv2; signing, and encryption
//! whenever the server or the share requires it; pipelined, streaming reads and writes that
//! do not borrow the client, so a transfer runs beside listings). Its rival `smb` (smb-rs)
//! has multichannel and QUIC, which a backup does not need, sends one read at a time, and pulls
//! in twice the dependencies (sspi with Kerberos and its HTTP stack). smb2 0.39 is patched in
//! `vendor/smb2` so that Samba agrees to encrypt (see HABACKUP-PATCH.md there).

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use smb2::{ClientConfig, ErrorKind, RenameOptions, SmbClient, Tree};
use tokio::sync::Mutex;

use super::fs::{ByteStream, Entry, RemoteFs, RemoteFsError, RemoteResult, RemoteWriter};

/// Bytes asked for at once in a ranged read; whole-file reads use smb2's own pipelining.
const RANGE_CHUNK: u64 = 1024 * 1024;

pub struct SmbTarget {
    pub host: String,
    pub port: u16,
    pub domain: String,
    pub user: String,
    pub password: String,
    pub share: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "smb://{}@{}:{}/{}",
            self.user, self.host, self.port, self.share
        )
    }
}

pub struct Smb {
    target: SmbTarget,
    conn: Mutex<Option<(SmbClient, Tree)>>,
}

impl std::fmt::Debug for Smb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Smb({:?})", self.target)
    }
}

/// The locked connection: the client and the share's tree.
struct Conn<'a>(tokio::sync::MutexGuard<'a, Option<(SmbClient, Tree)>>);

impl Conn<'_> {
    fn parts(&mut self) -> RemoteResult<(&mut SmbClient, &mut Tree)> {
        match self.0.as_mut() {
            Some((client, tree)) => Ok((client, tree)),
            None => Err(RemoteFsError::Unreachable("not connected".into())),
        }
    }
}

impl Smb {
    pub fn new(target: SmbTarget) -> Smb {
        Smb {
            target,
            conn: Mutex::new(None),
        }
    }

    fn address(&self) -> String {
        if self.target.host.contains(':') {
            format!("[{}]:{}", self.target.host, self.target.port)
        } else {
            format!("{}:{}", self.target.host, self.target.port)
        }
    }

    /// The connection, made when there is none or the last one died.
    async fn conn(&self) -> RemoteResult<Conn<'_>> {
        let mut guard = self.conn.lock().await;
        if guard
            .as_ref()
            .is_some_and(|(client, _)| client.is_disconnected())
        {
            guard.take();
        }
        if guard.is_none() {
            let config = ClientConfig {
                addr: self.address(),
                timeout: self.target.connect_timeout,
                username: self.target.user.clone(),
                password: self.target.password.clone(),
                domain: self.target.domain.clone(),
                // Backups are incompressible; reconnecting is ours to decide (remote_fs.rs).
                compression: false,
                auto_reconnect: false,
                // A NAS share is not a DFS namespace; following referrals sends credentials on.
                dfs_enabled: false,
                // Until logged in; then `timeout` (below).
                response_timeout: Some(self.target.connect_timeout),
                ..Default::default()
            };
            let connecting = async {
                let mut client = SmbClient::connect(config)
                    .await
                    .map_err(|e| self.sort(e, ""))?;
                let tree = client
                    .connect_share(&self.target.share)
                    .await
                    .map_err(|e| self.sort(e, &self.target.share))?;
                client
                    .connection()
                    .set_response_timeout(Some(self.target.timeout));
                Ok::<_, RemoteFsError>((client, tree))
            };
            // A server that accepts and never answers: connect, negotiate, login and tree
            // connect each wait at most connect_timeout, and all of them together a bit more.
            let budget = self.target.connect_timeout * 3;
            let connected = tokio::time::timeout(budget, connecting)
                .await
                .map_err(|_| {
                    RemoteFsError::Unreachable(format!(
                        "cannot connect to {}: no SMB answer in time",
                        self.address()
                    ))
                })??;
            *guard = Some(connected);
        }
        Ok(Conn(guard))
    }

    fn sort(&self, err: smb2::Error, path: &str) -> RemoteFsError {
        let address = self.address();
        let message = if path.is_empty() {
            format!("{address}: {err}")
        } else {
            format!("{address}: {path}: {err}")
        };
        match err.kind() {
            ErrorKind::NotFound => RemoteFsError::NotFound(message),
            ErrorKind::AuthRequired | ErrorKind::GuestSessionRefused => {
                RemoteFsError::Auth(format!(
                    "{address} refused the login of user {:?}: {err}",
                    self.target.user
                ))
            }
            _ if err.is_retryable() => RemoteFsError::Unreachable(message),
            ErrorKind::ConnectionLost | ErrorKind::TimedOut | ErrorKind::SessionExpired => {
                RemoteFsError::Unreachable(message)
            }
            _ => RemoteFsError::Failed(message),
        }
    }
}

fn time(t: smb2::pack::FileTime) -> DateTime<Utc> {
    t.to_system_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default()
}

#[async_trait]
impl RemoteFs for Smb {
    const NAME: &'static str = "SMB";

    async fn reset(&self) {
        self.conn.lock().await.take();
    }

    async fn stat(&self, path: &str) -> RemoteResult<Option<Entry>> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        match client.stat(tree, path).await {
            Ok(info) => Ok(Some(Entry {
                name: path.rsplit('/').next().unwrap_or(path).to_string(),
                size: info.size,
                modified: time(info.modified),
                is_dir: info.is_directory,
            })),
            Err(err) => match self.sort(err, path) {
                RemoteFsError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list_dir(&self, path: &str) -> RemoteResult<Option<Vec<Entry>>> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        match client.list_directory(tree, path).await {
            Ok(entries) => Ok(Some(
                entries
                    .into_iter()
                    .filter(|e| e.name != "." && e.name != "..")
                    .map(|e| Entry {
                        name: e.name,
                        size: e.size,
                        modified: time(e.modified),
                        is_dir: e.is_directory,
                    })
                    .collect(),
            )),
            Err(err) => match self.sort(err, path) {
                RemoteFsError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn read(&self, path: &str, range: Range<u64>) -> RemoteResult<ByteStream> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        let address = self.address();
        let owned = path.to_string();
        let sort =
            move |err: smb2::Error| RemoteFsError::Failed(format!("{address}: {owned}: {err}"));
        if range.start == 0 && range.end > 4 * RANGE_CHUNK {
            // Likely the whole file (a download): smb2 keeps a window of reads in flight.
            let download = client
                .open_file_download(tree, path)
                .await
                .map_err(|e| self.sort(e, path))?;
            if download.size() == range.end {
                let chunks = stream::unfold(download, |mut download| async move {
                    let chunk = download.next_chunk().await?;
                    Some((chunk, download))
                });
                return Ok(chunks
                    .map(move |chunk| chunk.map(Bytes::from).map_err(&sort))
                    .boxed());
            }
        }
        let reader = std::sync::Arc::new(
            client
                .open_file_reader(tree, path)
                .await
                .map_err(|e| self.sort(e, path))?,
        );
        let end = range.end;
        let reads = stream::iter((range.start..range.end).step_by(RANGE_CHUNK as usize)).then(
            move |offset| {
                let (reader, sort) = (reader.clone(), sort.clone());
                async move {
                    reader
                        .read_at(offset, RANGE_CHUNK.min(end - offset))
                        .await
                        .map(Bytes::from)
                        .map_err(sort)
                }
            },
        );
        Ok(reads.boxed())
    }

    async fn create(&self, path: &str) -> RemoteResult<Box<dyn RemoteWriter>> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        let writer = client
            .create_file_writer(tree, path)
            .await
            .map_err(|e| self.sort(e, path))?;
        Ok(Box::new(SmbWriter {
            writer,
            what: format!("{}: {path}", self.address()),
        }))
    }

    async fn mkdir(&self, path: &str) -> RemoteResult<()> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        client
            .create_directory(tree, path)
            .await
            .map_err(|e| self.sort(e, path))
    }

    async fn rename_over(&self, from: &str, to: &str) -> RemoteResult<()> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        client
            .rename_with(tree, from, to, RenameOptions::new().replace_if_exists(true))
            .await
            .map_err(|e| self.sort(e, to))
    }

    async fn remove(&self, path: &str) -> RemoteResult<bool> {
        let mut conn = self.conn().await?;
        let (client, tree) = conn.parts()?;
        match client.delete_file(tree, path).await {
            Ok(()) => Ok(true),
            Err(err) => match self.sort(err, path) {
                RemoteFsError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }
}

struct SmbWriter {
    writer: smb2::FileWriter,
    what: String,
}

impl SmbWriter {
    fn sort(&self, err: smb2::Error) -> RemoteFsError {
        let message = format!("{}: {err}", self.what);
        if err.is_retryable() || err.kind() == ErrorKind::ConnectionLost {
            RemoteFsError::Unreachable(message)
        } else {
            RemoteFsError::Failed(message)
        }
    }
}

#[async_trait]
impl RemoteWriter for SmbWriter {
    async fn write(&mut self, data: Bytes) -> RemoteResult<()> {
        let written = self.writer.write_chunk(&data).await;
        written.map_err(|e| self.sort(e))
    }

    async fn finish(self: Box<Self>) -> RemoteResult<()> {
        let SmbWriter { writer, what } = *self;
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| RemoteFsError::Failed(format!("{what}: {e}")))
    }

    async fn abandon(self: Box<Self>) {
        let _ = self.writer.abort().await;
    }
}
