from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pytest

from django_flakeid.errors import InvalidIDError
from django_flakeid.timefmt import ms_to_datetime, ms_to_iso
from django_flakeid.timefmt import unix_ms as to_unix_ms

DAY_MS = 86_400_000


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date, by era arithmetic.

    Worked out independently of datetime (which stops at year 9999) so that it can check dates
    far beyond it.
    """
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


class Moment(NamedTuple):
    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    ms: int = 0

    @property
    def unix_ms(self) -> int:
        seconds = (self.hour * 60 + self.minute) * 60 + self.second
        return days_from_civil(self.year, self.month, self.day) * DAY_MS + seconds * 1000 + self.ms

    @property
    def iso(self) -> str:
        year = f"+{self.year}" if self.year > 9999 else f"{self.year:04d}"
        return (
            f"{year}-{self.month:02d}-{self.day:02d}T"
            f"{self.hour:02d}:{self.minute:02d}:{self.second:02d}.{self.ms:03d}Z"
        )


def unix_ms(year: int, month: int, day: int) -> int:
    return Moment(year, month, day).unix_ms


@pytest.mark.parametrize(
    "date",
    [(1970, 1, 1), (1999, 12, 31), (2000, 2, 29), (2100, 3, 1), (2024, 2, 29), (9999, 12, 31)],
)
def test_days_from_civil_agrees_with_datetime(date: tuple[int, int, int]) -> None:
    assert days_from_civil(*date) == (dt.date(*date) - dt.date(1970, 1, 1)).days


class TestMsToIso:
    def test_unix_epoch(self) -> None:
        assert ms_to_iso(0) == "1970-01-01T00:00:00.000Z"

    def test_milliseconds_are_zero_padded(self) -> None:
        assert ms_to_iso(7) == "1970-01-01T00:00:00.007Z"
        assert ms_to_iso(61_050) == "1970-01-01T00:01:01.050Z"

    def test_known_instant(self) -> None:
        moment = dt.datetime(2025, 3, 15, 10, 22, 1, 123_000, tzinfo=dt.timezone.utc)
        ms = (moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(
            milliseconds=1
        )
        assert ms_to_iso(ms) == "2025-03-15T10:22:01.123Z"

    def test_last_millisecond_of_year_9999(self) -> None:
        last = unix_ms(10000, 1, 1) - 1
        assert ms_to_iso(last) == "9999-12-31T23:59:59.999Z"

    def test_first_millisecond_of_year_10000(self) -> None:
        assert ms_to_iso(unix_ms(10000, 1, 1)) == "+10000-01-01T00:00:00.000Z"

    @pytest.mark.parametrize(
        "moment",
        [
            (12000, 2, 29, 23, 59, 59, 999),  # divisible by 400: a leap year
            (10096, 2, 29, 12, 0, 0, 1),
            (10100, 3, 1, 0, 0, 0, 0),  # divisible by 100 only: 28 days in February
            (10100, 2, 28, 23, 59, 59, 999),
            (10000, 12, 31, 23, 59, 59, 999),
            (99999, 12, 31, 23, 59, 59, 999),
            (100000, 1, 1, 0, 0, 0, 0),
            (287446, 10, 13, 8, 59, 0, 991),
        ],
    )
    def test_far_future(self, moment: tuple[int, ...]) -> None:
        assert ms_to_iso(Moment(*moment).unix_ms) == Moment(*moment).iso

    def test_day_after_february_28_in_a_far_century_year(self) -> None:
        assert ms_to_iso(unix_ms(10100, 2, 28) + DAY_MS) == "+10100-03-01T00:00:00.000Z"
        assert ms_to_iso(unix_ms(12000, 2, 28) + DAY_MS) == "+12000-02-29T00:00:00.000Z"

    @pytest.mark.parametrize("cycles", [20, 21, 100, 1000])
    def test_whole_400_year_cycles_keep_the_calendar_date(self, cycles: int) -> None:
        leap_noon = Moment(2024, 2, 29, 12, 34, 56, 789).unix_ms
        shifted = leap_noon + cycles * 146_097 * DAY_MS
        assert ms_to_iso(shifted) == f"+{2024 + 400 * cycles}-02-29T12:34:56.789Z"

    def test_negative_is_rejected(self) -> None:
        with pytest.raises(InvalidIDError):
            ms_to_iso(-1)


class TestMsToDatetime:
    def test_is_aware_utc(self) -> None:
        moment = ms_to_datetime(1_000)
        assert moment == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
        assert moment.utcoffset() == dt.timedelta(0)

    def test_keeps_milliseconds(self) -> None:
        ms = Moment(2024, 2, 29, 23, 59, 59, 999).unix_ms
        assert ms_to_datetime(ms) == dt.datetime(
            2024, 2, 29, 23, 59, 59, 999_000, tzinfo=dt.timezone.utc
        )

    def test_last_supported_millisecond(self) -> None:
        assert ms_to_datetime(unix_ms(10000, 1, 1) - 1) == dt.datetime(
            9999, 12, 31, 23, 59, 59, 999_000, tzinfo=dt.timezone.utc
        )

    @pytest.mark.parametrize("ms", [-1, unix_ms(10000, 1, 1), 2**62])
    def test_out_of_range(self, ms: int) -> None:
        with pytest.raises(InvalidIDError, match="outside the years datetime supports"):
            ms_to_datetime(ms)

    def test_out_of_range_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match=str(unix_ms(10000, 1, 1))):
            ms_to_datetime(unix_ms(10000, 1, 1))


class TestUnixMs:
    def test_aware(self) -> None:
        moment = dt.datetime(2024, 2, 29, 23, 59, 59, 999_000, tzinfo=dt.timezone.utc)
        assert to_unix_ms(moment) == Moment(2024, 2, 29, 23, 59, 59, 999).unix_ms

    def test_other_zone(self) -> None:
        tokyo = dt.timezone(dt.timedelta(hours=9))
        assert to_unix_ms(dt.datetime(1970, 1, 1, 9, tzinfo=tokyo)) == 0

    def test_naive_is_utc(self) -> None:
        assert to_unix_ms(dt.datetime(1970, 1, 2)) == DAY_MS

    @pytest.mark.parametrize(
        ("microsecond", "down", "up"), [(0, 0, 0), (1, 0, 1), (999, 0, 1), (1_000, 1, 1)]
    )
    def test_between_milliseconds(self, microsecond: int, down: int, up: int) -> None:
        moment = dt.datetime(1970, 1, 1, microsecond=microsecond)
        assert to_unix_ms(moment) == down
        assert to_unix_ms(moment, round_up=True) == up

    def test_before_1970_rounds_down(self) -> None:
        moment = dt.datetime(1969, 12, 31, 23, 59, 59, 999_500)
        assert to_unix_ms(moment) == -1
        assert to_unix_ms(moment, round_up=True) == 0

    def test_year_range_of_datetime(self) -> None:
        assert to_unix_ms(dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)) == (
            unix_ms(10000, 1, 1) - 1
        )
        assert to_unix_ms(dt.datetime(1, 1, 1)) == unix_ms(1, 1, 1)

    @pytest.mark.parametrize("ms", [0, -5, 2**70])
    def test_ints_pass_through(self, ms: int) -> None:
        assert to_unix_ms(ms) == ms
        assert to_unix_ms(ms, round_up=True) == ms

    @pytest.mark.parametrize("moment", [1.0, "0", dt.date(1970, 1, 1), False, None])
    def test_refuses_other_types(self, moment: object) -> None:
        with pytest.raises(TypeError) as caught:
            to_unix_ms(moment)  # type: ignore[arg-type]
        assert str(caught.value) == (
            "a moment must be a datetime or an int of Unix milliseconds, "
            f"got {type(moment).__name__} {moment!r}"
        )
