"""System checks for the FLAKEID setting and the node identity.

Misused fields are reported by ``SnowflakeField.check()``; their IDs are listed here too so that
one table holds every ID this app can report.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from . import conf, lockdir
from .conf import ProblemKind
from .layout import DEFAULT_EPOCH_MS
from .timefmt import ms_to_iso

# Every ID, with what it reports. A retired check keeps its line: numbers are never reused.
CHECKS: tuple[tuple[str, str], ...] = (
    ("django_flakeid.E001", "FLAKEID is not a dict."),
    ("django_flakeid.E002", "FLAKEID has an unknown key."),
    ("django_flakeid.E003", "FLAKEID['preset'] is not the name of a preset."),
    ("django_flakeid.E004", "FLAKEID['preset'] is neither a name nor a dict of the four widths."),
    ("django_flakeid.E005", "A bit width is not an integer."),
    ("django_flakeid.E006", "A bit width is negative."),
    ("django_flakeid.E007", "The bit widths do not add up to 63."),
    ("django_flakeid.E008", "timestamp_bits or sequence_bits is less than 1."),
    ("django_flakeid.E009", "FLAKEID['datacenter_id'] or FLAKEID['machine_id'] is neither an "
     "integer nor one of the words it accepts."),
    ("django_flakeid.E010", "FLAKEID_DATACENTER_ID, FLAKEID_MACHINE_ID or FLAKEID_EPOCH_MS "
     "is neither an integer nor one of the words it accepts."),
    ("django_flakeid.E011", "The datacenter or machine ID does not fit its bit width."),
    ("django_flakeid.E012", "FLAKEID['epoch_ms'] is not an integer."),
    ("django_flakeid.E013", "The epoch is before 1970."),
    ("django_flakeid.E014", "The epoch is in the future."),
    ("django_flakeid.E015", "The layout has run out: its timestamp cannot hold the current time."),
    ("django_flakeid.E016", "A node ID is 'hostname'; the host name ends with no number."),
    ("django_flakeid.E017", "FLAKEID['lease_ttl'] is not a number of seconds in (0, 86400]."),
    ("django_flakeid.E018", "FLAKEID['lease_database'] is not a database in DATABASES."),
    ("django_flakeid.E019", "The node identity is the one set aside for backfilled IDs."),
    ("django_flakeid.E020", "FLAKEID['ids_as_strings'] is not True or False."),
    ("django_flakeid.E021", "FLAKEID['lease_ttl'] is too short for renewals to keep up."),
    ("django_flakeid.E022", "FLAKEID_LOCK_DIR, the folder of host claims, is unusable or unsafe."),
    ("django_flakeid.W001", "The layout runs out within 10 years."),
    ("django_flakeid.W002", "Deploy: machine IDs are unique per host only, and no datacenter_id "
     "tells the hosts apart."),
    ("django_flakeid.W003", "Deploy: a fixed machine_id lets only one process per host make IDs."),
    ("django_flakeid.E101", "A unique SnowflakeField has a constant default."),
    ("django_flakeid.E102", "A SnowflakeField has a db_default."),
)  # fmt: skip

PROBLEM_IDS: dict[ProblemKind, str] = {
    "not_a_dict": "django_flakeid.E001",
    "unknown_key": "django_flakeid.E002",
    "unknown_preset": "django_flakeid.E003",
    "invalid_preset": "django_flakeid.E004",
    "width_not_int": "django_flakeid.E005",
    "width_negative": "django_flakeid.E006",
    "width_sum": "django_flakeid.E007",
    "width_too_small": "django_flakeid.E008",
    "node_not_int": "django_flakeid.E009",
    "environment_not_int": "django_flakeid.E010",
    "node_out_of_range": "django_flakeid.E011",
    "epoch_not_int": "django_flakeid.E012",
    "epoch_negative": "django_flakeid.E013",
    "hostname_no_number": "django_flakeid.E016",
    "lease_ttl_invalid": "django_flakeid.E017",
    "lease_ttl_too_short": "django_flakeid.E021",
    "lease_database_unknown": "django_flakeid.E018",
    "node_reserved": "django_flakeid.E019",
    "ids_as_strings_invalid": "django_flakeid.E020",
}

WARN_WITHIN_YEARS = 10
_MS_PER_YEAR = 365.25 * 24 * 60 * 60 * 1000


def check_setting(**kwargs: Any) -> list[CheckMessage]:
    """Report everything wrong with ``settings.FLAKEID`` and the environment variables."""
    _config, problems = conf.validate()
    return [
        Error(problem.message, hint=problem.hint, id=PROBLEM_IDS[problem.kind])
        for problem in problems
    ]


def check_layout_lifetime(**kwargs: Any) -> list[CheckMessage]:
    """Report an epoch in the future, and a layout that has run out or soon will."""
    config, _problems = conf.validate()
    if config is None:
        return []
    layout, epoch = config.layout, config.epoch_ms
    now_ms = time.time_ns() // 1_000_000
    if now_ms < layout.epoch_ms:
        return [
            Error(
                f"The epoch {ms_to_iso(layout.epoch_ms)} from {epoch.describe()} is in the "
                "future; no ID can be generated before then.",
                hint=f"Set {epoch.target} to a time in the past, "
                f"e.g. {DEFAULT_EPOCH_MS} (2020-01-01).",
                id="django_flakeid.E014",
            )
        ]
    runs_out = ms_to_iso(layout.max_timestamp_ms)
    if now_ms > layout.max_timestamp_ms:
        return [
            Error(
                f"The ID layout ran out at {runs_out}: a {layout.timestamp_bits}-bit timestamp "
                "cannot hold the current time.",
                hint="A later epoch_ms or more timestamp_bits re-stamps times already used, "
                "so new IDs can repeat stored ones: use such a layout only for tables that "
                "start empty (see 'Changing the layout' in the README).",
                id="django_flakeid.E015",
            )
        ]
    if layout.max_timestamp_ms - now_ms < WARN_WITHIN_YEARS * _MS_PER_YEAR:
        return [
            Warning(
                f"The ID layout runs out at {runs_out}, less than {WARN_WITHIN_YEARS} years "
                "from now.",
                hint="After that time no ID can be generated. A later epoch_ms or more "
                "timestamp_bits re-stamps times already used, so new IDs can repeat stored "
                "ones: plan it for tables that start empty (see 'Changing the layout' in the "
                "README).",
                id="django_flakeid.W001",
            )
        ]
    return []


def check_node_identity(**kwargs: Any) -> list[CheckMessage]:
    """Deploy check: warn when processes on several hosts, or on one host, could share a node."""
    config, _problems = conf.validate()
    if config is None:
        return []
    node = config.node
    if node.machine_mode == "fixed":
        return [
            Warning(
                f"machine_id is fixed at {node.machine_id.value} ({node.machine_id.describe()}): "
                "only one process per host can generate IDs with it; others get NodeInUseError.",
                hint="If a host runs several worker processes, set FLAKEID['machine_id'] to "
                "'lease' (or to 'auto', with a datacenter_id per host).",
                id="django_flakeid.W003",
            )
        ]
    if node.machine_mode == "auto" and node.datacenter_id.source == "default":
        return [
            Warning(
                "Machine IDs are claimed per host ('auto') and no datacenter_id is set, so two "
                "hosts can generate the same IDs.",
                hint="Give each host its own FLAKEID_DATACENTER_ID (or 'datacenter_id': "
                "'hostname' on a StatefulSet), or set FLAKEID['machine_id'] to 'lease'."
                if config.layout.datacenter_bits
                else "This layout has no datacenter field to tell hosts apart: set "
                "FLAKEID['machine_id'] to 'lease'.",
                id="django_flakeid.W002",
            )
        ]
    return []


def check_lock_dir(**kwargs: Any) -> list[CheckMessage]:
    """Report a folder of host claims that is relative, unusable, or open to other users."""
    found = lockdir.problem()
    if found is None:
        return []
    message, hint = found
    return [Error(f"{message[:1].upper()}{message[1:]}.", hint=hint, id="django_flakeid.E022")]
