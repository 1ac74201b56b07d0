from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_flakeid import hostclaim
from django_flakeid.errors import ConfigurationError, NodeInUseError
from django_flakeid.layout import Layout

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="node claims use POSIX flock")

TWITTER = Layout()
SMALL = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=2, sequence_bits=20)


@pytest.fixture(autouse=True)
def _release_claims():
    yield
    for claim in list(hostclaim._held.values()):
        claim.release()


def run_holder(lock_dir: Path, code: str) -> subprocess.Popen[str]:
    """Start a process that runs ``code`` (which claims), prints 'ready', then waits for stdin."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from django_flakeid import hostclaim
        from django_flakeid.layout import Layout
        lock_dir = Path({str(lock_dir)!r})
        {code}
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.communicate("", timeout=10)


def test_a_node_is_claimed_once_within_a_process_too(tmp_path):
    first = hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
    assert first.path.read_text().startswith(f"pid {os.getpid()} ")
    with pytest.raises(NodeInUseError, match=f"pid {os.getpid()} "):
        hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
    assert hostclaim.claim_free_machine(TWITTER, 1, tmp_path).machine_id == 0
    first.release()
    assert hostclaim.claim_node(TWITTER, 1, 2, tmp_path).machine_id == 2


def test_another_process_cannot_claim_a_held_node(tmp_path):
    holder = run_holder(tmp_path, "hostclaim.claim_node(Layout(), 1, 2, lock_dir)")
    try:
        with pytest.raises(NodeInUseError) as caught:
            hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
        assert f"pid {holder.pid}" in str(caught.value)
        assert "datacenter_id=1 machine_id=2" in str(caught.value)
        # Other nodes, and the same node of another layout, stay free.
        assert hostclaim.claim_node(TWITTER, 1, 3, tmp_path).machine_id == 3
        assert hostclaim.claim_node(SMALL, 0, 2, tmp_path).machine_id == 2
    finally:
        stop(holder)
    assert hostclaim.claim_node(TWITTER, 1, 2, tmp_path).machine_id == 2


def test_a_killed_holder_frees_its_node(tmp_path):
    holder = run_holder(tmp_path, "hostclaim.claim_node(Layout(), 0, 5, lock_dir)")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert hostclaim.claim_node(TWITTER, 0, 5, tmp_path).machine_id == 5


def test_free_machines_are_handed_out_once_each(tmp_path):
    holders = [
        run_holder(
            tmp_path,
            "hostclaim.claim_free_machine(Layout(41, 0, 2, 20), 0, lock_dir)",
        )
        for _ in range(3)
    ]
    try:
        # Three holders took three distinct machines, so only the last one is left.
        assert hostclaim.claim_free_machine(SMALL, 0, tmp_path).machine_id == 3
        hostclaim._held.clear()  # forget our claim without closing it: the lock stays held
        with pytest.raises(NodeInUseError, match="all 4 machine IDs of datacenter 0"):
            hostclaim.claim_free_machine(SMALL, 0, tmp_path)
    finally:
        for holder in holders:
            stop(holder)
    assert hostclaim.claim_free_machine(SMALL, 0, tmp_path).machine_id == 0


def test_released_claim_can_be_taken_by_another_process(tmp_path):
    claim = hostclaim.claim_node(TWITTER, 0, 9, tmp_path)
    claim.release()
    holder = run_holder(tmp_path, "hostclaim.claim_node(Layout(), 0, 9, lock_dir)")
    try:
        with pytest.raises(NodeInUseError):
            hostclaim.claim_node(TWITTER, 0, 9, tmp_path)
    finally:
        stop(holder)


def test_forked_child_does_not_inherit_claims(tmp_path):
    hostclaim.claim_node(TWITTER, 0, 1, tmp_path)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        outcome = "claimed"
        try:
            hostclaim.claim_node(TWITTER, 0, 1, tmp_path)
        except NodeInUseError:
            outcome = "refused"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_end, 100) == b"refused"
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    # The child's exit closed its inherited descriptor; the parent's claim must still hold.
    holder_check = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from django_flakeid import hostclaim; "
            "from django_flakeid.layout import Layout; "
            f"print(hostclaim.try_claim(Layout(), 0, 1, Path({str(tmp_path)!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert holder_check.stdout.strip() == "None"


def test_lock_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(hostclaim.LOCK_DIR_ENV, str(tmp_path / "locks"))
    claim = hostclaim.claim_node(TWITTER, 0, 0)
    assert claim.path.parent == tmp_path / "locks"


def test_default_lock_dir_is_in_the_temporary_folder(monkeypatch):
    monkeypatch.delenv(hostclaim.LOCK_DIR_ENV, raising=False)
    assert hostclaim.default_lock_dir().name == "django-flakeid"


def test_unusable_lock_dir_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="FLAKEID_LOCK_DIR"):
        hostclaim.claim_node(TWITTER, 0, 0, blocker / "locks")


def test_held_on_host_lists_live_holders_only(tmp_path):
    holder = run_holder(tmp_path, "hostclaim.claim_node(Layout(41, 0, 2, 20), 0, 0, lock_dir)")
    try:
        mine = hostclaim.claim_node(SMALL, 0, 2, tmp_path)
        gone = run_holder(tmp_path, "hostclaim.claim_node(Layout(41, 0, 2, 20), 0, 1, lock_dir)")
        stop(gone)  # machine 1's lock file stays behind, unlocked
        hostclaim.claim_node(SMALL, 0, 3, tmp_path).release()
        listed = dict(hostclaim.held_on_host(SMALL, 0, tmp_path))
    finally:
        stop(holder)
    assert set(listed) == {0, 2}
    assert listed[0].startswith(f"pid {holder.pid} ")
    assert listed[2] == f"pid {os.getpid()} (this process)"
    assert mine.machine_id == 2
