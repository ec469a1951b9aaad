"""Home Assistant's names, when a Home Assistant the adapter supports is installed.

Without one (or with one older than 2025.4) the names are placeholders, so that
``import habackup.homeassistant`` works everywhere (docs, stubtest, a CLI without Home
Assistant); only building an agent needs the real thing, and ``require_home_assistant`` says
why it cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

MINIMUM_HOME_ASSISTANT = (2025, 4)
"""The oldest Home Assistant release the adapter runs on: the first whose manager and HTTP views
treat ``BackupNotFound`` as "not here" rather than as an agent error."""

# Why the adapter cannot run here (no Home Assistant, or one that is too old), if it cannot.
_unsupported: str | None = None
_import_error: ImportError | None = None

if TYPE_CHECKING:
    # Home Assistant needs Python 3.13+ and is not in the main test venv: there its names are Any
    # (hence the ignores, silent where it is installed). tests/homeassistant runs the real thing.
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        AddonInfo,
        AgentBackup,
        BackupAgent,
        Folder,
    )
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        BackupAgentError as HassBackupAgentError,
    )
    from homeassistant.components.backup import (  # type: ignore[import-not-found, unused-ignore]
        BackupNotFound as HassBackupNotFound,
    )
    from homeassistant.components.backup.agent import (  # type: ignore[import-not-found, unused-ignore]
        BackupAgentUnreachableError as HassBackupAgentUnreachableError,
    )
    from homeassistant.components.backup.models import (  # type: ignore[import-not-found, unused-ignore]
        BackupError as HassBackupError,
    )
    from homeassistant.config_entries import (  # type: ignore[import-not-found, unused-ignore]
        ConfigEntry,
    )
    from homeassistant.core import (  # type: ignore[import-not-found, unused-ignore]
        HomeAssistant,
        valid_domain,
    )
    from homeassistant.helpers import frame  # type: ignore[import-not-found, unused-ignore]
else:
    try:
        from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
        from homeassistant.const import __version__ as _found_version
    except ImportError as err:
        _import_error = err
        _unsupported = f"habackup.homeassistant needs Home Assistant 2025.4 or newer: {err}"
    else:
        if (MAJOR_VERSION, MINOR_VERSION) < MINIMUM_HOME_ASSISTANT:
            _unsupported = (
                "habackup.homeassistant needs Home Assistant 2025.4 or newer; "
                f"this is Home Assistant {_found_version}"
            )
    if _unsupported is None:
        from homeassistant.components.backup import AddonInfo, AgentBackup, BackupAgent, Folder
        from homeassistant.components.backup import BackupAgentError as HassBackupAgentError
        from homeassistant.components.backup import BackupNotFound as HassBackupNotFound
        from homeassistant.components.backup.agent import (
            BackupAgentUnreachableError as HassBackupAgentUnreachableError,
        )
        from homeassistant.components.backup.models import BackupError as HassBackupError
        from homeassistant.config_entries import ConfigEntry
        from homeassistant.core import HomeAssistant, valid_domain
        from homeassistant.helpers import frame
    else:

        class BackupAgent:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                require_home_assistant()

        AddonInfo = AgentBackup = ConfigEntry = Folder = HomeAssistant = None
        frame = valid_domain = None
        HassBackupAgentError = HassBackupNotFound = HassBackupAgentUnreachableError = None
        HassBackupError = None


def require_home_assistant() -> None:
    """Raise the ``ImportError`` saying why the adapter cannot run here, if it cannot."""
    if _unsupported is not None:
        raise ImportError(_unsupported) from _import_error


__all__ = [
    "MINIMUM_HOME_ASSISTANT",
    "AddonInfo",
    "AgentBackup",
    "BackupAgent",
    "ConfigEntry",
    "Folder",
    "HassBackupAgentError",
    "HassBackupAgentUnreachableError",
    "HassBackupError",
    "HassBackupNotFound",
    "HomeAssistant",
    "frame",
    "require_home_assistant",
    "valid_domain",
]
