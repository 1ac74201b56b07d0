"""Reading ``settings.FLAKEID`` and the environment into a :class:`Config`, or into problems.

Each read is afresh: caching the result for the process is ``conf``'s job. Every kind of
problem is declared here with the system check ID that reports it, so a new rule is written in
one place and ``checks`` derives its table from it.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from django.conf import settings

from .environ import int_from_env
from .errors import ConfigurationError
from .ints import is_int
from .layout import DEFAULT_EPOCH_MS, ID_BITS, WIDTH_NAMES, Layout
from .presets import ALL_PRESETS, PRESET_TWITTER

SETTING_NAME = "FLAKEID"
SETTING_KEYS = (
    "preset",
    *WIDTH_NAMES,
    "datacenter_id",
    "machine_id",
    "epoch_ms",
    "lease_ttl",
    "lease_database",
    "ids_as_strings",
)
#: Words ``machine_id`` accepts besides a number; ``datacenter_id`` accepts ``hostname`` only.
MACHINE_WORDS = ("auto", "lease", "hostname")
DEFAULT_LEASE_TTL = 30.0
MAX_LEASE_TTL = 86_400.0
# Renewals run every third of the TTL and a slow database round trip or a retry takes a good
# part of a second: below this, a healthy process would lose its lease.
MIN_LEASE_TTL = 3.0
ENVIRONMENT_VARIABLES = {
    "datacenter_id": "FLAKEID_DATACENTER_ID",
    "machine_id": "FLAKEID_MACHINE_ID",
    "epoch_ms": "FLAKEID_EPOCH_MS",
}
_DEFAULTS: dict[str, int | str] = {
    "datacenter_id": 0,
    "machine_id": "auto",
    "epoch_ms": DEFAULT_EPOCH_MS,
}
_TRAILING_NUMBER = re.compile(r"(\d+)$")

Source = Literal["setting", "environment", "default"]
_V = TypeVar("_V")
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
    "hostname_no_number",
    "node_reserved",
    "lease_ttl_invalid",
    "lease_ttl_too_short",
    "lease_database_unknown",
    "ids_as_strings_invalid",
]
#: Each kind of problem: the ID of the system check that reports it, and what that check
#: reports, as ``checks.CHECKS`` and the README's table show it. Numbers are never reused.
PROBLEM_CHECKS: dict[ProblemKind, tuple[str, str]] = {
    "not_a_dict": ("django_flakeid.E001", "FLAKEID is not a dict."),
    "unknown_key": ("django_flakeid.E002", "FLAKEID has an unknown key."),
    "unknown_preset": ("django_flakeid.E003", "FLAKEID['preset'] is not the name of a preset."),
    "invalid_preset": ("django_flakeid.E004", "FLAKEID['preset'] is neither a name nor a dict "
                       "of the four widths."),
    "width_not_int": ("django_flakeid.E005", "A bit width is not an integer."),
    "width_negative": ("django_flakeid.E006", "A bit width is negative."),
    "width_sum": ("django_flakeid.E007", "The bit widths do not add up to 63."),
    "width_too_small": ("django_flakeid.E008", "timestamp_bits or sequence_bits is less than 1."),
    "node_not_int": ("django_flakeid.E009", "FLAKEID['datacenter_id'] or FLAKEID['machine_id'] "
                     "is neither an integer nor one of the words it accepts."),
    "environment_not_int": ("django_flakeid.E010", "FLAKEID_DATACENTER_ID, FLAKEID_MACHINE_ID or "
                            "FLAKEID_EPOCH_MS is neither an integer nor one of the words it "
                            "accepts."),
    "node_out_of_range": ("django_flakeid.E011", "The datacenter or machine ID does not fit its "
                          "bit width."),
    "epoch_not_int": ("django_flakeid.E012", "FLAKEID['epoch_ms'] is not an integer."),
    "epoch_negative": ("django_flakeid.E013", "The epoch is before 1970."),
    "hostname_no_number": ("django_flakeid.E016", "A node ID is 'hostname'; the host name ends "
                           "with no number."),
    "lease_ttl_invalid": ("django_flakeid.E017", "FLAKEID['lease_ttl'] is not a number of "
                          "seconds in (0, 86400]."),
    "lease_database_unknown": ("django_flakeid.E018", "FLAKEID['lease_database'] is not a "
                               "database in DATABASES."),
    "node_reserved": ("django_flakeid.E019", "The node identity is the one set aside for "
                      "backfilled IDs."),
    "ids_as_strings_invalid": ("django_flakeid.E020", "FLAKEID['ids_as_strings'] is not True or "
                               "False."),
    "lease_ttl_too_short": ("django_flakeid.E021", "FLAKEID['lease_ttl'] is too short for "
                            "renewals to keep up."),
}  # fmt: skip
MachineMode = Literal["fixed", "auto", "lease"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, worded for the system checks."""

    kind: ProblemKind
    message: str
    hint: str

    @property
    def check_id(self) -> str:
        """The ID of the system check that reports it, such as ``django_flakeid.E001``."""
        return PROBLEM_CHECKS[self.kind][0]


@dataclass(frozen=True)
class Sourced(Generic[_V]):
    """A configured value (``key`` is its FLAKEID key) and where it came from."""

    key: str
    value: _V
    source: Source
    #: ``FLAKEID['machine_id']``, ``FLAKEID_MACHINE_ID``, or ``None`` for a default.
    origin: str | None = None

    def describe(self) -> str:
        """``setting FLAKEID['machine_id']``, ``environment FLAKEID_MACHINE_ID`` or ``default``."""
        return self.source if self.origin is None else f"{self.source} {self.origin}"

    @property
    def target(self) -> str:
        """What to change to set this value: its environment variable, else the setting key."""
        if self.source == "environment":
            return ENVIRONMENT_VARIABLES[self.key]
        return _key(self.key)


@dataclass(frozen=True)
class NodeIdentity:
    """The configured node: a datacenter number, and a machine number, ``auto`` or ``lease``."""

    datacenter_id: Sourced[int]
    machine_id: Sourced[int | Literal["auto", "lease"]]

    @property
    def machine_mode(self) -> MachineMode:
        """``fixed`` for a number, else how the machine ID is found: ``auto`` or ``lease``."""
        value = self.machine_id.value
        return "fixed" if isinstance(value, int) else value


@dataclass(frozen=True)
class Config:
    """The configuration in effect: the layout, the node identity and the epoch's source."""

    layout: Layout
    node: NodeIdentity
    epoch_ms: Sourced[int]
    #: Seconds a leased machine ID stays valid without renewal, and the database holding it.
    lease_ttl: float = DEFAULT_LEASE_TTL
    lease_database: str = "default"

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


def validation_inputs() -> tuple[object, ...]:
    """Everything :func:`validate` reads, so that a caller can tell whether its result holds.

    The setting is given as itself and as its ``repr``: a different setting can compare equal
    (``True == 1``, or the same dict changed in place) but prints differently, and one that
    prints alike can differ.
    """
    setting = getattr(settings, SETTING_NAME, None)
    return (
        setting,
        repr(setting),
        tuple(os.environ.get(variable) for variable in ENVIRONMENT_VARIABLES.values()),
        socket.gethostname(),
        tuple(settings.DATABASES),
    )


def _key(key: str) -> str:
    return f"{SETTING_NAME}['{key}']"


def _closest(word: object, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), candidates, n=1)
    return matches[0] if matches else None


def _type_name(value: object) -> str:
    return type(value).__name__


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
        lease = self.read_lease(setting)
        self.read_ids_as_strings(setting)
        if self.problems or layout is None or node is None or epoch is None or lease is None:
            return None, self.problems
        ttl, database = lease
        return Config(layout, node, epoch, lease_ttl=ttl, lease_database=database), []

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
            if not is_int(value):
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

    def read_value(
        self, setting: Mapping[Any, Any], key: str, words: tuple[str, ...] = ()
    ) -> Sourced[int | str] | None:
        """A value from the setting, else its environment variable, else the default.

        Besides integers, ``words`` are accepted; ``hostname`` becomes the number the host's
        name ends with. Returns None (after recording the problem) for anything else.
        """
        where = _key(key)
        variable = ENVIRONMENT_VARIABLES[key]
        allowed = "an integer" + "".join(f" or {word!r}" for word in words)
        value = setting.get(key)
        if value is not None:
            if not (is_int(value) or value in words):
                kind: ProblemKind = "epoch_not_int" if key == "epoch_ms" else "node_not_int"
                self.problem(
                    kind,
                    f"{where} must be {allowed}, not {_type_name(value)} {value!r}.",
                    f"Set {where} to a whole number"
                    + (" of milliseconds since 1970." if key == "epoch_ms" else ".")
                    + (f" It also accepts {', '.join(map(repr, words))}." if words else ""),
                )
                return None
            sourced: Sourced[int | str] = Sourced(key, value, "setting", where)
        elif variable in self.environ and self.environ[variable].strip() in words:
            sourced = Sourced(key, self.environ[variable].strip(), "environment", variable)
        else:
            try:
                from_environment = int_from_env(variable, self.environ)
            except ConfigurationError:
                self.problem(
                    "environment_not_int",
                    f"Environment variable {variable}={self.environ[variable]!r} is not {allowed}.",
                    f"Set {variable} to a whole number, or unset it.",
                )
                return None
            if from_environment is None:
                return Sourced(key, _DEFAULTS[key], "default")
            sourced = Sourced(key, from_environment, "environment", variable)
        return self.resolve_hostname(sourced) if sourced.value == "hostname" else sourced

    def resolve_hostname(self, sourced: Sourced[int | str]) -> Sourced[int | str] | None:
        host = socket.gethostname()
        number = _TRAILING_NUMBER.search(host)
        if number is None:
            self.problem(
                "hostname_no_number",
                f"{sourced.target} is 'hostname', but the host name {host!r} does not end "
                "with a number.",
                "Use 'hostname' only where host names end with their ordinal, like a "
                "Kubernetes StatefulSet's web-0, web-1, ...; otherwise set a number.",
            )
            return None
        origin = f"{sourced.origin or _key(sourced.key)} = 'hostname' ({host})"
        return Sourced(sourced.key, int(number.group(1)), sourced.source, origin)

    def read_epoch(self, setting: Mapping[Any, Any]) -> Sourced[int] | None:
        epoch = self.read_value(setting, "epoch_ms")
        if epoch is None or not isinstance(epoch.value, int):
            return None
        if epoch.value < 0:
            self.problem(
                "epoch_negative",
                f"epoch_ms {epoch.value} from {epoch.describe()} is before 1970.",
                f"Set {epoch.target} to 0 or more, e.g. {DEFAULT_EPOCH_MS} (2020-01-01).",
            )
            return None
        return Sourced(epoch.key, epoch.value, epoch.source, epoch.origin)

    def read_node(self, setting: Mapping[Any, Any], layout: Layout | None) -> NodeIdentity | None:
        """The datacenter (a number) and the machine (a number, ``auto`` or ``lease``)."""
        datacenter = self.read_value(setting, "datacenter_id", ("hostname",))
        machine = self.read_value(setting, "machine_id", MACHINE_WORDS)
        if layout is not None:
            for sourced, bits, top, field in (
                (datacenter, layout.datacenter_bits, layout.max_datacenter_id, "datacenter"),
                (machine, layout.machine_bits, layout.max_machine_id, "machine"),
            ):
                if (
                    sourced is not None
                    and isinstance(sourced.value, int)
                    and not 0 <= sourced.value <= top
                ):
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
        if datacenter is None or machine is None or not isinstance(datacenter.value, int):
            return None
        if layout is not None:
            self.check_backfill_node(layout, datacenter, machine)
        return NodeIdentity(
            Sourced(datacenter.key, datacenter.value, datacenter.source, datacenter.origin),
            Sourced(machine.key, machine.value, machine.source, machine.origin),  # type: ignore[arg-type]
        )

    def check_backfill_node(
        self, layout: Layout, datacenter: Sourced[int | str], machine: Sourced[int | str]
    ) -> None:
        """Refuse the node set aside for ``manage.py flakeid backfill``."""
        reserved = layout.backfill_node
        if reserved is None or datacenter.value != reserved[0]:
            return
        if machine.value == reserved[1]:
            self.problem(
                "node_reserved",
                f"datacenter_id {datacenter.value} with machine_id {machine.value} is the node "
                "set aside for backfilled IDs; no live process may generate IDs with it.",
                f"Set {machine.target} to a number from 0 to {reserved[1] - 1}."
                if layout.machine_bits
                else f"Set {datacenter.target} to a number from 0 to {reserved[0] - 1}.",
            )
        elif not isinstance(machine.value, int) and not layout.machine_bits:
            self.problem(
                "node_reserved",
                f"datacenter_id {datacenter.value} has a single machine ID, and it is set aside "
                "for backfilled IDs.",
                f"Set {datacenter.target} to a number from 0 to {reserved[0] - 1}.",
            )

    def read_lease(self, setting: Mapping[Any, Any]) -> tuple[float, str] | None:
        ttl = setting.get("lease_ttl")
        ttl = DEFAULT_LEASE_TTL if ttl is None else ttl
        database = setting.get("lease_database")
        database = "default" if database is None else database
        valid = True
        if (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not 0 < ttl <= MAX_LEASE_TTL
        ):
            self.problem(
                "lease_ttl_invalid",
                f"{_key('lease_ttl')} must be a number of seconds above 0 and at most "
                f"{MAX_LEASE_TTL:g}, not {ttl!r}.",
                f"Set {_key('lease_ttl')} to e.g. {DEFAULT_LEASE_TTL:g}; leases are renewed "
                "every third of it.",
            )
            valid = False
        elif ttl < MIN_LEASE_TTL:
            self.problem(
                "lease_ttl_too_short",
                f"{_key('lease_ttl')} is {ttl:g} s; renewals every {ttl / 3:.2g} s cannot be "
                "kept up reliably, and a lease that lapses stops IDs.",
                f"Set {_key('lease_ttl')} to {MIN_LEASE_TTL:g} seconds or more, e.g. "
                f"{DEFAULT_LEASE_TTL:g}.",
            )
            valid = False
        # A list or dict here would make the membership test below fail with "unhashable".
        if not isinstance(database, str) or database not in settings.DATABASES:
            self.problem(
                "lease_database_unknown",
                f"{_key('lease_database')} {database!r} is not the name of a database in "
                "DATABASES.",
                f"Set it to one of {', '.join(map(repr, settings.DATABASES))}.",
            )
            valid = False
        return (float(ttl), str(database)) if valid else None

    def read_ids_as_strings(self, setting: Mapping[Any, Any]) -> None:
        value = setting.get("ids_as_strings")
        if value is not None and not isinstance(value, bool):
            self.problem(
                "ids_as_strings_invalid",
                f"{_key('ids_as_strings')} must be True or False, not {_type_name(value)} "
                f"{value!r}.",
                f"Set {_key('ids_as_strings')} to True to write Snowflake IDs to JSON as "
                "strings, or to False for numbers.",
            )
