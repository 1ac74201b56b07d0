"""The thread-safe, fork-aware Snowflake generator."""

from __future__ import annotations

import mmap
import os
import sys
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
from .ints import check_int, is_int
from .layout import DEFAULT_EPOCH_MS, Capacity, DecodedID, Layout

Clock = Callable[[], int]
#: Called with the new millisecond that passed the limit; returns the new limit.
OnLimit = Callable[[int], int]
#: Builds the error raised for a millisecond refused after :meth:`stop_new_milliseconds`.
StopError = Callable[[int], FlakeIDError]

DEFAULT_DRIFT_TOLERANCE_MS = 10
# A clock that stays behind the last stamped millisecond for this long (beyond the tolerance)
# is treated as stuck rather than waited for forever.
_STUCK_CLOCK_GRACE_S = 1.0
_BEFORE_ANY_CLOCK = -(1 << 63)
# Linux's value; Python's mmap module names it only when built against recent headers.
_MADV_WIPEONFORK = getattr(mmap, "MADV_WIPEONFORK", 18 if sys.platform == "linux" else None)
# next_id's common case reads the wall clock through this global, which costs less than a
# clock kept on the instance (about 5% of a call).
_time_ns: Clock = time.time_ns
# Looked up at call time, so that tests can drive the stuck-clock grace without real time.
_monotonic = time.monotonic
_sleep = time.sleep


def _alive_flag() -> mmap.mmap | bytearray:
    """One byte that reads 1 in this process and 0 in any child made by fork().

    The kernel zeroes a MADV_WIPEONFORK page in the child of any fork (os.fork, libc's fork
    called from C or ctypes, uWSGI's workers), whether or not Python's fork hooks run. Where
    the kernel offers no such page, it is a plain byte that only Python's fork hooks clear.
    """
    if _MADV_WIPEONFORK is not None:
        try:
            page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE)
        except (OSError, ValueError):  # pragma: no cover - anonymous memory refused
            pass
        else:
            try:
                page.madvise(_MADV_WIPEONFORK)
            except (OSError, ValueError):  # pragma: no cover - kernels before Linux 4.14
                page.close()
            else:
                page[0] = 1
                return page
    return bytearray(b"\x01")


class SnowflakeGenerator:
    """Thread-safe 64-bit ID generator for one node (datacenter, machine) of one layout.

    Every ID it returns is greater than the one before. The lock is held only for a few
    arithmetic steps, never while waiting for the clock. In a process forked from the one
    that built it, it refuses to issue IDs (see :attr:`inherited`).
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

        # Every reading but next_id's common case goes through these.
        self._time: Clock = _time_ns if clock is None else clock
        self._per_ms = 1_000_000 if clock is None else 1
        self._lock = threading.Lock()
        self._shift = layout.timestamp_shift
        self._node = layout.node_bits(dc, machine)
        self._block = 1 << layout.sequence_bits
        # The millisecond being stamped, and the half-open run of IDs still free in it. It
        # starts below any reading, so that even a clock before 1970 gets a clear EpochError.
        self._last_timestamp_ms = _BEFORE_ANY_CLOCK
        self._next = 0
        self._end = 0
        # Readings at or above this floor may keep stamping the current millisecond.
        self._floor = -1
        # The last millisecond this generator may stamp before it asks ``_on_limit`` for more.
        self._limit_ms = layout.max_timestamp_ms
        self._on_limit: OnLimit | None = None
        self._stop_error: StopError | None = None
        self._pid = os.getpid()
        self._alive = _alive_flag()
        # next_id's inline case reads the wall clock: a generator with its own clock never takes
        # it. Nor does one in a forked child, where the page reads 0.
        self._fast = self._alive if clock is None else bytes(1)
        # Without a wiped page, a fork that skips Python's hooks is seen only through the pid,
        # a system call too slow for every ID but cheap once per new millisecond.
        self._watch_pid = isinstance(self._alive, bytearray)
        _live_generators.add(self)

    def next_id(self) -> int:
        """Return one new ID."""
        # The common case inline; every other one takes _next_id. The flag is read before the
        # lock: a lock another thread held at fork time stays held in the child.
        if self._fast[0]:
            with self._lock:
                now = _time_ns() // 1_000_000
                if now == self._last_timestamp_ms:
                    uid = self._next
                    if uid < self._end:
                        self._next = uid + 1
                        return uid
                elif now > self._last_timestamp_ms:
                    return self._start_ms(now)
        return self._next_id()

    def _next_id(self) -> int:
        # Any clock, and every case: a new millisecond, a used-up block, a step back, a fork.
        if not self._alive[0]:
            self._refuse_inherited()
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
        if not self._alive[0]:
            self._refuse_inherited()
        if not is_int(count):
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

    @property
    def inherited(self) -> bool:
        """True in a process other than the one that built this generator (after a fork)."""
        if self._alive[0] and os.getpid() != self._pid:
            # Only where the wiped page is missing: make every later call refuse at once.
            self._alive[0] = 0
        return not self._alive[0]

    def _start_ms(self, now: int) -> int:
        # Called with the lock held, for a millisecond later than any stamped so far.
        # Every refusal is raised before any state changes.
        if self._watch_pid and os.getpid() != self._pid:
            self._alive[0] = 0
            self._refuse_inherited()
        try:
            uid = ((now - self.epoch_ms) << self._shift) | self._node
        except TypeError:
            self._raise_clock_type(now)
        if uid < 0:
            raise EpochError(
                f"the clock reads {now} ms, before the epoch {self.epoch_ms} ms; "
                "use an earlier epoch_ms"
            )
        if now > self._limit_ms:
            self._pass_limit(now)
        self._last_timestamp_ms = now
        self._floor = now - self.drift_tolerance_ms
        self._next = uid + 1
        self._end = uid + self._block
        return uid

    def _pass_limit(self, now: int) -> None:
        # With the lock held: move the limit to cover ``now``, or raise.
        if now > self.layout.max_timestamp_ms:
            raise TimestampOverflowError(
                f"the clock reads {now} ms, past the last millisecond a "
                f"{self.timestamp_bits}-bit timestamp holds ({self.layout.max_timestamp_ms} ms); "
                "a layout with a later epoch_ms or more timestamp_bits re-stamps times already "
                "used, so use one only for tables that start empty"
            )
        if self._stop_error is not None:
            raise self._stop_error(now)
        if self._on_limit is None:  # pragma: no cover - a limit below the layout's has a source
            raise AssertionError("a limit without on_limit")
        until = self._on_limit(now)
        if not is_int(until):
            raise ConfigurationTypeError(
                f"on_limit must return an integer number of milliseconds, "
                f"got {type(until).__name__} {until!r}"
            )
        if until < now:
            raise FlakeIDError(
                f"on_limit({now}) returned {until}, before the millisecond it was asked for; "
                "no ID is stamped past the limit"
            )
        self._limit_ms = min(until, self.layout.max_timestamp_ms)

    def limit_window(self, *, after_ms: int, until_ms: int, on_limit: OnLimit) -> None:
        """Stamp only milliseconds after ``after_ms``, and up to a limit pulled from ``on_limit``.

        For node identities held for a time (host claims, leases): ``after_ms`` is the last
        millisecond a previous holder of the node may have stamped, ``until_ms`` the last one
        this holder has announced. When a new millisecond ``now`` passes the limit, the
        generator calls ``on_limit(now)`` with its lock held (so it must not call back into
        the generator): it returns the new limit (at least ``now``), or raises a
        :class:`FlakeIDError` that reaches the caller and leaves the generator as it was.
        """
        after = check_int("after_ms", after_ms)
        until = check_int("until_ms", until_ms)
        if not callable(on_limit):
            raise ConfigurationTypeError(f"on_limit must be a callable, got {on_limit!r}")
        if self.inherited:
            self._refuse_inherited()
        with self._lock:
            if self._stop_error is not None:
                raise FlakeIDError(
                    "this generator was stopped and stamps no new millisecond; build a new one"
                )
            if after > self._last_timestamp_ms:
                self._last_timestamp_ms = after
                self._floor = after - self.drift_tolerance_ms
                self._next = self._end
            self._limit_ms = min(until, self.layout.max_timestamp_ms)
            self._on_limit = on_limit

    def stop_new_milliseconds(self, error: StopError | None = None) -> int:
        """Refuse every millisecond after the current one, for good; return the last one used.

        The millisecond being stamped may still be finished. Later ones raise ``error(now)``
        (by default a :class:`FlakeIDError` saying the generator was stopped); ``on_limit``
        is no longer called. The result is the last millisecond stamped, or ``after_ms`` of
        :meth:`limit_window` if higher, or ``epoch_ms - 1`` when there is neither. In a forked
        child it only returns that value, without waiting for a lock the parent may have held.
        """
        if self.inherited:
            return max(self._last_timestamp_ms, self.epoch_ms - 1)
        with self._lock:
            self._stop_error = _stopped if error is None else error
            self._limit_ms = min(self._limit_ms, self._last_timestamp_ms)
            return max(self._last_timestamp_ms, self.epoch_ms - 1)

    def _wait_for_clock(self, now: int, last: int) -> None:
        """Wait, without the lock, until the clock passes ``last``, read under the lock."""
        if not isinstance(now, int):
            # A NaN reading compares false with everything and would never stop waiting.
            self._raise_clock_type(now)
        if now < last - self.drift_tolerance_ms:
            self._raise_backwards(now, last)
        grace = self.drift_tolerance_ms / 1000 + _STUCK_CLOCK_GRACE_S
        deadline = _monotonic() + grace
        while now <= last:
            if _monotonic() > deadline:
                raise ClockBackwardsError(
                    f"the clock has not passed the last millisecond stamped ({last} ms) in "
                    f"{grace:.2f} s; it reads {now} ms. Check the clock of this host."
                )
            # Sleeping (rather than spinning) releases the GIL so other threads keep going.
            _sleep((last - now) / 1000 if last - now > 1 else 0)
            now = self._time() // self._per_ms

    def _raise_backwards(self, now: int, last: int) -> NoReturn:
        raise ClockBackwardsError(
            f"the clock reads {now} ms, {last - now} ms behind the last millisecond stamped "
            f"({last} ms), beyond the tolerance of {self.drift_tolerance_ms} ms; "
            "check NTP on this host. IDs resume once the clock passes that millisecond."
        )

    def _raise_clock_type(self, now: object) -> NoReturn:
        raise ConfigurationTypeError(
            "clock must return an integer number of milliseconds, "
            f"got {type(now).__name__} {now!r}; return Unix time in whole milliseconds, "
            "e.g. time.time_ns() // 1_000_000"
        )

    def _refuse_inherited(self) -> NoReturn:
        raise ForkedProcessError(
            f"this generator was created in process {self._pid} and inherited by process "
            f"{os.getpid()} through fork(); using it here would repeat the parent's IDs. "
            "Create a new generator in the child with a node identity no other process uses "
            "(in Django, django_flakeid does this for its own generator)."
        )

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
    # Redundant with a wiped page; the only prompt signal where the kernel has none.
    for generator in list(_live_generators):
        generator._alive[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
