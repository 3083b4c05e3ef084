"""The tap stays on singer-sdk's public surface (issue 12).

No class of the tap overrides a method the SDK marks final, and each private SDK name the tap
still needs (all used in tap_gong_flows/sdk_compat.py) is there with the signature it expects.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import threading

import click
import pytest

import tap_gong_flows
from tap_gong_flows import sdk_compat
from tap_gong_flows.tap import TapGongFlows


def _tap_classes() -> list[type]:
    classes = []
    for info in pkgutil.walk_packages(tap_gong_flows.__path__, "tap_gong_flows."):
        module = importlib.import_module(info.name)
        classes += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__
        ]
    return classes


def _function(attribute: object) -> object:
    """The function behind a method, classmethod, staticmethod or (cached) property."""
    if isinstance(attribute, (classmethod, staticmethod)):
        return attribute.__func__
    if isinstance(attribute, property):
        return attribute.fget
    if isinstance(attribute, functools.cached_property):
        return attribute.func
    return attribute


def test_the_probe_sees_the_tap_classes():
    names = {cls.__name__ for cls in _tap_classes()}
    assert {"TapGongFlows", "GongStream", "FlowsStream", "FlowStepsStream"} <= names


def test_no_method_overrides_a_final_sdk_method():
    overrides = []
    for cls in _tap_classes():
        for name in vars(cls):
            for base in cls.__mro__[1:]:
                if not base.__module__.startswith("singer_sdk") or name not in vars(base):
                    continue
                if getattr(_function(vars(base)[name]), "__final__", False):
                    overrides.append(
                        f"{cls.__module__}.{cls.__qualname__}.{name} overrides "
                        f"{base.__module__}.{base.__qualname__}.{name}, which is final"
                    )
    assert not overrides, "\n".join(overrides)


def test_every_override_says_so():
    """An SDK upgrade that renames a hook then fails in mypy instead of going unnoticed."""
    unmarked = []
    for cls in _tap_classes():
        for name, attribute in vars(cls).items():
            function = _function(attribute)
            if not inspect.isfunction(function) or name.startswith("__"):
                continue
            overridden = [b for b in cls.__mro__[1:-1] if name in vars(b)]
            if overridden and not getattr(function, "__override__", False):
                unmarked.append(f"{cls.__qualname__}.{name} (overrides {overridden[0].__module__})")
    assert not unmarked, "Mark these with @typing_extensions.override:\n" + "\n".join(unmarked)


# Each private SDK name the tap relies on (tap_gong_flows/sdk_compat.py says why), with the
# parameters it must take. A failure here means the installed singer-sdk moved one: adapt
# sdk_compat.py (or the override named) to the new SDK before releasing.
PRIVATE_METHODS = [
    ("singer_sdk.streams.rest", "RESTStream", "_request", ["self", "prepared_request", "context"]),
    ("singer_sdk.streams.core", "Stream", "_write_state_message", ["self"]),
    ("singer_sdk.streams.core", "Stream", "_write_schema_message", ["self"]),
    (
        "singer_sdk.streams.core",
        "Stream",
        "_write_activate_version_message",
        ["self", "full_table_version"],
    ),
    ("singer_sdk.plugin_base", "PluginBase", "_validate_config", ["self", "raise_errors"]),
    ("singer_sdk.plugin_base", "PluginBase", "_setup_signal_handlers", ["self"]),
]
PRIVATE_CLASS_ATTRIBUTES = [("singer_sdk.streams.rest", "RESTStream", "_LOG_REQUEST_METRICS")]
# Set in the SDK's __init__, so looked for on an instance.
PRIVATE_STREAM_ATTRIBUTES = ["_stream_version"]


@pytest.mark.parametrize(("module", "cls", "name", "parameters"), PRIVATE_METHODS)
def test_private_sdk_method_is_still_there(module, cls, name, parameters):
    owner = getattr(importlib.import_module(module), cls)
    method = getattr(owner, name, None)
    assert callable(method), f"singer-sdk no longer has {module}.{cls}.{name}: see sdk_compat.py"
    found = list(inspect.signature(method).parameters)
    assert found == parameters, (
        f"singer-sdk's {cls}.{name} now takes {found}, not {parameters}: see sdk_compat.py"
    )


@pytest.mark.parametrize(("module", "cls", "name"), PRIVATE_CLASS_ATTRIBUTES)
def test_private_sdk_class_attribute_is_still_there(module, cls, name):
    owner = getattr(importlib.import_module(module), cls)
    assert hasattr(owner, name), f"singer-sdk no longer has {cls}.{name}: see sdk_compat.py"


@pytest.fixture(scope="module")
def tap():
    # Built in another thread: in the main thread the tap would take over SIGINT and SIGTERM.
    built = []
    config = {"access_token": "surface-probe-token", "flow_owner_emails": ["a@example.com"]}
    thread = threading.Thread(target=lambda: built.append(TapGongFlows(config=config)))
    thread.start()
    thread.join()
    return built[0]


@pytest.mark.parametrize("name", PRIVATE_STREAM_ATTRIBUTES)
def test_private_sdk_stream_attribute_is_still_there(tap, name):
    stream = tap.streams["flows"]
    assert hasattr(stream, name), f"singer-sdk's Stream no longer sets {name}: see sdk_compat.py"


def test_private_sdk_state_flag_and_config_are_still_there(tap):
    stream = tap.streams["flows"]
    assert isinstance(stream.state_manager.is_flushed, bool), (
        "singer-sdk's state manager no longer has is_flushed: see sdk_compat.write_state"
    )
    assert isinstance(sdk_compat.mutable_config(tap), dict), (
        "singer-sdk's PluginBase no longer keeps its config as a dict in _config: see "
        "sdk_compat.mutable_config"
    )


def test_cli_config_reads_what_the_sdk_gives_its_callbacks(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"access_token": "t"}')
    given = importlib.import_module("singer_sdk.plugin_base")._ConfigInput.from_cli_args(
        str(path), "ENV"
    )
    ctx = click.Context(click.Command("tap"))
    ctx.params["config"] = given
    assert sdk_compat.cli_config(ctx) == ({"access_token": "t"}, True)
