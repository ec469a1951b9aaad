//! Verification where a backup is stored: its bytes streamed through the sha256 and, when asked,
//! through the whole decoder (secretstream MACs and FINAL tag, gzip CRC, tar structure), with
//! nothing written to disk. A stored object and a folder's file go through the same check; only
//! where the bytes come from, and what was promised about them, differ.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::error::StoreError;
use super::source::Source;
use super::{Progress, StoreAgent};
use crate::archive::{read_backup_json, verify_stream, ArchiveError, CancelToken, VerifyReport};

/// backup.json is read from the first bytes.
const HEAD: usize = 64 * 1024;

/// What verifying one stored backup found.
#[derive(Debug, Clone, Default)]
pub struct StoredCheck {
    pub slug: String,
    /// The stored size and the sha256 checked against (a store's sidecar) or computed (a folder).
    pub size: u64,
    pub sha256: Option<String>,
    /// What is wrong with the stored copy (empty: it is good).
    pub problems: Vec<String>,
    /// What could not be checked, or is odd without being wrong.
    pub warnings: Vec<String>,
    /// The full decode's figures (`deep` only, when it got through).
    pub decoded: Option<VerifyReport>,
    /// `deep` stopped at the password: the contents were not checked. The copy may be sound
    /// (a backup encrypted with another password), unlike the other problems.
    pub password_incorrect: bool,
}

/// How to check one backup's bytes.
pub struct Checking<'a> {
    pub slug: &'a str,
    /// Names the backup in problems.
    pub shown: PathBuf,
    pub deep: bool,
    pub password: Option<String>,
    pub progress: Option<Progress>,
    pub cancel: &'a CancelToken,
}

/// Reads the chunks a channel brings, on a blocking thread.
struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn problem(err: &ArchiveError) -> String {
    match err {
        ArchiveError::IncorrectPassword { reason, .. }
        | ArchiveError::InvalidBackup { reason, .. }
        | ArchiveError::Unsupported { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

impl StoredCheck {
    /// Records what the full decode failed on.
    pub fn record(&mut self, err: &ArchiveError) {
        self.password_incorrect |= matches!(err, ArchiveError::IncorrectPassword { .. });
        self.problems.push(problem(err));
    }
}

impl Checking<'_> {
    /// Streams `chunks` (a verified download: a mismatch is its last item, `Failed`) through
    /// backup.json's check and, when deep, the decoder; what is wrong goes into `check`.
    async fn run<S>(self, mut chunks: S, check: &mut StoredCheck) -> Result<(), StoreError>
    where
        S: Stream<Item = Result<Bytes, StoreError>> + Unpin,
    {
        let cancel = self.cancel;
        let (tx, decoder) = if self.deep {
            let (tx, rx) = mpsc::channel::<Bytes>(4);
            let (shown, cancel, password) = (self.shown.clone(), cancel.clone(), self.password);
            let decoder = tokio::task::spawn_blocking(move || {
                let reader = ChunkReader {
                    rx,
                    current: Bytes::new(),
                };
                verify_stream(reader, &shown, password.as_deref(), &cancel)
            });
            (Some(tx), Some(decoder))
        } else {
            (None, None)
        };
        let mut head = Vec::with_capacity(HEAD);
        let total = check.size;
        let progress = self.progress;
        let streamed = cancel
            .run(async {
                let mut tx = tx;
                let mut done = 0u64;
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    if head.len() < HEAD {
                        let room = HEAD - head.len();
                        head.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    }
                    done += chunk.len() as u64;
                    // A decoder that stopped has its verdict; the digest still wants the rest.
                    if let Some(sender) = &tx {
                        if sender.send(chunk).await.is_err() {
                            tx = None;
                        }
                    }
                    if let Some(progress) = &progress {
                        progress(done, total);
                    }
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        match streamed {
            Ok(()) => {}
            Err(StoreError::Failed(message)) => check.problems.push(message),
            Err(err) => return Err(err),
        }
        match read_backup_json(Cursor::new(&head), &self.shown) {
            Ok(info) if info.slug != self.slug => check
                .problems
                .push(format!("its backup.json names backup {}", info.slug)),
            Ok(_) => {}
            Err(err) => check.problems.push(problem(&err)),
        }
        if let Some(decoder) = decoder {
            let decoded = decoder
                .await
                .map_err(|e| StoreError::Failed(format!("verify task failed: {e}")))?;
            match decoded {
                Ok(report) => check.decoded = Some(report),
                Err(ArchiveError::Cancelled) => return Err(StoreError::Cancelled),
                Err(err) => check.record(&err),
            }
        }
        Ok(())
    }
}

impl StoreAgent {
    /// Verifies backup `slug` where it is stored: quick (size, sha256 and backup.json) or, with
    /// `deep`, every byte decoded too (`password` for a protected backup). `NotFound` when there
    /// is no such backup; a damaged one is a result with problems, not an error.
    pub async fn verify(
        &self,
        slug: &str,
        deep: bool,
        password: Option<String>,
        progress: Option<Progress>,
        cancel: &CancelToken,
    ) -> Result<StoredCheck, StoreError> {
        let download = cancel.run(self.open_download(slug)).await??;
        let mut check = StoredCheck {
            slug: slug.to_string(),
            size: download.size,
            sha256: download.sha256.clone(),
            ..StoredCheck::default()
        };
        if check.sha256.is_none() {
            check
                .warnings
                .push("no sha256 recorded (no sidecar): checked against its size only".into());
        }
        let checking = Checking {
            slug,
            shown: PathBuf::from(self.describe(&Self::tar_name(slug))),
            deep,
            password,
            progress,
            cancel,
        };
        checking.run(download, &mut check).await?;
        Ok(check)
    }
}

/// Verifies a backup file of `size` bytes at `path` (a folder's, or a copy an agent wrote to a
/// temp file), where nothing records a digest: read whole, its sha256 computed and reported,
/// its size and backup.json checked and, when deep, every byte decoded.
pub async fn verify_file(
    checking: Checking<'_>,
    path: &Path,
    size: u64,
) -> Result<StoredCheck, StoreError> {
    let mut source = Source::File {
        path: path.to_path_buf(),
        size,
    };
    let Some(mut reader) = source.open(None, checking.cancel) else {
        return Err(StoreError::Failed(format!(
            "{}: cannot read",
            path.display()
        )));
    };
    let mut check = StoredCheck {
        slug: checking.slug.to_string(),
        size,
        ..StoredCheck::default()
    };
    let chunks = std::mem::replace(&mut reader.chunks, mpsc::channel(1).1);
    let stream = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok(chunk), rx))
    });
    let checked = checking.run(Box::pin(stream), &mut check).await;
    // The reader's verdict explains a short stream: the file changed size, or could not be read.
    let (_, sha256) = reader.finish().await?;
    checked?;
    check.sha256 = Some(sha256);
    Ok(check)
}
