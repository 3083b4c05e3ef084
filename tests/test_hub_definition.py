"""hub/tap-gong-flows.yml and meltano.yml's extractor say what the tap itself says in --about.

A setting added to the tap and not to the definitions (or the other way round), a secret not
marked sensitive, a kind that does not fit the setting's JSON type, or a label, default or
description that differs fails here, as does a capability one of them lacks or adds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing as t
from importlib import metadata

import pytest
import yaml

from tap_gong_flows.tap import TapGongFlows
from tests.conftest import ROOT

HUB_FILE = ROOT / "hub" / "tap-gong-flows.yml"

# The SDK's built-in settings each definition leaves out, and why.
SDK_BUILTINS = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
}
LEFT_OUT_OF_HUB = {
    "faker_config": "only works with the faker extra, which the tap does not install",
    "flattening_max_key_length": "rarely needed; still accepted in a config",
    "flattening_separator": "rarely needed; still accepted in a config",
}
LEFT_OUT_OF_MELTANO_YML = dict.fromkeys(SDK_BUILTINS, "meltano.yml lists the tap's own settings")
# What a definition may say of a setting: each key is compared with --about below.
SETTING_KEYS = {"name", "label", "description", "kind", "value", "sensitive"}

# Meltano setting kinds that fit each JSON Schema type of a setting. A number is `kind: string`:
# Meltano 4.4 turns an environment variable of a `kind: decimal` setting into a Decimal and then
# cannot write it to the tap's config; the tap types the string (tap_gong_flows/settings.py).
KINDS = {
    "string": {"string"},
    "integer": {"integer"},
    "number": {"string"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip


@pytest.fixture(scope="module")
def about() -> dict[str, t.Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tap_gong_flows", "--about", "--format=json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def hub() -> dict[str, t.Any]:
    return yaml.safe_load(HUB_FILE.read_text())


@pytest.fixture(scope="module")
def meltano_extractor() -> dict[str, t.Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = [e for e in project["plugins"]["extractors"] if e["name"] == "tap-gong-flows"]
    return extractor


def json_type(schema: dict[str, t.Any]) -> str:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    (kind,) = [name for name in types if name != "null"]
    return kind


def check_settings(
    definition: dict[str, t.Any], about: dict[str, t.Any], left_out: dict[str, str]
) -> dict[str, dict[str, t.Any]]:
    """Same names, sensitivity, kinds, labels, defaults and descriptions as the tap; the
    settings by name."""
    properties = about["settings"]["properties"]
    assert set(left_out) <= SDK_BUILTINS, "only SDK built-ins may be left out"
    settings = {s["name"]: s for s in definition["settings"]}
    assert len(settings) == len(definition["settings"]), "a setting is defined twice"
    assert set(settings) == set(properties) - set(left_out)
    for name, setting in settings.items():
        schema = properties[name]
        assert setting.get("sensitive", False) == schema.get("secret", False), name
        assert setting["kind"] in KINDS[json_type(schema)], name
        assert setting["label"] == schema["title"], name
        assert setting.get("value") == schema.get("default"), name
        assert setting["description"] == schema["description"], name
        assert set(setting) <= SETTING_KEYS, name
    return settings


def check_capabilities(definition: dict[str, t.Any], about: dict[str, t.Any]) -> None:
    """Every capability --about lists, once, and no other."""
    assert sorted(definition["capabilities"]) == sorted(about["capabilities"])


def check_groups(definition: dict[str, t.Any], about: dict[str, t.Any]) -> None:
    """Each group names settings that exist, includes the required ones, and is enough."""
    names = {s["name"] for s in definition["settings"]}
    required = set(about["settings"].get("required", []))
    groups = definition["settings_group_validation"]
    assert groups, "settings_group_validation lists the ways to authenticate"
    for group in groups:
        assert set(group) <= names
        assert required <= set(group)
        # Distinctive values: the tap masks its credentials in every log line of this process.
        values = {"string": "hub-group-check-credential", "array": ["ana@example.com"]}
        kinds = {s["name"]: s["kind"] for s in definition["settings"]}
        config = {name: values[kinds[name]] for name in group}
        tap = TapGongFlows(config=config, validate_config=False, setup_mapper=False)
        assert tap._validate_config(raise_errors=False) == [], group


def test_hub_definition_has_every_setting_of_the_tap(
    hub: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    settings = check_settings(hub, about, LEFT_OUT_OF_HUB)
    for name, setting in settings.items():
        assert setting["kind"] in HUB_KINDS, name


def test_hub_definition_groups_are_the_two_auth_methods(
    hub: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    check_groups(hub, about)
    key_pair = {"access_key", "access_key_secret"}
    assert [set(g) & (key_pair | {"access_token"}) for g in hub["settings_group_validation"]] == [
        key_pair,
        {"access_token"},
    ]


def test_hub_definition_names_this_package(hub: dict[str, t.Any], about: dict[str, t.Any]) -> None:
    package = metadata.distribution("tap-gong-flows")
    scripts = {e.name: e.value for e in package.entry_points if e.group == "console_scripts"}
    assert hub["name"] == about["name"] == package.metadata["Name"]
    assert scripts[hub["executable"]] == "tap_gong_flows.__main__:main"
    assert hub["namespace"] == "tap_gong_flows"
    assert package.metadata["Name"] in hub["pip_url"]
    check_capabilities(hub, about)
    assert set(hub["capabilities"]) <= HUB_CAPABILITIES
    assert hub["supported_python_versions"] == about["supported_python_versions"]
    for key in ("variant", "label", "description", "repo"):
        assert hub[key], key


def test_meltano_yml_extractor_has_every_setting_of_the_tap(
    meltano_extractor: dict[str, t.Any], about: dict[str, t.Any], hub: dict[str, t.Any]
) -> None:
    settings = check_settings(meltano_extractor, about, LEFT_OUT_OF_MELTANO_YML)
    check_groups(meltano_extractor, about)
    check_capabilities(meltano_extractor, about)
    in_hub = {s["name"]: s for s in hub["settings"]}
    for name, setting in settings.items():
        assert setting == in_hub[name], name
    assert meltano_extractor["settings_group_validation"] == hub["settings_group_validation"]
    assert meltano_extractor["executable"] == hub["executable"]
    assert meltano_extractor["namespace"] == hub["namespace"]


def test_claimed_python_versions_are_the_ones_ci_tests(hub: dict[str, t.Any]) -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    main = re.search(r"^MAIN_PYTHON=(\S+)", ci, re.MULTILINE)
    quick = re.search(r"^QUICK_PYTHONS=(\S+|\"[^\"]*\")", ci, re.MULTILINE)
    assert main, ".ci/run no longer names MAIN_PYTHON"
    assert quick, ".ci/run no longer names QUICK_PYTHONS"
    tested = {main.group(1), *quick.group(1).strip('"').split()}
    assert set(hub["supported_python_versions"]) == tested
