"""The habackup integration's own files, checked the way Home Assistant's hassfest checks a core
integration's (it does not run on custom integrations): the manifest, the strings and their
English translation, the form errors the config flow can show, services and icons, HACS."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "habackup"


def _json(name: str) -> Any:
    return json.loads((INTEGRATION / name).read_text())


def _strings() -> dict[str, Any]:
    strings: dict[str, Any] = _json("strings.json")
    return strings


def _engine_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return str(cargo["package"]["version"])


def test_manifest() -> None:
    manifest = _json("manifest.json")
    keys = list(manifest)
    # hassfest: domain and name first, the rest sorted.
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    required = {"domain", "name", "codeowners", "documentation", "integration_type", "iot_class"}
    assert required <= set(keys)
    assert {"version", "issue_tracker"} <= set(keys)  # custom integrations need both
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["config_flow"] is True
    assert "backup" in manifest["dependencies"]
    # The integration needs the engine of its own version.
    assert manifest["requirements"] == [f"habackup=={_engine_version()}"]
    assert manifest["version"] == _engine_version()
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["name"] == manifest["name"]


def test_translation_is_the_strings() -> None:
    """Custom integrations ship no strings.json to the frontend: translations/en.json is what
    users read, and must say exactly what strings.json says."""
    assert _json("translations/en.json") == _strings()


def _string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_form_error_has_a_text() -> None:
    """Every error key the config flow and the location kinds can put on a form, and every probe
    problem the engine reports, has its text (a missing one shows as a raw key in the UI)."""
    from habackup.errors import PROBE_PROBLEMS

    errors = _strings()["config"]["error"]
    flow_constants = _string_constants(INTEGRATION / "config_flow.py") | _string_constants(
        INTEGRATION / "locations.py"
    )
    used = {c for c in flow_constants if c in errors}
    assert {
        "invalid_host",
        "invalid_share",
        "password_or_key",
        "host_key_unknown",
        "host_key_mismatch",
        "invalid_host_key",
        "invalid_private_key",
    } <= used
    for problem in PROBE_PROBLEMS:
        if problem == "host_key":
            continue  # shown as host_key_unknown or host_key_mismatch
        assert (problem if problem != "failed" else "probe_failed") in errors, problem


def test_placeholders_are_ones_the_flow_fills() -> None:
    """The form errors and step texts use only the placeholders the flow passes."""
    given = {"error", "fingerprint", "location"}
    config = _strings()["config"]
    texts = list(config["error"].values()) + [
        step.get("description", "") + step.get("title", "") for step in config["step"].values()
    ]
    for text in texts:
        assert set(re.findall(r"{(\w+)}", text)) <= given, text


@pytest.mark.parametrize("kind", ["folder", "s3", "azure", "gcs", "webdav", "smb", "sftp"])
def test_every_location_kind_has_its_form(kind: str) -> None:
    steps = _strings()["config"]["step"]
    assert kind in steps["user"]["menu_options"]
    assert steps[kind]["title"]
    assert steps[kind]["data"]
    # Every field described is a field with a label.
    assert set(steps[kind].get("data_description", {})) <= set(steps[kind]["data"])


def test_services_and_icons() -> None:
    services = yaml.safe_load((INTEGRATION / "services.yaml").read_text())
    strings = _strings()
    icons = _json("icons.json")
    assert set(services) == set(strings["services"]) == set(icons["services"])
    for name, service in services.items():
        assert set(service["fields"]) == set(strings["services"][name]["fields"]), name
    assert set(icons["entity"]["sensor"]) <= set(strings["entity"]["sensor"])
