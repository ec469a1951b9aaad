"""Adding a location from the UI: pick its type, fill in its form; before the entry is created a
probe writes, lists, reads back and deletes a small object there, and what fails comes back as
a form error. Also: new credentials when the old ones stop working (reauthentication), and the
options (transfers, retention, verification)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant, callback

from habackup import BackupAgentConfigError, BackupAgentProbeError

from . import async_build_agent
from .const import CONF_HOST_KEY, CONF_PATH, CONF_PRIVATE_KEY, CONF_TYPE, DOMAIN, LOGGER
from .coordinator import HabackupConfigEntry
from .locations import FOLDER, KINDS, SECRET_FIELDS, LocationKind, clean, is_inside, kind_of
from .options import options_schema, with_defaults

# How much of an error's text the form shows (store errors quote the server's answer).
MAX_DETAIL = 600
# The key an SSH server presents, as the engine's host-key error names it.
PRESENTED_KEY = re.compile(r"presents (\S+ SHA256:[A-Za-z0-9+/]+)")


async def async_probe(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[str | None, dict[str, str]]:
    """Probe the location ``data`` describes: (form error key or None, the form's placeholders:
    ``error``, what went wrong, and ``fingerprint``, the host key an SSH server presents)."""
    placeholders = {"error": "", "fingerprint": ""}
    try:
        agent = await async_build_agent(hass, "probe", kind_of(data).target(data))
        await agent.async_probe()
    except BackupAgentConfigError as err:
        return _config_error(err), placeholders | {"error": _detail(err)}
    except BackupAgentProbeError as err:
        placeholders["error"] = _detail(err)
        if err.problem == "failed" and _config_error(err) == "invalid_private_key":
            return "invalid_private_key", placeholders  # a key file that cannot be read
        if err.problem == "host_key":
            # Never pinned on the user's behalf: the form shows the key, the user checks it
            # against the server and pastes it into the host key field.
            presented = PRESENTED_KEY.search(str(err))
            placeholders["fingerprint"] = presented.group(1) if presented else "?"
            return ("host_key_mismatch" if data.get(CONF_HOST_KEY) else "host_key_unknown"), (
                placeholders
            )
        return (err.problem if err.problem != "failed" else "probe_failed"), placeholders
    except Exception:
        LOGGER.exception("Unexpected error probing a new %s location", data[CONF_TYPE])
        return "unknown", placeholders
    return None, placeholders


def _config_error(err: Exception) -> str:
    """A location the engine cannot use as given: its private key or host key (the engine's
    messages name the option), or else its address."""
    text = str(err)
    if "option private_key" in text:
        return "invalid_private_key"
    return "invalid_host_key" if "option host_key" in text else "invalid_url"


def _detail(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


class HabackupConfigFlow(ConfigFlow, domain=DOMAIN):
    """A habackup location."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: HabackupConfigEntry) -> HabackupOptionsFlow:
        return HabackupOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return self.async_show_menu(step_id="user", menu_options=list(KINDS))

    async def async_step_folder(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(FOLDER, user_input)

    async def async_step_s3(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["s3"], user_input)

    async def async_step_azure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["azure"], user_input)

    async def async_step_gcs(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["gcs"], user_input)

    async def async_step_webdav(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["webdav"], user_input)

    async def async_step_smb(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["smb"], user_input)

    async def async_step_sftp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_location(KINDS["sftp"], user_input)

    async def _async_location(
        self, kind: LocationKind, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        placeholders = {"error": "", "fingerprint": ""}
        if user_input is not None:
            data = {CONF_TYPE: kind.key, **clean(user_input)}
            errors = kind.check(data) or self._check_place(kind, data)
            if not errors:
                await self.async_set_unique_id(kind.identity(data))
                self._abort_if_unique_id_configured()
                error, placeholders = await async_probe(self.hass, data)
                if error is None:
                    return self.async_create_entry(title=kind.title(data), data=data)
                errors[_field_of(error)] = error
        return self.async_show_form(
            step_id=kind.key,
            data_schema=self.add_suggested_values_to_schema(kind.schema(), user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _check_place(self, kind: LocationKind, data: Mapping[str, Any]) -> dict[str, str]:
        """A folder inside the config dir would be backed up into every backup."""
        if kind is FOLDER and is_inside(str(data[CONF_PATH]), self.hass.config.config_dir):
            return {CONF_PATH: "inside_config_dir"}
        return {}

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        kind = kind_of(entry.data)
        errors: dict[str, str] = {}
        placeholders = {"error": "", "fingerprint": ""}
        if user_input is not None:
            new = clean(user_input)
            errors = kind.check({**entry.data, **new})
            if not errors:
                error, placeholders = await async_probe(self.hass, {**entry.data, **new})
                if error is None:
                    return self.async_update_reload_and_abort(entry, data_updates=new)
                errors[_field_of(error)] = error
        # What is not a secret (an SSH host key) is shown as it is now.
        shown = {k: v for k, v in entry.data.items() if k not in SECRET_FIELDS}
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(
                kind.reauth_schema(), user_input if user_input is not None else shown
            ),
            errors=errors,
            description_placeholders={"location": entry.title, **placeholders},
        )


def _field_of(error: str) -> str:
    """The form field a probe's error belongs to: the host key's or the private key's own, or
    the whole form."""
    if error.startswith("host_key") or error == "invalid_host_key":
        return CONF_HOST_KEY
    return CONF_PRIVATE_KEY if error == "invalid_private_key" else "base"


class HabackupOptionsFlow(OptionsFlow):
    """Transfers, retention and verification of one location."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                options_schema(), with_defaults(dict(self.config_entry.options))
            ),
        )
