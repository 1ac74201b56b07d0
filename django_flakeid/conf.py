"""The one place that reads ``settings.FLAKEID``: validation, node identity and the generator.

Nothing here touches settings at import time. A bad setting is turned into :class:`Problem`
objects for the system checks, and into a :class:`ConfigurationError` only when an ID is
actually requested.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeGuard

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .environ import int_from_env
from .errors import ConfigurationError
from .generator import SnowflakeGenerator
from .layout import DEFAULT_EPOCH_MS, ID_BITS, WIDTH_NAMES, Layout
from .presets import ALL_PRESETS, PRESET_TWITTER

SETTING_NAME = "FLAKEID"
SETTING_KEYS = ("preset", *WIDTH_NAMES, "datacenter_id", "machine_id", "epoch_ms")
ENVIRONMENT_VARIABLES = {
    "datacenter_id": "FLAKEID_DATACENTER_ID",
    "machine_id": "FLAKEID_MACHINE_ID",
    "epoch_ms": "FLAKEID_EPOCH_MS",
}
_DEFAULTS = {"datacenter_id": 0, "machine_id": 0, "epoch_ms": DEFAULT_EPOCH_MS}

Source = Literal["setting", "environment", "default"]
ProblemKind = Literal[
    "not_a_dict",
    "unknown_key",
    "unknown_preset",
    "invalid_preset",
    "width_not_int",
    "width_negative",
    "width_sum",
    "width_too_small",
    "node_not_int",
    "environment_not_int",
    "node_out_of_range",
    "epoch_not_int",
    "epoch_negative",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, worded for the system checks."""

    kind: ProblemKind
    message: str
    hint: str


@dataclass(frozen=True)
class Sourced:
    """A configured integer (``key`` is its FLAKEID key) and where it came from."""

    key: str
    value: int
    source: Source
    #: ``FLAKEID['machine_id']``, ``FLAKEID_MACHINE_ID``, or ``None`` for a default.
    origin: str | None = None

    def describe(self) -> str:
        """``setting FLAKEID['machine_id']``, ``environment FLAKEID_MACHINE_ID`` or ``default``."""
        return self.source if self.origin is None else f"{self.source} {self.origin}"

    @property
    def target(self) -> str:
        """What to change to set this value: its environment variable, else the setting key."""
        return self.origin or _key(self.key)


@dataclass(frozen=True)
class NodeIdentity:
    datacenter_id: Sourced
    machine_id: Sourced

    @property
    def is_explicit(self) -> bool:
        """True when the setting or the environment gives at least one of the two IDs."""
        return {self.datacenter_id.source, self.machine_id.source} != {"default"}


@dataclass(frozen=True)
class Config:
    """The configuration in effect: the layout, the node identity and the epoch's source."""

    layout: Layout
    node: NodeIdentity
    epoch_ms: Sourced

    @property
    def preset_name(self) -> str | None:
        """The name of the preset whose widths the layout has, if any."""
        widths = {name: getattr(self.layout, name) for name in WIDTH_NAMES}
        for name, preset in ALL_PRESETS.items():
            if dict(preset) == widths:
                return name
        return None


def validate() -> tuple[Config | None, list[Problem]]:
    """Read ``settings.FLAKEID`` and the environment afresh, without touching the cache.

    Returns the configuration, or None and every problem found.
    """
    return _Reader(getattr(settings, SETTING_NAME, None), os.environ).read()


class _State(NamedTuple):
    config: Config | None
    problems: list[Problem]
    generator: SnowflakeGenerator | None


_lock = threading.Lock()
_state: _State | None = None


def _load() -> _State:
    config, problems = validate()
    if config is None:
        return _State(None, problems, None)
    layout, node = config.layout, config.node
    generator = SnowflakeGenerator(
        timestamp_bits=layout.timestamp_bits,
        datacenter_bits=layout.datacenter_bits,
        machine_bits=layout.machine_bits,
        sequence_bits=layout.sequence_bits,
        epoch_ms=layout.epoch_ms,
        datacenter_id=node.datacenter_id.value,
        machine_id=node.machine_id.value,
    )
    return _State(config, [], generator)


def _loaded() -> tuple[Config, SnowflakeGenerator]:
    global _state
    state = _state
    if state is None:
        with _lock:
            # Two threads racing here must not each build a generator: two generators with
            # the same node identity in one process would hand out the same IDs.
            if _state is None:
                _state = _load()
            state = _state
    if state.config is None or state.generator is None:
        first = state.problems[0].message.rstrip(".")
        more = len(state.problems) - 1
        also = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigurationError(
            f"Invalid {SETTING_NAME}: {first}{also}. Run 'manage.py check' for details."
        )
    return state.config, state.generator


def get_generator() -> SnowflakeGenerator:
    """The process's generator, built from ``settings.FLAKEID`` on first use.

    Raises :class:`ConfigurationError` when the setting is invalid.
    """
    return _loaded()[1]


def get_config() -> Config:
    """The configuration behind :func:`get_generator`; raises :class:`ConfigurationError`."""
    return _loaded()[0]


def get_layout() -> Layout:
    """The bit layout and epoch from ``settings.FLAKEID``; raises :class:`ConfigurationError`."""
    return get_config().layout


def clear_cache() -> None:
    """Forget the configuration and generator so the next use reads the setting again."""
    global _state
    with _lock:
        _state = None


@receiver(setting_changed)
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        clear_cache()


def _key(key: str) -> str:
    return f"{SETTING_NAME}['{key}']"


def _closest(word: object, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), candidates, n=1)
    return matches[0] if matches else None


def _type_name(value: object) -> str:
    return type(value).__name__


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader:
    """One validation pass over a FLAKEID value; keeps going to report every problem."""

    def __init__(self, setting: object, environ: Mapping[str, str]) -> None:
        self.setting = {} if setting is None else setting
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, kind: ProblemKind, message: str, hint: str) -> None:
        self.problems.append(Problem(kind, message, hint))

    def read(self) -> tuple[Config | None, list[Problem]]:
        setting = self.setting
        if not isinstance(setting, Mapping):
            self.problem(
                "not_a_dict",
                f"{SETTING_NAME} must be a dict, not {_type_name(setting)}.",
                f"Set {SETTING_NAME} to a dict such as {{'preset': 'twitter', 'machine_id': 1}}, "
                "or remove it to use the defaults.",
            )
            return None, self.problems
        self.check_keys(setting)
        widths = self.read_widths(setting)
        epoch = self.read_epoch(setting)
        layout = None
        if widths is not None and epoch is not None:
            layout = Layout(**widths, epoch_ms=epoch.value)
        node = self.read_node(setting, layout)
        if self.problems or layout is None or node is None or epoch is None:
            return None, self.problems
        return Config(layout=layout, node=node, epoch_ms=epoch), []

    def check_keys(self, setting: Mapping[Any, Any]) -> None:
        for key in setting:
            if key in SETTING_KEYS:
                continue
            suggestion = _closest(key, list(SETTING_KEYS))
            self.problem(
                "unknown_key",
                f"{SETTING_NAME} has an unknown key {key!r}.",
                f"Did you mean {suggestion!r}?"
                if suggestion
                else f"Remove it; the known keys are {', '.join(SETTING_KEYS)}.",
            )

    def read_preset(self, preset: object) -> dict[str, tuple[object, str]] | None:
        """The preset's widths, each with the name it is reported under, or None."""
        where = _key("preset")
        if preset is None:
            preset = PRESET_TWITTER
        elif isinstance(preset, str):
            if preset not in ALL_PRESETS:
                suggestion = _closest(preset, list(ALL_PRESETS))
                prefix = f"Did you mean {suggestion!r}? " if suggestion else ""
                self.problem(
                    "unknown_preset",
                    f"{where} {preset!r} is not a known preset.",
                    f"{prefix}Choose one of {', '.join(ALL_PRESETS)}, "
                    "or give a dict of the four widths.",
                )
                return None
            preset = ALL_PRESETS[preset]
        elif isinstance(preset, Mapping):
            missing = [name for name in WIDTH_NAMES if name not in preset]
            extra = [key for key in preset if key not in WIDTH_NAMES]
            if missing or extra:
                wrong = [
                    *(f"missing {name}" for name in missing),
                    *(f"unknown key {key!r}" for key in extra),
                ]
                self.problem(
                    "invalid_preset",
                    f"{where} must have exactly the four width keys ({', '.join(wrong)}).",
                    f"Give {where} the keys {', '.join(WIDTH_NAMES)}, or use a preset name.",
                )
                return None
            return {name: (preset[name], f"{where}['{name}']") for name in WIDTH_NAMES}
        else:
            self.problem(
                "invalid_preset",
                f"{where} must be a preset name or a dict of the four widths, "
                f"not {_type_name(preset)}.",
                f"Use one of {', '.join(ALL_PRESETS)}, or a dict with the keys "
                f"{', '.join(WIDTH_NAMES)}.",
            )
            return None
        return {name: (preset[name], where) for name in WIDTH_NAMES}

    def read_widths(self, setting: Mapping[Any, Any]) -> dict[str, int] | None:
        base = self.read_preset(setting.get("preset"))
        found: dict[str, tuple[object, str]] = {}
        for name in WIDTH_NAMES:
            if setting.get(name) is not None:
                found[name] = (setting[name], _key(name))
            elif base is not None:
                found[name] = base[name]
        widths: dict[str, int] = {}
        for name, (value, where) in found.items():
            if not _is_int(value):
                self.problem(
                    "width_not_int",
                    f"{where} must be an integer, not {_type_name(value)} {value!r}.",
                    f"Set {name} to a whole number of bits.",
                )
            elif value < 0:
                self.problem(
                    "width_negative",
                    f"{where} is {value}; a bit width cannot be negative.",
                    f"Set {name} to 0 or more bits.",
                )
            else:
                widths[name] = int(value)
        if len(widths) != len(WIDTH_NAMES):
            return None
        total = sum(widths.values())
        if total != ID_BITS:
            self.problem(
                "width_sum",
                f"{SETTING_NAME}'s bit widths add up to {total} "
                f"({' + '.join(str(widths[name]) for name in WIDTH_NAMES)}), not {ID_BITS}.",
                f"Change {', '.join(WIDTH_NAMES)} so that they add up to {ID_BITS}.",
            )
        for name in ("timestamp_bits", "sequence_bits"):
            if widths[name] < 1:
                self.problem(
                    "width_too_small",
                    f"{name} is {widths[name]}; it must be at least 1.",
                    f"Give {name} at least one bit, taken from another field.",
                )
        too_small = any(widths[name] < 1 for name in ("timestamp_bits", "sequence_bits"))
        return None if total != ID_BITS or too_small else widths

    def read_int(self, setting: Mapping[Any, Any], key: str) -> Sourced | None:
        """A value from the setting, else its environment variable, else the default.

        Returns None (after recording the problem) when the value is not an integer.
        """
        where = _key(key)
        value = setting.get(key)
        if value is not None:
            if not _is_int(value):
                kind: ProblemKind = "epoch_not_int" if key == "epoch_ms" else "node_not_int"
                self.problem(
                    kind,
                    f"{where} must be an integer, not {_type_name(value)} {value!r}.",
                    f"Set {where} to a whole number"
                    + (" of milliseconds since 1970." if key == "epoch_ms" else "."),
                )
                return None
            return Sourced(key, int(value), "setting", where)
        variable = ENVIRONMENT_VARIABLES[key]
        try:
            from_environment = int_from_env(variable, self.environ)
        except ConfigurationError:
            self.problem(
                "environment_not_int",
                f"Environment variable {variable}={self.environ[variable]!r} is not an integer.",
                f"Set {variable} to a whole number, or unset it.",
            )
            return None
        if from_environment is not None:
            return Sourced(key, from_environment, "environment", variable)
        return Sourced(key, _DEFAULTS[key], "default")

    def read_epoch(self, setting: Mapping[Any, Any]) -> Sourced | None:
        epoch = self.read_int(setting, "epoch_ms")
        if epoch is not None and epoch.value < 0:
            self.problem(
                "epoch_negative",
                f"epoch_ms {epoch.value} from {epoch.describe()} is before 1970.",
                f"Set {epoch.target} to 0 or more, e.g. {DEFAULT_EPOCH_MS} (2020-01-01).",
            )
            return None
        return epoch

    def read_node(self, setting: Mapping[Any, Any], layout: Layout | None) -> NodeIdentity | None:
        """The node-identity step: each ID from the setting, else the environment, else 0."""
        datacenter = self.read_int(setting, "datacenter_id")
        machine = self.read_int(setting, "machine_id")
        if layout is not None:
            for sourced, bits, top, field in (
                (datacenter, layout.datacenter_bits, layout.max_datacenter_id, "datacenter"),
                (machine, layout.machine_bits, layout.max_machine_id, "machine"),
            ):
                if sourced is not None and not 0 <= sourced.value <= top:
                    target = sourced.target
                    hint = (
                        f"Set {target} to an integer from 0 to {top}."
                        if bits
                        else f"The layout has no {field} bits: set {target} to 0, "
                        f"or give {_key(field + '_bits')} some bits."
                    )
                    self.problem(
                        "node_out_of_range",
                        f"{field}_id {sourced.value} from {sourced.describe()} is out of range "
                        f"for {bits} {field} bits (0 to {top}).",
                        hint,
                    )
        if datacenter is None or machine is None:
            return None
        return NodeIdentity(datacenter, machine)
