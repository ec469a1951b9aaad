//! `sftp://user@host[:port]/path`: backups on any SSH server, over one SSH connection.
//!
//! Client: `russh-sftp` (pure Rust, on `russh`; see `ssh.rs` for the SSH side) through its raw
//! request API, so that this module decides how many reads and writes are in flight (bounded
//! memory, a busy link) and can use OpenSSH's `posix-rename` and `limits` extensions.
//!
//! The URL's path is absolute (`sftp://nas/volume1/backups`); `sftp://nas/~/backups` is relative
//! to the user's home folder.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use russh::client::Handle;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::sync::Mutex;

use super::fs::{ByteStream, Entry, RemoteFs, RemoteFsError, RemoteResult, RemoteWriter};
use super::ssh::{HostKeyCheck, SshTarget};

/// Requests in flight per transfer: 16 of up to 255 KiB keep a LAN busy in 4 MiB.
const IN_FLIGHT: usize = 16;
/// What every SFTP server must accept in one read or write (draft-ietf-secsh-filexfer-02).
const MIN_IO: u64 = 32 * 1024;
/// OpenSSH's own limit, used when the server announces a larger one or none.
const MAX_IO: u64 = 255 * 1024;

#[derive(Debug)]
pub struct Sftp {
    target: SshTarget,
    /// "/" for absolute URL paths, "" for paths under the home folder.
    root: &'static str,
    conn: Mutex<Option<Arc<Conn>>>,
}

struct Conn {
    /// Kept so the SSH connection lives as long as the SFTP channel.
    ssh: Handle<HostKeyCheck>,
    sftp: Arc<RawSftpSession>,
    posix_rename: bool,
    read_len: u32,
    write_len: usize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conn")
    }
}

impl Sftp {
    pub fn new(target: SshTarget, home_relative: bool) -> Sftp {
        Sftp {
            target,
            root: if home_relative { "" } else { "/" },
            conn: Mutex::new(None),
        }
    }

    fn full(&self, path: &str) -> String {
        match (self.root, path) {
            ("", "") => ".".into(),
            (root, path) => format!("{root}{path}"),
        }
    }

    async fn conn(&self) -> RemoteResult<Arc<Conn>> {
        let mut cached = self.conn.lock().await;
        if let Some(conn) = cached.as_ref() {
            if !conn.ssh.is_closed() {
                return Ok(conn.clone());
            }
        }
        let (ssh, stream) = self.target.connect().await?;
        let config = russh_sftp::client::Config {
            request_timeout_secs: self.target.timeout.as_secs().max(1),
            ..Default::default()
        };
        let mut sftp = RawSftpSession::new_with_config(stream, config);
        let version = sftp.init().await.map_err(|e| self.sort(e, "SFTP"))?;
        let has = |name: &str| version.extensions.contains_key(name);
        let (mut read_len, mut write_len) = (MAX_IO, MAX_IO);
        if has("limits@openssh.com") {
            let limits = sftp.limits().await.map_err(|e| self.sort(e, "SFTP"))?;
            if limits.max_read_len > 0 {
                read_len = limits.max_read_len.clamp(MIN_IO, MAX_IO);
            }
            if limits.max_write_len > 0 {
                write_len = limits.max_write_len.clamp(MIN_IO, MAX_IO);
            }
            sftp.set_limits(limits.into());
        } else {
            (read_len, write_len) = (MIN_IO, MIN_IO);
        }
        let conn = Arc::new(Conn {
            ssh,
            sftp: Arc::new(sftp),
            posix_rename: has("posix-rename@openssh.com"),
            read_len: read_len as u32,
            write_len: write_len as usize,
        });
        *cached = Some(conn.clone());
        Ok(conn)
    }

    fn sort(&self, err: SftpError, path: &str) -> RemoteFsError {
        sort(
            &format!("{}:{}", self.target.host, self.target.port),
            err,
            path,
        )
    }
}

/// Status codes are the server's answer; anything else means the channel is gone.
fn sort(address: &str, err: SftpError, path: &str) -> RemoteFsError {
    match &err {
        SftpError::Status(status) => {
            let message = format!("{address}: {path}: {err}");
            match status.status_code {
                StatusCode::NoSuchFile => RemoteFsError::NotFound(message),
                StatusCode::NoConnection | StatusCode::ConnectionLost => {
                    RemoteFsError::Unreachable(message)
                }
                _ => RemoteFsError::Failed(message),
            }
        }
        SftpError::Limited(_) | SftpError::UnexpectedPacket => {
            RemoteFsError::Failed(format!("{address}: {path}: {err}"))
        }
        SftpError::Timeout => RemoteFsError::Unreachable(format!(
            "{address}: {path}: the server did not answer in time"
        )),
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => RemoteFsError::Unreachable(format!(
            "{address}: {path}: the connection was lost ({err})"
        )),
    }
}

fn entry(name: String, attrs: &FileAttributes) -> Entry {
    Entry {
        name,
        size: attrs.size.unwrap_or(0),
        modified: attrs
            .mtime
            .and_then(|t| DateTime::<Utc>::from_timestamp(i64::from(t), 0))
            .unwrap_or_default(),
        is_dir: attrs.is_dir(),
    }
}

/// An SSH string: u32 length, then the bytes.
fn ssh_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

#[async_trait]
impl RemoteFs for Sftp {
    const NAME: &'static str = "SFTP";

    async fn reset(&self) {
        self.conn.lock().await.take();
    }

    async fn stat(&self, path: &str) -> RemoteResult<Option<Entry>> {
        let conn = self.conn().await?;
        let full = self.full(path);
        match conn.sftp.stat(full.as_str()).await {
            Ok(attrs) => Ok(Some(entry(path.to_string(), &attrs.attrs))),
            Err(err) => match self.sort(err, &full) {
                RemoteFsError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list_dir(&self, path: &str) -> RemoteResult<Option<Vec<Entry>>> {
        let conn = self.conn().await?;
        let full = self.full(path);
        let handle = match conn.sftp.opendir(full.as_str()).await {
            Ok(handle) => handle.handle,
            Err(err) => {
                return match self.sort(err, &full) {
                    RemoteFsError::NotFound(_) => Ok(None),
                    other => Err(other),
                }
            }
        };
        let mut entries = Vec::new();
        let read = loop {
            match conn.sftp.readdir(handle.as_str()).await {
                Ok(name) => entries.extend(
                    name.files
                        .into_iter()
                        .filter(|f| f.filename != "." && f.filename != "..")
                        .map(|f| entry(f.filename, &f.attrs)),
                ),
                Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => {
                    break Ok(())
                }
                Err(err) => break Err(self.sort(err, &full)),
            }
        };
        let _ = conn.sftp.close(handle).await;
        read.map(|()| Some(entries))
    }

    async fn read(&self, path: &str, range: Range<u64>) -> RemoteResult<ByteStream> {
        let conn = self.conn().await?;
        let full = self.full(path);
        let handle = conn
            .sftp
            .open(full.as_str(), OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| self.sort(e, &full))?
            .handle;
        let guard = Arc::new(OpenHandle {
            sftp: conn.sftp.clone(),
            handle,
        });
        let address = format!("{}:{}", self.target.host, self.target.port);
        let len = u64::from(conn.read_len);
        let offsets = (range.start..range.end).step_by(len as usize);
        let end = range.end;
        let reads = stream::iter(offsets).map(move |offset| {
            let guard = guard.clone();
            let (address, full) = (address.clone(), full.clone());
            async move {
                // One chunk, asked again for what a short read left out.
                let want = len.min(end - offset);
                let mut chunk = Vec::with_capacity(want as usize);
                while (chunk.len() as u64) < want {
                    let at = offset + chunk.len() as u64;
                    let missing = (want - chunk.len() as u64) as u32;
                    match guard.sftp.read(guard.handle.as_str(), at, missing).await {
                        Ok(data) if !data.data.is_empty() => chunk.extend_from_slice(&data.data),
                        Ok(_) => break,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                        Err(err) => return Err(sort(&address, err, &full)),
                    }
                }
                Ok(Bytes::from(chunk))
            }
        });
        Ok(reads.buffered(IN_FLIGHT).boxed())
    }

    async fn create(&self, path: &str) -> RemoteResult<Box<dyn RemoteWriter>> {
        let conn = self.conn().await?;
        let full = self.full(path);
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
        let handle = conn
            .sftp
            .open(full.as_str(), flags, FileAttributes::empty())
            .await
            .map_err(|e| self.sort(e, &full))?
            .handle;
        Ok(Box::new(SftpWriter {
            address: format!("{}:{}", self.target.host, self.target.port),
            path: full,
            handle: Arc::new(OpenHandle {
                sftp: conn.sftp.clone(),
                handle,
            }),
            write_len: conn.write_len,
            offset: 0,
            in_flight: VecDeque::new(),
        }))
    }

    async fn mkdir(&self, path: &str) -> RemoteResult<()> {
        let conn = self.conn().await?;
        let full = self.full(path);
        conn.sftp
            .mkdir(full.as_str(), FileAttributes::empty())
            .await
            .map(|_| ())
            .map_err(|e| self.sort(e, &full))
    }

    async fn rename_over(&self, from: &str, to: &str) -> RemoteResult<()> {
        let conn = self.conn().await?;
        let (from, to) = (self.full(from), self.full(to));
        if conn.posix_rename {
            // rename(2) on the server: replaces `to` in one step.
            let mut data = Vec::new();
            ssh_string(&mut data, &from);
            ssh_string(&mut data, &to);
            return match conn.sftp.extended("posix-rename@openssh.com", data).await {
                Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(Packet::Status(s)) => Err(self.sort(SftpError::Status(s), &to)),
                Ok(_) => Err(self.sort(SftpError::UnexpectedPacket, &to)),
                Err(err) => Err(self.sort(err, &to)),
            };
        }
        // Plain SFTP renames refuse an existing target: remove it first.
        match conn.sftp.remove(to.as_str()).await {
            Ok(_) => {}
            Err(err) => match self.sort(err, &to) {
                RemoteFsError::NotFound(_) => {}
                other => return Err(other),
            },
        }
        conn.sftp
            .rename(from.as_str(), to.as_str())
            .await
            .map(|_| ())
            .map_err(|e| self.sort(e, &to))
    }

    async fn remove(&self, path: &str) -> RemoteResult<bool> {
        let conn = self.conn().await?;
        let full = self.full(path);
        match conn.sftp.remove(full.as_str()).await {
            Ok(_) => Ok(true),
            Err(err) => match self.sort(err, &full) {
                RemoteFsError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }
}

/// A file handle, closed when the last reference goes (a download dropped half way).
struct OpenHandle {
    sftp: Arc<RawSftpSession>,
    handle: String,
}

impl Drop for OpenHandle {
    fn drop(&mut self) {
        let (sftp, handle) = (self.sftp.clone(), std::mem::take(&mut self.handle));
        if handle.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = sftp.close(handle).await;
            });
        }
    }
}

type WriteAck = tokio::task::JoinHandle<Result<(), SftpError>>;

/// Writes at increasing offsets with up to `IN_FLIGHT` requests unanswered.
struct SftpWriter {
    address: String,
    path: String,
    handle: Arc<OpenHandle>,
    write_len: usize,
    offset: u64,
    in_flight: VecDeque<WriteAck>,
}

impl SftpWriter {
    async fn settle_one(&mut self) -> RemoteResult<()> {
        let Some(ack) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match ack.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(sort(&self.address, err, &self.path)),
            Err(join) => Err(RemoteFsError::Failed(format!("{}: {join}", self.path))),
        }
    }
}

#[async_trait]
impl RemoteWriter for SftpWriter {
    async fn write(&mut self, data: Bytes) -> RemoteResult<()> {
        for piece in data.chunks(self.write_len) {
            while self.in_flight.len() >= IN_FLIGHT {
                self.settle_one().await?;
            }
            let handle = self.handle.clone();
            let (offset, piece) = (self.offset, piece.to_vec());
            self.offset += piece.len() as u64;
            // Spawned so the request is sent now, while earlier ones are still unanswered.
            self.in_flight.push_back(tokio::spawn(async move {
                handle
                    .sftp
                    .write(handle.handle.as_str(), offset, piece)
                    .await
                    .map(|_| ())
            }));
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> RemoteResult<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        // Every write task is done, so the handle is ours alone; if not, it closes on drop.
        let Some(handle) = Arc::get_mut(&mut self.handle).map(|h| std::mem::take(&mut h.handle))
        else {
            return Ok(());
        };
        // Closing is where some servers report a failed write (a full disk over NFS).
        self.handle
            .sftp
            .close(handle)
            .await
            .map(|_| ())
            .map_err(|e| sort(&self.address, e, &self.path))
    }

    async fn abandon(mut self: Box<Self>) {
        for ack in self.in_flight.drain(..) {
            ack.abort();
        }
    }
}
