"""The tap stays on singer-sdk's public surface (issue 12).

No class of the tap overrides a method the SDK marks final, and each private SDK name the tap
still needs (all used in tap_gong_flows/sdk_compat.py) is there with the signature it expects.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import tap_gong_flows


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
    """The function behind a method, classmethod, staticmethod or property getter."""
    if isinstance(attribute, (classmethod, staticmethod)):
        return attribute.__func__
    if isinstance(attribute, property):
        return attribute.fget
    return attribute


def test_the_probe_sees_the_tap_classes():
    names = {cls.__name__ for cls in _tap_classes()}
    assert {"TapGongFlows", "GongStream", "FlowsStream", "BufferedMsgSpecWriter"} <= names


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
