from __future__ import annotations

import ctypes
import json
import math
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.utils import timezone

from django_flakeid import leases
from django_flakeid.errors import ClockBackwardsError, LeaseError, NodeInUseError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout
from django_flakeid.models import NodeLease

from .tcpproxy import Proxy

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("FLAKEID_TEST_DB", "sqlite")
FAKETIME = shutil.which("faketime")
# Every process started here, and every answer awaited, is bounded by this.
TIMEOUT_S = 30
TWITTER = Layout()
# Two machine IDs per datacenter: quickly all taken.
TINY = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=1, sequence_bits=21)
# Another layout whose IDs can equal twitter's.
OTHER = Layout(timestamp_bits=41, datacenter_bits=4, machine_bits=6, sequence_bits=12)
RENEW_FOREVER = leases.Lease._renew_forever
# More than the statements of any claim.
MAX_POINTS = 30

needs_server = pytest.mark.skipif(
    DATABASE == "sqlite", reason="other processes cannot reach the in-memory SQLite test database"
)

Acquire = Callable[..., leases.Lease]


class Clock:
    """Unix milliseconds that move only when slept on or set: the leases' view of time."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000
        self.slept_ms = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            step = max(1, math.ceil(seconds * 1000))
            self.now += step
            self.slept_ms += step


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(leases, "wall_ms", fake)
    monkeypatch.setattr(leases, "_sleep", fake.sleep)
    return fake


@pytest.fixture
def taken() -> Iterator[list[leases.Lease]]:
    held: list[leases.Lease] = []
    yield held
    for lease in held:
        lease.release()


@pytest.fixture
def acquire(clock: Clock, taken: list[leases.Lease], monkeypatch: pytest.MonkeyPatch) -> Acquire:
    """Leases on the fake clock, renewed only when a test calls ``renew()``."""
    monkeypatch.setattr(leases.Lease, "_renew_forever", lambda self: None)

    def take(layout: Layout = TWITTER, datacenter_id: int = 0, ttl: float = 5) -> leases.Lease:
        lease = leases.acquire(layout, datacenter_id, ttl_seconds=ttl)
        taken.append(lease)
        return lease

    return take


def generator_for(
    lease: leases.Lease, clock: Callable[[], int] | None = None
) -> SnowflakeGenerator:
    layout = lease.layout
    generator = SnowflakeGenerator(
        timestamp_bits=layout.timestamp_bits,
        datacenter_bits=layout.datacenter_bits,
        machine_bits=layout.machine_bits,
        sequence_bits=layout.sequence_bits,
        epoch_ms=layout.epoch_ms,
        datacenter_id=lease.datacenter_id,
        machine_id=lease.machine_id,
        clock=clock,
    )
    generator.limit_window(after_ms=lease.after_ms, until_ms=lease.until_ms, on_limit=lease.cap)
    return generator


def stored_mark(lease: leases.Lease) -> int:
    mark: int = NodeLease.objects.get(pk=lease.row_id).high_water_ms
    return mark


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def failing_database(*args: Any) -> Any:
    raise OperationalError("server closed the connection unexpectedly")


# -- claiming ------------------------------------------------------------------------------------


def test_each_claim_gets_the_lowest_free_machine(acquire):
    first, second = acquire(), acquire()
    assert (first.machine_id, second.machine_id) == (0, 1)
    held = NodeLease.objects.get(machine_id=0, datacenter_id=0, layout=leases.layout_key(TWITTER))
    assert held.holder == first.holder
    assert held.pid == first.pid == os.getpid()
    assert held.high_water_ms == first.until_ms
    assert NodeLease.objects.filter(layout=leases.layout_key(TWITTER)).count() == 32


def test_datacenters_have_their_own_machines(acquire):
    assert acquire(datacenter_id=3).machine_id == 0
    assert acquire(datacenter_id=4).machine_id == 0


def test_all_machines_taken_is_a_clear_error(acquire):
    acquire(TINY)
    acquire(TINY)
    with pytest.raises(NodeInUseError, match=r"all 2 machine IDs of datacenter 0 .*2 in use"):
        acquire(TINY)


def test_expiry_is_judged_by_the_database_clock(acquire, monkeypatch):
    """Two processes whose clocks are two hours apart still agree on who holds what."""
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() - timedelta(hours=1))
    behind = acquire(datacenter_id=5)
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=1))
    ahead = acquire(datacenter_id=5)
    assert (behind.machine_id, ahead.machine_id) == (0, 1)


class Interleaving:
    """Runs ``rival`` in another thread, so on another connection, at one point of a claim.

    The points are the moments before each statement the claim sends while it holds no lock:
    a statement outside a transaction, or the first of one. Waiting there for the rival cannot
    deadlock, and covers every order in which two claims can reach the database.
    """

    def __init__(self, at: int, rival: Callable[[], object]) -> None:
        self.at = at
        self.rival = rival
        self.points = 0
        self.outcome: object = None
        self._block: object = None

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        db = context["connection"]
        block = db.atomic_blocks[0] if db.in_atomic_block else None
        if block is None or block is not self._block:
            self._block = block
            if self.points == self.at:
                self.outcome = in_thread(self.rival)
            self.points += 1
        return execute(sql, params, many, context)


def in_thread(work: Callable[[], object]) -> object:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(TIMEOUT_S)
    assert outcome, "the rival claim did not finish"
    return outcome[0]


def claim_with_rival(
    mine: Callable[[], leases.Lease], at: int, rival: Callable[[], object]
) -> tuple[leases.Lease | Exception, Interleaving]:
    interleaving = Interleaving(at, rival)
    with connection.execute_wrapper(interleaving):
        try:
            outcome: leases.Lease | Exception = mine()
        except NodeInUseError as error:
            outcome = error
    return outcome, interleaving


def test_two_claims_at_once_never_get_the_same_machine(acquire, taken):
    for at in range(MAX_POINTS):
        datacenter = at + 1  # each round starts from a datacenter without rows

        def claim(datacenter: int = datacenter) -> leases.Lease:
            return leases.acquire(TWITTER, datacenter, ttl_seconds=5)

        mine, interleaving = claim_with_rival(claim, at, claim)
        assert isinstance(mine, leases.Lease)
        taken.append(mine)
        theirs = interleaving.outcome
        if theirs is None:  # the claim had fewer points: all were tried
            break
        assert isinstance(theirs, leases.Lease), at
        taken.append(theirs)
        assert mine.machine_id != theirs.machine_id, f"both got it, rival at point {at}"
        held = NodeLease.objects.filter(datacenter_id=datacenter).exclude(holder="")
        assert dict(held.values_list("machine_id", "holder")) == {
            mine.machine_id: mine.holder,
            theirs.machine_id: theirs.holder,
        }
    assert 4 <= at < MAX_POINTS - 1


def test_rows_replaced_under_a_claim_are_claimed_for_what_they_are(acquire, taken):
    """The table is emptied and filled again while a process claims: primary keys come back,
    some for other machine IDs (another layout's rows took the first ones)."""

    def refill() -> None:
        call_command("flush", interactive=False, verbosity=0)
        for layout in (TINY, TWITTER):
            NodeLease.objects.bulk_create(
                NodeLease(layout=leases.layout_key(layout), datacenter_id=0, machine_id=machine)
                for machine in range(layout.max_machine_id + 1)
            )

    def claim_twitter() -> leases.Lease:
        return leases.acquire(TWITTER, 0, ttl_seconds=5)

    for at in range(MAX_POINTS):
        acquire(TWITTER).release(0)  # the rows the claim lists, with their first keys
        mine, interleaving = claim_with_rival(claim_twitter, at, refill)
        assert isinstance(mine, leases.Lease), at
        taken.append(mine)
        row = NodeLease.objects.get(pk=mine.row_id)
        assert (row.layout, row.machine_id) == (leases.layout_key(TWITTER), mine.machine_id), at
        assert row.holder == mine.holder
        if interleaving.points <= at:  # the claim had fewer points: all were tried
            break
        call_command("flush", interactive=False, verbosity=0)
    assert 4 <= at < MAX_POINTS - 1


# -- marks ---------------------------------------------------------------------------------------


def test_a_released_machine_is_reused_above_what_was_stamped(acquire, clock):
    first = acquire()
    generator = generator_for(first, clock)
    ids = generator.next_ids(100)
    reached = generator.stop_new_milliseconds()
    assert reached == TWITTER.decode(ids[-1]).timestamp_ms
    first.release(reached)
    row = NodeLease.objects.get(pk=first.row_id)
    assert (row.holder, row.high_water_ms) == ("", reached)
    second = acquire()
    assert second.machine_id == first.machine_id
    assert second.after_ms == reached
    assert generator_for(second, clock).next_id() > ids[-1]


def test_a_successor_never_stamps_a_millisecond_its_predecessor_used(acquire, clock):
    first = acquire()
    generator = generator_for(first, clock)
    ids = generator.next_ids(10)
    reached = generator.stop_new_milliseconds()
    first.release(reached)
    second = acquire()
    # The successor's clock reads the predecessor's last millisecond once more, then moves on.
    readings = iter([reached])
    late = generator_for(second, lambda: next(readings, reached + 1))
    assert late.next_id() > max(ids)


def test_a_claimer_whose_clock_is_behind_waits_for_the_mark(acquire, clock):
    first = acquire(TINY)
    mark = clock.now + 4_000  # left by a holder whose clock ran 4 s ahead
    first.release(mark)
    second = acquire(TINY)
    assert (second.machine_id, second.after_ms) == (0, mark)
    assert clock.now > mark


def test_a_mark_far_ahead_blocks_only_its_machine(acquire, clock):
    first = acquire(TINY)
    first.release(clock.now + 60_000)  # left by a holder whose clock ran a minute ahead
    second = acquire(TINY)
    assert second.machine_id == 1
    assert NodeLease.objects.get(pk=first.row_id).holder == ""  # passed over, untouched
    with pytest.raises(
        ClockBackwardsError,
        match=r"1 of 2 are in use .* ahead of this host's clock: machine 0 \(60\.0 s ahead\)"
        r"\. .*check NTP",
    ):
        acquire(TINY)


def test_a_release_lowers_the_mark_to_what_was_reached_never_below_after(acquire, clock):
    lease = acquire()
    lease.release(lease.after_ms - 1_000)
    assert stored_mark(lease) == lease.after_ms


def test_a_release_without_what_was_reached_lowers_nothing(acquire, clock):
    lease = acquire()
    lease.release()
    row = NodeLease.objects.get(pk=lease.row_id)
    assert (row.holder, row.high_water_ms) == (lease.holder, lease.until_ms)  # it expires
    clock.now += 1_000
    assert not lease.renew()
    assert NodeLease.objects.get(pk=lease.row_id).expires_at == row.expires_at


def test_a_released_lease_caps_nothing_more(acquire):
    lease = acquire()
    assert lease.cap(lease.until_ms) == lease.until_ms
    with pytest.raises(LeaseError, match="has not been renewed"):
        lease.cap(lease.until_ms + 1)
    lease.release(lease.after_ms)
    with pytest.raises(LeaseError, match="was released"):
        lease.cap(lease.after_ms + 1)
    assert not lease.renew()


# -- renewal -------------------------------------------------------------------------------------


def test_renewal_stores_a_later_mark_that_the_generator_pulls(acquire, clock):
    lease = acquire(ttl=1)
    generator = generator_for(lease, clock)
    first = generator.next_id()
    clock.now = lease.until_ms + 1
    with pytest.raises(LeaseError, match="has not been renewed"):
        generator.next_id()
    assert lease.renew()
    assert lease.until_ms == clock.now + 1_000 == stored_mark(lease)
    assert generator.next_id() > first


def test_a_renewal_after_the_clock_stepped_back_keeps_the_mark(acquire, clock):
    lease = acquire(ttl=1)
    mark = lease.until_ms
    clock.now -= 3_000
    assert lease.renew()
    assert lease.until_ms == mark == stored_mark(lease)


def test_an_outage_stops_ids_at_the_stored_mark_and_they_resume_after_it(acquire, clock):
    lease = acquire(ttl=1)
    generator = generator_for(lease, clock)
    before = generator.next_id()
    mark = lease.until_ms
    clock.now += 500
    with connection.execute_wrapper(failing_database), pytest.raises(OperationalError):
        lease.renew()
    # Not stored, so not moved: the generator stamps up to the stored mark and no further.
    assert lease.until_ms == mark == stored_mark(lease)
    clock.now = mark
    generator.next_id()
    clock.now = mark + 1
    with pytest.raises(
        LeaseError, match=r"has not been renewed .*OperationalError: server closed the connection"
    ):
        generator.next_id()
    assert lease.renew()
    assert generator.next_id() > before


class RecordedStop(threading.Event):
    """A stop event that records each wait asked of it, and stops after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self.rounds = rounds

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return len(self.waits) > self.rounds


def test_renewals_come_three_times_a_ttl_retry_sooner_and_end_with_the_lease(acquire, monkeypatch):
    lease = acquire(ttl=3)
    stop = RecordedStop(rounds=10)
    outcomes: list[bool | Exception] = [True, OperationalError("gone away"), True, False]

    def renew() -> bool:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(lease, "_stop", stop)
    monkeypatch.setattr(lease, "renew", renew)
    RENEW_FOREVER(lease)
    assert stop.waits == [1.0, 1.0, 0.3, 1.0]
    assert not outcomes


def test_the_renewal_thread_keeps_the_lease_until_it_is_taken_over(taken):
    lease = leases.acquire(TWITTER, 0, ttl_seconds=0.3)
    taken.append(lease)
    lost = threading.Event()
    lease.on_lost = lost.set
    first_mark = lease.until_ms
    assert wait_until(lambda: lease.until_ms > first_mark)
    NodeLease.objects.filter(pk=lease.row_id).update(holder="elsewhere:1:x")
    assert lost.wait(5)
    assert lease.lost


def test_a_lease_taken_over_stops_at_once(acquire):
    lost: list[bool] = []
    lease = acquire()
    lease.on_lost = lambda: lost.append(lease.lost)
    NodeLease.objects.filter(pk=lease.row_id).update(holder="elsewhere:1:x", host="h2", pid=9)
    assert not lease.renew()
    assert lost == [True]
    with pytest.raises(LeaseError, match=r"taken over by another process \(host 'h2', pid 9\)"):
        lease.cap(lease.after_ms + 1)  # within its mark, yet refused
    lease.release(lease.until_ms)
    assert NodeLease.objects.get(pk=lease.row_id).holder == "elsewhere:1:x"
    assert not lease.renew()
    assert lost == [True]


def test_a_holder_whose_row_was_deleted_stops_at_once(acquire, clock):
    lease = acquire()
    generator = generator_for(lease, clock)
    lease.on_lost = generator.stop_new_milliseconds
    generator.next_id()
    call_command("flush", interactive=False, verbosity=0)
    assert not lease.renew()
    with pytest.raises(LeaseError, match=r"was deleted: its row is gone .*flush"):
        lease.cap(lease.after_ms + 1)
    clock.now += 1
    with pytest.raises(Exception, match="stopped"):
        generator.next_id()


def test_a_lease_lost_while_its_holder_waits_for_the_clock_is_refused(clock, monkeypatch):
    started: list[leases.Lease] = []

    def start_renewing(self: leases.Lease) -> None:
        started.append(self)  # no thread: renewals only when the test asks

    monkeypatch.setattr(leases.Lease, "_start_renewing", start_renewing)

    def sleep(seconds: float) -> None:
        (lease,) = started
        NodeLease.objects.filter(pk=lease.row_id).update(holder="elsewhere:1:x", host="h2", pid=9)
        assert not lease.renew()
        clock.sleep(seconds)

    monkeypatch.setattr(leases, "_sleep", sleep)
    # Without the marker (whether an earlier test flushed it or not) the holder must wait.
    NodeLease.objects.all().delete()
    with pytest.raises(LeaseError, match=r"taken over by another process .* while this process"):
        leases.acquire(TWITTER, 0, ttl_seconds=1)
    assert started


# -- emptied tables ------------------------------------------------------------------------------


def test_a_table_emptied_under_a_holder_is_used_only_above_its_mark(acquire, clock):
    holder = acquire(ttl=2)
    assert holder.renew()  # its mark is now one TTL ahead, the furthest it gets
    call_command("flush", interactive=False, verbosity=0)
    newcomer = acquire(ttl=2)  # at the same instant
    assert newcomer.machine_id == holder.machine_id
    assert newcomer.after_ms >= holder.until_ms
    # The holder stamps up to its mark until a renewal tells it; the newcomer only later.
    late = clock.now
    clock.now = holder.until_ms
    stamped = generator_for(holder, clock).next_ids(10)
    clock.now = late
    assert generator_for(newcomer, clock).next_id() > max(stamped)


def test_a_table_fresh_from_migrate_starts_at_once(acquire, clock):
    NodeLease.objects.get_or_create(**leases.TABLE_MARKER)
    started = clock.now
    first, second = acquire(ttl=2), acquire(ttl=2)
    assert (first.after_ms, second.after_ms) == (0, 0)
    assert clock.now == started


def test_in_an_emptied_table_a_machine_never_held_starts_one_ttl_after_its_claim(acquire, clock):
    NodeLease.objects.all().delete()  # what flush and TRUNCATE do: the marker goes too
    acquire(ttl=2)  # creates the rows, and waits
    claimed_at = clock.now
    NodeLease.objects.filter(**leases.TABLE_MARKER).delete()
    second = acquire(ttl=2)
    assert second.machine_id == 1
    assert second.after_ms == claimed_at + 2_000
    assert clock.now > second.after_ms
    # One TTL after the emptying was seen, every holder whose row vanished has stopped.
    assert NodeLease.objects.filter(**leases.TABLE_MARKER).exists()
    assert acquire(ttl=2).after_ms == 0


# -- layouts -------------------------------------------------------------------------------------


def test_a_live_lease_of_another_layout_refuses_a_new_layout(acquire):
    acquire(TWITTER, datacenter_id=2)
    with pytest.raises(
        NodeInUseError,
        match=rf"live leases of another layout \(layout {re.escape(leases.layout_key(TWITTER))}"
        rf" datacenter 2 machine 0 held by host .* pid {os.getpid()}\); .*Stop every process",
    ):
        acquire(OTHER)
    assert not NodeLease.objects.filter(layout=leases.layout_key(OTHER)).exclude(holder="")


def test_a_new_layout_starts_above_every_mark_of_the_old_one(acquire, clock):
    old = acquire(TWITTER, datacenter_id=3)
    mark = clock.now + 4_000
    old.release(mark)
    new = acquire(OTHER, ttl=1)
    assert new.after_ms >= mark


def test_a_new_layout_waits_for_no_old_mark_far_ahead(acquire, clock):
    old = acquire(TWITTER, datacenter_id=3)
    old.release(clock.now + 60_000)
    with pytest.raises(
        ClockBackwardsError,
        match=r"rows of another layout .* 60\.0 s ahead of this host's clock.*Check NTP",
    ):
        acquire(OTHER)
    assert not NodeLease.objects.filter(layout=leases.layout_key(OTHER)).exclude(holder="")


def test_two_layouts_claiming_at_once_never_both_run(acquire):
    def claim(layout: Layout, datacenter: int) -> Callable[[], leases.Lease]:
        return lambda: leases.acquire(layout, datacenter, ttl_seconds=5)

    for at in range(MAX_POINTS):
        mine, interleaving = claim_with_rival(claim(TWITTER, at), at, claim(OTHER, at))
        theirs = interleaving.outcome
        outcomes = [mine] if theirs is None else [mine, theirs]
        assert all(isinstance(o, (leases.Lease, NodeInUseError)) for o in outcomes), outcomes
        running = [lease for lease in outcomes if isinstance(lease, leases.Lease)]
        assert len(running) < 2, f"both layouts run, rival at point {at}"
        for lease in running:
            lease.release(lease.after_ms)
        if theirs is None:  # the claim had fewer points: all were tried
            break
    assert 4 <= at < MAX_POINTS - 1


# -- forks ---------------------------------------------------------------------------------------


def fork_with(how: str) -> int:
    if how == "os.fork":
        return os.fork()
    # A fork done in C runs none of Python's fork hooks. PyDLL keeps the GIL across the call,
    # as a C extension that forks does, so the child never waits for a GIL another thread had.
    return int(ctypes.PyDLL(None).fork())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("how", ["os.fork", "fork in C"])
def test_a_forked_child_gives_back_nothing_and_never_waits(acquire, how):
    lease = acquire()
    read_end, write_end = os.pipe()
    with lease._mutex:  # held, as by a renewal in flight when the process forks
        pid = fork_with(how)
        if pid == 0:  # pragma: no cover - the child
            answer = b"wrong"
            try:
                lease.release()
                lease.release(lease.until_ms)
                renewed = lease.renew()
                try:
                    lease.cap(lease.after_ms + 1)
                except LeaseError as error:
                    if not renewed and "inherited it through fork()" in str(error):
                        answer = b"ok"
            finally:
                os.write(write_end, answer)
                os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10)
        answer = os.read(read_end, 16) if ready else b"no answer: the child hangs"
    finally:
        os.close(read_end)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert answer == b"ok"
    row = NodeLease.objects.get(pk=lease.row_id)
    assert (row.holder, row.high_water_ms) == (lease.holder, lease.until_ms)


# -- real processes ------------------------------------------------------------------------------


def start(
    role: str, *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*(prefix or []), sys.executable, "-m", "tests.lease_process", role, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env or environment(),
    )


def environment(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLAKEID_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def tell(process: subprocess.Popen[str], line: str = "go") -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def answer(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], TIMEOUT_S)
    assert ready, "no answer"
    return process.stdout.readline().strip()


def finish(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        try:
            process.communicate("", timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the test
            process.kill()
            process.communicate()


def test_a_process_that_exits_lowers_its_mark_only_if_its_owner_says_how_far(tmp_path):
    """Without the last millisecond stamped, nothing may lower the mark: the row expires."""
    outcomes = {}
    for how in ("released", "dropped"):
        database = tmp_path / f"{how}.sqlite3"
        env = {
            **os.environ,
            "FLAKEID_TEST_DB": "sqlite",
            "FLAKEID_TEST_DB_NAME": str(database),
            "PYTHONPATH": str(ROOT),
        }
        process = start("leave", "0.3", how, env=env)
        tell(process)
        until, reached = map(int, answer(process).split())
        finish(process)
        assert process.returncode == 0
        with sqlite3.connect(database) as db:
            holder, mark = db.execute(
                "SELECT holder, high_water_ms FROM django_flakeid_nodelease WHERE machine_id = 0"
            ).fetchone()
        outcomes[how] = {"held": bool(holder), "mark": mark, "until": until, "reached": reached}
    released, dropped = outcomes["released"], outcomes["dropped"]
    assert not released["held"]
    assert released["mark"] == released["reached"] < released["until"]
    assert dropped["held"]
    assert dropped["mark"] >= dropped["until"]


@needs_server
@pytest.mark.slow
def test_eight_processes_racing_get_eight_machines():
    holders = [start("hold", "0", "1") for _ in range(8)]
    try:
        for holder in holders:  # released together, so the claims really race
            tell(holder)
        machines = [int(answer(holder).split()[0]) for holder in holders]
    finally:
        finish(*holders)
    assert sorted(machines) == list(range(8))
    assert not NodeLease.objects.exclude(holder="").exists()  # each gave its lease back


@needs_server
@pytest.mark.slow
def test_a_killed_holder_is_reclaimed_after_the_ttl_above_its_mark(acquire, clock):
    holder = start("hold", "0", "1")
    tell(holder)
    machine, until, top = map(int, answer(holder).split())
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=TIMEOUT_S)
    early = acquire()
    assert early.machine_id != machine  # still leased until it expires
    time.sleep(1.1)
    late = acquire()
    assert late.machine_id == machine
    assert late.after_ms >= until
    assert generator_for(late, clock).next_id() > top


@needs_server
@pytest.mark.slow
def test_a_holder_stopped_past_its_ttl_is_taken_over_and_stays_stopped():
    holder = start("resume", "0", "1")
    newcomer = None
    try:
        tell(holder)
        machine, until, top = map(int, answer(holder).split())
        holder.send_signal(signal.SIGSTOP)
        time.sleep(1.3)  # past its TTL: the database lets its machine ID go
        newcomer = leases.acquire(TWITTER, 0, ttl_seconds=5)
        assert newcomer.machine_id == machine
        assert newcomer.after_ms >= until
        assert generator_for(newcomer).next_id() > top
        holder.send_signal(signal.SIGCONT)
        tell(holder)
        assert answer(holder) == "error LeaseError"
    finally:
        holder.send_signal(signal.SIGCONT)
        finish(holder)
        if newcomer is not None:
            newcomer.release()


def _set_session_time_zone(offset: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET TIME ZONE INTERVAL '{offset}' HOUR TO MINUTE")
        else:
            cursor.execute("SET time_zone = %s", [offset])


@needs_server
@pytest.mark.parametrize("offset", ["+02:00", "-02:00"])
def test_a_session_time_zone_two_hours_off_repeats_no_id(offset):
    # MariaDB's NOW() follows the session's time zone and its DATETIME keeps none, so a session
    # two hours ahead sees every lease as expired: the marks still keep the holders apart.
    first = leases.acquire(TWITTER, 0, ttl_seconds=30)
    second = None
    try:
        old = generator_for(first)
        issued = old.next_ids(5000)
        _set_session_time_zone(offset)
        second = leases.acquire(TWITTER, 0, ttl_seconds=30)
        new = generator_for(second)
        fresh = new.next_ids(5000)
        if second.machine_id == first.machine_id:
            assert second.after_ms >= first.until_ms
            assert min(fresh) > max(issued)
        assert not set(issued) & set(fresh)
    finally:
        connection.close()  # a new session, in the time zone Django sets
        for lease in (first, second):
            if lease is not None:
                lease.release()


@needs_server
def test_a_real_outage_stops_ids_and_they_resume_after_it():
    settings_dict = connection.settings_dict
    proxy = Proxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    holder = start("outage", "0.6", env=environment(FLAKEID_TEST_DB_PORT=str(proxy.port)))

    def ask(order: str) -> str:
        tell(holder, order)
        return answer(holder)

    try:
        tell(holder)
        answer(holder)
        before = int(ask("id"))
        proxy.cut()
        # Once a renewal has failed, the holder's mark can no longer move.
        assert wait_until(lambda: ask("error") != "-")
        frozen_until = int(ask("until"))
        assert wait_until(lambda: wall_ms() > frozen_until + 2)
        refused = ask("id")
        assert refused.startswith("refused the lease on datacenter 0 machine ")
        assert "has not been renewed" in refused
        assert "Error" in refused
        # Whatever the holder stamped is covered by the stored mark.
        row = NodeLease.objects.get(machine_id=0, layout=leases.layout_key(TWITTER))
        assert row.high_water_ms >= frozen_until
        proxy.restore()
        assert wait_until(lambda: ask("id").isdigit(), timeout=10)
        assert int(ask("id")) > before
    finally:
        proxy.close()
        finish(holder)


@needs_server
@pytest.mark.slow
@pytest.mark.parametrize("empty", ["flush", "TRUNCATE"])
def test_a_table_emptied_under_a_live_holder_repeats_no_id(empty):
    """The holder's database goes away as the table is emptied: it cannot notice, and stamps
    up to its mark. A newcomer claims its machine ID at once, and must stamp only later."""
    settings_dict = connection.settings_dict
    proxy = Proxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    holder = start("stamp", "1.5", env=environment(FLAKEID_TEST_DB_PORT=str(proxy.port)))
    newcomer = start("stamp", "1.5")
    flusher = start("flush")
    try:
        tell(holder)
        machine, _, until = map(int, answer(holder).split())
        proxy.cut()
        if empty == "flush":
            tell(flusher)
            assert answer(flusher) == "flushed"
        else:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE TABLE {NodeLease._meta.db_table}")
        tell(newcomer)
        newcomer_machine, newcomer_after, _ = map(int, answer(newcomer).split())
        assert newcomer_machine == machine
        assert wait_until(lambda: wall_ms() > max(until, newcomer_after) + 300, timeout=10)
        tell(holder, "stop")
        tell(newcomer, "stop")
        old, new = json.loads(answer(holder)), json.loads(answer(newcomer))
    finally:
        proxy.close()
        finish(holder, newcomer, flusher)
    assert old["firsts"]
    assert new["firsts"]
    assert "has not been renewed" in old["refusal"]
    assert min(new["firsts"]) > max(old["firsts"])


@needs_server
@pytest.mark.slow
@pytest.mark.skipif(FAKETIME is None, reason="no faketime binary (Debian package faketime)")
def test_processes_with_clocks_hours_apart_agree_on_expiry():
    def shifted(seconds: int) -> list[str]:
        assert FAKETIME is not None
        return [FAKETIME, "-m", "--exclude-monotonic", "-f", f"{seconds:+d}s"]

    behind = start("claim", "9", "1", prefix=shifted(-3600))
    ahead = start("claim", "9", "1", prefix=shifted(3600))
    try:
        tell(behind)
        first = int(answer(behind).split()[0])
        tell(ahead)
        second = int(answer(ahead).split()[0])
    finally:
        finish(behind, ahead)
    assert (first, second) == (0, 1)


@pytest.mark.usefixtures("lease_table")
def test_an_expired_lease_of_another_layout_does_not_block_a_new_layout(acquire):
    acquire(TWITTER, datacenter_id=2)
    # Its process died: the row keeps its holder until someone takes it, and has expired.
    NodeLease.objects.filter(layout=leases.layout_key(TWITTER)).exclude(holder="").update(
        expires_at=timezone.now() - timedelta(hours=1)
    )
    assert acquire(OTHER, ttl=1).machine_id == 0
