"""A config flow, which Home Assistant needs before it sets up a config entry; tests create
entries directly, so it has no steps."""

from __future__ import annotations

from homeassistant import config_entries

from . import DOMAIN


class HabackupTestConfigFlow(config_entries.ConfigFlow, domain=DOMAIN):
    VERSION = 1
