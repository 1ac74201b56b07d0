from __future__ import annotations

import ast
import errno
import fcntl
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from django_flakeid import hostclaim, lockdir, lockfile
from django_flakeid.errors import ConfigurationError, FlakeIDError, NodeInUseError
from django_flakeid.layout import Layout
from tests.namespaces import private_tmp

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="claims across namespaces are Linux-only"
)

ROOT = Path(__file__).resolve().parent.parent
TWITTER = Layout()
SMALL = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=2, sequence_bits=20)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare, as root"
)
PRIVATE_TMP = tuple(private_tmp(dev_shm=True))
OWN_NETWORK = ("unshare", "--net")

# Runs each line it reads (a Python literal string of code) and answers "ok <repr(out)>" or
# "error <type>: <message>". Forked children keep serving on the same pipes.
SERVE = textwrap.dedent(
    """
    import ast, os, sys, time
    from ctypes import CDLL
    from pathlib import Path
    from django_flakeid import hostclaim, lockdir, marks
    from django_flakeid.errors import *
    from django_flakeid.generator import SnowflakeGenerator
    from django_flakeid.layout import Layout
    space = dict(globals())
    print("ready", os.getpid(), flush=True)
    for line in sys.stdin:
        space["out"] = None
        try:
            exec(ast.literal_eval(line), space)
        except Exception as exc:
            reply = f"error {type(exc).__name__}: {exc}".replace("\\n", " ")
        else:
            reply = f"ok {space['out']!r}"
        sys.stdout.write(reply + "\\n")
        sys.stdout.flush()
    """
)


class Process:
    """A Python process of its own that runs the code it is sent, for claims across processes."""

    def __init__(
        self,
        lock_dir: Path | None,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        user: int | None = None,
    ) -> None:
        environment = {**os.environ, **(env or {})}
        environment.pop(hostclaim.LOCK_DIR_ENV, None)
        if lock_dir is not None:
            environment[hostclaim.LOCK_DIR_ENV] = str(lock_dir)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            cwd=ROOT,
            user=user,
            bufsize=0,
        )
        self._buffer = b""
        self.children: list[int] = []
        first = self.line()
        assert first.startswith("ready "), first
        self.pid = int(first.split()[1])

    def line(self, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            assert ready, f"no answer within {timeout} s"
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, "the process ended without answering"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def send(self, code: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(repr(textwrap.dedent(code)).encode() + b"\n")

    def ask(self, code: str, timeout: float = 30) -> str:
        """Run ``code``; its answer: ``ok <repr of out>`` or ``error <type>: <message>``."""
        self.send(code)
        return self.line(timeout)

    def run(self, code: str, timeout: float = 30) -> object:
        """Run ``code`` and return the value it left in ``out``; fail on an exception."""
        answer = self.ask(code, timeout)
        assert answer.startswith("ok "), answer
        return ast.literal_eval(answer[3:])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for child in self.children:
                stop_pid(child)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_pid(pid: int) -> None:
    """Wait for a process a test forked (not our child) to end, killing it after 10 s."""
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


@pytest.fixture
def start(processes: list[Process], tmp_path: Path):
    """Start a process sharing the test's lock folder (unless told another)."""

    def start(lock_dir: Path | None = tmp_path, **options: object) -> Process:
        process = Process(lock_dir, **options)  # type: ignore[arg-type]
        processes.append(process)
        return process

    return start


@pytest.fixture(autouse=True)
def _release_claims() -> Iterator[None]:
    yield
    for claim in list(hostclaim._held.values()):
        claim.release()


def claim_code(layout: Layout, datacenter_id: int, machine_id: int, name: str = "c") -> str:
    widths = (
        layout.timestamp_bits,
        layout.datacenter_bits,
        layout.machine_bits,
        layout.sequence_bits,
        layout.epoch_ms,
    )
    return f"{name} = hostclaim.claim_node(Layout{widths}, {datacenter_id}, {machine_id})"


def file_lock_is_held(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def command_line() -> str:
    """How a served process appears in /proc: its command line on one line."""
    return " ".join(f"{sys.executable} -c {SERVE}".split())[:200]


class TestOneHolderPerNode:
    def test_a_node_is_claimed_once_within_a_process_too(self, tmp_path):
        first = hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
        assert first.path.read_text().split("\n")[1].startswith(f"pid {os.getpid()} (")
        with pytest.raises(NodeInUseError, match=f"in pid {os.getpid()} \\(this process\\)"):
            hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
        assert hostclaim.claim_free_machine(TWITTER, 1, tmp_path).machine_id == 0
        first.release()
        assert hostclaim.claim_node(TWITTER, 1, 2, tmp_path).machine_id == 2

    def test_another_process_is_refused_with_its_holder_named_by_the_kernel(self, tmp_path, start):
        holder = start()
        path = Path(holder.run(claim_code(TWITTER, 1, 2) + "; out = str(c.path)"))
        # What the file says is only a fallback: the kernel tells who listens on the socket.
        path.write_text("00000000000000000000\npid 1 (forged)\n")
        with pytest.raises(NodeInUseError) as caught:
            hostclaim.claim_node(TWITTER, 1, 2, tmp_path, fix="Do this.")
        assert str(caught.value) == (
            f"datacenter_id=1 machine_id=2 is already generating IDs on this host in pid "
            f"{holder.pid} ({command_line()}); two processes with one node identity would "
            "make the same IDs. Do this."
        )
        assert hostclaim.try_claim(TWITTER, 1, 2, tmp_path) is None
        assert hostclaim.claim_node(TWITTER, 1, 3, tmp_path).machine_id == 3
        holder.close()
        assert hostclaim.claim_node(TWITTER, 1, 2, tmp_path).machine_id == 2

    def test_the_holder_stays_named_however_often_it_is_asked(self, tmp_path, start):
        holder = start()
        holder.run(claim_code(TWITTER, 1, 2))
        for until in range(1, 20):
            with pytest.raises(NodeInUseError, match=f"in pid {holder.pid} \\({sys.executable} "):
                hostclaim.claim_node(TWITTER, 1, 2, tmp_path)
            # Each announcement (one a second while IDs are made) lets the askers' calls go.
            holder.run(f"c.announce({until})")

    def test_a_probers_shared_lock_is_not_taken_for_a_holder(self, tmp_path, monkeypatch):
        path = tmp_path / f"epoch{TWITTER.epoch_ms}-bits41-5-5-12-dc0-m0.lock"
        path.write_text("")
        probe = os.open(path, os.O_RDONLY)
        fcntl.flock(probe, fcntl.LOCK_SH)
        probes = [probe]
        # held_on_host, or a claimer checking other layouts, lets go a moment later.
        monkeypatch.setattr(time, "sleep", lambda seconds: os.close(probes.pop()))
        assert hostclaim.try_claim(TWITTER, 0, 0, tmp_path) is not None
        assert probes == []

    def test_a_killed_holder_frees_its_node(self, tmp_path, start):
        holder = start()
        holder.run(claim_code(TWITTER, 0, 5))
        holder.proc.send_signal(signal.SIGKILL)
        holder.proc.wait(timeout=10)
        assert hostclaim.claim_node(TWITTER, 0, 5, tmp_path).machine_id == 5

    def test_free_machines_are_handed_out_once_each(self, tmp_path, start):
        holders = [start() for _ in range(3)]
        for holder in holders:
            holder.run("c = hostclaim.claim_free_machine(Layout(41, 0, 2, 20), 0)")
        # Three holders took three distinct machines, so only the last one is left.
        mine = hostclaim.claim_free_machine(SMALL, 0, tmp_path)
        assert mine.machine_id == 3
        with pytest.raises(NodeInUseError, match="all 4 machine IDs of datacenter 0"):
            hostclaim.claim_free_machine(SMALL, 0, tmp_path)
        mine.release()
        holders[0].close()
        assert hostclaim.claim_free_machine(SMALL, 0, tmp_path).machine_id == 0

    def test_released_claim_can_be_taken_by_another_process(self, tmp_path, start):
        hostclaim.claim_node(TWITTER, 0, 9, tmp_path).release()
        start().run(claim_code(TWITTER, 0, 9))
        with pytest.raises(NodeInUseError):
            hostclaim.claim_node(TWITTER, 0, 9, tmp_path)

    @needs_unshare
    def test_the_lock_file_alone_keeps_out_another_network_namespace(self, tmp_path, start):
        # Abstract sockets are per network namespace; processes that share the folder from
        # another one (containers with a shared volume) meet at the lock file.
        isolated = start(prefix=OWN_NETWORK)
        isolated.run(claim_code(TWITTER, 0, 7))
        with pytest.raises(NodeInUseError, match=f"in pid {isolated.pid} \\(-c\\);"):
            hostclaim.claim_node(TWITTER, 0, 7, tmp_path)
        hostclaim.claim_node(TWITTER, 0, 8, tmp_path)
        assert isolated.ask(claim_code(TWITTER, 0, 8)).startswith("error NodeInUseError: ")

    def test_lock_dir_from_environment(self, monkeypatch, tmp_path):
        monkeypatch.setenv(hostclaim.LOCK_DIR_ENV, str(tmp_path / "locks"))
        claim = hostclaim.claim_node(TWITTER, 0, 0)
        assert claim.path.parent == tmp_path / "locks"


class TestEveryProcessOfTheHostMeets:
    def test_processes_with_different_tmpdir_meet_in_the_default_folder(self, tmp_path, start):
        first = start(None, env={"TMPDIR": str(tmp_path)})
        second = start(None, env={"TMPDIR": "/var/tmp"})
        assert second.run("import tempfile; out = tempfile.gettempdir()") == "/var/tmp"
        # The host's real folder: other processes may hold nodes there too, of the default
        # layout (another layout would be refused), so the node is any free one.
        datacenter = random.randrange(TWITTER.max_datacenter_id)
        answer = first.ask(
            f"c = hostclaim.claim_free_machine(Layout(), {datacenter}); "
            "out = c.machine_id, str(c.path)"
        )
        if answer.startswith("error NodeInUseError: a process of another layout"):
            pytest.skip(f"the default folder is in use by another layout: {answer}")
        assert answer.startswith("ok "), answer
        machine, path = ast.literal_eval(answer[3:])
        assert Path(path).parent == lockdir.default_lock_dir({})
        refusal = second.ask(claim_code(TWITTER, datacenter, machine))
        assert refusal.startswith(
            f"error NodeInUseError: datacenter_id={datacenter} machine_id={machine} "
        )
        assert f"in pid {first.pid} (" in refusal

    @needs_unshare
    def test_a_private_tmp_and_dev_shm_do_not_hide_a_claim(self, tmp_path, start):
        lock_dir = tmp_path / "locks"
        outside = start(lock_dir)
        inside = start(lock_dir, prefix=PRIVATE_TMP)
        # Nothing of the host's /tmp or /dev/shm is visible inside: only the sockets meet.
        assert inside.run(f"out = os.listdir('/dev/shm'), os.path.exists({str(tmp_path)!r})") == (
            [],
            False,
        )
        outside.run(claim_code(TWITTER, 0, 4))
        refusal = inside.ask(claim_code(TWITTER, 0, 4))
        assert refusal.startswith("error NodeInUseError: datacenter_id=0 machine_id=4")
        assert f"in pid {outside.pid} (" in refusal
        inside.run(claim_code(TWITTER, 0, 5))
        with pytest.raises(NodeInUseError, match=f"in pid {inside.pid} \\("):
            hostclaim.claim_node(TWITTER, 0, 5, lock_dir)

    def test_socket_names_fit_whatever_the_layout(self, tmp_path):
        huge = Layout(1, 30, 30, 2, epoch_ms=10**40)
        top = 2**30 - 1
        claim = hostclaim.claim_node(huge, top, top, tmp_path)
        name = claim._sock.getsockname()  # type: ignore[union-attr]
        assert name.startswith(b"\0django-flakeid/")
        assert len(name) <= 107
        assert hostclaim.try_claim(huge, top, top, tmp_path) is None
        assert hostclaim.held_on_host(huge, top, tmp_path) == [
            (top, f"pid {os.getpid()} (this process)")
        ]

    def test_processes_with_different_lock_folders_do_not_meet(self, tmp_path, start):
        start(tmp_path / "one").run(claim_code(TWITTER, 0, 3))
        assert hostclaim.claim_node(TWITTER, 0, 3, tmp_path / "two").machine_id == 3

    def test_deleting_the_lock_folder_under_a_live_holder_lets_no_one_in(self, tmp_path, start):
        lock_dir = tmp_path / "locks"
        holder = start(lock_dir)
        path = Path(holder.run(claim_code(TWITTER, 0, 6) + "; out = str(c.path)"))
        shutil.rmtree(lock_dir)
        refusal = start(lock_dir).ask(claim_code(TWITTER, 0, 6))
        assert refusal.startswith("error NodeInUseError: ")
        assert f"in pid {holder.pid} (" in refusal
        with pytest.raises(NodeInUseError):
            hostclaim.claim_node(TWITTER, 0, 6, lock_dir)
        # The holder's next announcement puts its mark and its lock back in the folder.
        holder.run("c.announce(1234567890123)")
        assert path.read_text().startswith("00000001234567890123\n")
        assert f"pid {holder.pid} (-c)" in path.read_text()
        assert file_lock_is_held(path)
        assert oct(lock_dir.stat().st_mode & 0o7777) == oct(0o1777)


class TestForks:
    def test_a_forked_child_drops_its_copies_and_never_the_parents_lock(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 1, tmp_path)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            outcome = "claimed"
            try:
                hostclaim.claim_node(TWITTER, 0, 1, tmp_path)
            except NodeInUseError as error:
                outcome = "refused" if f"pid {os.getppid()} " in str(error) else str(error)
            claim.release()
            os.write(write_end, outcome.encode())
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        assert os.read(read_end, 1000) == b"refused"
        os.close(read_end)
        assert os.waitstatus_to_exitcode(status) == 0
        # The child let go of its copies only: the parent still holds both the file lock
        # and the node.
        assert file_lock_is_held(claim.path)
        assert hostclaim._held[claim.path] is claim
        free = subprocess.run(
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
            timeout=30,
        )
        assert free.stdout.strip() == "None"

    def test_a_long_lived_child_does_not_keep_the_node_after_its_parent_exits(
        self, tmp_path, start
    ):
        parent = start()
        parent.run(claim_code(TWITTER, 0, 1))
        # The child goes on serving (it never calls into hostclaim); the parent exits.
        child = parent.run(
            """
            pid = os.fork()
            if pid:
                os._exit(0)
            out = os.getpid()
            """
        )
        assert isinstance(child, int)
        parent.children.append(child)
        parent.proc.wait(timeout=30)
        assert alive(child)
        assert hostclaim.claim_node(TWITTER, 0, 1, tmp_path).machine_id == 1

    def test_a_child_forked_in_c_drops_inherited_claims_at_its_next_call(self, tmp_path, start):
        parent = start()
        parent.run(claim_code(TWITTER, 0, 1) + "; inherited = c")
        # libc's fork runs none of Python's fork hooks, like uWSGI's or a C extension's.
        child, refusal = parent.run(
            """
            ready_read, ready_write = os.pipe()
            pid = CDLL(None).fork()
            if pid:
                os.read(ready_read, 1)
                os._exit(0)
            try:
                hostclaim.claim_node(Layout(), 0, 1)
                out = os.getpid(), "claimed"
            except NodeInUseError as error:
                out = os.getpid(), str(error)
            os.write(ready_write, b"x")
            """
        )
        parent.children.append(child)
        assert f"in pid {parent.pid} (" in refusal
        parent.proc.wait(timeout=30)
        # The parent is gone: its node is free while the child lives on.
        assert alive(child)
        assert hostclaim.claim_node(TWITTER, 0, 1, tmp_path).machine_id == 1
        # The inherited claim is no longer the child's to use or give back.
        assert parent.ask("inherited.announce(1)").startswith("error ForkedProcessError: ")
        parent.run("inherited.release(1)")
        # And it claims a node of its own like any process.
        parent.run(claim_code(TWITTER, 0, 2))
        with pytest.raises(NodeInUseError, match=f"in pid {child} \\("):
            hostclaim.claim_node(TWITTER, 0, 2, tmp_path)


class TestOneLayoutPerFolder:
    def test_a_live_process_of_another_layout_is_named(self, tmp_path, start):
        holder = start()
        holder.run(claim_code(SMALL, 0, 1))
        with pytest.raises(NodeInUseError) as caught:
            hostclaim.claim_node(TWITTER, 0, 0, tmp_path)
        assert str(caught.value) == (
            "a process of another layout is generating IDs on this host: layout 41/0/2/20 "
            "(timestamp/datacenter/machine/sequence bits, epoch_ms=1577836800000) node 0.1 "
            f"(pid {holder.pid} ({command_line()})). The IDs of two layouts overlap whatever "
            "their nodes, so they must not run at once. To change the layout, stop every "
            "process of the old one first; projects whose IDs never meet can each set "
            "FLAKEID_LOCK_DIR to a folder of their own."
        )
        # The claim it won first was given back.
        assert hostclaim._held == {}
        assert hostclaim.held_on_host(TWITTER, 0, tmp_path) == []
        holder.close()
        # Another epoch is another layout too; and this process is no exception.
        mine = hostclaim.claim_node(SMALL, 0, 2, tmp_path)
        with pytest.raises(NodeInUseError, match=rf"\) node 0\.2 \(pid {os.getpid()} "):
            hostclaim.claim_node(Layout(41, 0, 2, 20, epoch_ms=1), 0, 2, tmp_path)
        mine.release()
        assert hostclaim.claim_node(TWITTER, 0, 0, tmp_path).machine_id == 0

    @needs_unshare
    def test_another_layout_in_another_network_namespace_is_seen_through_its_file(
        self, tmp_path, start
    ):
        start(prefix=OWN_NETWORK).run(claim_code(SMALL, 0, 1))
        with pytest.raises(
            NodeInUseError, match=r"layout 41/0/2/20 .* node 0\.1 \(pid \d+ \(-c\)\)"
        ):
            hostclaim.claim_node(TWITTER, 0, 0, tmp_path)

    def test_two_layouts_starting_at_once_never_both_run(self, start):
        racers = [start(), start()]
        code = [
            f"""
            try:
                {claim_code(layout, 0, 0)}
                out = "won"
            except NodeInUseError:
                c, out = None, "refused"
            """
            for layout in (TWITTER, SMALL)
        ]
        for _ in range(200):
            for racer, claim in zip(racers, code, strict=True):
                racer.send(claim)
            won = tuple(racer.line() == "ok 'won'" for racer in racers)
            assert won != (True, True)
            for racer in racers:
                racer.run("c and c.release()")
        # Which one wins a race depends on the load of the machine; but no race leaves
        # anything behind that keeps either layout out once the other has stopped.
        for racer, claim in zip(racers, code, strict=True):
            racer.send(claim)
            assert racer.line() == "ok 'won'"
            racer.run("c and c.release()")


class TestHeldOnHost:
    def test_lists_live_holders_only_and_leaves_every_claim_as_it_was(self, tmp_path, start):
        holder = start()
        holder.run(claim_code(SMALL, 0, 0))
        mine = hostclaim.claim_node(SMALL, 0, 2, tmp_path)
        gone = start()
        gone.run(claim_code(SMALL, 0, 1))
        gone.close()  # machine 1's lock file stays behind, unlocked
        hostclaim.claim_node(SMALL, 0, 3, tmp_path).release()
        listed = dict(hostclaim.held_on_host(SMALL, 0, tmp_path))
        assert set(listed) == {0, 2}
        assert listed[0] == f"pid {holder.pid} ({command_line()})"
        assert listed[2] == f"pid {os.getpid()} (this process)"
        assert hostclaim._held[mine.path] is mine
        assert file_lock_is_held(mine.path)
        assert start().ask(claim_code(SMALL, 0, 2)).startswith("error NodeInUseError: ")
        assert hostclaim.held_on_host(TWITTER, 0, tmp_path) == []

    @needs_unshare
    def test_lists_a_holder_in_another_network_namespace(self, tmp_path, start):
        isolated = start(prefix=OWN_NETWORK)
        isolated.run(claim_code(SMALL, 0, 1))
        assert hostclaim.held_on_host(SMALL, 0, tmp_path) == [(1, f"pid {isolated.pid} (-c)")]

    def test_creates_nothing(self, tmp_path):
        assert hostclaim.held_on_host(SMALL, 0, tmp_path / "none") == []
        assert not (tmp_path / "none").exists()


class TestLockFiles:
    def test_are_writable_by_whoever_holds_the_node_next(self, tmp_path):
        claim = hostclaim.claim_node(TWITTER, 0, 0, tmp_path / "locks")
        assert claim.path.stat().st_mode & 0o777 == 0o666
        assert (tmp_path / "locks").stat().st_mode & 0o7777 == 0o1777

    def test_a_symlink_planted_under_a_lock_files_name_is_refused(self, tmp_path):
        target = tmp_path / "precious"
        target.write_text("keep")
        name = tmp_path / f"epoch{TWITTER.epoch_ms}-bits41-5-5-12-dc0-m0.lock"
        name.symlink_to(target)
        with pytest.raises(
            ConfigurationError, match=r"cannot open the lock file .*FLAKEID_LOCK_DIR"
        ):
            hostclaim.claim_node(TWITTER, 0, 0, tmp_path)
        assert target.read_text() == "keep"

    def test_a_fifo_planted_under_a_lock_files_name_neither_hangs_nor_is_used(self, tmp_path):
        os.mkfifo(tmp_path / f"epoch{TWITTER.epoch_ms}-bits41-5-5-12-dc0-m0.lock")
        os.mkfifo(tmp_path / "epoch1-bits41-0-2-20-dc0-m0.lock")

        def hung(signum: int, frame: object) -> None:
            raise AssertionError("hung on a FIFO")

        previous = signal.signal(signal.SIGALRM, hung)
        signal.alarm(10)
        try:
            with pytest.raises(ConfigurationError, match="is not a regular file"):
                hostclaim.claim_node(TWITTER, 0, 0, tmp_path)
            assert hostclaim.held_on_host(TWITTER, 0, tmp_path) == []
            assert hostclaim.claim_node(TWITTER, 0, 1, tmp_path).after_ms == 0
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


class TestTheScanOfOtherLayouts:
    SMALL = Layout(timestamp_bits=41, datacenter_bits=0, machine_bits=2, sequence_bits=20)

    def small_file(self, folder: Path, machine: int) -> Path:
        return folder / f"epoch{self.SMALL.epoch_ms}-bits41-0-2-20-dc0-m{machine}.lock"

    def test_an_entry_that_cannot_be_opened_does_not_end_it(self, tmp_path, monkeypatch):
        claim = hostclaim.claim_node(self.SMALL, 0, 3, tmp_path)
        claim.announce(5_000)
        claim.release()
        self.small_file(tmp_path, 0).symlink_to(tmp_path / "nowhere")  # O_NOFOLLOW: ELOOP
        listed = lockfile.list_names
        monkeypatch.setattr(lockfile, "list_names", lambda folder: sorted(listed(folder)))
        claim = hostclaim.claim_node(Layout(), 0, 7, tmp_path)
        try:
            assert claim.after_ms == 5_000
        finally:
            claim.release()

    def test_a_planted_symlink_is_not_read_as_a_mark(self, tmp_path):
        target = tmp_path / "elsewhere"
        target.write_bytes(b"99999999999999999999\npid 1 (planted)\n")
        self.small_file(tmp_path, 0).symlink_to(target)
        claim = hostclaim.claim_node(Layout(), 0, 7, tmp_path)
        try:
            assert claim.after_ms == 0
        finally:
            claim.release()

    def test_a_mark_that_cannot_be_stored_is_a_flakeid_error(self, tmp_path, monkeypatch):
        claim = hostclaim.claim_node(Layout(), 0, 7, tmp_path)

        def full(*args: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        try:
            monkeypatch.setattr(os, "pwrite", full)
            with pytest.raises(FlakeIDError, match="cannot store the high-water mark"):
                claim.announce(5_000)
        finally:
            monkeypatch.undo()
            claim.release()
