"""Calendar intervals (days, ISO weeks, months, in UTC) and the range of IDs each one holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from .layout import Layout
from .timefmt import UTC, Moment, ms_to_datetime, unix_ms

Interval = Literal["day", "week", "month"]
#: The intervals a table can be cut into.
INTERVALS: tuple[Interval, ...] = ("day", "week", "month")


def check_interval(interval: object) -> Interval:
    """Return ``interval`` if it is one of :data:`INTERVALS`, else raise ``ValueError``."""
    if interval not in INTERVALS:
        raise ValueError(
            f"interval must be one of {', '.join(map(repr, INTERVALS))}, not {interval!r}"
        )
    return interval


def interval_start(moment: Moment, interval: Interval) -> dt.datetime:
    """The start, in UTC, of the day, ISO week (from Monday) or month holding ``moment``."""
    if isinstance(moment, dt.datetime) and moment.utcoffset() is not None:
        moment = moment.astimezone(UTC)
    day = ms_to_datetime(unix_ms(moment)).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_start(start: dt.datetime, interval: Interval) -> dt.datetime:
    """The start of the interval after the one that begins at ``start``."""
    if interval == "day":
        return start + dt.timedelta(days=1)
    if interval == "week":
        return start + dt.timedelta(weeks=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


@dataclass(frozen=True)
class Span:
    """One interval, ``start <= t < end``, and the IDs made in it: ``low <= id < high``."""

    start: dt.datetime
    end: dt.datetime
    low: int
    high: int

    @property
    def suffix(self) -> str:
        """The name of the interval's partition after the table's: ``p20261201``."""
        return self.start.strftime("p%Y%m%d")


def span_at(layout: Layout, interval: Interval, moment: Moment) -> Span:
    """The interval holding ``moment``, with its ID range under ``layout``."""
    start = interval_start(moment, interval)
    end = next_start(start, interval)
    # Every ID of a millisecond lies between the first IDs of it and of the next, so
    # consecutive spans tile the IDs exactly, with no gap and no overlap.
    return Span(start, end, layout.min_id_at(start), layout.min_id_at(end))


def spans_from(layout: Layout, interval: Interval, moment: Moment, count: int) -> list[Span]:
    """``count`` consecutive intervals, the first holding ``moment``."""
    found: list[Span] = []
    for _ in range(count):
        found.append(span_at(layout, interval, moment))
        moment = found[-1].end
    return found
