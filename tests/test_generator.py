from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import threading
import time
import tracemalloc
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

import pytest

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

    def test_stream(self) -> None:
        gen = small(FakeClock(T, every=3))
        ids = list(itertools.islice(gen.stream(), 50))
        assert increasing(ids)
        assert max(Counter(timestamps(gen, ids)).values()) <= BLOCK

    def test_interleaved_single_and_bulk_calls_increase(self) -> None:
        clock = FakeClock(T, every=3)
        gen = small(clock)
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

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert failures == []
        assert len(results) == threads
        assert all(increasing(ids) for ids in results)
        assert len({uid for ids in results for uid in ids}) == threads * per_thread


class TestClockStepsBack:
    @pytest.mark.parametrize("back", [1, 5, 10])
    def test_small_step_back_keeps_ids_increasing(self, back: int) -> None:
        clock = FakeClock(T, T - back, T - back, T, T + 1)
        gen = small(clock)
        ids = [gen.next_id() for _ in range(5)]
        assert increasing(ids)
        assert max(timestamps(gen, ids)) <= clock.highest

    def test_block_used_up_while_behind_waits_until_the_clock_passes(self) -> None:
        # The block runs out while the clock is still 5 ms behind; it recovers 1 ms a reading.
        clock = FakeClock(T, T - 5, T - 5, T - 5, T - 5, T - 5, every=1)
        gen = small(clock)
        ids = [gen.next_id() for _ in range(10)]
        stamped = timestamps(gen, ids)
        assert increasing(ids)
        assert max(Counter(stamped).values()) <= BLOCK
        assert all(ms > T for ms in stamped[BLOCK:])
        assert max(stamped) <= clock.highest

    def test_bulk_block_used_up_while_behind_waits_until_the_clock_passes(self) -> None:
        clock = FakeClock(T, T - 5, T - 5, T - 5, T - 5, T - 5, every=1)
        gen = small(clock)
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
        self, call: Callable[[SnowflakeGenerator], object]
    ) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        issued = [gen.next_id()]
        clock.now = T - 11
        with pytest.raises(ClockBackwardsError, match=f"the clock reads {T - 11} ms, 11 ms behind"):
            call(gen)
        clock.now = T + 1
        issued.append(gen.next_id())
        assert increasing(issued)

    def test_recovery_after_a_big_step_back_continues_above_every_earlier_id(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
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
    def test_custom_tolerance_is_inclusive(self, tolerance: int, back: int) -> None:
        clock = FakeClock(T)
        gen = small(clock, drift_tolerance_ms=tolerance)
        first = gen.next_id()
        clock.now = T - back
        assert gen.next_id() > first
        clock.now = T - back - 1
        with pytest.raises(ClockBackwardsError, match=f"tolerance of {tolerance} ms"):
            gen.next_id()
        with pytest.raises(ClockBackwardsError):
            gen.next_ids(1)

    def test_zero_tolerance_refuses_any_step_back(self) -> None:
        clock = FakeClock(T)
        gen = small(clock, drift_tolerance_ms=0)
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

    def test_clock_that_never_passes_the_last_millisecond_raises(self) -> None:
        # Waits out about a second of real time before giving up, by design.
        clock = FakeClock(T)
        gen = small(clock)
        issued = gen.next_ids(BLOCK)
        with pytest.raises(ClockBackwardsError, match=str(T)):
            gen.next_id()
        clock.now = T + 1
        issued.append(gen.next_id())
        assert increasing(issued)

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

    def tiny(self, clock: Callable[[], int]) -> SnowflakeGenerator:
        return SnowflakeGenerator(
            **TINY, epoch_ms=self.EPOCH, datacenter_id=5, machine_id=6, clock=clock
        )

    def test_last_millisecond_is_usable(self) -> None:
        gen = self.tiny(FakeClock(self.LAST))
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
        self, past: int, call: Callable[[SnowflakeGenerator], object]
    ) -> None:
        clock = FakeClock(self.EPOCH + 100)
        gen = self.tiny(clock)
        first = gen.next_id()
        clock.now = self.LAST + past
        with pytest.raises(TimestampOverflowError, match="use more timestamp_bits"):
            call(gen)
        with pytest.raises(TimestampOverflowError):
            call(gen)
        clock.now = self.EPOCH + 100
        assert gen.next_id() == first + 1
        clock.now = self.EPOCH + 101
        assert gen.next_ids(2)[0] > first + 1

    def test_overflow_in_the_middle_of_a_batch_returns_nothing(self) -> None:
        gen = self.tiny(FakeClock(self.LAST, self.LAST, self.LAST + 1))
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
        self, before: int, call: Callable[[SnowflakeGenerator], object]
    ) -> None:
        clock = FakeClock(self.EPOCH - before)
        gen = self.tiny(clock)
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
        self, every: int
    ) -> None:
        clock = FakeClock(T, every=every)
        gen = small(clock)
        ids = gen.next_ids(50)
        stamped = timestamps(gen, ids)
        assert len(ids) == 50
        assert increasing(ids)
        assert max(Counter(stamped).values()) <= BLOCK
        assert max(stamped) <= clock.highest
        assert {(gen.decode(uid).datacenter_id, gen.decode(uid).machine_id) for uid in ids} == {
            (5, 6)
        }

    def test_a_frozen_clock_gets_only_one_block(self) -> None:
        # Frozen for three readings, then moving: the batch must spread over later milliseconds.
        clock = FakeClock(T, T, T, every=1)
        gen = small(clock)
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


def window_closed(now: int) -> FlakeIDError:
    return WindowClosed(f"closed at {now}")


class TestStampingWindow:
    def test_nothing_is_stamped_at_or_before_after_ms(self) -> None:
        clock = FakeClock(T, every=1)
        gen = small(clock)
        gen.limit_window(after_ms=T + 3, until_ms=T + 100, on_limit=window_closed)
        ids = gen.next_ids(2 * BLOCK)
        assert min(timestamps(gen, ids)) > T + 3
        assert increasing(ids)

    def test_after_ms_far_ahead_of_the_clock_is_a_step_back(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T + 11, until_ms=T + 100, on_limit=window_closed)
        with pytest.raises(ClockBackwardsError):
            gen.next_id()
        clock.now = T + 12
        assert gen.decode(gen.next_id()).timestamp_ms == T + 12

    def test_an_earlier_after_ms_does_not_move_the_generator_back(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        first = gen.next_id()
        gen.limit_window(after_ms=T - 50, until_ms=T + 100, on_limit=window_closed)
        assert gen.next_id() == first + 1

    def test_past_until_ms_raises_the_window_error_and_keeps_the_state(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T + 2, on_limit=window_closed)
        issued = [gen.next_id()]
        clock.now = T + 2
        issued.append(gen.next_id())
        clock.now = T + 3
        with pytest.raises(WindowClosed, match=f"closed at {T + 3}"):
            gen.next_id()
        with pytest.raises(WindowClosed):
            gen.next_ids(2)
        clock.now = T + 2
        issued.append(gen.next_id())
        assert issued[-1] == issued[-2] + 1

    def test_extend_limit_only_moves_forward(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T, on_limit=window_closed)
        issued = [gen.next_id()]
        gen.extend_limit(T + 5)
        gen.extend_limit(T + 1)
        clock.now = T + 5
        issued.append(gen.next_id())
        clock.now = T + 6
        with pytest.raises(WindowClosed):
            gen.next_id()
        assert increasing(issued)

    def test_stop_new_milliseconds_lets_the_current_one_finish(self) -> None:
        clock = FakeClock(T)
        gen = small(clock)
        gen.limit_window(after_ms=T - 100, until_ms=T + 100, on_limit=window_closed)
        first = gen.next_id()
        assert gen.stop_new_milliseconds() == T
        assert gen.next_ids(BLOCK - 1) == [first + 1, first + 2, first + 3]
        clock.now = T + 1
        with pytest.raises(WindowClosed):
            gen.next_id()

    def test_the_layout_end_still_wins(self) -> None:
        clock = FakeClock(TINY_LAST)
        gen = SnowflakeGenerator(**TINY, epoch_ms=TINY_EPOCH, clock=clock)
        gen.limit_window(after_ms=0, until_ms=10**15, on_limit=window_closed)
        gen.next_id()
        clock.now = TINY_LAST + 1
        with pytest.raises(TimestampOverflowError):
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


def run_in_child(report: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Fork, run ``report()`` in the child and return its result; a child stuck 5 s is killed."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Forking while another thread holds the generator's lock is what one test is about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
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
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
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


@needs_fork
class TestFork:
    def test_inherited_generator_refuses_in_the_child(self) -> None:
        gen = small(FakeClock(T))
        parent_ids = [gen.next_id()]
        old_stream = gen.stream()
        parent_ids.append(next(old_stream))

        def in_child() -> dict[str, Any]:
            return {
                "pid": os.getpid(),
                "attempts": {
                    "next_id": attempt(gen.next_id),
                    "next_ids": attempt(lambda: gen.next_ids(2)),
                    "stream": attempt(lambda: next(gen.stream())),
                    "stream started before fork": attempt(lambda: next(old_stream)),
                },
            }

        child = run_in_child(in_child)
        parent_ids.extend([gen.next_id(), next(old_stream)])

        child_ids = []
        for name, outcome in child["attempts"].items():
            assert "issued" not in outcome, f"{name} issued {outcome['issued']} in the child"
            child_ids.extend(outcome.get("issued", []))
            message = outcome["refused"]
            assert outcome["flakeid_error"]
            assert f"created in process {os.getpid()}" in message
            assert f"inherited by process {child['pid']} through fork()" in message
            assert "Create a new generator in the child" in message
        assert increasing(parent_ids)
        assert set(child_ids).isdisjoint(parent_ids)

    def test_lock_held_by_another_parent_thread_does_not_hang_the_child(self) -> None:
        gen = small(FakeClock(T))
        holding, done = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with gen._lock:
                holding.set()
                done.wait(timeout=10)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        try:
            assert holding.wait(timeout=10)
            child = run_in_child(
                lambda: {
                    "next_id": attempt(gen.next_id),
                    "next_ids": attempt(lambda: gen.next_ids(3)),
                    "stream": attempt(lambda: next(gen.stream())),
                }
            )
        finally:
            done.set()
            holder.join(timeout=10)
        assert all("refused" in outcome for outcome in child.values()), child
        assert gen.next_id() < gen.next_id()

    def test_generator_created_in_the_child_works(self) -> None:
        small(FakeClock(T)).next_id()

        def in_child() -> dict[str, Any]:
            fresh = small(FakeClock(T, every=2))
            return {"ids": [fresh.next_id(), *fresh.next_ids(6), next(fresh.stream())]}

        ids = run_in_child(in_child)["ids"]
        assert len(ids) == 8
        assert increasing(ids)

    def test_method_bound_before_fork_refuses_in_the_child(self) -> None:
        gen = small(FakeClock(T))
        issue = gen.next_id
        issue()
        child = run_in_child(lambda: {"next_id": attempt(issue)})
        parent_next = gen.next_id()
        assert "refused" in child["next_id"], (
            f"the child issued {child['next_id'].get('issued')}; the parent issued {parent_next}"
        )


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
