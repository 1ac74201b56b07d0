from __future__ import annotations

import ctypes
import datetime as dt
import decimal
import itertools
import json
import os
import random
import select
import signal
import sys
import threading
import time
import tracemalloc
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from django_flakeid import generator as generator_module
from django_flakeid.errors import (
    ClockBackwardsError,
    ConfigurationError,
    ConfigurationTypeError,
    EpochError,
    FlakeIDError,
    ForkedProcessError,
    TimestampOverflowError,
)
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import DEFAULT_EPOCH_MS, MAX_ID, Layout
from django_flakeid.presets import ALL_PRESETS

UTC = dt.timezone.utc
T = 1_700_000_000_000  # an arbitrary Unix millisecond, 2023-11-14
# Four IDs per millisecond, so that tests can use up a millisecond's block in a few calls.
SMALL = {"timestamp_bits": 41, "datacenter_bits": 10, "machine_bits": 10, "sequence_bits": 2}
BLOCK = 4
# 8 timestamp bits: 256 milliseconds from the epoch, so the end of the layout is easy to reach.
TINY: dict[str, Any] = {
    "timestamp_bits": 8,
    "datacenter_bits": 26,
    "machine_bits": 27,
    "sequence_bits": 2,
}
TINY_EPOCH = 1_000_000
TINY_LAST = TINY_EPOCH + 255


class FakeClock:
    """Returns its scripted readings in order, then moves 1 ms forward every ``every`` calls.

    With ``every=0`` it stays on its last reading, which a test may change through ``now``.
    """

    def __init__(self, first: int, *later: int, every: int = 0) -> None:
        self._script = deque((first, *later))
        self.now = first
        self.every = every
        self._calls_since_tick = 0
        self.highest = first

    def __call__(self) -> int:
        if self._script:
            self.now = self._script.popleft()
        elif self.every:
            self._calls_since_tick += 1
            if self._calls_since_tick >= self.every:
                self._calls_since_tick = 0
                self.now += 1
        self.highest = max(self.highest, self.now)
        return self.now


def preset(name: str) -> dict[str, Any]:
    return dict(ALL_PRESETS[name])


def small(clock: Callable[[], int], **options: Any) -> SnowflakeGenerator:
    return SnowflakeGenerator(
        **{**SMALL, "datacenter_id": 5, "machine_id": 6, **options}, clock=clock
    )


Make = Callable[..., SnowflakeGenerator]


@pytest.fixture(params=["own clock", "wall clock"])
def make(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Make:
    """Builds as small() does, with the clock given, or standing in for the wall clock.

    next_id reads the wall clock inline for its common case, and a given clock only on its
    general path: both must keep every promise.
    """
    if request.param == "own clock":
        return small

    def on_the_wall_clock(clock: Callable[[], int], **options: Any) -> SnowflakeGenerator:
        monkeypatch.setattr(generator_module, "_time_ns", lambda: clock() * 1_000_000)
        return SnowflakeGenerator(**{**SMALL, "datacenter_id": 5, "machine_id": 6, **options})

    return on_the_wall_clock


def widths(gen: SnowflakeGenerator) -> tuple[int, int, int, int]:
    return (gen.timestamp_bits, gen.datacenter_bits, gen.machine_bits, gen.sequence_bits)


def increasing(ids: Iterable[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))


def timestamps(gen: SnowflakeGenerator, ids: Iterable[int]) -> list[int]:
    return [gen.decode(uid).timestamp_ms for uid in ids]


class TestConstruction:
    def test_defaults(self) -> None:
        gen = SnowflakeGenerator()
        assert widths(gen) == (41, 5, 5, 12)
        assert (gen.datacenter_id, gen.machine_id) == (0, 0)
        assert gen.epoch_ms == DEFAULT_EPOCH_MS == SnowflakeGenerator.DEFAULT_EPOCH_MS
        assert gen.drift_tolerance_ms == 10
        assert gen.layout == Layout()

    def test_attributes(self) -> None:
        gen = SnowflakeGenerator(
            timestamp_bits=42,
            datacenter_bits=4,
            machine_bits=6,
            sequence_bits=11,
            datacenter_id=15,
            machine_id=63,
            epoch_ms=1_600_000_000_000,
            drift_tolerance_ms=25,
        )
        assert widths(gen) == (42, 4, 6, 11)
        assert (gen.datacenter_id, gen.machine_id) == (15, 63)
        assert gen.epoch_ms == 1_600_000_000_000
        assert gen.drift_tolerance_ms == 25
        assert gen.layout == Layout(42, 4, 6, 11, 1_600_000_000_000)

    def test_repr(self) -> None:
        gen = SnowflakeGenerator(datacenter_id=2, machine_id=7)
        assert repr(gen) == "SnowflakeGenerator(ts=41b, dc=5b[id=2], machine=5b[id=7], seq=12b)"

    def test_arguments_are_keyword_only(self) -> None:
        with pytest.raises(TypeError, match="positional"):
            SnowflakeGenerator(41, 5, 5, 12)  # type: ignore[call-arg]

    @pytest.mark.parametrize(
        "field",
        [
            "timestamp_bits",
            "datacenter_bits",
            "machine_bits",
            "sequence_bits",
            "datacenter_id",
            "machine_id",
            "epoch_ms",
            "drift_tolerance_ms",
        ],
    )
    @pytest.mark.parametrize("bad", [1.0, True, False, "1", None])
    def test_refuses_non_integers(self, field: str, bad: object) -> None:
        options: dict[str, Any] = {field: bad}
        with pytest.raises(ConfigurationTypeError, match=f"^{field} must be an integer") as caught:
            SnowflakeGenerator(**options)
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, FlakeIDError)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (
                {"datacenter_bits": -1, "machine_bits": 11},
                "bit widths cannot be negative: datacenter_bits",
            ),
            ({"sequence_bits": 13}, "bit widths must sum to 63, got 64"),
            ({"timestamp_bits": 0, "sequence_bits": 53}, "timestamp_bits must be at least 1"),
            ({"sequence_bits": 0, "timestamp_bits": 53}, "sequence_bits must be at least 1"),
            ({"datacenter_id": 32}, "datacenter_id must be from 0 to 31"),
            ({"machine_id": -1}, "machine_id must be from 0 to 31"),
            ({"epoch_ms": -1}, "epoch_ms must be 0 or more"),
            ({"drift_tolerance_ms": -1}, "drift_tolerance_ms must be 0 or more"),
        ],
    )
    def test_refuses_bad_values(self, options: dict[str, Any], message: str) -> None:
        with pytest.raises(ConfigurationError, match=message) as caught:
            SnowflakeGenerator(**options)
        assert isinstance(caught.value, ValueError)
        assert not isinstance(caught.value, TypeError)

    def test_refuses_a_clock_that_cannot_be_called(self) -> None:
        with pytest.raises(ConfigurationError, match="clock must be a callable"):
            SnowflakeGenerator(clock=T)  # type: ignore[arg-type]

    def test_node_must_fit_an_empty_field(self) -> None:
        with pytest.raises(ConfigurationError, match="machine_id must be from 0 to 0"):
            SnowflakeGenerator(**preset("minimal"), machine_id=1)

    def test_decode_and_capacity_follow_the_layout(self) -> None:
        gen = SnowflakeGenerator(**preset("large_cluster"))
        assert gen.decode(MAX_ID) == gen.layout.decode(MAX_ID)
        assert gen.capacity() == gen.layout.capacity()
        assert repr(SnowflakeGenerator().capacity()) == (
            "Capacity(years=69.7, nodes=1024, ids_per_sec=4,096,000)"
        )


class TestIds:
    def test_fields_of_an_id_for_a_known_instant(self) -> None:
        moment = dt.datetime(2025, 3, 15, 10, 22, 1, 123_000, tzinfo=UTC)
        ms = (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)
        gen = SnowflakeGenerator(datacenter_id=3, machine_id=17, clock=lambda: ms)
        first, second = gen.next_id(), gen.next_id()
        # Twitter layout: 41 bits of ms since 2020, 5 of datacenter, 5 of machine, 12 of sequence.
        assert first == ((ms - 1_577_836_800_000) << 22) | (3 << 17) | (17 << 12)
        assert second == first + 1
        decoded = gen.decode(second)
        assert decoded.raw == second
        assert decoded.timestamp_ms == ms
        assert (decoded.datacenter_id, decoded.machine_id, decoded.sequence) == (3, 17, 1)
        assert decoded.generated_at == "2025-03-15T10:22:01.123Z"
        assert decoded.datetime == moment
        assert decoded.datetime.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_bit_63_stays_clear_at_the_top_of_every_field(self, name: str) -> None:
        layout = Layout(**preset(name))
        gen = SnowflakeGenerator(
            **preset(name),
            datacenter_id=layout.max_datacenter_id,
            machine_id=layout.max_machine_id,
            clock=lambda: layout.max_timestamp_ms,
        )
        ids = gen.next_ids(2**layout.sequence_bits)
        assert all(uid >> 63 == 0 for uid in ids)
        assert ids[-1] == 2**63 - 1

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_ids_carry_the_node(self, name: str) -> None:
        layout = Layout(**preset(name))
        rng = random.Random(name)
        for _ in range(5):
            node = (
                rng.randint(0, layout.max_datacenter_id),
                rng.randint(0, layout.max_machine_id),
            )
            gen = SnowflakeGenerator(
                **preset(name), datacenter_id=node[0], machine_id=node[1], clock=lambda: T
            )
            for sequence, uid in enumerate([gen.next_id(), *gen.next_ids(3)]):
                decoded = gen.decode(uid)
                assert (decoded.datacenter_id, decoded.machine_id) == node
                assert decoded.timestamp_ms == T
                assert decoded.sequence == sequence

    def test_real_clock_ids_increase(self) -> None:
        gen = SnowflakeGenerator()
        before = time.time_ns() // 1_000_000
        ids = [gen.next_id() for _ in range(20_000)]
        after = time.time_ns() // 1_000_000
        assert increasing(ids)
        assert before <= gen.decode(ids[0]).timestamp_ms
        assert gen.decode(ids[-1]).timestamp_ms <= after

    def test_stream(self, make: Make) -> None:
        gen = make(FakeClock(T, every=3))
        ids = list(itertools.islice(gen.stream(), 50))
        assert increasing(ids)
        assert max(Counter(timestamps(gen, ids)).values()) <= BLOCK

    def test_interleaved_single_and_bulk_calls_increase(self, make: Make) -> None:
        clock = FakeClock(T, every=3)
        gen = make(clock)
        rng = random.Random(7)
        ids: list[int] = []
        for _ in range(200):
            if rng.random() < 0.5:
                ids.append(gen.next_id())
            else:
                ids.extend(gen.next_ids(rng.randint(1, 10)))
        assert increasing(ids)
        assert max(timestamps(gen, ids)) <= clock.highest

    @pytest.mark.parametrize("name", ["twitter", "minimal"])
    def test_threads_sharing_a_generator_never_collide(self, name: str) -> None:
        gen = SnowflakeGenerator(**preset(name))
        threads, per_thread = 8, 20_000
        start = threading.Barrier(threads)
        results: list[list[int]] = []
        failures: list[BaseException] = []

        def work() -> None:
            try:
                start.wait(timeout=10)
                results.append([gen.next_id() for _ in range(per_thread)])
            except BaseException as exc:
                failures.append(exc)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            workers = [threading.Thread(target=work) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=60)
        finally:
            sys.setswitchinterval(interval)
        assert failures == []
        assert len(results) == threads
        assert all(increasing(ids) for ids in results)
        assert len({uid for ids in results for uid in ids}) == threads * per_thread

    @pytest.mark.parametrize(
        "counts",
        [[3] * 3000, [1, 3, 7, 4095, 4097, 20_000, 2]],
        ids=["next_ids(3)", "large counts"],
    )
    def test_threads_calling_next_ids_at_once_never_collide(self, counts: list[int]) -> None:
        gen = SnowflakeGenerator()
        threads = 8
        start = threading.Barrier(threads)
        results: list[list[int]] = []
        failures: list[BaseException] = []

        def work(index: int) -> None:
            try:
                start.wait(timeout=10)
                ids: list[int] = []
                for number, count in enumerate(counts):
                    # Single calls in between, on every other thread.
                    if index % 2 and number % 10 == 0:
                        ids.append(gen.next_id())
                    ids.extend(gen.next_ids(count))
                results.append(ids)
            except BaseException as exc:
                failures.append(exc)

        # Switching threads as often as possible makes any race in the bookkeeping show.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=60)
        finally:
            sys.setswitchinterval(interval)
        assert failures == []
        assert len(results) == threads
        assert all(increasing(ids) for ids in results)
        issued = [uid for ids in results for uid in ids]
        assert len(issued) == len(set(issued))
        assert max(Counter(timestamps(gen, issued)).values()) <= 4096


class TestClockReadings:
    @pytest.mark.parametrize(
        "reading",
        [T + 0.5, float(T), float("inf"), float("nan"), decimal.Decimal(T)],
        ids=["fraction", "whole float", "inf", "nan", "Decimal"],
    )
    @pytest.mark.parametrize(
        "call",
        [
            lambda gen: gen.next_id(),
            lambda gen: gen.next_ids(3),
            lambda gen: next(gen.stream()),
        ],
        ids=["next_id", "next_ids", "stream"],
    )
    def test_a_clock_must_return_integers(
        self, reading: object, call: Callable[[SnowflakeGenerator], object]
    ) -> None:
        readings = [reading]
        reads = itertools.count()

        def clock() -> Any:
            assert next(reads) < 100, "the generator kept reading a clock it cannot use"
            return readings[-1]

        gen = small(clock)
        with pytest.raises(
            ConfigurationTypeError,
            match=(
                "^clock must return an integer number of milliseconds, "
                f"got {type(reading).__name__} "
            ),
        ) as caught:
            call(gen)
        assert isinstance(caught.value, TypeError)
        # Nothing was used up by the refused reading.
        readings.append(T)
        assert gen.next_id() == small(FakeClock(T)).next_id()

    def test_a_float_reading_after_integers_is_refused_at_the_next_millisecond(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        first = gen.next_id()
        clock.now = T + 1.0  # type: ignore[assignment]
        with pytest.raises(ConfigurationTypeError, match=r"got float 1700000000001\.0"):
            gen.next_id()
        clock.now = T
        assert gen.next_id() == first + 1


class FakeMonotonic:
    """Stands in for the generator's monotonic clock and sleep: sleeping moves it forward.

    ``then=(at, action)`` runs ``action`` once the clock passes ``at`` seconds.
    """

    LIMIT_S = 30.0

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        then: tuple[float, Callable[[], object]] | None = None,
    ) -> None:
        self.elapsed = 0.0
        self.then = then
        monkeypatch.setattr(generator_module, "_monotonic", lambda: self.elapsed)
        monkeypatch.setattr(generator_module, "_sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        # A zero sleep only yields the GIL; count it as a little time so a waiter advances.
        self.elapsed += max(seconds, 0.001)
        assert self.elapsed < self.LIMIT_S, "the generator kept waiting for a stuck clock"
        if self.then is not None and self.elapsed >= self.then[0]:
            self.then[1]()
            self.then = None


class TestClockStepsBack:
    @pytest.mark.parametrize("back", [1, 5, 10])
    def test_small_step_back_keeps_ids_increasing(self, back: int, make: Make) -> None:
        clock = FakeClock(T, T - back, T - back, T, T + 1)
        gen = make(clock)
        ids = [gen.next_id() for _ in range(5)]
        assert increasing(ids)
        assert max(timestamps(gen, ids)) <= clock.highest

    def test_block_used_up_while_behind_waits_until_the_clock_passes(self, make: Make) -> None:
        # The block runs out while the clock is still 5 ms behind; it recovers 1 ms a reading.
        clock = FakeClock(T, T - 5, T - 5, T - 5, T - 5, T - 5, every=1)
        gen = make(clock)
        ids = [gen.next_id() for _ in range(10)]
        stamped = timestamps(gen, ids)
        assert increasing(ids)
        assert max(Counter(stamped).values()) <= BLOCK
        assert all(ms > T for ms in stamped[BLOCK:])
        assert max(stamped) <= clock.highest

    def test_bulk_block_used_up_while_behind_waits_until_the_clock_passes(self, make: Make) -> None:
        clock = FakeClock(T, T - 5, T - 5, T - 5, T - 5, T - 5, every=1)
        gen = make(clock)
        first = gen.next_id()
        ids = gen.next_ids(3 * BLOCK)
        stamped = timestamps(gen, ids)
        assert increasing([first, *ids])
        assert max(Counter([T, *stamped]).values()) <= BLOCK
        assert max(stamped) <= clock.highest

    @pytest.mark.parametrize(
        "call",
        [
            lambda gen: gen.next_id(),
            lambda gen: gen.next_ids(2),
            lambda gen: next(gen.stream()),
        ],
        ids=["next_id", "next_ids", "stream"],
    )
    def test_step_beyond_the_tolerance_raises(
        self, call: Callable[[SnowflakeGenerator], object], make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        issued = [gen.next_id()]
        clock.now = T - 11
        with pytest.raises(ClockBackwardsError, match=f"the clock reads {T - 11} ms, 11 ms behind"):
            call(gen)
        clock.now = T + 1
        issued.append(gen.next_id())
        assert increasing(issued)

    def test_recovery_after_a_big_step_back_continues_above_every_earlier_id(
        self, make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        issued = gen.next_ids(3)
        clock.now = T - 500
        for _ in range(3):
            with pytest.raises(ClockBackwardsError):
                gen.next_id()
        clock.now = T
        issued.append(gen.next_id())
        clock.now, clock.every = T + 1, 1
        issued.extend(gen.next_ids(2 * BLOCK))
        assert increasing(issued)
        assert len(issued) == 4 + 2 * BLOCK

    @pytest.mark.parametrize(("tolerance", "back"), [(50, 50), (0, 0), (3, 3)])
    def test_custom_tolerance_is_inclusive(self, tolerance: int, back: int, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock, drift_tolerance_ms=tolerance)
        first = gen.next_id()
        clock.now = T - back
        assert gen.next_id() > first
        clock.now = T - back - 1
        with pytest.raises(ClockBackwardsError, match=f"tolerance of {tolerance} ms"):
            gen.next_id()
        with pytest.raises(ClockBackwardsError):
            gen.next_ids(1)

    def test_zero_tolerance_refuses_any_step_back(self, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock, drift_tolerance_ms=0)
        issued = [gen.next_id()]
        clock.now = T - 1
        with pytest.raises(ClockBackwardsError):
            gen.next_id()
        with pytest.raises(ClockBackwardsError):
            gen.next_ids(2)
        clock.now = T
        issued.extend(gen.next_ids(BLOCK - 1))
        # Now the block is used up: the next ones must wait for the clock to move on.
        clock.every = 1
        issued.extend(gen.next_ids(2 * BLOCK))
        assert increasing(issued)
        assert max(Counter(timestamps(gen, issued)).values()) <= BLOCK

    def test_clock_that_never_passes_the_last_millisecond_raises(
        self, monkeypatch: pytest.MonkeyPatch, make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        issued = gen.next_ids(BLOCK)
        waited = FakeMonotonic(monkeypatch)
        with pytest.raises(ClockBackwardsError, match=f"\\({T} ms\\) in 1.01 s; it reads {T} ms"):
            gen.next_id()
        # It waited out the grace (tolerance plus a second), and not much longer.
        assert 1.01 < waited.elapsed < 1.03
        clock.now = T + 1
        issued.append(gen.next_id())
        assert increasing(issued)

    @pytest.mark.parametrize(
        "call",
        [lambda gen: gen.next_id(), lambda gen: gen.next_ids(2)],
        ids=["next_id", "next_ids"],
    )
    def test_clock_that_passes_within_the_grace_is_waited_for(
        self,
        monkeypatch: pytest.MonkeyPatch,
        call: Callable[[SnowflakeGenerator], object],
        make: Make,
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        issued = gen.next_ids(BLOCK)
        waited = FakeMonotonic(monkeypatch, then=(1.0, lambda: setattr(clock, "now", T + 1)))
        call(gen)
        assert 1.0 <= waited.elapsed < 1.01
        assert gen.next_id() > issued[-1]

    def test_a_waiter_overtaken_by_another_thread_is_not_a_step_back(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        mine = gen.next_ids(BLOCK)
        others: list[int] = []
        wait_for_clock = gen._wait_for_clock

        def descheduled_then_wait(now: int, last: int) -> None:
            # Another thread runs between this one's reading and its wait, 20 ms later.
            clock.now = T + 20
            other = threading.Thread(target=lambda: others.append(gen.next_id()))
            other.start()
            other.join(timeout=10)
            clock.every = 1
            wait_for_clock(now, last)

        monkeypatch.setattr(gen, "_wait_for_clock", descheduled_then_wait)
        mine.append(gen.next_id())
        assert increasing(mine)
        assert mine[-1] not in others


class TestRange:
    EPOCH = TINY_EPOCH
    LAST = TINY_LAST

    @pytest.fixture
    def tiny(self, make: Make) -> Make:
        return lambda clock: make(clock, **TINY, epoch_ms=self.EPOCH)

    def test_last_millisecond_is_usable(self, tiny: Make) -> None:
        gen = tiny(FakeClock(self.LAST))
        ids = gen.next_ids(BLOCK)
        assert timestamps(gen, ids) == [self.LAST] * BLOCK
        assert gen.decode(ids[0]).raw == (255 << 55) | (5 << 29) | (6 << 2)

    @pytest.mark.parametrize("past", [1, 2, 10**9])
    @pytest.mark.parametrize(
        "call",
        [
            lambda gen: gen.next_id(),
            lambda gen: gen.next_ids(3),
            lambda gen: next(gen.stream()),
        ],
        ids=["next_id", "next_ids", "stream"],
    )
    def test_overflow_issues_nothing_and_leaves_the_state_alone(
        self, past: int, call: Callable[[SnowflakeGenerator], object], tiny: Make
    ) -> None:
        clock = FakeClock(self.EPOCH + 100)
        gen = tiny(clock)
        first = gen.next_id()
        clock.now = self.LAST + past
        with pytest.raises(TimestampOverflowError, match="re-stamps times already used"):
            call(gen)
        with pytest.raises(TimestampOverflowError):
            call(gen)
        clock.now = self.EPOCH + 100
        assert gen.next_id() == first + 1
        clock.now = self.EPOCH + 101
        assert gen.next_ids(2)[0] > first + 1

    def test_overflow_in_the_middle_of_a_batch_returns_nothing(self, tiny: Make) -> None:
        gen = tiny(FakeClock(self.LAST, self.LAST, self.LAST + 1))
        with pytest.raises(TimestampOverflowError):
            gen.next_ids(BLOCK + 2)

    @pytest.mark.parametrize("before", [1, 1000, 1_000_000])
    @pytest.mark.parametrize(
        "call",
        [
            lambda gen: gen.next_id(),
            lambda gen: gen.next_ids(3),
            lambda gen: next(gen.stream()),
        ],
        ids=["next_id", "next_ids", "stream"],
    )
    def test_before_the_epoch_issues_nothing(
        self, before: int, call: Callable[[SnowflakeGenerator], object], tiny: Make
    ) -> None:
        clock = FakeClock(self.EPOCH - before)
        gen = tiny(clock)
        with pytest.raises(EpochError, match=f"before the epoch {self.EPOCH} ms"):
            call(gen)
        clock.now = self.EPOCH
        # The very first ID of the layout: nothing was used up by the refused call.
        assert gen.next_id() == (5 << 29) | (6 << 2)
        assert gen.next_id() == (5 << 29) | (6 << 2) | 1

    def test_clock_before_1970_is_before_the_epoch(self) -> None:
        gen = SnowflakeGenerator(epoch_ms=0, clock=lambda: -20)
        with pytest.raises(EpochError):
            gen.next_id()


class TestBulk:
    @pytest.mark.parametrize("every", [1, 2, 3, 5])
    def test_never_more_than_a_block_per_millisecond_nor_ahead_of_the_clock(
        self, every: int, make: Make
    ) -> None:
        clock = FakeClock(T, every=every)
        gen = make(clock)
        ids = gen.next_ids(50)
        stamped = timestamps(gen, ids)
        assert len(ids) == 50
        assert increasing(ids)
        assert max(Counter(stamped).values()) <= BLOCK
        assert max(stamped) <= clock.highest
        assert {(gen.decode(uid).datacenter_id, gen.decode(uid).machine_id) for uid in ids} == {
            (5, 6)
        }

    def test_a_frozen_clock_gets_only_one_block(self, make: Make) -> None:
        # Frozen for three readings, then moving: the batch must spread over later milliseconds.
        clock = FakeClock(T, T, T, every=1)
        gen = make(clock)
        ids = gen.next_ids(3 * BLOCK + 1)
        stamped = timestamps(gen, ids)
        assert Counter(stamped)[T] == BLOCK
        assert max(Counter(stamped).values()) <= BLOCK
        assert max(stamped) <= clock.highest

    def test_wide_sequence(self) -> None:
        clock = FakeClock(T, every=1)
        gen = SnowflakeGenerator(clock=clock)
        ids = gen.next_ids(10_000)
        stamped = timestamps(gen, ids)
        assert len(set(ids)) == 10_000
        assert increasing(ids)
        assert max(Counter(stamped).values()) <= 4096
        assert max(stamped) <= clock.highest

    def test_continues_after_single_ids(self) -> None:
        gen = small(FakeClock(T, every=2))
        ids = [gen.next_id(), *gen.next_ids(1), gen.next_id(), *gen.next_ids(7)]
        assert increasing(ids)

    @pytest.mark.parametrize("count", [0, -1, -(2**70)])
    def test_count_below_one(self, count: int) -> None:
        gen = small(FakeClock(T))
        with pytest.raises(ValueError, match=f"count must be >= 1, got {count}") as caught:
            gen.next_ids(count)
        assert isinstance(caught.value, FlakeIDError)

    @pytest.mark.parametrize("count", [2.0, "2", True, None])
    def test_count_not_an_integer(self, count: object) -> None:
        gen = small(FakeClock(T))
        with pytest.raises(ValueError, match="count must be an integer") as caught:
            gen.next_ids(count)  # type: ignore[arg-type]
        assert isinstance(caught.value, FlakeIDError)

    def test_refused_count_uses_nothing_up(self) -> None:
        gen = small(FakeClock(T))
        first = gen.next_id()
        with pytest.raises(ValueError, match="count"):
            gen.next_ids(0)
        assert gen.next_id() == first + 1


class WindowClosed(FlakeIDError):
    pass


class Limits:
    """An ``on_limit`` that grants ``step`` more milliseconds at a time, up to ``until``."""

    def __init__(self, gen: SnowflakeGenerator | None = None, *, step: int = 2) -> None:
        self.gen = gen
        self.step = step
        self.until: int | None = None
        self.asked: list[int] = []
        self.lock_held: list[bool] = []

    def __call__(self, now: int) -> int:
        self.asked.append(now)
        if self.gen is not None:
            self.lock_held.append(self.gen._lock.locked())
        if self.until is not None and now > self.until:
            raise WindowClosed(f"closed at {now}")
        return now + self.step


def closed(now: int) -> int:
    raise WindowClosed(f"closed at {now}")


def open_ended(now: int) -> int:
    return now + 1000


class TestStampingWindow:
    def test_nothing_is_stamped_at_or_before_after_ms(self) -> None:
        clock = FakeClock(T, every=1)
        gen = small(clock)
        gen.limit_window(after_ms=T + 3, until_ms=T + 100, on_limit=closed)
        ids = gen.next_ids(2 * BLOCK)
        assert min(timestamps(gen, ids)) > T + 3
        assert increasing(ids)

    def test_after_ms_far_ahead_of_the_clock_is_a_step_back(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T + 11, until_ms=T + 100, on_limit=closed)
        with pytest.raises(ClockBackwardsError):
            gen.next_id()
        clock.now = T + 12
        assert gen.decode(gen.next_id()).timestamp_ms == T + 12

    def test_an_earlier_after_ms_does_not_move_the_generator_back(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        first = gen.next_id()
        gen.limit_window(after_ms=T - 50, until_ms=T + 100, on_limit=closed)
        assert gen.next_id() == first + 1

    def test_on_limit_is_asked_once_per_limit_passed_with_the_lock_held(self, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        limits = Limits(gen, step=2)
        gen.limit_window(after_ms=T - 100, until_ms=T + 1, on_limit=limits)
        issued = []
        for now in range(T, T + 8):
            clock.now = now
            issued.extend([gen.next_id(), *gen.next_ids(2)])
        assert increasing(issued)
        assert timestamps(gen, issued) == [ms for ms in range(T, T + 8) for _ in range(3)]
        # Granted up to T+1, then T+4 when asked at T+2, then T+7 when asked at T+5.
        assert limits.asked == [T + 2, T + 5]
        assert limits.lock_held == [True, True]

    @pytest.mark.parametrize(
        "call",
        [lambda gen: gen.next_id(), lambda gen: gen.next_ids(2)],
        ids=["next_id", "next_ids"],
    )
    def test_an_error_from_on_limit_reaches_the_caller_and_keeps_the_state(
        self, call: Callable[[SnowflakeGenerator], object], make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        limits = Limits(step=5)
        limits.until = T + 2
        gen.limit_window(after_ms=T - 100, until_ms=T + 2, on_limit=limits)
        issued = [gen.next_id()]
        clock.now = T + 2
        issued.append(gen.next_id())
        clock.now = T + 3
        for _ in range(2):
            with pytest.raises(WindowClosed, match=f"closed at {T + 3}"):
                call(gen)
        # Each refused millisecond asked again: the limit did not move.
        assert limits.asked == [T + 3, T + 3]
        clock.now = T + 2
        issued.append(gen.next_id())
        assert issued[-1] == issued[-2] + 1
        limits.until = None
        clock.now = T + 3
        issued.append(gen.next_id())
        assert increasing(issued)
        assert timestamps(gen, issued) == [T, T + 2, T + 2, T + 3]

    @pytest.mark.parametrize("granted", [-1, -(10**6)])
    def test_a_limit_before_the_millisecond_asked_for_is_refused(
        self, granted: int, make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T, on_limit=lambda now: now + granted)
        first = gen.next_id()
        clock.now = T + 1
        with pytest.raises(FlakeIDError, match=f"on_limit\\({T + 1}\\) returned {T + 1 + granted}"):
            gen.next_id()
        clock.now = T
        assert gen.next_id() == first + 1

    @pytest.mark.parametrize("granted", [float(T + 5), None, True])
    def test_on_limit_must_return_an_integer(self, granted: object) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T - 1, on_limit=lambda now: granted)  # type: ignore[arg-type,return-value]
        with pytest.raises(ConfigurationTypeError, match="on_limit must return an integer"):
            gen.next_id()

    def test_the_limit_is_the_last_millisecond_stamped(self, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T, on_limit=closed)
        issued = gen.next_ids(BLOCK)
        clock.now = T + 1
        with pytest.raises(WindowClosed):
            gen.next_id()
        assert timestamps(gen, issued) == [T] * BLOCK

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"after_ms": 1.5}, "after_ms must be an integer"),
            ({"until_ms": None}, "until_ms must be an integer"),
            ({"on_limit": T}, "on_limit must be a callable"),
        ],
    )
    def test_refuses_bad_arguments(self, options: dict[str, Any], message: str) -> None:
        gen = small(FakeClock(T))
        arguments = {"after_ms": T, "until_ms": T + 5, "on_limit": open_ended, **options}
        with pytest.raises(ConfigurationTypeError, match=message):
            gen.limit_window(**arguments)

    def test_the_layout_end_still_wins(self) -> None:
        clock = FakeClock(TINY_LAST)
        gen = SnowflakeGenerator(**TINY, epoch_ms=TINY_EPOCH, clock=clock)
        gen.limit_window(after_ms=0, until_ms=10**15, on_limit=open_ended)
        gen.next_id()
        clock.now = TINY_LAST + 1
        with pytest.raises(TimestampOverflowError):
            gen.next_id()

    def test_on_limit_granting_past_the_layout_end_stops_at_the_end(self) -> None:
        clock = FakeClock(TINY_LAST - 1)
        gen = SnowflakeGenerator(**TINY, epoch_ms=TINY_EPOCH, clock=clock)
        limits = Limits(step=10**9)
        gen.limit_window(after_ms=0, until_ms=TINY_LAST - 2, on_limit=limits)
        gen.next_id()
        clock.now = TINY_LAST
        gen.next_id()
        clock.now = TINY_LAST + 1
        with pytest.raises(TimestampOverflowError):
            gen.next_id()
        assert limits.asked == [TINY_LAST - 1]


class TestStop:
    def test_the_current_millisecond_finishes_then_every_later_one_is_refused(
        self, make: Make
    ) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        limits = Limits()
        gen.limit_window(after_ms=T - 100, until_ms=T + 100, on_limit=limits)
        first = gen.next_id()
        assert gen.stop_new_milliseconds() == T
        assert gen.next_ids(BLOCK - 1) == [first + 1, first + 2, first + 3]
        for later in [T + 1, T + 50, T + 101, T + 10**6]:
            clock.now = later
            with pytest.raises(FlakeIDError, match=f"stopped.*clock: {later} ms"):
                gen.next_id()
            with pytest.raises(FlakeIDError, match="stopped"):
                gen.next_ids(1)
        assert limits.asked == []

    def test_without_a_window(self, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        gen.next_id()
        assert gen.stop_new_milliseconds() == T
        clock.now = T + 1
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.next_id()

    def test_custom_error(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.next_id()
        gen.stop_new_milliseconds(lambda now: WindowClosed(f"gone at {now}"))
        clock.now = T + 1
        with pytest.raises(WindowClosed, match=f"gone at {T + 1}"):
            gen.next_id()

    def test_a_window_cannot_reopen_a_stopped_generator(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.next_id()
        gen.stop_new_milliseconds()
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.limit_window(after_ms=T, until_ms=T + 100, on_limit=open_ended)
        clock.now = T + 1
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.next_id()

    def test_stopping_twice_keeps_the_first_millisecond(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.next_id()
        gen.stop_new_milliseconds()
        clock.now = T + 5
        assert gen.stop_new_milliseconds() == T
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.next_id()

    def test_before_any_id(self, make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        assert gen.stop_new_milliseconds() == gen.epoch_ms - 1
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.next_id()

    def test_before_any_id_in_a_window(self) -> None:
        gen = small(FakeClock(T))
        gen.limit_window(after_ms=T - 7, until_ms=T + 100, on_limit=open_ended)
        assert gen.stop_new_milliseconds() == T - 7
        with pytest.raises(FlakeIDError, match="stopped"):
            gen.next_id()


class GateClock:
    """A clock frozen at ``now`` that parks its ``worker`` thread once that one must be waiting.

    A generator reads the clock at most once per ID it issues plus once to find a block used
    up, so the worker's reading number ``block + 2`` can only be made while it waits.
    """

    def __init__(self, now: int, park_at: int) -> None:
        self.now = now
        self.park_at = park_at
        self.worker: threading.Thread | None = None
        self.worker_readings = 0
        self.parked = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> int:
        if threading.current_thread() is self.worker:
            self.worker_readings += 1
            if self.worker_readings >= self.park_at:
                self.parked.set()
                self.release.wait(timeout=10)
        return self.now


class TestWaitingThreadLeavesTheLockFree:
    @pytest.mark.parametrize(
        ("work", "expected"),
        [
            (lambda gen: [gen.next_id() for _ in range(BLOCK + 1)], BLOCK + 1),
            (lambda gen: gen.next_ids(BLOCK + 3), BLOCK + 3),
        ],
        ids=["next_id", "next_ids"],
    )
    def test_lock_is_free_while_a_thread_waits_for_the_clock(
        self, work: Callable[[SnowflakeGenerator], list[int]], expected: int
    ) -> None:
        clock = GateClock(T, park_at=BLOCK + 2)
        gen = small(clock)
        got: list[int] = []
        failures: list[BaseException] = []

        def run() -> None:
            try:
                got.extend(work(gen))
            except BaseException as exc:
                failures.append(exc)

        worker = threading.Thread(target=run)
        clock.worker = worker
        worker.start()
        try:
            assert clock.parked.wait(timeout=10)
            taken = gen._lock.acquire(blocking=False)
            if taken:
                gen._lock.release()
            assert taken, "the generator's lock is held while a thread waits for the clock"
            # Meanwhile another thread moves on to the next millisecond.
            clock.now = T + 1
            mine = gen.next_id()
        finally:
            clock.release.set()
            worker.join(timeout=10)
        assert not worker.is_alive()
        assert failures == []
        assert len(got) == expected
        assert increasing(got)
        assert mine not in got
        assert gen.decode(mine).timestamp_ms == T + 1
        assert max(Counter(timestamps(gen, [*got, mine])).values()) <= BLOCK


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork() (POSIX only)")
# The kernel's wiped page (MADV_WIPEONFORK) is what catches a fork that skips Python's hooks.
needs_wiped_page = pytest.mark.skipif(sys.platform != "linux", reason="needs MADV_WIPEONFORK")


def libc_fork() -> int:
    """fork() called straight from C, as uWSGI or a C extension does: no Python hook runs."""
    # PyDLL keeps the GIL across the call, so the child owns it.
    return int(ctypes.PyDLL(None).fork())


FORKS = [
    pytest.param(os.fork, id="os.fork"),
    pytest.param(libc_fork, id="libc fork", marks=needs_wiped_page),
]


def run_in_child(
    report: Callable[[], dict[str, Any]], fork: Callable[[], int] = os.fork
) -> dict[str, Any]:
    """Fork, run ``report()`` in the child and return its result; a child stuck 5 s is killed."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Forking while another thread holds the generator's lock is what some tests are about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = fork()
    if pid == 0:
        try:
            os.close(read_end)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(5)
            outcome = report()
        except BaseException as exc:
            outcome = {"child failed": repr(exc)}
        try:
            os.write(write_end, json.dumps(outcome).encode())
        finally:
            # Never return into the parent's test run from the child.
            os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + 10
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    assert data, f"the child reported nothing (wait status {status:#x}): it hung or died"
    result: dict[str, Any] = json.loads(data)
    assert "child failed" not in result, result
    return result


def attempt(call: Callable[[], object]) -> dict[str, Any]:
    try:
        issued = call()
    except ForkedProcessError as exc:
        return {"refused": str(exc), "flakeid_error": isinstance(exc, FlakeIDError)}
    return {"issued": issued}


def assert_refused(outcome: dict[str, Any], child_pid: int) -> None:
    assert "issued" not in outcome, f"the child issued {outcome['issued']}"
    message = outcome["refused"]
    assert outcome["flakeid_error"]
    assert f"created in process {os.getpid()}" in message
    assert f"inherited by process {child_pid} through fork()" in message
    assert "Create a new generator in the child" in message


FIRST_CALLS: dict[str, Callable[[SnowflakeGenerator, Iterator[int], Callable[[], int]], object]] = {
    "next_id": lambda gen, started, bound: gen.next_id(),
    "next_ids": lambda gen, started, bound: gen.next_ids(2),
    "stream": lambda gen, started, bound: next(gen.stream()),
    "stream started before fork": lambda gen, started, bound: next(started),
    "next_id bound before fork": lambda gen, started, bound: bound(),
}


def without_wiped_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build generators as on a kernel without MADV_WIPEONFORK (macOS, Linux before 4.14)."""
    monkeypatch.setattr(generator_module, "_MADV_WIPEONFORK", None)


@needs_fork
class TestFork:
    @pytest.mark.parametrize("fork", FORKS)
    @pytest.mark.parametrize("first_call", FIRST_CALLS)
    def test_the_first_call_in_the_child_refuses_within_the_same_millisecond(
        self, first_call: str, fork: Callable[[], int], make: Make
    ) -> None:
        # The clock never moves: the child's first call falls in the parent's last millisecond.
        gen = make(FakeClock(T))
        started, bound = gen.stream(), gen.next_id
        parent_ids = [bound(), next(started)]

        def in_child() -> dict[str, Any]:
            call = FIRST_CALLS[first_call]
            return {"pid": os.getpid(), "outcome": attempt(lambda: call(gen, started, bound))}

        child = run_in_child(in_child, fork)
        assert_refused(child["outcome"], child["pid"])
        # The parent goes on in the same millisecond, with the IDs the child would have taken.
        parent_ids.extend([gen.next_id(), next(started)])
        assert parent_ids == list(range(parent_ids[0], parent_ids[0] + BLOCK))
        assert timestamps(gen, parent_ids) == [T] * BLOCK

    @pytest.mark.parametrize("fork", FORKS)
    def test_every_later_call_refuses_too(self, fork: Callable[[], int], make: Make) -> None:
        clock = FakeClock(T)
        gen = make(clock)
        gen.next_id()

        def in_child() -> dict[str, Any]:
            outcomes = [attempt(gen.next_id) for _ in range(2)]
            clock.now = T + 1
            outcomes.extend([attempt(gen.next_id), attempt(lambda: gen.next_ids(BLOCK + 1))])
            return {"pid": os.getpid(), "outcomes": outcomes}

        child = run_in_child(in_child, fork)
        for outcome in child["outcomes"]:
            assert_refused(outcome, child["pid"])

    @pytest.mark.parametrize("fork", FORKS)
    def test_inherited(self, fork: Callable[[], int]) -> None:
        gen = small(FakeClock(T))
        unused = small(FakeClock(T))
        gen.next_id()
        assert not gen.inherited
        child = run_in_child(lambda: {"used": gen.inherited, "unused": unused.inherited}, fork)
        assert child == {"used": True, "unused": True}
        assert not gen.inherited
        assert not unused.inherited

    @pytest.mark.parametrize("fork", FORKS)
    def test_lock_held_by_another_parent_thread_does_not_hang_the_child(
        self, fork: Callable[[], int]
    ) -> None:
        gen = small(FakeClock(T))
        gen.limit_window(after_ms=T - 100, until_ms=T + 100, on_limit=open_ended)
        parent_ids = [gen.next_id()]
        holding, done = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with gen._lock:
                holding.set()
                done.wait(timeout=20)

        def in_child() -> dict[str, Any]:
            # Each call on its own line of the report: a hang in any one leaves it empty.
            return {
                "pid": os.getpid(),
                "stop_new_milliseconds": gen.stop_new_milliseconds(),
                "limit_window": attempt(
                    lambda: gen.limit_window(after_ms=T, until_ms=T + 5, on_limit=open_ended)
                ),
                "next_id": attempt(gen.next_id),
                "next_ids": attempt(lambda: gen.next_ids(3)),
                "stream": attempt(lambda: next(gen.stream())),
                "inherited": gen.inherited,
            }

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        try:
            assert holding.wait(timeout=10)
            child = run_in_child(in_child, fork)
        finally:
            done.set()
            holder.join(timeout=10)
        assert child["stop_new_milliseconds"] == T
        assert child["inherited"] is True
        for name in ["limit_window", "next_id", "next_ids", "stream"]:
            assert_refused(child[name], child["pid"])
        # Stopping in the child left the parent's generator running.
        parent_ids.extend([gen.next_id(), gen.next_id()])
        assert parent_ids == list(range(parent_ids[0], parent_ids[0] + 3))

    def test_stopping_in_a_child_whose_lock_was_held_at_fork_time_returns(self) -> None:
        # The report holds a single call: it is the first the child makes.
        gen = small(FakeClock(T))
        gen.next_id()
        holding, done = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with gen._lock:
                holding.set()
                done.wait(timeout=20)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        try:
            assert holding.wait(timeout=10)
            child = run_in_child(lambda: {"reached": gen.stop_new_milliseconds()})
        finally:
            done.set()
            holder.join(timeout=10)
        assert child == {"reached": T}

    @pytest.mark.parametrize("fork", FORKS)
    def test_generator_created_in_the_child_works(self, fork: Callable[[], int]) -> None:
        small(FakeClock(T)).next_id()

        def in_child() -> dict[str, Any]:
            fresh = small(FakeClock(T, every=2))
            ids = [fresh.next_id(), *fresh.next_ids(6), next(fresh.stream())]
            return {"ids": ids, "inherited": fresh.inherited}

        child = run_in_child(in_child, fork)
        assert len(child["ids"]) == 8
        assert increasing(child["ids"])
        assert child["inherited"] is False


@needs_fork
class TestForkWithoutAWipedPage:
    def test_the_generator_falls_back_to_a_plain_flag(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        without_wiped_page(monkeypatch)
        gen = small(FakeClock(T, every=1))
        assert isinstance(gen._alive, bytearray)
        assert not gen.inherited
        assert increasing([gen.next_id(), *gen.next_ids(10)])

    def test_a_fork_without_hooks_is_refused_at_the_next_millisecond(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        without_wiped_page(monkeypatch)
        clock = FakeClock(T)
        gen = small(clock)
        limits = Limits(step=100)
        gen.limit_window(after_ms=T - 100, until_ms=T, on_limit=limits)
        first = gen.next_id()

        def in_child() -> dict[str, Any]:
            clock.now = T + 1
            return {
                "pid": os.getpid(),
                "next_ids": attempt(lambda: gen.next_ids(2)),
                "next_id": attempt(gen.next_id),
                "inherited": gen.inherited,
                # The node's next holder must not be announced from the child.
                "asked": limits.asked,
            }

        child = run_in_child(in_child, libc_fork)
        assert_refused(child["next_ids"], child["pid"])
        assert_refused(child["next_id"], child["pid"])
        assert child["inherited"] is True
        assert child["asked"] == []
        assert gen.next_id() == first + 1
        assert not gen.inherited

    def test_inherited_without_hooks_before_any_call(self, monkeypatch: pytest.MonkeyPatch) -> None:
        without_wiped_page(monkeypatch)
        clock = FakeClock(T)
        gen = small(clock)
        gen.next_id()

        def in_child() -> dict[str, Any]:
            inherited = gen.inherited
            # Once seen, the fork is refused even within the parent's millisecond.
            return {"pid": os.getpid(), "inherited": inherited, "next_id": attempt(gen.next_id)}

        child = run_in_child(in_child, libc_fork)
        assert child["inherited"] is True
        assert_refused(child["next_id"], child["pid"])

    def test_python_fork_hooks_refuse_within_the_same_millisecond(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        without_wiped_page(monkeypatch)
        gen = small(FakeClock(T))
        first = gen.next_id()

        def in_child() -> dict[str, Any]:
            return {
                "pid": os.getpid(),
                "next_id": attempt(gen.next_id),
                "next_ids": attempt(lambda: gen.next_ids(2)),
            }

        child = run_in_child(in_child, os.fork)
        assert_refused(child["next_id"], child["pid"])
        assert_refused(child["next_ids"], child["pid"])
        assert gen.next_id() == first + 1


def test_a_bulk_costs_no_more_memory_than_the_list_it_returns() -> None:
    gen = SnowflakeGenerator()
    tracemalloc.start()
    try:
        ids = gen.next_ids(200_000)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ids) == 200_000
    # Building per-millisecond lists and joining them would peak near twice what is kept.
    assert peak <= kept * 1.02


def test_a_fork_seen_through_the_process_id_is_refused_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the wiped page, the child is caught at a new millisecond; going back into the
    # parent's millisecond (a step within the drift tolerance) must not let it in again.
    without_wiped_page(monkeypatch)
    clock = FakeClock(T)
    generator = small(clock)
    generator.next_id()

    def in_child() -> dict[str, Any]:
        clock.now = T + 1
        first = attempt(generator.next_id)
        clock.now = T
        return {"pid": os.getpid(), "first": first, "again": attempt(generator.next_id)}

    child = run_in_child(in_child, libc_fork)
    assert_refused(child["first"], child["pid"])
    assert_refused(child["again"], child["pid"])
