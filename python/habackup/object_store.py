"""The built-in sync agent: backups on S3, GCS, Azure, WebDAV, SFTP, SMB or a folder, moved by
Rust."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import _core
from ._cancel import await_cleanly
from ._core import BackupSyncAgent
from .models import BackupSyncMetadata, SyncedBackup

ProgressCallback = Callable[[int, int], None]
OptionValue = str | int | float | bool


def _option_text(value: OptionValue) -> str:
    # object_store's parsers want "true"/"false", not Python's "True".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
        pairs = [(str(k), _option_text(v)) for k, v in (options or {}).items()]
        self._client = _core.ObjectStoreClient(url, pairs)

    @property
    def url(self) -> str:
        """The store's URL, without credentials or query string."""
        return self._client.url

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
        token = _core.CancelToken()
        future = self._client.upload(
            Path(path),
            dict(metadata) if metadata is not None else None,
            on_progress,
            token,
        )
        await await_cleanly(future, token)

    async def async_download_backup(
        self,
        *,
        id: str,
        path: str | os.PathLike[str],
        on_progress: ProgressCallback | None = None,
        **kwargs: Any,
    ) -> None:
        """Download backup ``id`` to the file ``path``, checked against its size and sha256."""
        token = _core.CancelToken()
        future = self._client.download(id, Path(path), on_progress, token)
        await await_cleanly(future, token)

    async def async_list_backups(self, **kwargs: Any) -> list[SyncedBackup]:
        """Every backup under the prefix, oldest first."""
        listed = await asyncio.ensure_future(self._client.list())
        return [_synced(item) for item in listed]

    async def async_delete_backup(self, *, id: str, **kwargs: Any) -> None:
        """Delete backup ``id`` (its .tar and sidecar); BackupNotFound when neither exists."""
        token = _core.CancelToken()
        await await_cleanly(self._client.delete(id, token), token)


def _synced(item: Mapping[str, Any]) -> SyncedBackup:
    slug = str(item["slug"])
    extra = item.get("extra")
    version = item.get("homeassistant")
    return SyncedBackup(
        id=slug,
        slug=slug,
        name=str(item.get("name", "")),
        date=str(item.get("date", "")),
        size=int(item.get("size", 0)),
        protected=bool(item.get("protected", False)),
        sha256=item.get("sha256"),
        homeassistant_version=str(version) if version else None,
        database_included=bool(item.get("database_included", True)),
        extra_metadata=dict(extra) if isinstance(extra, Mapping) else {},
    )


__all__ = ["ObjectStoreBackupSyncAgent"]
