from __future__ import annotations

import fcntl
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_flakeid import hostclaim, marks
from django_flakeid.errors import ClockBackwardsError, FlakeIDError, LeaseError, NodeInUseError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout
from tests.test_hostclaim import Process, claim_code

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the process tests use Linux's /proc"
)

TWITTER = Layout()
SMALL = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=2, sequence_bits=20)
NODE = "datacenter_id=0 machine_id=7"


@pytest.fixture(autouse=True)
def _release_claims() -> Iterator[None]:
    yield
    for claim in list(hostclaim._held.values()):
        claim.release()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    started: list[Process] = []

    def start(*prefix: str) -> Process:
        process = Process(tmp_path, prefix=prefix)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def mark_in(path: Path) -> int:
    return int(path.read_bytes()[:20])


def generator(clock: object = None, machine_id: int = 7) -> SnowflakeGenerator:
    return SnowflakeGenerator(machine_id=machine_id, clock=clock)  # type: ignore[arg-type]


def readings(*values: int) -> object:
    """A clock that reads ``values`` in turn, then stays at the last."""
    left = list(values)
    return lambda: left.pop(0) if len(left) > 1 else left[0]


class FakeTime:
    """A clock that moves only when slept on (or when told to stay put)."""

    def __init__(self, now: int, *, stuck: bool = False) -> None:
        self.now = now
        self.stuck = stuck
        self.slept: list[float] = []

    def clock(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        assert len(self.slept) < 100, "waited for ever"
        if not self.stuck:
            self.now += round(seconds * 1000)


class TestCatchUp:
    def test_a_clock_past_the_mark_goes_on_at_once(self):
        fake = FakeTime(1_000_001)
        marks.catch_up(1_000_000, NODE, clock=fake.clock, sleep=fake.sleep)
        assert fake.slept == []

    @pytest.mark.parametrize(("behind", "sleep"), [(0, 0.001), (300, 0.301), (5_000, 5.001)])
    def test_a_clock_at_or_behind_the_mark_is_waited_for_until_it_passes(self, behind, sleep):
        fake = FakeTime(1_000_000 - behind)
        marks.catch_up(1_000_000, NODE, clock=fake.clock, sleep=fake.sleep)
        assert fake.slept == [sleep]
        assert fake.now > 1_000_000

    def test_a_clock_more_than_max_catch_up_behind_is_refused(self):
        fake = FakeTime(1_000_000 - marks.MAX_CATCH_UP_MS - 1)
        with pytest.raises(ClockBackwardsError) as caught:
            marks.catch_up(1_000_000, NODE, clock=fake.clock, sleep=fake.sleep)
        assert str(caught.value) == (
            "this host's clock reads 994999 ms, 5001 ms behind the high-water mark of "
            "datacenter_id=0 machine_id=7 (1000000 ms), the last millisecond a previous holder "
            "may have stamped; a clock more than 5000 ms behind is not waited for. Check NTP on "
            "this host; the node can be used again once the clock passes the mark."
        )
        assert fake.slept == []

    def test_a_clock_that_does_not_move_is_not_waited_for_for_ever(self):
        fake = FakeTime(999_000, stuck=True)
        with pytest.raises(ClockBackwardsError, match="has not passed the high-water mark"):
            marks.catch_up(1_000_000, NODE, clock=fake.clock, sleep=fake.sleep)
        assert 5 < sum(fake.slept) < 7

    def test_the_bounds(self):
        assert marks.MARK_WINDOW_MS == 1_000
        assert marks.MAX_CATCH_UP_MS == 5_000


class TestMarkInTheLockFile:
    def test_a_new_node_has_no_mark(self, tmp_path):
        assert hostclaim.claim_node(TWITTER, 0, 7, tmp_path).after_ms == 0

    def test_the_next_holder_starts_at_the_mark_of_a_process_that_stopped(self, start, tmp_path):
        holder = start()
        holder.run(claim_code(TWITTER, 0, 7) + "; c.announce(1_000_000)")
        holder.close()
        assert hostclaim.claim_node(TWITTER, 0, 7, tmp_path).after_ms == 1_000_000

    def test_release_lowers_the_mark_to_the_last_millisecond_stamped(self, start, tmp_path):
        holder = start()
        holder.run(claim_code(TWITTER, 0, 7) + "; c.announce(1_000_000); c.release(999_123)")
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        assert claim.after_ms == 999_123
        claim.release()
        # Without the last millisecond, the mark stays.
        assert hostclaim.claim_node(TWITTER, 0, 7, tmp_path).after_ms == 999_123

    def test_release_never_lowers_the_mark_below_after_ms(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.announce(2_000)
        claim.release(1_500)
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        assert claim.after_ms == 1_500
        claim.release(10)
        assert mark_in(claim.path) == 1_500

    def test_release_never_raises_the_mark(self, tmp_path):
        # A generator that stamped nothing reports the millisecond before its epoch, which
        # may be years ahead.
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.announce(2_000)
        claim.release(4_102_444_799_999)
        assert mark_in(claim.path) == 2_000

    def test_announce_never_lowers_the_mark(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.announce(5_000)
        claim.announce(4_000)
        assert mark_in(claim.path) == 5_000
        claim.release()
        assert hostclaim.claim_node(TWITTER, 0, 7, tmp_path).after_ms == 5_000

    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"garbage",
            b"pid 12 (an older version wrote this)\n",
            b"\0" * 21 + b"pid 12 (-c)\n",
            b"123456789\n",
            b"0000000000000000001x\npid 12 (-c)\n",
            b"00000000000000000012 pid 12 (-c)\n",
        ],
    )
    def test_a_lock_file_without_a_readable_mark_has_none(self, tmp_path, content):
        path = tmp_path / f"epoch{TWITTER.epoch_ms}-bits41-5-5-12-dc0-m7.lock"
        path.write_bytes(content)
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        assert claim.after_ms == 0
        claim.announce(77)
        assert path.read_bytes().startswith(b"00000000000000000077\npid ")

    def test_other_layouts_marks_count_and_other_nodes_of_this_layout_do_not(self, tmp_path):
        for layout, machine, mark in ((SMALL, 3, 5_000), (TWITTER, 8, 9_000)):
            claim = hostclaim.claim_node(layout, 0, machine, tmp_path)
            claim.announce(mark)
            claim.release()
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        # The layout changed: the old one's times may not be stamped again in any node.
        assert claim.after_ms == 5_000
        assert mark_in(claim.path) == 5_000

    def test_a_deleted_lock_file_is_created_again_by_the_next_announcement(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.announce(3_000)
        shutil.rmtree(tmp_path)
        claim.announce(4_000)
        assert mark_in(claim.path) == 4_000
        probe = os.open(claim.path, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        os.close(probe)
        # The mark it had stored survives in the new file even when nothing higher comes.
        os.unlink(claim.path)
        claim.announce(10)
        assert mark_in(claim.path) == 4_000

    def test_a_lock_file_taken_by_another_process_since_stops_the_announcements(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        os.unlink(claim.path)
        # A process of another network namespace sharing the folder makes a new one.
        squatter = os.open(claim.path, os.O_RDWR | os.O_CREAT, 0o666)
        os.write(squatter, b"00000000000000000000\npid 4242 (elsewhere)\n")
        fcntl.flock(squatter, fcntl.LOCK_EX)
        try:
            with pytest.raises(NodeInUseError) as caught:
                claim.announce(5_000)
        finally:
            os.close(squatter)
        assert str(caught.value) == (
            "the lock file of datacenter_id=0 machine_id=7 was deleted while this process held "
            "the node, and pid 4242 (elsewhere) has claimed it since; this process makes no "
            "more IDs with it"
        )

    def test_a_released_claim_announces_nothing(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.release()
        with pytest.raises(FlakeIDError, match="was released; claim the node again"):
            claim.announce(5_000)
        assert mark_in(claim.path) == 0


class TestGuard:
    def test_each_new_window_is_announced_before_its_first_id(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        announced: list[int] = []
        real_announce = claim.announce

        def spy(until_ms: int) -> None:
            real_announce(until_ms)
            announced.append(mark_in(claim.path))

        claim.announce = spy  # type: ignore[method-assign]
        now = [marks.wall_ms()]
        ids = generator(lambda: now[0])
        marks.guard(ids, claim)
        assert announced == []
        first = ids.next_id()
        assert announced == [now[0] + marks.MARK_WINDOW_MS]
        start = now[0]
        for step in range(1, marks.MARK_WINDOW_MS + 1):
            now[0] = start + step
            ids.next_id()
        assert announced == [start + marks.MARK_WINDOW_MS]
        now[0] += 1
        ids.next_id()
        assert announced == [start + marks.MARK_WINDOW_MS, now[0] + marks.MARK_WINDOW_MS]
        assert ids.decode(first).timestamp_ms == start

    def test_ids_start_above_the_mark(self, tmp_path):
        mark = marks.wall_ms() - 100
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        claim.announce(mark)
        claim.release()
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        ids = generator(readings(mark, mark + 1))
        marks.guard(ids, claim)
        assert ids.decode(ids.next_id()).timestamp_ms == mark + 1

    def test_an_after_ms_given_wins_over_the_claims(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        mark = marks.wall_ms() - 100
        ids = generator(readings(mark - 5, mark + 1))
        marks.guard(ids, claim, after_ms=mark)
        assert ids.decode(ids.next_id()).timestamp_ms == mark + 1

    def test_the_claim_is_caught_up_with_first(self, tmp_path, monkeypatch):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        caught_up: list[tuple[int, str]] = []
        monkeypatch.setattr(marks, "catch_up", lambda *args: caught_up.append(args))
        marks.guard(generator(), claim, after_ms=123)
        assert caught_up == [(123, NODE)]
        monkeypatch.undo()
        with pytest.raises(ClockBackwardsError, match="behind the high-water mark"):
            marks.guard(generator(), claim, after_ms=marks.wall_ms() + 60_000)

    def test_a_cap_bounds_each_announcement_and_may_refuse(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        now = [marks.wall_ms()]
        lease_until = now[0] + 10

        def cap(at: int) -> int:
            if at > lease_until:
                raise LeaseError(f"lease ends at {lease_until}, clock {at}")
            return lease_until

        ids = generator(lambda: now[0])
        marks.guard(ids, claim, cap=cap)
        ids.next_id()
        assert mark_in(claim.path) == lease_until
        now[0] = lease_until + 1
        with pytest.raises(LeaseError):
            ids.next_id()
        assert mark_in(claim.path) == lease_until

    def test_an_announcement_that_fails_stops_the_ids(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        now = [marks.wall_ms()]
        ids = generator(lambda: now[0])
        marks.guard(ids, claim)
        last = ids.next_id()
        os.unlink(claim.path)
        squatter = os.open(claim.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(squatter, fcntl.LOCK_EX)
        try:
            now[0] += marks.MARK_WINDOW_MS + 1
            for _ in range(2):
                with pytest.raises(NodeInUseError):
                    ids.next_id()
        finally:
            os.close(squatter)
        # Within the window already announced, nothing stopped.
        now[0] -= 1
        assert ids.next_id() > last


class TestAcrossProcesses:
    @pytest.mark.slow
    def test_a_killed_holder_leaves_a_mark_over_every_id_at_most_a_window_ahead(
        self, start, tmp_path
    ):
        progress = tmp_path / "stamped"
        progress.write_bytes(b"0" * 20)
        holder = start()
        began = holder.run(
            claim_code(TWITTER, 0, 7) + "; ids = SnowflakeGenerator(machine_id=7); "
            "marks.guard(ids, c); out = marks.wall_ms()"
        )
        assert isinstance(began, int)
        # Stamps until killed, storing each ID's millisecond once it has it.
        holder.send(
            f"""
            fd = os.open({str(progress)!r}, os.O_WRONLY)
            while True:
                os.pwrite(fd, b"%020d" % ids.decode(ids.next_id()).timestamp_ms, 0)
                time.sleep(0.0005)
            """
        )
        deadline = time.monotonic() + 30
        while int(progress.read_bytes()) < began + marks.MARK_WINDOW_MS + 300:
            assert time.monotonic() < deadline, "the holder does not stamp"
            time.sleep(0.05)
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait(timeout=10)
        killed_at = marks.wall_ms()
        stamped = int(progress.read_bytes())
        after = hostclaim.claim_node(TWITTER, 0, 7, tmp_path).after_ms
        assert stamped <= after <= killed_at + marks.MARK_WINDOW_MS

    @pytest.mark.slow
    @pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime")
    def test_a_restart_after_the_clock_stepped_back_repeats_no_id(self, start, tmp_path):
        stamp = """
            {claim}
            began = marks.wall_ms()
            ids = SnowflakeGenerator(machine_id=7)
            marks.guard(ids, c)
            made = []
            end = time.monotonic() + {seconds}
            while time.monotonic() < end:
                made.append(ids.next_id())
                time.sleep(0.0003)
            c.release(ids.stop_new_milliseconds())
            Path({path!r}).write_text(" ".join(map(str, made)))
            out = began, c.after_ms
        """
        first = start()
        first.run(
            stamp.format(claim=claim_code(TWITTER, 0, 7), seconds=2.5, path=str(tmp_path / "first"))
        )
        first.close()
        before = [int(uid) for uid in (tmp_path / "first").read_text().split()]
        # The host's clock steps back 3 s, and the process starts again.
        second = start("faketime", "-f", "-3s")
        began, after = second.run(
            stamp.format(claim=claim_code(TWITTER, 0, 7), seconds=1, path=str(tmp_path / "second")),
            timeout=60,
        )
        again = [int(uid) for uid in (tmp_path / "second").read_text().split()]
        last_before = TWITTER.decode(max(before)).timestamp_ms
        # Its clock read times the first process had stamped; it waited past them.
        assert began < last_before == after
        assert len(before) > 1_000
        assert len(again) > 100
        assert not set(before) & set(again)
        assert min(again) > max(before)
