"""The thread-safe, fork-aware Snowflake generator."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import NoReturn

from .errors import (
    ClockBackwardsError,
    ConfigurationError,
    ConfigurationTypeError,
    EpochError,
    FlakeIDError,
    ForkedProcessError,
    TimestampOverflowError,
)
from .layout import DEFAULT_EPOCH_MS, Capacity, DecodedID, Layout, check_int

Clock = Callable[[], int]

DEFAULT_DRIFT_TOLERANCE_MS = 10
# A clock that stays behind the last stamped millisecond for this long (beyond the tolerance)
# is treated as stuck rather than waited for forever.
_STUCK_CLOCK_GRACE_S = 1.0
_BEFORE_ANY_CLOCK = -(1 << 63)


class SnowflakeGenerator:
    """Thread-safe 64-bit ID generator for one node (datacenter, machine) of one layout.

    Every ID it returns is greater than the one before. The lock is held only for a few
    arithmetic steps, never while waiting for the clock.
    """

    DEFAULT_EPOCH_MS = DEFAULT_EPOCH_MS

    def __init__(
        self,
        *,
        timestamp_bits: int = 41,
        datacenter_bits: int = 5,
        machine_bits: int = 5,
        sequence_bits: int = 12,
        datacenter_id: int = 0,
        machine_id: int = 0,
        epoch_ms: int = DEFAULT_EPOCH_MS,
        clock: Clock | None = None,
        drift_tolerance_ms: int = DEFAULT_DRIFT_TOLERANCE_MS,
    ) -> None:
        layout = Layout(timestamp_bits, datacenter_bits, machine_bits, sequence_bits, epoch_ms)
        dc, machine = layout.check_node(datacenter_id, machine_id)
        if clock is not None and not callable(clock):
            raise ConfigurationTypeError(
                f"clock must be a callable returning Unix ms, got {clock!r}"
            )
        tolerance = check_int("drift_tolerance_ms", drift_tolerance_ms)
        if tolerance < 0:
            raise ConfigurationError(f"drift_tolerance_ms must be 0 or more, got {tolerance}")

        self.layout = layout
        self.timestamp_bits = layout.timestamp_bits
        self.datacenter_bits = layout.datacenter_bits
        self.machine_bits = layout.machine_bits
        self.sequence_bits = layout.sequence_bits
        self.epoch_ms = layout.epoch_ms
        self.datacenter_id = dc
        self.machine_id = machine
        self.drift_tolerance_ms = tolerance

        # The wall clock is read as time_ns() // 1_000_000 inline: a Python-level clock
        # function on the hot path costs about 5% of next_id().
        self._time: Clock = time.time_ns if clock is None else clock
        self._per_ms = 1_000_000 if clock is None else 1
        self._lock = threading.Lock()
        self._shift = layout.timestamp_shift
        self._node = (dc << layout.datacenter_shift) | (machine << layout.machine_shift)
        self._block = 1 << layout.sequence_bits
        # The millisecond being stamped, and the half-open run of IDs still free in it. It
        # starts below any reading, so that even a clock before 1970 gets a clear EpochError.
        self._last_timestamp_ms = _BEFORE_ANY_CLOCK
        self._next = 0
        self._end = 0
        # Readings at or above this floor may keep stamping the current millisecond.
        self._floor = -1
        # The last millisecond this generator may stamp, and who explains going past it.
        self._limit_ms = layout.max_timestamp_ms
        self._limit_error: Callable[[int], FlakeIDError] | None = None
        self._pid = os.getpid()
        _live_generators.add(self)

    def next_id(self) -> int:
        """Return one new ID."""
        while True:
            with self._lock:
                now = self._time() // self._per_ms
                if now > self._last_timestamp_ms:
                    return self._start_ms(now)
                uid = self._next
                if uid < self._end and now >= self._floor:
                    self._next = uid + 1
                    return uid
                last = self._last_timestamp_ms
            self._wait_for_clock(now, last)

    def next_ids(self, count: int) -> list[int]:
        """Return ``count`` new IDs in increasing order, reserving a millisecond's block at once."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise ConfigurationTypeError(f"count must be an integer, got {type(count).__name__}")
        if count < 1:
            raise ConfigurationError(f"count must be >= 1, got {count}")
        ids: list[int] = []
        remaining = count
        while remaining:
            with self._lock:
                now = self._time() // self._per_ms
                if now > self._last_timestamp_ms:
                    self._start_ms(now)
                    start = self._next - 1
                elif now >= self._floor:
                    start = self._next
                else:
                    start = self._end
                taken = min(remaining, self._end - start)
                if taken > 0:
                    self._next = start + taken
                last = self._last_timestamp_ms
            if taken > 0:
                ids.extend(range(start, start + taken))
                remaining -= taken
            else:
                self._wait_for_clock(now, last)
        return ids

    def stream(self) -> Iterator[int]:
        """Yield new IDs forever."""
        while True:
            yield self.next_id()

    def decode(self, uid: int) -> DecodedID:
        """Split an ID made with this generator's layout into its fields."""
        return self.layout.decode(uid)

    def capacity(self) -> Capacity:
        """The limits of this generator's layout."""
        return self.layout.capacity()

    def _start_ms(self, now: int) -> int:
        # Called with the lock held, for a millisecond later than any stamped so far.
        # Range errors are raised before any state changes.
        offset = now - self.epoch_ms
        if offset < 0:
            raise EpochError(
                f"the clock reads {now} ms, before the epoch {self.epoch_ms} ms; "
                "use an earlier epoch_ms"
            )
        if now > self._limit_ms:
            raise self._past_limit(now)
        uid = (offset << self._shift) | self._node
        self._last_timestamp_ms = now
        self._floor = now - self.drift_tolerance_ms
        self._next = uid + 1
        self._end = uid + self._block
        return uid

    def _past_limit(self, now: int) -> FlakeIDError:
        if now > self.layout.max_timestamp_ms or self._limit_error is None:
            return TimestampOverflowError(
                f"the clock reads {now} ms, past the last millisecond a "
                f"{self.timestamp_bits}-bit timestamp holds ({self.layout.max_timestamp_ms} ms); "
                "use more timestamp_bits or a later epoch_ms"
            )
        return self._limit_error(now)

    def limit_window(
        self, *, after_ms: int, until_ms: int, on_limit: Callable[[int], FlakeIDError]
    ) -> None:
        """Stamp only milliseconds after ``after_ms`` and up to ``until_ms``.

        For node identities held for a time (leases): ``after_ms`` is the last millisecond a
        previous holder of the node may have stamped, ``until_ms`` the last one this holder has
        announced. Past it, requests raise ``on_limit(now)`` until :meth:`extend_limit`.
        """
        with self._lock:
            if after_ms > self._last_timestamp_ms:
                self._last_timestamp_ms = after_ms
                self._floor = after_ms - self.drift_tolerance_ms
                self._next = self._end
            self._limit_ms = min(until_ms, self.layout.max_timestamp_ms)
            self._limit_error = on_limit

    def extend_limit(self, until_ms: int) -> None:
        """Move the limit set by :meth:`limit_window` forward to ``until_ms`` (never back)."""
        with self._lock:
            self._limit_ms = max(self._limit_ms, min(until_ms, self.layout.max_timestamp_ms))

    def stop_new_milliseconds(self) -> int:
        """Refuse every millisecond after the current one; return the last one stamped."""
        with self._lock:
            self._limit_ms = min(self._limit_ms, self._last_timestamp_ms)
            if self._limit_error is None:
                self._limit_error = _stopped
            return self._last_timestamp_ms

    def _wait_for_clock(self, now: int, last: int) -> None:
        """Wait, without the lock, until the clock passes ``last``, read under the lock."""
        if now < last - self.drift_tolerance_ms:
            self._raise_backwards(now, last)
        grace = self.drift_tolerance_ms / 1000 + _STUCK_CLOCK_GRACE_S
        deadline = time.monotonic() + grace
        while now <= last:
            if time.monotonic() > deadline:
                raise ClockBackwardsError(
                    f"the clock has not passed the last millisecond stamped ({last} ms) in "
                    f"{grace:.2f} s; it reads {now} ms. Check the clock of this host."
                )
            # Sleeping (rather than spinning) releases the GIL so other threads keep going.
            time.sleep((last - now) / 1000 if last - now > 1 else 0)
            now = self._time() // self._per_ms

    def _raise_backwards(self, now: int, last: int) -> NoReturn:
        raise ClockBackwardsError(
            f"the clock reads {now} ms, {last - now} ms behind the last millisecond stamped "
            f"({last} ms), beyond the tolerance of {self.drift_tolerance_ms} ms; "
            "check NTP on this host. IDs resume once the clock passes that millisecond."
        )

    def _after_fork_in_child(self) -> None:
        parent = self._pid
        message = (
            f"this generator was created in process {parent} and inherited by process "
            f"{os.getpid()} through fork(); using it here would repeat the parent's IDs. "
            "Create a new generator in the child with a node identity no other process uses "
            "(in Django, django_flakeid does this for its own generator)."
        )

        def refuse(*args: object, **kwargs: object) -> NoReturn:
            raise ForkedProcessError(message)

        # Shadowing the methods on the instance leaves the hot path free of a per-call check;
        # the clock refuses too, for callers that looked the method up before the fork.
        self.next_id = refuse  # type: ignore[method-assign]
        self.next_ids = refuse  # type: ignore[method-assign]
        self._time = refuse
        # A lock some other parent thread held at fork time would never be released here.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SnowflakeGenerator(ts={self.timestamp_bits}b, "
            f"dc={self.datacenter_bits}b[id={self.datacenter_id}], "
            f"machine={self.machine_bits}b[id={self.machine_id}], seq={self.sequence_bits}b)"
        )


_live_generators: weakref.WeakSet[SnowflakeGenerator] = weakref.WeakSet()


def _stopped(now: int) -> FlakeIDError:
    return FlakeIDError(
        f"this generator was stopped: it stamps no new millisecond (clock: {now} ms)"
    )


def _after_fork_in_child() -> None:
    for generator in list(_live_generators):
        generator._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
