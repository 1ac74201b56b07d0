"""What keeping a table's partitions takes: which to create, which to drop, and what stops it.

Only arithmetic on the partitions a table has, the layout and the clock: no database, and no
Django.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .intervals import Interval, Span, interval_start, span_at, spans_from
from .layout import Layout
from .timefmt import ms_to_datetime, ms_to_iso, unix_ms


class Ranged(Protocol):
    """A partition as a plan reads it: IDs ``low <= id < high``, None for an open end."""

    @property
    def low(self) -> int | None: ...

    @property
    def high(self) -> int | None: ...

    @property
    def catch_all(self) -> bool: ...


Partition = TypeVar("Partition", bound=Ranged)


@dataclass(frozen=True)
class Plan(Generic[Partition]):
    """The partitions to create and to drop, or the problems that forbid touching the table."""

    #: The interval holding now.
    current: Span
    #: Contiguous, each starting where the one before ends, the first where the table's
    #: newest partition ends.
    create: tuple[Span, ...]
    drop: tuple[Partition, ...]
    #: Where the newest partition other than the catch-all ends; None when there is none.
    ends_at: dt.datetime | None
    #: Whether a partition other than the catch-all holds the IDs made now.
    covers_now: bool
    problems: tuple[str, ...]


def plan_partitions(
    partitions: list[Partition],
    layout: Layout,
    interval: Interval,
    now: dt.datetime,
    *,
    ahead: int,
    cut: dt.datetime | None = None,
) -> Plan[Partition]:
    """Partitions up to ``ahead`` intervals after the current one; none ending after ``cut``."""
    if ahead < 0:
        raise ValueError(f"ahead must be 0 or more, not {ahead}")
    current = span_at(layout, interval, now)
    goal = spans_from(layout, interval, now, ahead + 1)[-1].high
    ranged = [part for part in partitions if not part.catch_all]
    top = max((part.high for part in ranged if part.high is not None), default=None)
    covers_now = top is not None and top > layout.max_id_at(now)
    problems = []
    if not covers_now and not any(part.catch_all for part in partitions):
        reach = "has no partitions" if top is None else f"ends at {_moment(layout, top)}"
        problems.append(
            f"The table {reach} and has no catch-all partition, so the IDs made now "
            f"({_iso(now)}) fit in no partition and new rows cannot be inserted."
        )
    drop: tuple[Partition, ...] = ()
    if cut is not None:
        if cut > current.start:
            problems.append(
                f"The cut {_iso(cut)} is after the start of the current {interval} "
                f"({_iso(current.start)}): it would drop the partition new rows go to."
            )
        else:
            below = layout.min_id_at(cut)
            drop = tuple(part for part in ranged if part.high is not None and part.high <= below)
    return Plan(
        current=current,
        create=tuple(_missing(layout, interval, current, top, goal)),
        drop=drop,
        ends_at=None if top is None else ms_to_datetime(layout.decode(top).timestamp_ms),
        covers_now=covers_now,
        problems=tuple(problems),
    )


def keep_cut(interval: Interval, now: dt.datetime, keep: int) -> dt.datetime:
    """The start of the oldest of the ``keep`` intervals that end with the current one."""
    if keep < 1:
        raise ValueError(f"keep must be 1 or more (the current interval), not {keep}")
    start = interval_start(now, interval)
    for _ in range(keep - 1):
        # Any moment of the day before a start lies in the interval before it.
        start = interval_start(start - dt.timedelta(days=1), interval)
    return start


def count(number: int, interval: Interval) -> str:
    """``1 month``, ``3 days``."""
    return f"{number} {interval}{'' if number == 1 else 's'}"


def _missing(
    layout: Layout, interval: Interval, current: Span, top: int | None, goal: int
) -> list[Span]:
    if top is None:
        moment, low = current.start, current.low
    elif top >= goal:
        return []
    else:
        moment, low = ms_to_datetime(layout.decode(top).timestamp_ms), top
    found: list[Span] = []
    while low < goal:
        span = span_at(layout, interval, moment)
        # A newest partition that ends inside an interval (the table cut by another interval
        # before, say) is followed by the rest of that interval, so that no ID is left out.
        if span.low != low:
            span = Span(moment, span.end, low, span.high)
        found.append(span)
        moment, low = span.end, span.high
    return found


def _moment(layout: Layout, uid: int) -> str:
    return ms_to_iso(layout.decode(uid).timestamp_ms)


def _iso(moment: dt.datetime) -> str:
    return ms_to_iso(unix_ms(moment))
