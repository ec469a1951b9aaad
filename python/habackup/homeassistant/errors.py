"""Only Home Assistant's ``BackupAgentError`` family leaves the adapter: the one mapping."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from .._core import BackupSyncAgent
from ..errors import BackupAgentUnreachableError, BackupError, BackupNotFound
from ._hass import (
    HassBackupAgentError,
    HassBackupAgentUnreachableError,
    HassBackupError,
    HassBackupNotFound,
)

_LOGGER = logging.getLogger(__package__)
_T = TypeVar("_T")


@contextmanager
def hass_errors(sync_agent: BackupSyncAgent, action: str, temp_dir: Path) -> Iterator[None]:
    """Turn every failure of ``sync_agent`` into one of the Home Assistant errors its manager
    expects. ``temp_dir`` is where the adapter's own temp files go (named instead of a temp
    file in messages)."""
    agent = sync_agent.name
    try:
        yield
    except HassBackupError:
        # Home Assistant's own: ours (BackupNotFound from a lookup, a limit), or raised by its
        # stream (its manager handles a BackupReaderWriterError itself).
        raise
    except BackupNotFound as err:
        raise HassBackupNotFound(str(err)) from err
    except BackupAgentUnreachableError as err:
        raise HassBackupAgentUnreachableError(str(err)) from err
    except BackupError as err:
        raise HassBackupAgentError(str(err)) from err
    except NotImplementedError as err:
        # The BackupSyncAgent base raises this for a method a subclass left out.
        raise HassBackupAgentError(f"{agent} does not support {action}") from err
    except TimeoutError as err:  # before OSError, its base class
        raise HassBackupAgentError(f"{agent}: {action} timed out") from err
    except OSError as err:
        # The sync agent's: a full or read-only disk, a permission. Its file, if it names one
        # (the temp file we gave it is named by its folder).
        where = _folder_of(err, temp_dir)
        raise HassBackupAgentError(
            f"{agent}: {action} failed: {reason(err)}" + (f" ({where})" if where else "")
        ) from err
    except Exception as err:
        # A bug in a sync agent: Home Assistant logs agent errors without a traceback.
        _LOGGER.exception("Unexpected error in %r during %s", sync_agent, action)
        raise HassBackupAgentError(
            f"{agent}: {action} failed: {type(err).__name__}: {err}"
        ) from err


async def temp_io(agent: str, action: str, temp_dir: Path, io: Awaitable[_T]) -> _T:
    """Await file I/O on the adapter's own temp files: a full disk there is named by the folder
    (a failing write names no file)."""
    try:
        return await io
    except OSError as err:
        raise HassBackupAgentError(
            f"{agent}: {action} failed: {reason(err)} (temp files in {temp_dir})"
        ) from err


def reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _folder_of(err: OSError, temp_dir: Path) -> str | None:
    """The folder to name for a failed file operation: ours for a temp file, else the file's."""
    if err.filename is None:
        return None
    path = Path(str(err.filename))
    if path.parent == temp_dir and path.name.startswith("habackup-"):
        return str(temp_dir)
    return str(path)
