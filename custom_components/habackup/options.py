"""A location's options (transfers, retention, verification): the form, its defaults, and the
store options they become."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry
from homeassistant.data_entry_flow import section as form_section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

from .const import (
    DEFAULT_OPTIONS,
    OPT_KEEP_DAILY,
    OPT_KEEP_MONTHLY,
    OPT_KEEP_WEEKLY,
    OPT_KEEP_YEARLY,
    OPT_LIMIT_DOWNLOAD,
    OPT_LIMIT_UPLOAD,
    OPT_MAX_CONCURRENCY,
    OPT_PART_SIZE,
    OPT_VERIFY_AFTER_UPLOAD,
    OPT_VERIFY_DEEP,
    OPT_VERIFY_INTERVAL,
    SECTION_RETENTION,
    SECTION_TRANSFERS,
    SECTION_VERIFICATION,
)

# 1 Mbit/s is 125,000 bytes per second: home uplinks are sold in Mbit/s.
BYTES_PER_MBIT = 125_000


def _number(minimum: float, maximum: float, step: float = 1, unit: str | None = None) -> Any:
    # The selector gives floats; readers take int() or float() of them.
    config = NumberSelectorConfig(min=minimum, max=maximum, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def options_schema() -> vol.Schema:
    keep = _number(0, 1000)
    return vol.Schema(
        {
            vol.Required(SECTION_TRANSFERS): form_section(
                vol.Schema(
                    {
                        vol.Required(OPT_LIMIT_UPLOAD): _number(0, 100_000, 0.1, "Mbit/s"),
                        vol.Required(OPT_LIMIT_DOWNLOAD): _number(0, 100_000, 0.1, "Mbit/s"),
                        vol.Required(OPT_PART_SIZE): _number(5, 64, 1, "MiB"),
                        vol.Required(OPT_MAX_CONCURRENCY): _number(1, 16),
                    }
                ),
                {"collapsed": True},
            ),
            vol.Required(SECTION_RETENTION): form_section(
                vol.Schema(
                    {
                        vol.Required(OPT_KEEP_DAILY): keep,
                        vol.Required(OPT_KEEP_WEEKLY): keep,
                        vol.Required(OPT_KEEP_MONTHLY): keep,
                        vol.Required(OPT_KEEP_YEARLY): keep,
                    }
                ),
                {"collapsed": False},
            ),
            vol.Required(SECTION_VERIFICATION): form_section(
                vol.Schema(
                    {
                        vol.Required(OPT_VERIFY_AFTER_UPLOAD): BooleanSelector(),
                        vol.Required(OPT_VERIFY_INTERVAL): _number(0, 365, 1, "d"),
                        vol.Required(OPT_VERIFY_DEEP): BooleanSelector(),
                    }
                ),
                {"collapsed": False},
            ),
        }
    )


def with_defaults(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every option, the entry's own where set."""
    return {
        name: {**defaults, **options.get(name, {})} for name, defaults in DEFAULT_OPTIONS.items()
    }


def section(entry: ConfigEntry, name: str) -> dict[str, Any]:
    """One section of the entry's options, defaults filled in."""
    return with_defaults(dict(entry.options))[name]


def store_options(options: dict[str, Any]) -> dict[str, str]:
    """habackup's store options for the transfer settings."""
    transfers = with_defaults(options)[SECTION_TRANSFERS]
    store = {
        "part_size": f"{int(transfers[OPT_PART_SIZE])}MiB",
        "max_concurrency": str(int(transfers[OPT_MAX_CONCURRENCY])),
    }
    for option, key in ((OPT_LIMIT_UPLOAD, "limit_upload"), (OPT_LIMIT_DOWNLOAD, "limit_download")):
        if (mbit := float(transfers[option])) > 0:
            store[key] = str(max(1, round(mbit * BYTES_PER_MBIT)))
    return store
