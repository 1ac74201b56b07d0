from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from django_flakeid import leases
from django_flakeid.errors import LeaseError, NodeInUseError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout
from django_flakeid.models import NodeLease

from .tcpproxy import Proxy

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
TWITTER = Layout()
needs_server = pytest.mark.skipif(
    os.environ.get("FLAKEID_TEST_DB", "sqlite") == "sqlite",
    reason="other processes cannot reach the in-memory SQLite test database",
)

Acquire = Callable[..., leases.Lease]


@pytest.fixture
def acquire() -> Iterator[Acquire]:
    taken: list[leases.Lease] = []

    def take(layout: Layout = TWITTER, datacenter_id: int = 0, ttl: float = 30) -> leases.Lease:
        lease = leases.acquire(layout, datacenter_id, ttl_seconds=ttl)
        taken.append(lease)
        return lease

    yield take
    for lease in taken:
        lease.release()


def generator_for(lease: leases.Lease) -> SnowflakeGenerator:
    generator = SnowflakeGenerator(datacenter_id=lease.datacenter_id, machine_id=lease.machine_id)
    lease.attach(generator)
    return generator


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_each_claim_gets_the_lowest_free_machine(acquire):
    first, second = acquire(), acquire()
    assert (first.machine_id, second.machine_id) == (0, 1)
    held = NodeLease.objects.get(machine_id=0, datacenter_id=0)
    assert held.holder == first.holder
    assert held.pid == os.getpid()
    assert held.high_water_ms == first.until_ms
    assert NodeLease.objects.filter(layout=leases.layout_key(TWITTER)).count() == 32


def test_datacenters_have_their_own_machines(acquire):
    assert acquire(datacenter_id=3).machine_id == 0
    assert acquire(datacenter_id=4).machine_id == 0


def test_a_released_machine_is_reused_above_what_was_stamped(acquire):
    first = acquire()
    generator = generator_for(first)
    ids = generator.next_ids(5000)
    first.release()
    reached = TWITTER.decode(ids[-1]).timestamp_ms
    assert NodeLease.objects.get(pk=first.row_id).high_water_ms == reached
    second = acquire()
    assert second.machine_id == first.machine_id
    assert second.after_ms == reached
    assert generator_for(second).next_id() > ids[-1]


def test_released_generator_stops_at_the_next_millisecond(acquire):
    lease = acquire()
    generator = generator_for(lease)
    last = TWITTER.decode(generator.next_id()).timestamp_ms
    lease.release()
    assert wait_until(lambda: time.time_ns() // 1_000_000 > last)
    with pytest.raises(LeaseError, match="released"):
        generator.next_id()


def test_all_machines_taken_is_a_clear_error(acquire):
    tiny = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=1, sequence_bits=21)
    acquire(tiny)
    acquire(tiny)
    with pytest.raises(NodeInUseError, match=r"all 2 machine IDs of datacenter 0 .*2 in use"):
        acquire(tiny)


def test_renewal_moves_the_mark_forward(acquire):
    lease = acquire(ttl=5)
    generator = generator_for(lease)
    before = lease.until_ms
    time.sleep(0.01)
    assert lease.renew()
    assert lease.until_ms > before
    assert NodeLease.objects.get(pk=lease.row_id).high_water_ms == lease.until_ms
    assert generator._limit_ms == lease.until_ms


def test_an_outage_stops_ids_and_they_resume_after_it(acquire, monkeypatch):
    outage = threading.Event()
    renew = leases.Lease._renew

    def flaky(self: leases.Lease) -> bool:
        if outage.is_set():
            raise OperationalError("server closed the connection unexpectedly")
        return renew(self)

    monkeypatch.setattr(leases.Lease, "_renew", flaky)
    lease = acquire(ttl=0.6)
    generator = generator_for(lease)
    before = generator.next_id()
    outage.set()
    frozen_until = lease.until_ms
    assert wait_until(lambda: time.time_ns() // 1_000_000 > frozen_until + 2)
    with pytest.raises(LeaseError, match=r"has not been renewed .*OperationalError"):
        generator.next_id()
    # Nothing past the stored mark was ever handed out.
    assert NodeLease.objects.get(pk=lease.row_id).high_water_ms == frozen_until
    outage.clear()
    assert wait_until(lambda: lease.until_ms > frozen_until)
    assert generator.next_id() > before


def test_a_lease_taken_over_is_reported_lost(acquire):
    lost = threading.Event()
    lease = acquire(ttl=0.3)
    lease.on_lost = lost.set
    NodeLease.objects.filter(pk=lease.row_id).update(holder="elsewhere:1:x")
    assert lost.wait(5)
    assert lease.lost
    assert "taken over" in str(lease.limit_error(0))


def test_expired_lease_is_taken_over_above_its_mark(acquire):
    old = acquire(ttl=0.3)
    old._stop.set()  # a holder that stopped renewing without releasing: it simply expires
    old_ids = generator_for(old).next_ids(100)
    new = None
    deadline = time.monotonic() + 5
    while new is None or new.machine_id != old.machine_id:
        assert time.monotonic() < deadline, "the expired machine ID was never reclaimed"
        if new is not None:
            new.release()
        time.sleep(0.05)
        new = leases.acquire(TWITTER, 0, ttl_seconds=30)
    try:
        assert new.after_ms == old.until_ms
        assert generator_for(new).next_id() > max(old_ids)
    finally:
        new.release()


HOLDER = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from django_flakeid import leases
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout
sys.stdin.readline()
lease = leases.acquire(Layout(), 0, ttl_seconds=float(sys.argv[1]))
generator = SnowflakeGenerator(machine_id=lease.machine_id)
lease.attach(generator)
print(lease.machine_id, lease.until_ms, max(generator.next_ids(2000)), flush=True)
sys.stdin.read()
"""


def start_holders(count: int, ttl: float) -> list[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "FLAKEID_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "PYTHONPATH": str(ROOT),
    }
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLDER), str(ttl)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for _ in range(count)
    ]
    # Released together, so the claims really race.
    for holder in holders:
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
    return holders


def report(holder: subprocess.Popen[str]) -> tuple[int, int, int]:
    assert holder.stdout is not None
    machine, until, top = holder.stdout.readline().split()
    return int(machine), int(until), int(top)


@needs_server
def test_eight_processes_racing_get_eight_machines():
    holders = start_holders(8, ttl=30)
    try:
        machines = [report(holder)[0] for holder in holders]
    finally:
        for holder in holders:
            holder.communicate("", timeout=30)
    assert sorted(machines) == list(range(8))
    assert not NodeLease.objects.exclude(holder="").exists()  # each released at exit


@needs_server
def test_a_killed_holder_is_reclaimed_after_the_ttl_above_its_mark(acquire):
    (holder,) = start_holders(1, ttl=1.0)
    machine, until, top = report(holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert NodeLease.objects.get(machine_id=machine, layout=leases.layout_key(TWITTER)).holder
    early = acquire()
    assert early.machine_id != machine  # still leased until it expires
    time.sleep(1.1)
    late = acquire()
    assert late.machine_id == machine
    assert late.after_ms >= until
    assert generator_for(late).next_id() > top


OUTAGE_HOLDER = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()
from django_flakeid import leases
from django_flakeid.errors import FlakeIDError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout
lease = leases.acquire(Layout(), 0, ttl_seconds=0.6)
generator = SnowflakeGenerator(machine_id=lease.machine_id)
lease.attach(generator)
print(lease.until_ms, flush=True)
for command in sys.stdin:
    if command.strip() == "until":
        print(lease.until_ms, flush=True)
        continue
    try:
        print(generator.next_id(), flush=True)
    except FlakeIDError as error:
        print("refused", error, flush=True)
"""


@needs_server
def test_a_real_outage_stops_ids_and_they_resume_after_it():
    settings_dict = connection.settings_dict
    proxy = Proxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    env = {
        **os.environ,
        "FLAKEID_TEST_DB_NAME": str(settings_dict["NAME"]),
        "FLAKEID_TEST_DB_PORT": str(proxy.port),
        "PYTHONPATH": str(ROOT),
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OUTAGE_HOLDER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert holder.stdin is not None
    assert holder.stdout is not None

    def ask(command: str) -> str:
        holder.stdin.write(command + "\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        return holder.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        holder.stdout.readline()
        before = int(ask("id"))
        proxy.cut()
        frozen_until = int(ask("until"))
        # The holder stamps up to its last stored mark, then refuses.
        assert wait_until(lambda: time.time_ns() // 1_000_000 > frozen_until + 2)
        refused = ask("id")
        assert refused.startswith("refused the lease on datacenter 0 machine ")
        assert "has not been renewed" in refused
        assert "Error" in refused
        assert (
            NodeLease.objects.get(machine_id=0, layout=leases.layout_key(TWITTER)).high_water_ms
            <= frozen_until
        )
        proxy.restore()
        assert wait_until(lambda: ask("id").isdigit(), timeout=10)
        assert int(ask("id")) > before
    finally:
        proxy.close()
        holder.communicate("", timeout=30)
