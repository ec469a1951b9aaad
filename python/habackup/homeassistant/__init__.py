"""Hand any habackup sync agent to Home Assistant's own backup manager (Home Assistant 2025.4+).

Home Assistant asks an integration's ``backup`` platform for
``homeassistant.components.backup.BackupAgent`` objects, which move bytes as async streams and
name backups by their ``backup_id`` (the slug). habackup's agents move files or streams. This
adapter sits between the two::

    from habackup import ObjectStoreBackupSyncAgent
    from habackup.homeassistant import HabackupBackupAgent

    async def async_get_backup_agents(hass: HomeAssistant) -> list[BackupAgent]:
        nas = ObjectStoreBackupSyncAgent("nas", "file:///mnt/nas/ha-backups")
        return [HabackupBackupAgent(hass, nas, domain=DOMAIN)]   # agent id: "<domain>.nas"

The object-store agent takes Home Assistant's stream as it comes and streams downloads back
(``streams``): no temp copy either way. A plain Python sync agent, which moves files, gets a
temp file in Home Assistant's ``tmp_backups`` (``spool``). Every field of Home Assistant's
``AgentBackup`` goes to the sync agent in its metadata and comes back from listings
(``metadata``). ``Limits`` bounds how long the adapter waits on a sync agent (``limits``); only
Home Assistant's ``BackupAgentError`` family leaves it (``errors``). ``BackupAgentListeners``
reloads an integration's agents (``listeners``).

Importing this package never needs Home Assistant; constructing the agent does.
"""

from ._hass import MINIMUM_HOME_ASSISTANT
from .agent import HabackupBackupAgent
from .limits import Limits
from .listeners import BackupAgentListeners
from .streams import OnProgress

__all__ = [
    "MINIMUM_HOME_ASSISTANT",
    "BackupAgentListeners",
    "HabackupBackupAgent",
    "Limits",
    "OnProgress",
]
