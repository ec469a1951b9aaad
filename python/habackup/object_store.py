"""The built-in sync agent: backups on S3, GCS, Azure, WebDAV, SFTP, SMB or a folder, moved by
Rust."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import Any

from . import _core
from ._cancel import await_cleanly
from ._core import Backup, BackupSyncAgent
from .models import BackupSyncMetadata, SyncedBackup

ProgressCallback = Callable[[int, int], None]
OptionValue = str | int | float | bool


def _option_text(value: OptionValue) -> str:
    # object_store's parsers want "true"/"false", not Python's "True".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def option_pairs(options: Mapping[str, OptionValue] | None) -> list[tuple[str, str]]:
    """Store options as the engine takes them: ``(key, text)`` pairs."""
    return [(str(k), _option_text(v)) for k, v in (options or {}).items()]


class ObjectStoreBackupSyncAgent(BackupSyncAgent):
    """A sync agent whose uploads, downloads, listings and deletes run in Rust on object_store.

    ``url`` picks the store: ``file:///dir``, ``memory://``, ``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``az://container/prefix``, ``http(s)://host/path`` (WebDAV; basic
    auth from the URL's userinfo), ``sftp://user@host[:port]/path`` (options ``password`` or
    ``private_key``, a path or the key itself, ``private_key_passphrase``, and ``host_key``,
    the server's public-key line or ``SHA256:`` fingerprint, required) or
    ``smb://[domain;]user@host[:port]/share/path`` (option ``password``; the URL's userinfo
    works too). ``options`` are object_store's keys for that store
    (``aws_endpoint``, ``aws_allow_http``, ``azure_storage_account_key``, ...) plus habackup's:
    ``multipart_threshold``, ``part_size``, ``max_concurrency``, ``max_retries``,
    ``retry_timeout``, ``retry_backoff``, ``timeout``, ``connect_timeout``. An unknown key or a
    malformed URL raises :class:`~habackup.errors.BackupAgentConfigError` here, not later.

    Backups are stored as ``<prefix>/<slug>.tar`` plus ``<prefix>/<slug>.metadata.json``; the
    id of each copy is its slug.
    """

    # The manager passes ``on_progress`` to uploads of agents that say they take it.
    accepts_upload_progress = True

    def __init__(
        self, name: str, url: str, *, options: Mapping[str, OptionValue] | None = None
    ) -> None:
        super().__init__(name)
        self._client = _core.ObjectStoreClient(url, option_pairs(options))

    @property
    def url(self) -> str:
        """The store's URL, without credentials or query string."""
        return self._client.url

    @property
    def kind(self) -> str:
        """Which store the URL names: ``"file"``, ``"memory"``, ``"s3"``, ``"gs"``, ``"az"`` or
        ``"webdav"``."""
        return self._client.kind

    @property
    def local_dir(self) -> Path | None:
        """The folder of a ``file://`` store (None for the others). The agent lists a missing
        folder as holding no backups, as a store nothing was uploaded to yet; this tells the
        two apart."""
        return self._client.local_dir

    def __repr__(self) -> str:
        # Also when __init__ failed half way (a debugger or a traceback may still show us).
        client = getattr(self, "_client", None)
        url = client.url if client is not None else None
        return f"<{type(self).__name__} name={self.name!r} url={url!r}>"

    async def async_upload_backup(
        self,
        *,
        path: str | os.PathLike[str],
        metadata: BackupSyncMetadata | None = None,
        on_progress: ProgressCallback | None = None,
        **kwargs: Any,
    ) -> None:
        """Upload the backup at ``path``; without ``metadata`` it is read from the file.

        ``on_progress(bytes_done, bytes_total)`` is called on the event loop's thread.
        """
        await self._upload(path, metadata, on_progress)

    async def _upload(
        self,
        path: str | os.PathLike[str],
        metadata: BackupSyncMetadata | None,
        on_progress: ProgressCallback | None,
    ) -> SyncedBackup:
        """The upload, returning the copy as stored (sha256 included), for the command line."""
        token = _core.CancelToken()
        future = self._client.upload(
            Path(path),
            dict(metadata) if metadata is not None else None,
            on_progress,
            token,
        )
        return _synced(await await_cleanly(future, token))

    async def async_upload_stream(
        self,
        *,
        stream: AsyncIterable[bytes],
        metadata: BackupSyncMetadata,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Upload a backup whose bytes come from ``stream``, with no temp file.

        ``metadata`` must name the ``slug``; with a ``size`` a stream of any other length fails
        the upload and nothing is stored. Chunks are pulled as the store takes them (memory stays
        near ``part_size * (max_concurrency + 1)``); an exception from the stream fails the
        upload as it is. ``on_progress(bytes_done, bytes_total)`` counts the bytes the store has
        acknowledged and runs on the event loop's thread.
        """
        token = _core.CancelToken()
        future = self._client.upload_stream(dict(metadata), stream, on_progress, token)
        await await_cleanly(future, token)

    async def async_open_download(self, *, id: str) -> _core.DownloadStream:
        """Backup ``id`` as an async iterator of chunks, checked as they arrive.

        The stored size and sha256 are checked at the end: a copy that differs raises
        :class:`~habackup.errors.BackupAgentError` before the iteration ends. ``aclose()`` stops
        the transfer (a caller that only wants the first bytes pays for no more).
        """
        return await asyncio.ensure_future(self._client.open_download(id))

    async def async_download_backup(
        self,
        *,
        id: str,
        path: str | os.PathLike[str],
        on_progress: ProgressCallback | None = None,
        **kwargs: Any,
    ) -> None:
        """Download backup ``id`` to the file ``path``, checked against its size and sha256.

        A missing directory of ``path`` is created, and removed again if the download fails.
        """
        await self._download(id, path, on_progress)

    async def _download(
        self, id: str, path: str | os.PathLike[str], on_progress: ProgressCallback | None
    ) -> Backup:
        """The download, returning the backup it wrote, for the command line."""
        token = _core.CancelToken()
        future = self._client.download(id, Path(path), on_progress, token)
        return await await_cleanly(future, token)

    async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
        """Every backup under the prefix, oldest first."""
        listed = await asyncio.ensure_future(self._client.list())
        return [_synced(item) for item in listed]

    async def async_delete_backup(self, *, id: str, **kwargs: Any) -> None:
        """Delete backup ``id`` (its .tar and sidecar); BackupNotFound when neither exists."""
        token = _core.CancelToken()
        await await_cleanly(self._client.delete(id, token), token)


def _synced(item: Mapping[str, Any]) -> SyncedBackup:
    # A sidecar, or a .tar's own backup.json; either way the copy's id is its slug.
    return SyncedBackup.from_metadata(item)


__all__ = ["ObjectStoreBackupSyncAgent"]
