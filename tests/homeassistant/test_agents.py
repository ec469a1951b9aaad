"""Agent ids, reloads and the supported range of Home Assistant releases.

Home Assistant's manager reloads an integration's agents by ``agent.domain``: when the platform
calls its listener, every agent of that domain is dropped and the platform asked again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from custom_components.habackup_test import DOMAIN
from custom_components.habackup_test import backup as backup_platform
from hahelpers import HA_VERSION, STORE, FolderSyncAgent, off_loop, setup_backup, ws_call
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from habackup.homeassistant import MINIMUM_HOME_ASSISTANT, HabackupBackupAgent

pytestmark = pytest.mark.usefixtures(
    "enable_custom_integrations", "ha_config_dir", "blocking_io_detection"
)
# The wheel of the last release before the supported range; scripts/ha-env/run-version.sh
# downloads it next to the venv (imported from the zip, never installed).
OLD_WHEELS = Path(sys.prefix) / "old-homeassistant"


async def agent_ids(
    hass_ws_client: Callable[..., Awaitable[Any]], hass: HomeAssistant
) -> list[str]:
    client = await hass_ws_client(hass)
    info = await ws_call(client, type="backup/agents/info")
    return sorted(agent["agent_id"] for agent in info["agents"])


async def test_config_entries_add_and_remove_agents(
    hass: HomeAssistant, hass_ws_client: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    """BackupAgentListeners.async_track_entry: loading or unloading an entry reloads agents."""
    await setup_backup(hass, [])
    assert await agent_ids(hass_ws_client, hass) == ["backup.local"]

    entry = MockConfigEntry(domain=DOMAIN, data={"name": "nas", "url": f"file://{tmp_path}/nas"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert await agent_ids(hass_ws_client, hass) == ["backup.local", f"{DOMAIN}.nas"]

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await agent_ids(hass_ws_client, hass) == ["backup.local"]


async def test_listeners_reload_on_notify(
    hass: HomeAssistant, hass_ws_client: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    await setup_backup(hass, [FolderSyncAgent(STORE, tmp_path / "a")])
    assert await agent_ids(hass_ws_client, hass) == ["backup.local", f"{DOMAIN}.{STORE}"]

    hass.data[DOMAIN] = [FolderSyncAgent("other", tmp_path / "b")]
    backup_platform.BACKUP_AGENT_LISTENERS.async_notify(hass)
    await hass.async_block_till_done()
    # The old agent is gone: Home Assistant dropped every agent whose domain is ours.
    assert await agent_ids(hass_ws_client, hass) == ["backup.local", f"{DOMAIN}.other"]


@pytest.mark.parametrize("domain", ["", "Habackup", "my-nas", "a.b", "_x", 7])
async def test_invalid_domain_is_refused(hass: HomeAssistant, tmp_path: Path, domain: Any) -> None:
    with pytest.raises(ValueError, match="domain must be an integration's domain"):
        HabackupBackupAgent(hass, FolderSyncAgent(STORE, tmp_path), domain=domain)


async def test_domain_of_another_integration_is_refused(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """The platform of habackup_test creates the agent: a domain of its own would leave the
    agent behind on every reload of habackup_test's agents."""
    await setup_backup(hass, [])
    hass.data[DOMAIN] = [{"agent": FolderSyncAgent(STORE, tmp_path), "domain": "my_nas"}]
    with pytest.raises(ValueError, match=rf"integration creating this agent is '{DOMAIN}'"):
        await backup_platform.async_get_backup_agents(hass)

    # Outside any integration (here, a test) the caller cannot be told: any valid domain goes.
    agent = HabackupBackupAgent(hass, FolderSyncAgent(STORE, tmp_path), domain="my_nas")
    assert agent.agent_id == f"my_nas.{STORE}"


async def test_unique_id(hass: HomeAssistant, tmp_path: Path) -> None:
    sync_agent = FolderSyncAgent(STORE, tmp_path)
    assert HabackupBackupAgent(hass, sync_agent, domain=DOMAIN).agent_id == f"{DOMAIN}.{STORE}"
    renamed = HabackupBackupAgent(hass, sync_agent, domain=DOMAIN, unique_id="entry_1234")
    assert renamed.agent_id == f"{DOMAIN}.entry_1234"
    assert renamed.name == STORE
    with pytest.raises(ValueError, match="unique_id must be a non-empty string"):
        HabackupBackupAgent(hass, sync_agent, domain=DOMAIN, unique_id="")


async def test_older_home_assistant_is_refused(hass: HomeAssistant) -> None:
    """The real homeassistant package of 2025.3.4, imported from its wheel."""
    assert HA_VERSION >= MINIMUM_HOME_ASSISTANT
    pattern = "homeassistant-2025.3.*-py3-none-any.whl"
    wheels = sorted(await off_loop(hass, lambda: list(OLD_WHEELS.glob(pattern))))
    if not wheels:
        pytest.fail(f"no Home Assistant 2025.3 wheel in {OLD_WHEELS}: run scripts/ha-test.sh")
    code = (
        "import habackup, habackup.homeassistant as adapter\n"
        "agent = habackup.ObjectStoreBackupSyncAgent('store', 'memory://')\n"
        "try:\n"
        "    adapter.HabackupBackupAgent(None, agent, domain='my_nas')\n"
        "except ImportError as err:\n"
        "    print(err)\n"
        "import homeassistant\n"
        "print(homeassistant.__file__)\n"
    )
    result = await off_loop(
        hass,
        lambda: subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONPATH": str(wheels[-1]), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ),
    )
    message, imported_from = result.stdout.splitlines()
    version = wheels[-1].name.split("-")[1]
    assert message == (
        "habackup.homeassistant needs Home Assistant 2025.4 or newer; "
        f"this is Home Assistant {version}"
    )
    assert imported_from.startswith(str(wheels[-1]))
