"""Real deployments, run where two processes are most likely to make the same ID.

Each test starts real processes (uWSGI and gunicorn servers, forks done in C, processes with
another temporary folder, mount or PID namespace, a clock moved back with libfaketime, a lease
table emptied under a live holder), collects every ID they made, and accepts one of two
outcomes: no ID made twice, or a refusal that names its cause. Where the processes run at the
same time, no node may serve two of them either: that catches a shared node even when they
happened not to stamp the same millisecond.

Tests that use no database run with ``FLAKEID_TEST_DB=sqlite``; tests of leases shared by
several processes run with ``postgresql`` or ``mariadb``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import pytest
from django.test import override_settings

import django_flakeid
from django_flakeid import conf
from django_flakeid.layout import Layout
from django_flakeid.lockdir import default_lock_dir
from tests.namespaces import private_tmp

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("FLAKEID_TEST_DB", "sqlite")
UWSGI = shutil.which("uwsgi", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
FAKETIME = shutil.which("faketime")
# Every process started here is bounded by this, and every answer awaited.
TIMEOUT_S = 60
# Short, so that a newcomer that has to wait out a lease does not wait long.
LEASE_TTL = 3
TWITTER = Layout()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="deployments on Linux"),
]
host_only = pytest.mark.skipif(
    DATABASE != "sqlite", reason="uses no database: runs with FLAKEID_TEST_DB=sqlite"
)
leases_only = pytest.mark.skipif(
    DATABASE == "sqlite",
    reason="processes sharing a lease table need a database server: "
    "FLAKEID_TEST_DB=postgresql or mariadb",
)
needs_uwsgi = pytest.mark.skipif(UWSGI is None, reason="no uwsgi binary (pip install uwsgi)")
needs_faketime = pytest.mark.skipif(
    FAKETIME is None, reason="no faketime binary (Debian package faketime)"
)


@cache
def unshare_refusal(*flags: str) -> str | None:
    """Why ``unshare FLAGS`` cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root for new namespaces"
    if shutil.which("unshare") is None:
        return "no unshare binary (util-linux)"
    probe = subprocess.run(
        ["unshare", *flags, "true"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    return f"unshare {' '.join(flags)} failed: {probe.stderr.strip()}" if probe.returncode else None


def needs_unshare(*flags: str) -> pytest.MarkDecorator:
    refusal = unshare_refusal(*flags) if sys.platform.startswith("linux") else "Linux only"
    return pytest.mark.skipif(refusal is not None, reason=refusal or "")


# Runs its arguments with a tmpfs of its own on /tmp, as systemd's PrivateTmp=yes does.
PRIVATE_TMP = private_tmp()
OWN_PID_NAMESPACE = ["unshare", "--pid", "--fork"]
# systemd's PrivateDevices=yes: a /dev/shm of its own, and so a default claim folder of its
# own, while /tmp stays the host's.
PRIVATE_DEV_SHM = [
    "unshare",
    "--mount",
    "sh",
    "-c",
    'mount -t tmpfs private-shm /dev/shm || exit 99; exec "$@"',
    "sh",
]
# A container of a Kubernetes pod: its own PIDs, /tmp and /dev/shm, and the pod's network
# namespace, which here is the host's.
POD_CONTAINER = [*OWN_PID_NAMESPACE, *private_tmp(dev_shm=True)]
OWN_NETWORK = ["unshare", "--net"]


def clock_back(seconds: int) -> list[str]:
    """A command prefix whose process sees the wall clock ``seconds`` behind."""
    assert FAKETIME is not None
    # Not --exclude-monotonic: with it, libfaketime fails time.sleep() with EINVAL.
    return [FAKETIME, "-m", "-f", f"-{seconds}s"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without what picks settings, a node or a lock folder, plus ``extra``."""
    keep = ("FLAKEID_TEST_DB_HOST", "FLAKEID_TEST_DB_PORT", "FLAKEID_TEST_DB_USER")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FLAKEID_", "DEPLOY_")) or key in keep
    }
    return env | {"PYTHONPATH": str(ROOT)} | extra


def django_environment(flakeid: Mapping[str, object], **extra: str) -> dict[str, str]:
    return clean_environment(
        DJANGO_SETTINGS_MODULE="tests.deployments.settings",
        DEPLOY_FLAKEID=json.dumps(flakeid),
        **extra,
    )


# -- processes ---------------------------------------------------------------------------------

Popen = subprocess.Popen[str]


class Processes:
    """Every process a test starts, each leading a process group, killed with its group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Popen] = []

    def start(self, args: Sequence[str], env: Mapping[str, str], **options: Any) -> Popen:
        process: Popen = subprocess.Popen(
            args, env=dict(env), cwd=ROOT, start_new_session=True, text=True, **options
        )
        self.started.append(process)
        return process

    def log(self, name: str) -> IO[str]:
        return (self.folder / f"{name}-{len(self.started)}.log").open("w+")

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                # Closing stdin ends a node process, even one that is pid 1 of a namespace and
                # so deaf to SIGTERM; a server ends on SIGTERM.
                if process.stdin is not None:
                    with suppress(OSError):
                        process.stdin.close()
                else:
                    os.killpg(process.pid, signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            # The group may outlive its leader: forked children, uWSGI workers.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=TIMEOUT_S)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@dataclass
class Outcome:
    """What a process made, and the error that stopped it, if any."""

    name: str
    ids: Sequence[int] = ()
    error: str | None = None
    message: str = ""

    def refused(self, *errors: str, naming: Sequence[str] = ()) -> bool:
        """True when stopped by one of ``errors`` with a message naming each of ``naming``."""
        if self.error is None:
            return False
        assert self.error in errors, f"{self.name} failed with {self.error}: {self.message}"
        for word in naming:
            assert word in self.message, f"{self.name}'s refusal does not name {word!r}"
        return True


class Node:
    """A ``tests/deployments/node.py`` process: makes IDs on command, answers in JSON."""

    def __init__(
        self,
        processes: Processes,
        name: str,
        env: Mapping[str, str],
        prefix: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.stderr = processes.log(name)
        self.process = processes.start(
            [*prefix, sys.executable, "-m", "tests.deployments.node"],
            env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pid = int(self._answer(TIMEOUT_S)["pid"])
        self.made: list[int] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name} did not answer within {timeout} s") from None
        if not line:
            self.stderr.seek(0)
            raise AssertionError(f"{self.name} exited:\n{self.stderr.read()[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def result(self, timeout: float = TIMEOUT_S) -> Outcome:
        """The answer to the command sent last; the IDs it made are added to ``made``."""
        answer = self._answer(timeout)
        self.made.extend(answer["ids"])
        return Outcome(self.name, answer["ids"], answer.get("error"), answer.get("message", ""))

    def ask(self, command: str, timeout: float = TIMEOUT_S) -> Outcome:
        self.send(command)
        return self.result(timeout)

    def make(self, command: str) -> Outcome:
        """Ask for IDs, which must all be made."""
        outcome = self.ask(command)
        assert outcome.error is None, outcome
        return outcome

    def outcome(self) -> Outcome:
        """Every ID this process made, as one outcome."""
        return Outcome(self.name, self.made)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=TIMEOUT_S) == 0


def side_by_side(nodes: Sequence[Node], seconds: float = 0.5) -> list[Outcome]:
    """Let every node make IDs for ``seconds``, all at once."""
    for node in nodes:
        node.send(f"for {seconds}")
    outcomes = [node.result() for node in nodes]
    for outcome in outcomes:
        assert outcome.error is None, outcome
    return outcomes


# -- verdicts ----------------------------------------------------------------------------------


def assert_no_duplicate(outcomes: Sequence[Outcome]) -> None:
    seen: set[int] = set()
    total = 0
    for outcome in outcomes:
        seen.update(outcome.ids)
        total += len(outcome.ids)
    made = ", ".join(f"{outcome.name}: {len(outcome.ids)}" for outcome in outcomes)
    assert total == len(seen), f"{total - len(seen)} duplicate IDs of {total} ({made})"


def assert_own_nodes(layout: Layout, outcomes: Sequence[Outcome]) -> None:
    """No node stamped IDs for two of these processes, which all ran at the same time."""
    owners: dict[int, str] = {}
    node_mask = (1 << (layout.datacenter_bits + layout.machine_bits)) - 1
    for outcome in outcomes:
        for node in {(uid >> layout.machine_shift) & node_mask for uid in outcome.ids}:
            owner = owners.setdefault(node, outcome.name)
            datacenter, machine = divmod(node, 1 << layout.machine_bits)
            assert owner == outcome.name, (
                f"{owner} and {outcome.name} both use datacenter {datacenter} machine {machine}"
            )


def last_ms(layout: Layout, ids: Sequence[int]) -> int:
    return layout.decode(max(ids)).timestamp_ms


# -- databases ---------------------------------------------------------------------------------


def on_server(statement: str, database: str | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on the test database server, outside any Django connection; its rows."""
    host = os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1")
    if DATABASE == "postgresql":
        import psycopg

        with psycopg.connect(
            host=host,
            port=int(os.environ.get("FLAKEID_TEST_DB_PORT", "5432")),
            user=os.environ.get("FLAKEID_TEST_DB_USER", "postgres"),
            dbname=database or "postgres",
            autocommit=True,
        ) as connection:
            cursor = connection.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []
    import MySQLdb

    connection = MySQLdb.connect(
        host=host,
        port=int(os.environ.get("FLAKEID_TEST_DB_PORT", "3306")),
        user=os.environ.get("FLAKEID_TEST_DB_USER", "root"),
        password="",
        **({"database": database} if database else {}),
    )
    try:
        cursor = connection.cursor()
        cursor.execute(statement)
        rows = list(cursor.fetchall())
        connection.commit()
        return rows
    finally:
        connection.close()


@pytest.fixture(scope="module")
def lease_databases() -> Iterator[dict[str, str]]:
    """Two migrated databases on the test server, ``default`` and ``other``, for this module."""
    names = [f"flakeid_deploy_{os.getpid()}_{alias}" for alias in ("default", "other")]
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="tests.deployments.settings",
        DEPLOY_DATABASE=DATABASE,
        DEPLOY_DATABASE_NAME=names[0],
        DEPLOY_OTHER_DATABASE_NAME=names[1],
    )
    try:
        for name, alias in zip(names, ("default", "other"), strict=True):
            on_server(f"CREATE DATABASE {name}")
            subprocess.run(
                [sys.executable, "-m", "django", "migrate", "--database", alias, "-v", "0"],
                env=env,
                cwd=ROOT,
                check=True,
                timeout=TIMEOUT_S,
            )
        yield {key: env[key] for key in env if key.startswith("DEPLOY_")}
    finally:
        for name in names:
            drop = f"DROP DATABASE IF EXISTS {name}"
            on_server(f"{drop} WITH (FORCE)" if DATABASE == "postgresql" else drop)


@pytest.fixture
def lease_env(lease_databases: dict[str, str]) -> dict[str, str]:
    """The databases' settings, with lease tables as migrate leaves them: only the marker row.

    Without the marker, every machine ID never held would start one lease_ttl late, as after a
    flush (see django_flakeid.leases), and slow workers would leave one worker to serve alone.
    """
    for key in ("DEPLOY_DATABASE_NAME", "DEPLOY_OTHER_DATABASE_NAME"):
        on_server("DELETE FROM django_flakeid_nodelease", lease_databases[key])
        on_server(
            "INSERT INTO django_flakeid_nodelease "
            "(layout, datacenter_id, machine_id, holder, host, high_water_ms) "
            "VALUES ('', 0, 0, '', '', 0)",
            lease_databases[key],
        )
    return lease_databases


def lease(datacenter_id: int, **extra: object) -> dict[str, object]:
    return {"machine_id": "lease", "datacenter_id": datacenter_id, "lease_ttl": LEASE_TTL} | extra


# -- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: Popen
    log: IO[str]
    warm_up: Path
    replies: list[dict[str, Any]] = field(default_factory=list)

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def get(self, path: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
                reply: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            # 503 is the view's refusal, with the error in its body; anything else is a crash.
            body = error.read().decode(errors="replace")
            if error.code != 503:
                raise AssertionError(
                    f"HTTP {error.code}: {body[:2000]}\n{self.log_text()}"
                ) from None
            reply = json.loads(body)
        return reply

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited:\n{self.log_text()}"
            try:
                urllib.request.urlopen(f"{self.url}/ping", timeout=2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not answer in {TIMEOUT_S} s:\n{self.log_text()}")

    def load(self, requests: int = 240, per_request: int = 25, clients: int = 8) -> None:
        """Ask for IDs from several clients at once; each worker lingers a little per request."""
        with ThreadPoolExecutor(clients) as pool:
            self.replies = list(
                pool.map(
                    lambda _: self.get(f"/ids?n={per_request}&pause=0.01"),
                    range(requests),
                )
            )

    def loaded_by(self) -> list[int]:
        """The pid of each process that loaded the application, as its warm-up recorded it."""
        return [int(line.split()[0]) for line in self.warm_up.read_text().splitlines()]

    def serving_pids(self) -> set[int]:
        return {reply["pid"] for reply in self.replies}

    def outcomes(self) -> list[Outcome]:
        """One outcome per process that made IDs: warm-up IDs (the master's, or each worker's
        when workers load the application), then what each worker served."""
        made: dict[int, list[int]] = {}
        for line in self.warm_up.read_text().splitlines():
            pid, uid = map(int, line.split())
            made.setdefault(pid, []).append(uid)
        for reply in self.replies:
            assert "error" not in reply, f"worker {reply['pid']}: {reply}\n{self.log_text()}"
            made.setdefault(reply["pid"], []).extend(map(int, reply["ids"]))
        return [
            Outcome("master" if pid == self.process.pid else f"worker {pid}", ids)
            for pid, ids in made.items()
        ]


@contextmanager
def serving(
    processes: Processes, command: Sequence[str], port: int, env: Mapping[str, str]
) -> Iterator[Server]:
    log = processes.log("server")
    warm_up = processes.folder / "warm-up"
    process = processes.start(
        command,
        {**env, "DEPLOY_WARM_UP": str(warm_up)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, log, warm_up)
    try:
        server.wait_until_up()
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def assert_served_apart(server: Server, layout: Layout) -> None:
    assert len(server.serving_pids()) > 1, f"only one worker served:\n{server.log_text()}"
    outcomes = server.outcomes()
    assert_no_duplicate(outcomes)
    assert_own_nodes(layout, outcomes)


UWSGI_OPTIONS = {
    "without fork hooks": [],
    "with fork hooks": ["--py-call-uwsgi-fork-hooks"],
    "with threads": ["--enable-threads"],
    "lazy apps": ["--lazy-apps"],
}
WORKERS = 4


@needs_uwsgi
@pytest.mark.parametrize("options", UWSGI_OPTIONS.values(), ids=UWSGI_OPTIONS.keys())
@pytest.mark.parametrize(
    "mode", [pytest.param("auto", marks=host_only), pytest.param("lease", marks=leases_only)]
)
def test_uwsgi_workers(mode, options, processes, request):
    """uWSGI forks its workers in C after loading the app: no Python fork hook runs (unless
    asked), yet each worker must stamp with a node of its own, even though the master made an
    ID while loading. With --lazy-apps the master loads nothing and the workers load the app
    all at once after the fork, each making an ID while doing so."""
    lock_dir = str(processes.folder / "locks")
    if mode == "lease":
        database = request.getfixturevalue("lease_env")
        env = django_environment(lease(11), FLAKEID_LOCK_DIR=lock_dir, **database)
    else:
        env = django_environment(
            {"machine_id": "auto", "datacenter_id": 11},
            DEPLOY_DATABASE="sqlite",
            DEPLOY_DATABASE_NAME=str(processes.folder / "db.sqlite3"),
            FLAKEID_LOCK_DIR=lock_dir,
        )
    assert UWSGI is not None
    port = free_port()
    command = [
        UWSGI,
        "--master",
        "--processes",
        str(WORKERS),
        "--module",
        "tests.deployments.wsgi:application",
        "--pythonpath",
        str(ROOT),
        "--virtualenv",
        sys.prefix,
        "--need-app",
        "--die-on-term",
        "--disable-logging",
        "--harakiri",
        "30",
        *options,
        "--http-socket",
        f"127.0.0.1:{port}",
    ]
    with serving(processes, command, port, env) as server:
        server.load()
    loaders = server.loaded_by()
    # Otherwise the run is not the deployment its name claims, and proves nothing about it.
    if "--lazy-apps" in options:
        assert server.process.pid not in loaders, "the master loaded the app"
        assert len(set(loaders)) == len(loaders) == WORKERS, loaders
    else:
        assert loaders == [server.process.pid], loaders
    assert_served_apart(server, TWITTER)


@pytest.mark.parametrize(
    "mode", [pytest.param("auto", marks=host_only), pytest.param("lease", marks=leases_only)]
)
def test_gunicorn_preload(mode, processes, request):
    """gunicorn loads the app in the master and forks with os.fork(): workers get own nodes."""
    pytest.importorskip("gunicorn", reason="gunicorn is in the dev extra")
    lock_dir = str(processes.folder / "locks")
    if mode == "lease":
        database = request.getfixturevalue("lease_env")
        env = django_environment(lease(12), FLAKEID_LOCK_DIR=lock_dir, **database)
    else:
        env = django_environment(
            {"machine_id": "auto", "datacenter_id": 12}, FLAKEID_LOCK_DIR=lock_dir
        )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "tests.deployments.wsgi:application",
        "--preload",
        "--workers",
        "3",
        "--timeout",
        "30",
        "--log-level",
        "warning",
        "--bind",
        f"127.0.0.1:{port}",
    ]
    with serving(processes, command, port, env) as server:
        server.load()
    assert_served_apart(server, TWITTER)


# -- forks -------------------------------------------------------------------------------------


def run_forks(
    processes: Processes, env: Mapping[str, str], *scenario: str
) -> dict[str, list[Outcome]]:
    """Run ``tests/deployments/forks.py`` and read what each process made, by role."""
    out = processes.folder / "forks"
    out.mkdir()
    log = processes.log("forks")
    process = processes.start(
        [sys.executable, "-m", "tests.deployments.forks", str(out), *scenario],
        env,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    returncode = process.wait(timeout=TIMEOUT_S * 2)
    log.seek(0)
    assert returncode == 0, f"forks.py {' '.join(scenario)} failed:\n{log.read()[-3000:]}"
    return read_forks(out)


def read_forks(out: Path) -> dict[str, list[Outcome]]:
    by_role: dict[str, list[Outcome]] = {}
    for summary_path in sorted(out.glob("*.json")):
        summary = json.loads(summary_path.read_text())
        ids: array[int] = array("q")
        ids.frombytes(summary_path.with_suffix(".ids").read_bytes())
        outcome = Outcome(
            f"{summary['role']} {summary['pid']}",
            ids,
            summary.get("error"),
            summary.get("message", ""),
        )
        by_role.setdefault(summary["role"], []).append(outcome)
    return by_role


def every(by_role: Mapping[str, list[Outcome]]) -> list[Outcome]:
    return [outcome for outcomes in by_role.values() for outcome in outcomes]


FORK_REFUSALS = ("ForkedProcessError", "NodeInUseError")
C_FORK_SETUPS = {
    "auto": {"machine_id": "auto", "datacenter_id": 13},
    "fixed": {"machine_id": 13, "datacenter_id": 13},
    "plain Python": None,
}


@host_only
@pytest.mark.parametrize("flakeid", C_FORK_SETUPS.values(), ids=C_FORK_SETUPS.keys())
def test_a_fork_done_in_c(flakeid, processes):
    """libc's fork() through ctypes skips Python's fork hooks: the child of a process that made
    an ID with the module-level next_id() gets a node of its own, or is refused; it never
    shares its parent's."""
    lock_dir = str(processes.folder / "locks")
    if flakeid is None:
        env = clean_environment(FLAKEID_LOCK_DIR=lock_dir)
    else:
        env = django_environment(flakeid, FLAKEID_LOCK_DIR=lock_dir)
    made = run_forks(processes, env, "c-fork")
    ((parent,), (child,)) = made["parent"], made["child"]
    assert parent.error is None, parent
    layout = TWITTER if flakeid else django_flakeid.make_generator("minimal").layout
    if flakeid and flakeid["machine_id"] == "auto":
        assert child.error is None, child
    else:
        pid = parent.name.split()[-1]
        assert child.refused(*FORK_REFUSALS, naming=[pid]), child
    assert_no_duplicate([parent, child])
    assert_own_nodes(layout, [parent, child])


@host_only
def test_a_generator_of_ones_own_inherited_through_a_fork_done_in_c(processes):
    """Nothing can rebuild a generator a script made itself: in the child it refuses, from its
    first call, even within the millisecond of the fork."""
    made = run_forks(processes, clean_environment(), "c-fork", "own")
    ((parent,), (child,)) = made["parent"], made["child"]
    assert parent.error is None, parent
    pid = parent.name.split()[-1]
    assert child.refused("ForkedProcessError", naming=[pid]), child
    assert_no_duplicate([parent, child])


@host_only
def test_a_fork_from_another_thread_during_a_large_next_ids(processes):
    env = django_environment(
        {"machine_id": "auto", "datacenter_id": 14},
        FLAKEID_LOCK_DIR=str(processes.folder / "locks"),
    )
    made = run_forks(processes, env, "thread-fork")
    assert "child" in made, "the child hung or died before making IDs"
    ((parent,), (child,)) = made["parent"], made["child"]
    assert parent.error is None, parent
    assert len(parent.ids) == 1_000_000
    assert child.error is None, child
    assert_no_duplicate([parent, child])
    assert_own_nodes(TWITTER, [parent, child])


@host_only
def test_a_double_fork_gets_a_node_of_its_own(processes):
    env = django_environment(
        {"machine_id": "auto", "datacenter_id": 15},
        FLAKEID_LOCK_DIR=str(processes.folder / "locks"),
    )
    made = run_forks(processes, env, "double-fork")
    ((parent,), (grandchild,)) = made["parent"], made["grandchild"]
    assert parent.error is None, parent
    assert grandchild.error is None, grandchild
    assert_no_duplicate([parent, grandchild])
    assert_own_nodes(TWITTER, [parent, grandchild])


@host_only
def test_a_grandchild_that_outlives_its_parent_does_not_keep_its_node(processes):
    """A daemonised grandchild that never makes an ID still holds copies of what its parent
    held; once the parent exits, a restarted process must get the node all the same."""
    env = django_environment(
        {"machine_id": 16, "datacenter_id": 16},
        FLAKEID_LOCK_DIR=str(processes.folder / "locks"),
    )
    made = run_forks(processes, env, "double-fork", "idle")
    ((parent,), (grandchild,)) = made["parent"], made["grandchild"]
    assert parent.error is None, parent
    grandchild_pid = int(grandchild.name.split()[-1])
    os.kill(grandchild_pid, 0)  # still alive: it waits for its stdin to close
    restarted = Node(processes, "restarted", env)
    restarted.make("claim")
    assert_no_duplicate([parent, restarted.outcome()])


@host_only
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_pools(method, processes):
    env = django_environment(
        {"machine_id": "auto", "datacenter_id": 17},
        FLAKEID_LOCK_DIR=str(processes.folder / "locks"),
    )
    made = run_forks(processes, env, "pool", method)
    outcomes = every(made)
    assert len(made["worker"]) >= 2
    for outcome in outcomes:
        assert outcome.error is None, outcome
    assert_no_duplicate(outcomes)
    assert_own_nodes(TWITTER, outcomes)


@host_only
def test_twenty_threads_start_at_once(processes):
    env = django_environment(
        {"machine_id": "auto", "datacenter_id": 18},
        FLAKEID_LOCK_DIR=str(processes.folder / "locks"),
    )
    ((made,),) = run_forks(processes, env, "threads", "20").values()
    assert made.error is None, made
    assert_no_duplicate([made])


# -- where processes meet ------------------------------------------------------------------------


def meet(
    processes: Processes,
    flakeid: Mapping[str, object],
    first_env: Mapping[str, str],
    second_env: Mapping[str, str],
    *,
    second_prefix: Sequence[str] = (),
    first_prefix: Sequence[str] = (),
) -> tuple[Outcome, Node, Node]:
    """Start two processes one after the other, then let both make IDs if both could claim;
    returns the second's claim and the two processes."""
    first = Node(processes, "first", django_environment(flakeid, **first_env), first_prefix)
    first.make("claim")
    second = Node(processes, "second", django_environment(flakeid, **second_env), second_prefix)
    claimed = second.ask("claim")
    if claimed.error is None:
        side_by_side([first, second])
    return claimed, first, second


def assert_met(flakeid: Mapping[str, object], claimed: Outcome, first: Node, second: Node) -> None:
    """What two processes of one host must get: a fixed node is refused to the second, naming
    the first; "auto" gives them different machines."""
    outcomes = [first.outcome(), second.outcome()]
    assert_no_duplicate(outcomes)
    assert_own_nodes(TWITTER, outcomes)
    if flakeid["machine_id"] == "auto":
        assert claimed.error is None, claimed
    else:
        # In a PID namespace of its own, the first is pid 1 there and another pid here.
        naming = [str(first.pid)] if first.pid != 1 else []
        assert claimed.refused("NodeInUseError", naming=naming), claimed


MEETINGS = {
    "fixed": {"machine_id": 21, "datacenter_id": 21},
    "auto": {"machine_id": "auto", "datacenter_id": 21},
}


@host_only
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_processes_with_different_temporary_folders_meet(flakeid, processes, tmp_path):
    """TMPDIR per user (pam_tmpdir, macOS) must not give each process a lock folder of its own."""
    folders = [tmp_path / "tmp-a", tmp_path / "tmp-b"]
    for folder in folders:
        folder.mkdir()
    claimed, first, second = meet(
        processes, flakeid, {"TMPDIR": str(folders[0])}, {"TMPDIR": str(folders[1])}
    )
    assert_met(flakeid, claimed, first, second)


@host_only
@needs_unshare("--mount")
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_a_process_with_a_private_tmp_meets_one_without(flakeid, processes):
    """systemd's PrivateTmp=yes beside a cron job or a shell: one /tmp each, one host."""
    claimed, first, second = meet(processes, flakeid, {}, {}, second_prefix=PRIVATE_TMP)
    assert_met(flakeid, claimed, first, second)


@host_only
@needs_unshare("--pid", "--fork")
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_processes_in_other_pid_namespaces_share_a_lock_folder(flakeid, processes):
    """Containers sharing the lock folder: both processes are pid 1, each in its namespace."""
    lock_dir = {"FLAKEID_LOCK_DIR": str(processes.folder / "locks")}
    claimed, first, second = meet(
        processes,
        flakeid,
        lock_dir,
        lock_dir,
        first_prefix=OWN_PID_NAMESPACE,
        second_prefix=OWN_PID_NAMESPACE,
    )
    assert_met(flakeid, claimed, first, second)


def in_datacenter(datacenter_id: int) -> dict[str, dict[str, object]]:
    """MEETINGS in a datacenter of the caller's own, for processes that claim under the default
    folder's name in this network namespace: other tests and runs hold nodes there too."""
    return {
        "fixed": {"machine_id": datacenter_id, "datacenter_id": datacenter_id},
        "auto": {"machine_id": "auto", "datacenter_id": datacenter_id},
    }


@host_only
@needs_unshare("--mount")
@pytest.mark.parametrize("flakeid", in_datacenter(25).values(), ids=MEETINGS.keys())
def test_a_unit_with_a_private_dev_shm_meets_a_process_of_the_host(flakeid, processes):
    """systemd's PrivateDevices=yes beside a cron job or a shell: the unit's default claim
    folder is not the host's, so the abstract socket alone must keep them apart."""
    claimed, host, unit = meet(processes, flakeid, {}, {}, second_prefix=PRIVATE_DEV_SHM)
    assert_met(flakeid, claimed, host, unit)
    folder = default_lock_dir({})
    # Through the unit's root, so that the path resolves in its mount namespace, not this one.
    unit_folder = Path(f"/proc/{unit.pid}/root") / folder.relative_to("/")
    assert os.stat(unit_folder).st_dev != os.stat(folder).st_dev, "the unit's /dev/shm is shared"


SIDES = {"host": [], "unit": PRIVATE_DEV_SHM}


def restart_across(
    processes: Processes, env: Mapping[str, str], before: str, after: str
) -> tuple[Node, Node, Outcome]:
    """Run one fixed node on side ``before``, stop it, and claim it again on side ``after``
    with the clock stepped back 3 s; the two processes and the second one's claim."""
    first = Node(processes, f"the {before}", env, SIDES[before])
    first.make("for 0.6")
    # Started before the first stops, so that it claims while its clock is still well behind
    # the first's last millisecond, however slow the start.
    second = Node(processes, f"the {after}", env, [*SIDES[after], *clock_back(3)])
    first.stop()
    return first, second, second.ask("claim")


RESTARTS = {"unit after host": ("host", "unit"), "host after unit": ("unit", "host")}


@host_only
@needs_unshare("--mount")
@needs_faketime
@pytest.mark.parametrize(("before", "after"), RESTARTS.values(), ids=RESTARTS.keys())
def test_a_shared_lock_folder_carries_marks_across_a_private_dev_shm(before, after, processes):
    """The README's advice for PrivateDevices=yes: with a FLAKEID_LOCK_DIR that every process
    of the host shares, each side starts above the other's mark after the clock stepped back."""
    env = django_environment(
        {"machine_id": 26, "datacenter_id": 26}, FLAKEID_LOCK_DIR=str(processes.folder / "locks")
    )
    first, second, claimed = restart_across(processes, env, before, after)
    last = last_ms(TWITTER, first.made)
    if not claimed.refused("ClockBackwardsError"):
        second.make(f"until {last + 50}")
        earliest = TWITTER.decode(min(second.made)).timestamp_ms
        assert earliest > last, f"the {after} stamped from {earliest}, at or below the mark {last}"
    assert_no_duplicate([first.outcome(), second.outcome()])


@host_only
@needs_unshare("--mount")
@needs_faketime
def test_a_unit_with_a_private_dev_shm_keeps_marks_of_its_own(processes):
    """Why the README gives that advice: in the default claim folder, the unit's marks are in
    its own /dev/shm and the host's out of its sight. Should the unit ever see them, the
    README is to say so."""
    env = django_environment({"machine_id": 27, "datacenter_id": 27})
    first, _, claimed = restart_across(processes, env, "host", "unit")
    assert claimed.error is None, claimed
    stamped = TWITTER.decode(claimed.ids[0]).timestamp_ms
    assert stamped <= last_ms(TWITTER, first.made), "the unit waited for the host's mark"


@host_only
@needs_unshare("--pid", "--fork", "--mount")
@pytest.mark.parametrize("flakeid", in_datacenter(28).values(), ids=MEETINGS.keys())
def test_containers_of_one_pod_meet(flakeid, processes):
    """Containers sharing a network namespace, each with its own PIDs, /tmp and /dev/shm: no
    file in common, only the abstract socket."""
    claimed, first, second = meet(
        processes, flakeid, {}, {}, first_prefix=POD_CONTAINER, second_prefix=POD_CONTAINER
    )
    assert_met(flakeid, claimed, first, second)


@host_only
@needs_unshare("--net", "--pid", "--fork", "--mount")
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_containers_with_network_namespaces_of_their_own_are_separate_hosts(flakeid, processes):
    """The README's limit: containers sharing neither a network namespace nor a claim folder
    cannot see each other's claims, and take the same node, which is why it tells them to use
    datacenter IDs or leases. Should they ever meet, the README is to say so."""
    env = django_environment(flakeid)
    container = [*OWN_NETWORK, *POD_CONTAINER]
    first = Node(processes, "first container", env, container)
    first.make("claim")
    second = Node(processes, "second container", env, container)
    second.make("claim")
    first_node, second_node = (TWITTER.decode(node.made[0]) for node in (first, second))
    assert (first_node.datacenter_id, first_node.machine_id) == (
        second_node.datacenter_id,
        second_node.machine_id,
    )


@host_only
@needs_unshare("--net", "--pid", "--fork")
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_containers_with_network_namespaces_of_their_own_meet_in_a_shared_folder(
    flakeid, processes
):
    """The exception to that limit: a claim folder on a volume both containers mount."""
    lock_dir = {"FLAKEID_LOCK_DIR": str(processes.folder / "locks")}
    container = [*OWN_NETWORK, *OWN_PID_NAMESPACE]
    claimed, first, second = meet(
        processes, flakeid, lock_dir, lock_dir, first_prefix=container, second_prefix=container
    )
    assert_met(flakeid, claimed, first, second)


@host_only
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_the_lock_folder_deleted_under_a_live_holder(flakeid, processes):
    """tmpreaper, systemd-tmpfiles or an operator's rm -rf must not let a second process in."""
    lock_dir = processes.folder / "locks"
    env = django_environment(flakeid, FLAKEID_LOCK_DIR=str(lock_dir))
    first = Node(processes, "first", env)
    first.make("claim")
    shutil.rmtree(lock_dir)
    second = Node(processes, "second", env)
    claimed = second.ask("claim")
    if claimed.error is None:
        side_by_side([first, second])
    assert_met(flakeid, claimed, first, second)


@host_only
@needs_faketime
@pytest.mark.parametrize("flakeid", MEETINGS.values(), ids=MEETINGS.keys())
def test_a_restart_after_the_clock_stepped_back(flakeid, processes):
    """A process stops, NTP steps the clock back 3 s, the process restarts with the same node:
    it waits for its clock to pass what the first run stamped, or refuses; it never repeats."""
    env = django_environment(flakeid, FLAKEID_LOCK_DIR=str(processes.folder / "locks"))
    first = Node(processes, "first run", env)
    first.make("for 0.6")
    first.stop()
    second = Node(processes, "second run", env, prefix=clock_back(3))
    claimed = second.ask("claim")
    if not claimed.refused("ClockBackwardsError"):
        second.make(f"until {last_ms(TWITTER, first.made) + 50}")
    assert_no_duplicate([first.outcome(), second.outcome()])


# -- layouts and leases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [pytest.param("auto", marks=host_only), pytest.param("lease", marks=leases_only)]
)
def test_a_rolling_preset_change(mode, processes, tmp_path, request):
    """twitter -> single_dc: the same bits under another name. A new worker is refused while an
    old one lives; after the old ones stop, new IDs never repeat old ones, even with the new
    worker's clock behind."""
    if mode == "lease":
        database = request.getfixturevalue("lease_env")
        old_flakeid = lease(0)
        new_flakeid: dict[str, object] = {
            "preset": "single_dc",
            "machine_id": "lease",
            "lease_ttl": LEASE_TTL,
        }
    else:
        database = {}
        old_flakeid = {"machine_id": "auto"}
        new_flakeid = {"preset": "single_dc", "machine_id": "auto"}

    def environment(host: str, flakeid: Mapping[str, object]) -> dict[str, str]:
        # With leases, the old and the new worker stand for two hosts: only the lease table
        # can keep them apart.
        folder = tmp_path / (f"locks-{host}" if mode == "lease" else "locks")
        return django_environment(flakeid, FLAKEID_LOCK_DIR=str(folder), **database)

    old = Node(processes, "old worker", environment("a", old_flakeid))
    old.make("claim")
    new = Node(processes, "new worker", environment("b", new_flakeid))
    claimed = new.ask("claim")
    if claimed.error is None:
        side_by_side([old, new])
    assert_no_duplicate([old.outcome(), new.outcome()])
    assert claimed.refused("NodeInUseError", naming=[str(old.pid)]), claimed
    new.stop()
    old.stop()
    if mode == "lease":
        held = on_server(
            "SELECT pid FROM django_flakeid_nodelease WHERE holder <> ''",
            database["DEPLOY_DATABASE_NAME"],
        )
        assert held == [], f"processes that exited normally still hold leases: {held}"

    prefix = clock_back(3) if FAKETIME else []
    after = Node(processes, "new worker after the old ones", environment("b", new_flakeid), prefix)
    if not after.ask("claim").refused("ClockBackwardsError"):
        after.make(f"until {last_ms(TWITTER, old.made) + 50}")
    assert_no_duplicate([old.outcome(), after.outcome()])


@leases_only
def test_two_lease_databases_on_one_host(processes, lease_env):
    """Two lease tables know nothing of each other: the host claim must refuse the second."""
    lock_dir = str(processes.folder / "locks")
    first = Node(
        processes, "first", django_environment(lease(22), FLAKEID_LOCK_DIR=lock_dir, **lease_env)
    )
    first.make("claim")
    second_flakeid = lease(22, lease_database="other")
    second = Node(
        processes,
        "second",
        django_environment(second_flakeid, FLAKEID_LOCK_DIR=lock_dir, **lease_env),
    )
    claimed = second.ask("claim")
    if claimed.error is None:
        side_by_side([first, second])
    assert_no_duplicate([first.outcome(), second.outcome()])
    assert claimed.refused("NodeInUseError", naming=[str(first.pid)]), claimed


@leases_only
def test_the_lease_table_flushed_under_a_live_holder(processes, lease_env, tmp_path):
    """manage.py flush empties the lease table while a holder runs; a newcomer on another host
    then claims: never an ID the holder also made."""

    def environment(host: str) -> dict[str, str]:
        return django_environment(
            lease(23), FLAKEID_LOCK_DIR=str(tmp_path / f"locks-{host}"), **lease_env
        )

    holder = Node(processes, "holder", environment("a"))
    holder.make("claim")
    newcomer = Node(processes, "newcomer", environment("b"))
    flusher = Node(processes, "flush", environment("c"))
    holder.send("for 5")
    time.sleep(0.3)
    assert flusher.ask("flush").error is None
    newcomer.make("claim")
    newcomer.make("for 2")
    # The holder may go on until it finds its row gone, and then may stop only with a
    # LeaseError.
    holder.result().refused("LeaseError")
    assert_no_duplicate([holder.outcome(), newcomer.outcome()])


# -- one process ---------------------------------------------------------------------------------


@contextmanager
def settings_changed(change: str, flakeid: Mapping[str, object]) -> Iterator[None]:
    """Clear the cache, or override FLAKEID with an equal value, as a test or a reload would."""
    if change == "clear_cache":
        conf.clear_cache()
        yield
    else:
        with override_settings(FLAKEID=dict(flakeid)):
            yield


@host_only
@pytest.mark.parametrize("change", ["clear_cache", "override_settings"])
def test_changing_settings_while_a_thread_uses_the_old_generator(change, settings):
    """The old generator stops before a new one takes the node, whoever still holds it."""
    flakeid = {"machine_id": 24, "datacenter_id": 24}
    settings.FLAKEID = flakeid
    old = conf.get_generator()
    stop, running = threading.Event(), threading.Event()
    old_outcome = Outcome("old generator")

    def keep_using_the_old_generator() -> None:
        ids: list[int] = []
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                ids.extend(old.next_ids(16))
                running.set()
                time.sleep(0.0005)
        except django_flakeid.FlakeIDError as error:
            old_outcome.error = "FlakeIDError"
            old_outcome.message = f"{type(error).__name__}: {error}"
        finally:
            running.set()
            old_outcome.ids = ids

    user = threading.Thread(target=keep_using_the_old_generator)
    user.start()
    new_ids: list[int] = []
    try:
        assert running.wait(TIMEOUT_S)
        with settings_changed(change, flakeid):
            new = conf.get_generator()
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                new_ids.extend(new.next_ids(16))
                time.sleep(0.0005)
    finally:
        stop.set()
        user.join(TIMEOUT_S)
    assert new is not old
    assert_no_duplicate([old_outcome, Outcome("new generator", new_ids)])
    assert old_outcome.refused("FlakeIDError"), "the old generator kept stamping"
