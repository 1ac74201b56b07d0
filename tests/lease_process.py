"""A process holding a lease, for tests/test_leases.py: ``python -m tests.lease_process ROLE ...``.

The database comes from tests.settings and the FLAKEID_TEST_DB* variables. Each role waits
for a first line on stdin ("go") before it claims, so that tests can start several processes
and release them together; it answers on stdout, one line per answer.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from django_flakeid.errors import FlakeIDError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import Layout

if TYPE_CHECKING:
    from django_flakeid.leases import Lease


def _acquire(datacenter_id: int, ttl: str) -> tuple[Lease, SnowflakeGenerator]:
    # Imported once Django is set up: leases use a model.
    from django_flakeid import leases

    lease = leases.acquire(Layout(), datacenter_id, ttl_seconds=float(ttl))
    generator = SnowflakeGenerator(datacenter_id=datacenter_id, machine_id=lease.machine_id)
    generator.limit_window(after_ms=lease.after_ms, until_ms=lease.until_ms, on_limit=lease.cap)
    return lease, generator


def hold(datacenter_id: str, ttl: str) -> None:
    """Lease, make 2,000 IDs, say "machine until top"; at end of input, release and exit."""
    sys.stdin.readline()
    lease, generator = _acquire(int(datacenter_id), ttl)
    top = max(generator.next_ids(2000))
    print(lease.machine_id, lease.until_ms, top, flush=True)
    sys.stdin.read()
    lease.release(generator.stop_new_milliseconds())


def _sleep_on_event(seconds: float) -> None:
    threading.Event().wait(seconds)


def claim(datacenter_id: str, ttl: str) -> None:
    """Lease and say which machine ID; at end of input, exit (the lease expires)."""
    from django_flakeid import leases

    if "FAKETIME" in os.environ:
        # libfaketime 0.9.10 with a real monotonic clock fails time.sleep() with EINVAL, and
        # with a faked one never ends Event.wait(): keep the first, sleep with the second.
        leases._sleep = _sleep_on_event
    sys.stdin.readline()
    lease = leases.acquire(Layout(), int(datacenter_id), ttl_seconds=float(ttl))
    print(lease.machine_id, flush=True)
    sys.stdin.read()


def stamp(ttl: str) -> None:
    """Lease, say "machine after until", then stamp IDs without pause until the next line.

    Answers with the first ID of every millisecond it stamped (two processes of one node
    share a millisecond exactly when they share that ID) and its last refusal.
    """
    sys.stdin.readline()
    lease, generator = _acquire(0, ttl)
    print(lease.machine_id, lease.after_ms, lease.until_ms, flush=True)
    done = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        done.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    shift = generator.layout.timestamp_shift
    firsts: list[int] = []
    refusal = None
    last = -1
    while not done.is_set():
        try:
            uid = generator.next_id()
        except FlakeIDError as error:
            refusal = str(error)
            done.wait(0.005)
            continue
        if uid >> shift != last:
            firsts.append(uid)
            last = uid >> shift
    print(json.dumps({"firsts": firsts, "refusal": refusal, "lost": lease.lost}), flush=True)


def flush() -> None:
    """At the first line, empty every table as ``manage.py flush`` does; say "flushed"."""
    from django.core.management import call_command

    sys.stdin.readline()
    call_command("flush", interactive=False, verbosity=0)
    print("flushed", flush=True)


def outage(ttl: str) -> None:
    """Lease and answer orders: "id" (an ID or "refused ..."), "until", "error"."""
    sys.stdin.readline()
    lease, generator = _acquire(0, ttl)
    print(lease.until_ms, flush=True)
    for order in sys.stdin:
        if order.strip() == "until":
            answer: object = lease.until_ms
        elif order.strip() == "error":
            answer = lease.last_error or "-"
        else:
            try:
                answer = generator.next_id()
            except FlakeIDError as error:
                answer = f"refused {error}"
        # Database errors span lines; an answer takes one.
        print(" ".join(str(answer).split()), flush=True)


def leave(ttl: str, how: str) -> None:
    """In a fresh SQLite file: lease, make IDs, say "until reached", exit without being asked.

    ``how`` is "released" (its owner gives the lease back at exit with what it reached) or
    "dropped" (nobody does).
    """
    from django.db import connection

    from django_flakeid.models import NodeLease

    with connection.schema_editor() as editor:
        editor.create_model(NodeLease)
    sys.stdin.readline()
    lease, generator = _acquire(0, ttl)
    top = max(generator.next_ids(100))
    if how == "released":
        atexit.register(lambda: lease.release(generator.stop_new_milliseconds()))
    print(lease.until_ms, generator.layout.decode(top).timestamp_ms, flush=True)


def resume(datacenter_id: str, ttl: str) -> None:
    """Lease, make 2,000 IDs, say "machine until top"; at the next line, try 100 more and say
    "ids LOW HIGH" or "error CLASS"."""
    sys.stdin.readline()
    lease, generator = _acquire(int(datacenter_id), ttl)
    top = max(generator.next_ids(2000))
    print(lease.machine_id, lease.until_ms, top, flush=True)
    sys.stdin.readline()
    try:
        more = generator.next_ids(100)
    except FlakeIDError as error:
        print("error", type(error).__name__, flush=True)
    else:
        print("ids", min(more), max(more), flush=True)
    sys.stdin.read()


ROLES: dict[str, Callable[..., None]] = {
    "hold": hold,
    "resume": resume,
    "claim": claim,
    "stamp": stamp,
    "flush": flush,
    "outage": outage,
    "leave": leave,
}

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    ROLES[sys.argv[1]](*sys.argv[2:])
