"""Agent ids and reloads: the domain check, and ``BackupAgentListeners``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ._hass import ConfigEntry, HomeAssistant, frame, require_home_assistant, valid_domain


class BackupAgentListeners:
    """Lets an integration tell Home Assistant to ask its backup platform for agents again.

    Home Assistant calls the platform's ``async_register_backup_agents_listener`` once; calling
    the listener makes its manager drop every agent of the integration's domain and call
    ``async_get_backup_agents`` again. The usual trigger is a config entry being loaded or
    unloaded::

        # custom_components/my_nas/__init__.py
        BACKUP_AGENT_LISTENERS = BackupAgentListeners(DOMAIN)

        async def async_setup_entry(hass, entry):
            ...
            BACKUP_AGENT_LISTENERS.async_track_entry(hass, entry)
            return True

        # custom_components/my_nas/backup.py
        from . import BACKUP_AGENT_LISTENERS

        async_register_backup_agents_listener = BACKUP_AGENT_LISTENERS.async_register

    ``async_get_backup_agents`` should then return agents for loaded entries only
    (``hass.config_entries.async_loaded_entries(DOMAIN)``).
    """

    def __init__(self, domain: str) -> None:
        check_domain(domain)  # ImportError without Home Assistant 2025.4+
        self.domain = domain
        self._key = f"habackup.backup_agent_listeners.{domain}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.domain}>"

    def async_register(
        self, hass: HomeAssistant, *, listener: Callable[[], None], **kwargs: Any
    ) -> Callable[[], None]:
        """The backup platform's ``async_register_backup_agents_listener``."""
        listeners: list[Callable[[], None]] = hass.data.setdefault(self._key, [])
        listeners.append(listener)

        def remove() -> None:
            with suppress(ValueError):
                listeners.remove(listener)

        return remove

    def async_notify(self, hass: HomeAssistant) -> None:
        """Make Home Assistant reload this integration's agents (call on the event loop)."""
        for listener in list(hass.data.get(self._key, ())):
            listener()

    def async_track_entry(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Notify whenever ``entry`` changes state (loaded, unloading) until it is unloaded."""
        entry.async_on_unload(entry.async_on_state_change(lambda: self.async_notify(hass)))


def check_domain(domain: str) -> None:
    """``domain`` must be an integration domain, and the caller's when that can be told."""
    require_home_assistant()
    if not isinstance(domain, str) or not valid_domain(domain):
        raise ValueError(
            f"domain must be an integration's domain (lowercase letters, digits and '_'), "
            f"not {domain!r}"
        )
    try:
        # The innermost integration module on the stack: the backup platform (or the
        # integration's own code) creating this. Home Assistant's backup manager, which calls
        # the platform, is skipped, so an agent made outside any integration is not checked.
        caller = frame.get_integration_frame(exclude_integrations={"backup"}).integration
    except frame.MissingIntegrationFrame:
        return
    if caller != domain:
        raise ValueError(
            f"domain={domain!r}, but the integration creating this agent is {caller!r}: Home "
            f"Assistant reloads an integration's agents by domain, so pass domain={caller!r}"
        )
