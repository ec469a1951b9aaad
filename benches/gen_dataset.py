"""Generate a deterministic, Home Assistant-like config dir for benchmarks.

    python benches/gen_dataset.py OUT_DIR --size 1GiB [--mix db|media] [--seed 1] [--force]

The same size, mix and seed always give byte-identical files (and mtimes). Rough proportions
(`--mix db`, the default): recorder database 45 %, incompressible media (www/, media/) 40 %,
.storage 5 %, custom_components 5 %, files Home Assistant excludes from backups 5 %, YAML the
rest; `--mix media` has 15 % database and 70 % media.
The tree is written to OUT_DIR.partial and renamed at the end, so an existing OUT_DIR is
always complete.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HA_VERSION = "2025.4.4"
# A fixed epoch keeps timestamps inside the database and the files' mtimes reproducible.
EPOCH = 1_743_465_600.0  # 2025-04-01T00:00:00Z
MiB = 1 << 20

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KB": 1000,
    "KIB": 1 << 10,
    "M": MiB,
    "MB": 1000**2,
    "MIB": MiB,
    "G": 1 << 30,
    "GB": 1000**3,
    "GIB": 1 << 30,
    "T": 1 << 40,
    "TB": 1000**4,
    "TIB": 1 << 40,
}

DOMAINS = ("sensor", "binary_sensor", "light", "switch", "climate", "cover", "media_player")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ROOMS = _words("""
    kitchen living_room bedroom bathroom office garage garden hallway attic basement nursery
    porch laundry guest_room dining_room study
""")
THINGS = _words("""
    temperature humidity power energy motion door window lux co2 voltage current pressure
    battery signal occupancy smoke leak
""")
WORDS = _words("""
    update device state value client session payload entity config options data result
    response coordinator attribute token interval sensor refresh handler listener platform
    service schema unique manager status request timeout endpoint feature channel reading
""")
UNITS = dict(
    pair.split("=")
    for pair in _words("""
        temperature=°C humidity=% power=W energy=kWh lux=lx co2=ppm voltage=V current=A
        pressure=hPa battery=% signal=dBm
    """)
)


def parse_size(text: str) -> int:
    """Parse ``200MiB``, ``1GiB``, ``1.5G`` or a plain byte count."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r} (try 200MiB, 1GiB, 5GiB)")
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass
class Stats:
    """Bytes and files written per category, for the summary line."""

    bytes_by_category: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def add(self, category: str, size: int) -> None:
        self.bytes_by_category[category] = self.bytes_by_category.get(category, 0) + size
        self.files += 1


class Writer:
    """Writes files under one root and accounts for them."""

    def __init__(self, root: Path, stats: Stats) -> None:
        self.root = root
        self.stats = stats

    def bytes(self, rel: str, data: bytes, category: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.stats.add(category, len(data))

    def text(self, rel: str, text: str, category: str) -> None:
        self.bytes(rel, text.encode(), category)


def rng_for(seed: int, section: str) -> random.Random:
    # String seeds hash deterministically, so each section is independent of the others' sizes.
    return random.Random(f"{seed}:{section}")


def entity_ids(rng: random.Random, count: int) -> list[str]:
    return [
        f"{rng.choice(DOMAINS)}.{rng.choice(ROOMS)}_{rng.choice(THINGS)}_{i}" for i in range(count)
    ]


def random_ulid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032X}"[:26]


# --- recorder database ---------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY, event_type VARCHAR(64), event_data TEXT, origin_idx SMALLINT,
    time_fired_ts FLOAT, context_id VARCHAR(36), context_user_id VARCHAR(36));
CREATE TABLE states (
    state_id INTEGER PRIMARY KEY, entity_id VARCHAR(255), state VARCHAR(255), attributes TEXT,
    last_changed_ts FLOAT, last_updated_ts FLOAT, old_state_id INTEGER, context_id VARCHAR(36));
CREATE TABLE schema_changes (change_id INTEGER PRIMARY KEY, schema_version INTEGER,
    changed DATETIME);
CREATE INDEX ix_states_entity_id_last_updated_ts ON states (entity_id, last_updated_ts);
CREATE INDEX ix_events_time_fired_ts ON events (time_fired_ts);
INSERT INTO schema_changes (schema_version, changed) VALUES (48, '2025-04-01 00:00:00');
"""


def _attribute_templates(rng: random.Random, ids: list[str]) -> dict[str, str]:
    """Per-entity constant attributes; only a few fields vary per row, as in a real recorder."""
    templates = {}
    for eid in ids:
        thing = next((t for t in THINGS if t in eid), "value")
        attrs = {
            "friendly_name": eid.split(".", 1)[1].replace("_", " ").title(),
            "device_class": thing,
            "icon": f"mdi:{rng.choice(THINGS)}",
            "unit_of_measurement": UNITS.get(thing, ""),
            "state_class": "measurement",
            "attribution": "Data provided by a bench integration",
        }
        templates[eid] = json.dumps(attrs, ensure_ascii=False)[:-1]
    return templates


def _state_rows(
    rng: random.Random, ids: list[str], templates: dict[str, str], start: int, count: int
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i in range(start, start + count):
        eid = ids[rng.randrange(len(ids))]
        value = f"{rng.gauss(20, 8):.2f}"
        ts = EPOCH + i * 2.5
        attrs = (
            f'{templates[eid]}, "last_reading": {value}, "rssi": {rng.randrange(-95, -30)}, '
            f'"linkquality": {rng.randrange(255)}, "update_id": "{random_ulid(rng)}"}}'
        )
        rows.append((eid, value, attrs, ts, ts, i - 1 if i else None, random_ulid(rng)))
    return rows


def _event_rows(
    rng: random.Random, ids: list[str], start: int, count: int
) -> list[tuple[object, ...]]:
    kinds = ("call_service", "automation_triggered", "state_changed", "zha_event", "timer_finished")
    rows: list[tuple[object, ...]] = []
    for i in range(start, start + count):
        data = json.dumps(
            {
                "domain": rng.choice(DOMAINS),
                "service": rng.choice(("turn_on", "turn_off", "toggle", "set_value")),
                "service_data": {"entity_id": ids[rng.randrange(len(ids))]},
                "source": f"automation.{rng.choice(ROOMS)}_{rng.choice(WORDS)}",
            }
        )
        rows.append((rng.choice(kinds), data, 0, EPOCH + i * 7.1, random_ulid(rng), None))
    return rows


def make_database(path: Path, target: int, seed: int, stats: Stats) -> None:
    rng = rng_for(seed, "db")
    ids = entity_ids(rng, 400)
    templates = _attribute_templates(rng, ids)
    db = sqlite3.connect(path, isolation_level=None)
    # No journal and no syncs: the file is scratch data, only its bytes matter.
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=4096;")
    db.executescript(_SCHEMA)
    batch, states, events, size = 2_000, 0, 0, 0
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    while size < target:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO states (entity_id, state, attributes, last_changed_ts, last_updated_ts,"
            " old_state_id, context_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            _state_rows(rng, ids, templates, states, batch),
        )
        db.executemany(
            "INSERT INTO events (event_type, event_data, origin_idx, time_fired_ts, context_id,"
            " context_user_id) VALUES (?, ?, ?, ?, ?, ?)",
            _event_rows(rng, ids, events, batch // 4),
        )
        db.execute("COMMIT")
        states, events = states + batch, events + batch // 4
        size = db.execute("PRAGMA page_count").fetchone()[0] * page_size
        # Big batches keep generation fast; smaller ones near the end avoid overshooting.
        batch = max(500, min(50_000, (target - size) * states // max(size, 1)))
    db.close()
    stats.add("database", path.stat().st_size)


# --- .storage ------------------------------------------------------------------------------


def _store(key: str, data: object, version: int = 1, minor: int = 1) -> str:
    doc = {"version": version, "minor_version": minor, "key": key, "data": data}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _entity_entry(rng: random.Random, eid: str) -> dict[str, object]:
    return {
        "aliases": [],
        "area_id": rng.choice(ROOMS),
        "capabilities": {"state_class": "measurement"},
        "config_entry_id": f"{rng.getrandbits(128):032x}"[:26].upper(),
        "device_class": None,
        "device_id": f"{rng.getrandbits(128):032x}",
        "disabled_by": None,
        "entity_category": rng.choice((None, "diagnostic", "config")),
        "entity_id": eid,
        "has_entity_name": True,
        "icon": None,
        "id": f"{rng.getrandbits(128):032x}",
        "labels": [],
        "name": None,
        "options": {"conversation": {"should_expose": rng.random() < 0.3}},
        "original_name": eid.split(".", 1)[1].replace("_", " ").title(),
        "platform": rng.choice(("zha", "mqtt", "hue", "esphome", "shelly", "tasmota")),
        "translation_key": rng.choice(THINGS),
        "unique_id": f"{rng.getrandbits(64):016x}-{rng.choice(THINGS)}",
        "created_at": "2024-11-02T10:11:12.131415+00:00",
        "modified_at": "2025-03-30T08:07:06.050403+00:00",
    }


def _device_entry(rng: random.Random, index: int) -> dict[str, object]:
    mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
    return {
        "area_id": rng.choice(ROOMS),
        "config_entries": [f"{rng.getrandbits(128):032x}"[:26].upper()],
        "connections": [["mac", mac]],
        "identifiers": [["zha", mac]],
        "manufacturer": rng.choice(("IKEA of Sweden", "Philips", "Aqara", "Shelly", "Sonoff")),
        "model": f"Model {rng.randrange(100, 999)}",
        "name": f"{rng.choice(ROOMS).replace('_', ' ').title()} device {index}",
        "sw_version": f"{rng.randrange(1, 5)}.{rng.randrange(20)}.{rng.randrange(100)}",
        "id": f"{rng.getrandbits(128):032x}",
        "via_device_id": None,
        "disabled_by": None,
    }


def _scaled(make: Callable[[int], object], target: int) -> list[object]:
    """Build entries until their JSON reaches about ``target`` bytes."""
    sample = [make(i) for i in range(50)]
    per_entry = max(1, len(json.dumps(sample, indent=2)) // len(sample))
    return sample + [make(i) for i in range(50, max(50, target // per_entry))]


def make_storage(w: Writer, target: int, seed: int) -> None:
    rng = rng_for(seed, "storage")
    cat = "storage"
    w.text(".storage/core.uuid", _store("core.uuid", {"uuid": f"{rng.getrandbits(128):032x}"}), cat)
    w.text(
        ".storage/core.config",
        _store(
            "core.config",
            {
                "latitude": 52.37,
                "longitude": 4.89,
                "elevation": 0,
                "unit_system_v2": "metric",
                "location_name": "Home",
                "time_zone": "Europe/Amsterdam",
                "currency": "EUR",
                "country": "NL",
            },
        ),
        cat,
    )
    ids = entity_ids(rng, 50)
    entities = _scaled(lambda i: _entity_entry(rng, f"{ids[i % 50]}_{i}"), int(target * 0.40))
    w.text(
        ".storage/core.entity_registry",
        _store("core.entity_registry", {"entities": entities, "deleted_entities": []}, minor=16),
        cat,
    )
    devices = _scaled(lambda i: _device_entry(rng, i), int(target * 0.15))
    w.text(
        ".storage/core.device_registry",
        _store("core.device_registry", {"devices": devices, "deleted_devices": []}, minor=8),
        cat,
    )
    entries = _scaled(
        lambda i: {
            "entry_id": f"{rng.getrandbits(128):032x}"[:26].upper(),
            "domain": rng.choice(("zha", "mqtt", "hue", "met", "esphome")),
            "title": f"Integration {i}",
            "data": {"host": f"192.0.2.{i % 250}"},
            "options": {},
            "source": "user",
            "version": 1,
        },
        int(target * 0.05),
    )
    w.text(".storage/core.config_entries", _store("core.config_entries", {"entries": entries}), cat)
    cards = _scaled(
        lambda i: {
            "type": "entities",
            "title": f"{ROOMS[i % len(ROOMS)].title()} {i}",
            "entities": [f"{e}_{i}" for e in rng.sample(ids, 6)],
        },
        int(target * 0.10),
    )
    views = [{"title": f"View {v}", "path": f"view-{v}", "cards": cards[v::8]} for v in range(8)]
    w.text(".storage/lovelace", _store("lovelace", {"config": {"views": views}}), cat)
    restore = _scaled(
        lambda i: {
            "state": {
                "entity_id": f"{ids[i % 50]}_{i}",
                "state": f"{rng.random():.4f}",
                "attributes": {"restored": True},
                "context": {"id": random_ulid(rng), "parent_id": None, "user_id": None},
            },
            "last_seen": "2025-04-01T00:00:00+00:00",
        },
        int(target * 0.30),
    )
    w.text(".storage/core.restore_state", _store("core.restore_state", restore), cat)
    for key in ("auth", "auth_provider.homeassistant", "http", "person", "onboarding"):
        w.text(f".storage/{key}", _store(key, {"items": [], "seed": rng.randrange(1 << 30)}), cat)


# --- custom_components ---------------------------------------------------------------------

_FUNCTION_TEMPLATES = (
    '''
async def async_{a}_{b}(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """{A} the {b} for a config entry."""
    {b} = hass.data[DOMAIN][entry.entry_id]
    try:
        await {b}.async_{a}(timeout={n})
    except {C}Error as err:
        _LOGGER.warning("Could not {a} %s: %s", entry.title, err)
        return False
    return True
''',
    '''
class {C}{D}Entity(CoordinatorEntity[{C}Coordinator], SensorEntity):
    """A {b} reported by the {c} {d}."""

    _attr_has_entity_name = True
    _attr_translation_key = "{b}_{n}"

    def __init__(self, coordinator: {C}Coordinator, key: str) -> None:
        super().__init__(coordinator)
        self._key = key
        self._attr_unique_id = f"{{coordinator.unique_id}}-{{key}}-{n}"

    @property
    def native_value(self) -> float | None:
        """Return the latest {b}."""
        value = self.coordinator.data.get(self._key)
        return None if value is None else round(float(value) * {n} / 100, 2)
''',
    '''
def _{a}_{b}_{n}(payload: dict[str, Any]) -> dict[str, Any]:
    """Normalise a {c} payload; the API renamed fields in firmware {n}."""
    result: dict[str, Any] = {{}}
    for key, value in payload.items():
        if key.startswith("{d}_"):
            key = key.removeprefix("{d}_")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        result[key] = value
    return result
''',
    """
{U}_{V}_{n} = vol.Schema(
    {{
        vol.Required(CONF_{U}): cv.string,
        vol.Optional(CONF_{V}, default={n}): vol.All(vol.Coerce(int), vol.Range(min=1)),
        vol.Optional("{a}_{b}"): cv.boolean,
    }}
)
""",
)

_MODULE_HEADER = '''"""The {name} integration: {doc}."""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)
'''


def _python_module(rng: random.Random, name: str, size: int) -> str:
    parts = [_MODULE_HEADER.format(name=name, doc=" ".join(rng.sample(WORDS, 6)))]
    length = len(parts[0])
    while length < size:
        a, b, c, d = rng.sample(WORDS, 4)
        chunk = rng.choice(_FUNCTION_TEMPLATES).format(
            a=a,
            b=b,
            c=c,
            d=d,
            A=a.title(),
            C=c.title(),
            D=d.title(),
            U=a.upper(),
            V=b.upper(),
            n=rng.randrange(1, 1000),
        )
        parts.append(chunk)
        length += len(chunk)
    return "\n".join(parts)


def make_custom_components(w: Writer, target: int, seed: int) -> list[str]:
    rng = rng_for(seed, "custom_components")
    modules = ("__init__", "sensor", "config_flow", "coordinator", "const", "binary_sensor")
    written, names = 0, []
    while written < target:
        name = f"{rng.choice(WORDS)}_{rng.choice(THINGS)}_{len(names)}"
        names.append(name)
        base = f"custom_components/{name}"
        manifest = {
            "domain": name,
            "name": name.replace("_", " ").title(),
            "version": "1.0.0",
            "codeowners": ["@bench"],
            "iot_class": "local_polling",
            "requirements": [f"py{name}==0.{rng.randrange(99)}"],
        }
        w.text(f"{base}/manifest.json", json.dumps(manifest, indent=2), "custom_components")
        translations = {"config": {"step": {"user": {"title": name, "data": {"host": "Host"}}}}}
        w.text(
            f"{base}/translations/en.json", json.dumps(translations, indent=2), "custom_components"
        )
        for module in modules:
            source = _python_module(rng, name, rng.randrange(2_000, 40_000))
            w.text(f"{base}/{module}.py", source, "custom_components")
            written += len(source)
    return names


# --- media, YAML, excluded files -----------------------------------------------------------

_MAGIC = {
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".mp4": b"\0\0\0\x18ftyp",
    ".mp3": b"ID3\x04",
    ".webp": b"RIFF",
}


def _media_sizes(rng: random.Random, target: int, low: int, high: int) -> Iterator[int]:
    """Log-uniform sizes between ``low`` and ``high`` summing to ``target``."""
    remaining = target
    while remaining > 0:
        size = min(remaining, int(low * (high / low) ** rng.random()))
        remaining -= size
        yield size


def make_media(w: Writer, target: int, seed: int) -> None:
    rng = rng_for(seed, "media")
    layout = (
        ("www/images", (".png", ".jpg", ".webp"), 0.25, 200_000, 4 * MiB),
        ("media/recordings", (".mp4", ".jpg"), 0.75, 2 * MiB, 48 * MiB),
    )
    for folder, exts, share, low, high in layout:
        for i, size in enumerate(_media_sizes(rng, int(target * share), low, high)):
            ext = rng.choice(exts)
            w.bytes(
                f"{folder}/{rng.choice(ROOMS)}_{i:05d}{ext}",
                _MAGIC[ext] + rng.randbytes(size),
                "media",
            )


def _automation(rng: random.Random, i: int) -> str:
    room, thing = rng.choice(ROOMS), rng.choice(THINGS)
    return (
        f'- id: "{rng.getrandbits(48)}"\n  alias: {room.title()} {thing} {i}\n'
        f"  description: Turn on the {room} light when {thing} changes\n  triggers:\n"
        f"    - trigger: numeric_state\n      entity_id: sensor.{room}_{thing}_{i}\n"
        f"      above: {rng.randrange(100)}\n  conditions:\n    - condition: time\n"
        f'      after: "{rng.randrange(24):02d}:00:00"\n  actions:\n'
        f"    - action: light.turn_on\n      target:\n        entity_id: light.{room}_{i}\n"
        f"      data:\n        brightness_pct: {rng.randrange(1, 101)}\n  mode: single\n"
    )


def make_yaml(w: Writer, target: int, seed: int) -> None:
    rng = rng_for(seed, "yaml")
    w.text(
        "configuration.yaml",
        (
            "default_config:\n\nhomeassistant:\n  name: Home\n  unit_system: metric\n"
            "  time_zone: Europe/Amsterdam\n\n"
            "frontend:\n  themes: !include_dir_merge_named themes\n\n"
            "automation: !include automations.yaml\nscript: !include scripts.yaml\n"
            "scene: !include scenes.yaml\n\nrecorder:\n  purge_keep_days: 10\n\n"
            "http:\n  server_port: 8123\n  api_password: !secret http_password\n"
        ),
        "yaml",
    )
    automations, size, i = [], 0, 0
    while size < target * 0.7:
        automations.append(_automation(rng, i))
        size, i = size + len(automations[-1]), i + 1
    w.text("automations.yaml", "".join(automations), "yaml")
    scripts = "".join(
        f"{room}_scene_{i}:\n  alias: {room.title()} scene {i}\n  sequence:\n"
        f"    - action: scene.turn_on\n      target:\n        entity_id: scene.{room}_{i}\n"
        for i, room in enumerate(rng.choice(ROOMS) for _ in range(max(1, target // 1000)))
    )
    w.text("scripts.yaml", scripts, "yaml")
    w.text("scenes.yaml", "[]\n", "yaml")
    w.text("secrets.yaml", f"http_password: {rng.getrandbits(96):024x}\n", "yaml")
    w.text(
        "blueprints/automation/homeassistant/motion_light.yaml",
        "blueprint:\n  name: Motion-activated Light\n  domain: automation\n",
        "yaml",
    )
    w.text(".HA_VERSION", HA_VERSION, "yaml")
    # Kept by Home Assistant's patterns: they only match at the top of the config dir.
    w.text("www/camera.log", "kept: *.log only matches at the top\n", "yaml")
    w.text("custom_components/debug.log.1", "kept: *.log.* only matches at the top\n", "yaml")
    for empty in ("themes", "deps", "www/community"):
        (w.root / empty).mkdir(parents=True, exist_ok=True)


def _log_text(rng: random.Random, size: int) -> str:
    lines, length, t = [], 0, 0
    while length < size:
        t += rng.randrange(1, 5000)
        line = (
            f"2025-04-01 {t // 3_600_000 % 24:02d}:{t // 60_000 % 60:02d}:{t // 1000 % 60:02d}"
            f".{t % 1000:03d} {rng.choice(('INFO', 'WARNING', 'DEBUG', 'ERROR'))} (MainThread) "
            f"[homeassistant.components.{rng.choice(DOMAINS)}] {rng.choice(WORDS).title()} "
            f"{rng.choice(WORDS)} for {rng.choice(ROOMS)}_{rng.choice(THINGS)} took "
            f"{rng.random():.3f} seconds\n"
        )
        lines.append(line)
        length += len(line)
    return "".join(lines)


def make_excluded(w: Writer, target: int, seed: int, components: list[str]) -> None:
    rng = rng_for(seed, "excluded")
    cat = "excluded"
    w.text("home-assistant.log", _log_text(rng, int(target * 0.35)), cat)
    w.text("home-assistant.log.1", _log_text(rng, int(target * 0.20)), cat)
    w.text("OZW_Log.txt", _log_text(rng, 10_000), cat)
    for i, size in enumerate(_media_sizes(rng, int(target * 0.15), 20_000, 400_000)):
        name = f"tts/{rng.getrandbits(64):016x}_en_-_{i}.mp3"
        w.bytes(name, _MAGIC[".mp3"] + rng.randbytes(size), cat)
    w.bytes("backups/old.tar", rng.randbytes(int(target * 0.15)), cat)
    w.bytes("tmp_backups/partial.tar", rng.randbytes(4096), cat)
    w.bytes("home-assistant_v2.db-shm", rng.randbytes(max(32_768, int(target * 0.05))), cat)
    w.bytes(".cache/brands/logo.png", _MAGIC[".png"] + rng.randbytes(50_000), cat)
    w.bytes("www/.DS_Store", rng.randbytes(6_148), cat)
    w.text(".HA_RESTORE", "{}", cat)
    pyc_budget = int(target * 0.10)
    for name in components:
        if pyc_budget <= 0:
            break
        for module in ("__init__", "sensor", "config_flow"):
            data = b"\xf3\r\r\n" + rng.randbytes(rng.randrange(2_000, 30_000))
            w.bytes(f"custom_components/{name}/__pycache__/{module}.cpython-313.pyc", data, cat)
            pyc_budget -= len(data)


def _set_mtimes(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (EPOCH, EPOCH))
    os.utime(root, (EPOCH, EPOCH))


# Shares of the recorder database and of media in each mix; .storage, custom_components and
# excluded files take 5 % each in both. "db" is a typical install, "media" one with cameras.
MIXES = {"db": (0.45, 0.40), "media": (0.15, 0.70)}


def generate(out_dir: Path, size: int, seed: int = 1, mix: str = "db") -> Stats:
    """Write the dataset to ``out_dir`` (which must not exist) and return what was written."""
    db_share, media_share = MIXES[mix]
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    stats = Stats()
    w = Writer(partial, stats)
    make_yaml(w, max(20_000, size // 500), seed)
    make_storage(w, int(size * 0.05), seed)
    components = make_custom_components(w, int(size * 0.05), seed)
    make_media(w, int(size * media_share), seed)
    make_excluded(w, int(size * 0.05), seed, components)
    make_database(partial / "home-assistant_v2.db", int(size * db_share), seed, stats)
    _set_mtimes(partial)
    partial.rename(out_dir)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=sorted(MIXES), default="db", help="db- or media-heavy")
    parser.add_argument("--force", action="store_true", help="replace an existing OUT_DIR")
    args = parser.parse_args(argv)
    if args.out_dir.exists():
        if not args.force:
            print(f"{args.out_dir} exists; pass --force to replace it", file=sys.stderr)
            return 1
        shutil.rmtree(args.out_dir)
    start = time.perf_counter()
    stats = generate(args.out_dir, args.size, args.seed, args.mix)
    total = sum(stats.bytes_by_category.values())
    print(
        f"wrote {stats.files} files, {total / MiB:.1f} MiB to {args.out_dir} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    for category, size in sorted(stats.bytes_by_category.items(), key=lambda kv: -kv[1]):
        print(f"  {category:<18} {size / MiB:9.1f} MiB  {100 * size / total:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
