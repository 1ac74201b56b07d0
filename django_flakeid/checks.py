"""System checks for the FLAKEID setting and the node identity.

Misused fields are reported by ``SnowflakeField.check()``; their IDs are listed here too so that
one table holds every ID this app can report.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from . import lockdir
from .layout import DEFAULT_EPOCH_MS
from .settings_reader import (
    PROBLEM_CHECKS,
    Config,
    Problem,
    ProblemKind,
    validate,
    validation_inputs,
)
from .timefmt import ms_to_iso

# The IDs of the checks below, with what each reports. A retired check keeps its line: numbers
# are never reused. The IDs of problems with the setting are declared with those problems.
_OWN_CHECKS: tuple[tuple[str, str], ...] = (
    ("django_flakeid.E014", "The epoch is in the future."),
    ("django_flakeid.E015", "The layout has run out: its timestamp cannot hold the current time."),
    ("django_flakeid.E022", "FLAKEID_LOCK_DIR, the folder of host claims, is unusable or unsafe."),
    ("django_flakeid.W001", "The layout runs out within 10 years."),
    ("django_flakeid.W002", "Deploy: machine IDs are unique per host only, and no datacenter_id "
     "tells the hosts apart."),
    ("django_flakeid.W003", "Deploy: a fixed machine_id lets only one process per host make IDs."),
    ("django_flakeid.E101", "A unique SnowflakeField has a constant default."),
    ("django_flakeid.E102", "A SnowflakeField has a db_default."),
)  # fmt: skip


def _table_order(entry: tuple[str, str]) -> tuple[int, str, int]:
    # The README's order: errors in the setting, then its warnings, then the fields' E1xx.
    level, number = entry[0][-4], int(entry[0][-3:])
    return number // 100, level, number


# Every ID, with what it reports.
CHECKS: tuple[tuple[str, str], ...] = tuple(
    sorted((*PROBLEM_CHECKS.values(), *_OWN_CHECKS), key=_table_order)
)
PROBLEM_IDS: dict[ProblemKind, str] = {
    kind: check_id for kind, (check_id, _summary) in PROBLEM_CHECKS.items()
}

WARN_WITHIN_YEARS = 10
_MS_PER_YEAR = 365.25 * 24 * 60 * 60 * 1000

_last_validation: tuple[tuple[object, ...], tuple[Config | None, list[Problem]]] | None = None


def _validated() -> tuple[Config | None, list[Problem]]:
    """:func:`validate`, run once for all the checks of one ``manage.py check``.

    The result is kept only while what validation reads is unchanged, so a check never reports
    on a setting or an environment that is no longer the one in effect.
    """
    global _last_validation
    inputs = validation_inputs()
    if _last_validation is None or _last_validation[0] != inputs:
        _last_validation = (inputs, validate())
    return _last_validation[1]


def check_setting(**kwargs: Any) -> list[CheckMessage]:
    """Report everything wrong with ``settings.FLAKEID`` and the environment variables."""
    _config, problems = _validated()
    return [Error(problem.message, hint=problem.hint, id=problem.check_id) for problem in problems]


def check_layout_lifetime(**kwargs: Any) -> list[CheckMessage]:
    """Report an epoch in the future, and a layout that has run out or soon will."""
    config, _problems = _validated()
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
    config, _problems = _validated()
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
