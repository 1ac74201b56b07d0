"""Unix-millisecond timestamps to and from aware datetimes, and as ISO-8601 strings for any year."""

from __future__ import annotations

import datetime as dt

from .errors import InvalidIDError
from .ints import is_int

UTC = dt.timezone.utc
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# The Gregorian calendar repeats exactly every 400 years (146,097 days), so a date past
# datetime's year 9999 can be formatted by shifting it back whole cycles.
_CYCLE_DAYS = 146_097
_CYCLE_YEARS = 400
_ONE_MS = dt.timedelta(milliseconds=1)
_MAX_DATETIME = dt.datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
_MAX_DATETIME_MS = (_MAX_DATETIME - _UNIX_EPOCH) // _ONE_MS

#: A moment in time: an aware datetime, a naive one (taken as UTC), or Unix milliseconds.
Moment = dt.datetime | int


def ms_to_datetime(ms: int) -> dt.datetime:
    """Return the aware UTC datetime for Unix milliseconds ``ms``."""
    if not 0 <= ms <= _MAX_DATETIME_MS:
        raise InvalidIDError(
            f"{ms} ms since 1970 is outside the years datetime supports (1970-9999); "
            "use timestamp_ms or generated_at instead"
        )
    return _UNIX_EPOCH + dt.timedelta(milliseconds=ms)


def ms_to_iso(ms: int) -> str:
    """Format Unix milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (a signed, wider year past 9999)."""
    if ms <= _MAX_DATETIME_MS:
        return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    day_ms = 86_400_000
    cycles = (ms - _MAX_DATETIME_MS) // (_CYCLE_DAYS * day_ms) + 1
    shifted = ms_to_datetime(ms - cycles * _CYCLE_DAYS * day_ms)
    year = shifted.year + cycles * _CYCLE_YEARS
    return f"+{year}-" + shifted.strftime("%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def unix_ms(moment: Moment, *, round_up: bool = False) -> int:
    """Unix milliseconds of ``moment``: an aware datetime, a naive one read as UTC, or an int.

    A datetime between two milliseconds gives the earlier one, or the later with ``round_up``.
    """
    if isinstance(moment, dt.datetime):
        if moment.utcoffset() is None:
            moment = moment.replace(tzinfo=UTC)
        ms, rest = divmod(moment - _UNIX_EPOCH, _ONE_MS)
        return ms + 1 if round_up and rest else ms
    if not is_int(moment):
        raise TypeError(
            "a moment must be a datetime or an int of Unix milliseconds, "
            f"got {type(moment).__name__} {moment!r}"
        )
    return int(moment)
