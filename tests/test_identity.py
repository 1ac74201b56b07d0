"""Processes of one host never share a node: they get disjoint IDs or a clear refusal."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from array import array
from pathlib import Path

import pytest
from django.test import override_settings

import django_flakeid
from django_flakeid import conf, hostclaim

ROOT = Path(__file__).resolve().parent.parent

# Configures Django (or not), waits for 'go', makes 200k IDs one by one, saves them, reports,
# and keeps its claim until told to exit, so that both processes really overlap.
WORKER = """
import json, os, sys
from array import array
mode, out = sys.argv[1], sys.argv[2]
if mode != "core":
    import django
    from django.conf import settings
    extra = {} if mode == "absent" else {"FLAKEID": json.loads(mode)}
    settings.configure(INSTALLED_APPS=["django_flakeid"], DATABASES={}, **extra)
    django.setup()
import django_flakeid
sys.stdin.readline()
try:
    ids = array("q", (django_flakeid.next_id() for _ in range(200_000)))
except django_flakeid.FlakeIDError as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}), flush=True)
else:
    with open(out, "wb") as handle:
        ids.tofile(handle)
    print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"""


def race(mode: str, tmp_path: Path) -> list[tuple[dict[str, str], array[int]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLAKEID_"))}
    env |= {"FLAKEID_LOCK_DIR": str(tmp_path / "locks"), "PYTHONPATH": str(ROOT)}
    outputs = [tmp_path / f"ids-{n}.bin" for n in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), mode, str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for out in outputs
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker, out in zip(workers, outputs, strict=True):
        assert worker.stdout is not None
        report = json.loads(worker.stdout.readline())
        ids: array[int] = array("q")
        if "pid" in report:
            with out.open("rb") as handle:
                ids.fromfile(handle, 200_000)
        results.append((report, ids))
    for worker in workers:
        worker.communicate("", timeout=60)
    return results


def assert_disjoint_or_refused(results: list[tuple[dict[str, str], array[int]]]) -> str:
    (first, first_ids), (second, second_ids) = results
    refused = [report for report in (first, second) if "error" in report]
    if not refused:
        assert len(set(first_ids)) == len(set(second_ids)) == 200_000
        assert not set(first_ids) & set(second_ids)
        return "disjoint"
    assert len(refused) == 1, refused
    winner = first if refused[0] is second else second
    assert refused[0]["error"] == "NodeInUseError"
    assert f"pid {winner['pid']}" in refused[0]["message"]
    return "refused"


@pytest.mark.slow
def test_fixed_node_in_two_processes_is_refused(tmp_path):
    results = race(json.dumps({"datacenter_id": 1, "machine_id": 7}), tmp_path)
    assert assert_disjoint_or_refused(results) == "refused"
    (message,) = [report["message"] for report, _ in results if "message" in report]
    assert "datacenter_id=1 machine_id=7" in message
    assert "'machine_id': 'auto' (one host) or 'lease' (many hosts)" in message


@pytest.mark.slow
def test_without_flakeid_two_processes_get_disjoint_ids(tmp_path):
    results = race("absent", tmp_path)
    assert assert_disjoint_or_refused(results) == "disjoint"
    machines = {
        django_flakeid.make_generator("twitter").decode(ids[0]).machine_id for _, ids in results
    }
    assert machines == {0, 1}


@pytest.mark.slow
def test_plain_python_default_in_two_processes_is_refused(tmp_path):
    assert assert_disjoint_or_refused(race("core", tmp_path)) == "refused"


def test_auto_picks_the_next_machine_when_one_is_held(settings):
    settings.FLAKEID = {"machine_id": "auto"}
    held = hostclaim.claim_node(conf.get_layout(), 0, 0)
    try:
        assert conf.get_generator().machine_id == 1
        assert isinstance(conf.get_running().claim, hostclaim.NodeClaim)
    finally:
        conf.clear_cache()
        held.release()


def test_clear_cache_releases_the_claim(settings):
    settings.FLAKEID = {"datacenter_id": 2, "machine_id": 3}
    claim = conf.get_running().claim
    assert claim is not None
    conf.clear_cache()
    assert claim.path not in hostclaim._held


@pytest.mark.usefixtures("lease_table")
def test_lease_is_taken_off_the_event_loop():
    async def first_id_in_async_view() -> tuple[int, int]:
        generator = conf.get_generator()
        return generator.next_id(), generator.machine_id

    with override_settings(FLAKEID={"machine_id": "lease", "datacenter_id": 5}):
        try:
            uid, machine = asyncio.run(first_id_in_async_view())
            running = conf.get_running()
            assert running.lease is not None
            assert running.lease.machine_id == machine
            assert conf.get_layout().decode(uid).datacenter_id == 5
        finally:
            conf.clear_cache()


@pytest.mark.usefixtures("lease_table")
def test_a_lease_taken_over_is_replaced_on_the_next_id():
    from django_flakeid.models import NodeLease

    with override_settings(FLAKEID={"machine_id": "lease", "datacenter_id": 7}):
        try:
            lost = conf.get_running().lease
            old = conf.get_generator()
            old.next_id()
            assert lost is not None
            NodeLease.objects.filter(pk=lost.row_id).update(holder="elsewhere:1:x")
            assert not lost.renew()
            time.sleep(0.002)  # the old generator may finish its millisecond, no later one
            with pytest.raises(django_flakeid.LeaseError, match="taken"):
                old.next_id()
            replacement = conf.get_running().lease
            assert replacement is not None
            assert replacement is not lost
            assert replacement.machine_id != lost.machine_id
            conf.get_generator().next_id()
        finally:
            conf.clear_cache()


# Forking while the lease's renewal thread runs is the very situation under test.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.usefixtures("lease_table")
def test_a_forked_child_leases_a_machine_of_its_own():
    with override_settings(FLAKEID={"machine_id": "lease", "datacenter_id": 8}):
        try:
            parent = conf.get_generator()
            before = parent.next_id()
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                signal.alarm(20)
                try:
                    child = conf.get_generator()
                    outcome = f"{child.machine_id} {child.next_id()}"
                except BaseException as error:
                    outcome = f"error {error!r}"
                os.write(write_end, outcome.encode())
                os._exit(0)
            os.close(write_end)
            os.waitpid(pid, 0)
            with os.fdopen(read_end) as pipe:
                machine, uid = pipe.read().split()
            assert int(machine) != parent.machine_id
            assert conf.get_layout().decode(int(uid)).machine_id == int(machine)
            assert parent.next_id() > before
        finally:
            conf.clear_cache()


def test_settings_changed_under_a_running_thread_stop_the_old_generator_first(settings):
    # A thread keeps drawing from the generator it was handed while the settings change
    # under it: the old generator stops before a new one takes the same node.
    settings.FLAKEID = {"datacenter_id": 3, "machine_id": 4}
    old = conf.get_generator()
    issued: list[int] = []
    stopped: list[BaseException] = []

    def keep_drawing() -> None:
        try:
            while True:
                issued.append(old.next_id())
        except django_flakeid.FlakeIDError as error:
            stopped.append(error)

    worker = threading.Thread(target=keep_drawing)
    worker.start()
    try:
        while len(issued) < 1000:
            time.sleep(0.001)
        settings.FLAKEID = {"datacenter_id": 3, "machine_id": 4, "lease_ttl": 40}
        new = conf.get_generator()
        fresh = new.next_ids(20_000)
    finally:
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert new is not old
    assert new.machine_id == old.machine_id == 4
    assert len(stopped) == 1
    assert "released" in str(stopped[0])
    assert not set(issued) & set(fresh)
    assert min(fresh) > max(issued)


# A fork in C runs none of Python's fork hooks: the child must notice by itself.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_in_c_builds_a_generator_of_its_own(settings):
    settings.FLAKEID = {"datacenter_id": 9, "machine_id": "auto"}
    parent = conf.get_generator()
    before = parent.next_ids(1000)
    libc = ctypes.CDLL(None, use_errno=True)
    read_end, write_end = os.pipe()
    pid = libc.fork()
    assert pid >= 0
    if pid == 0:  # pragma: no cover - runs in the child, which coverage does not follow
        signal.alarm(20)
        try:
            child = conf.get_generator()
            ids = django_flakeid.next_ids(1000)
            outcome = json.dumps({"machine": child.machine_id, "ids": ids})
        except BaseException as error:
            outcome = json.dumps({"error": repr(error)})
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read())
    os.waitpid(pid, 0)
    after = parent.next_ids(1000)
    assert "error" not in report, report
    assert report["machine"] != parent.machine_id
    assert not set(report["ids"]) & {*before, *after}
    assert {conf.get_layout().decode(uid).machine_id for uid in report["ids"]} == {
        report["machine"]
    }


@pytest.mark.usefixtures("lease_table")
def test_a_lease_whose_machine_is_held_on_the_host_is_given_back(settings):
    # Another process of this host has the node through another lease table (or a fixed
    # machine_id): the host claim refuses the leased node, and the lease is not kept.
    from django_flakeid.models import NodeLease

    settings.FLAKEID = {"datacenter_id": 11, "machine_id": "lease"}
    squatter = hostclaim.claim_node(conf.get_layout(), 11, 0)
    try:
        with pytest.raises(django_flakeid.NodeInUseError) as caught:
            conf.get_generator()
    finally:
        squatter.release()
    assert "lease_database" in str(caught.value)
    assert not NodeLease.objects.filter(datacenter_id=11).exclude(holder="").exists()


EXIT_CLEANLY = """
import json, sys
mode = sys.argv[1]
if mode != "core":
    import django
    from django.conf import settings
    settings.configure(
        INSTALLED_APPS=["django_flakeid"], DATABASES={}, FLAKEID={"machine_id": 5}
    )
    django.setup()
import django_flakeid
print(json.dumps(django_flakeid.next_ids(5000)), flush=True)
"""


@pytest.mark.parametrize(("mode", "layout"), [("django", (0, 5)), ("core", (0, 0))])
def test_a_clean_exit_lowers_the_mark_to_the_last_millisecond_stamped(tmp_path, mode, layout):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLAKEID_"))}
    env |= {"FLAKEID_LOCK_DIR": str(tmp_path / "locks"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_CLEANLY), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    ids = json.loads(done.stdout)
    preset = django_flakeid.PRESET_TWITTER if mode == "django" else django_flakeid.PRESET_MINIMAL
    generator_layout = django_flakeid.Layout(**preset)
    last_stamped = generator_layout.decode(max(ids)).timestamp_ms
    datacenter, machine = layout
    claim = hostclaim.claim_node(generator_layout, datacenter, machine, tmp_path / "locks")
    try:
        # Without the release at exit, the mark would be the one announced a second ahead.
        assert claim.after_ms == last_stamped
    finally:
        claim.release()
