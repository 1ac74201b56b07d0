"""Processes that fork in the ways real programs do, each making IDs while the others do.

``python -m tests.deployments.forks OUT SCENARIO [ARG]``, with ``DJANGO_SETTINGS_MODULE`` set
for the project's generator (unset for the plain-Python default). Every process that makes IDs
writes them to ``OUT/<pid>.ids`` (int64) and a summary to ``OUT/<pid>.json``: its role, and the
class name and message of the error that stopped it, if any.

Scenarios:

- ``c-fork [own]``: the parent forks through libc, as C extensions and embedded interpreters
  do, so Python's fork hooks never run. With ``own``, both use a generator the script built
  itself rather than the module-level functions.
- ``thread-fork``: a thread forks while another is in the middle of a large ``next_ids``.
- ``double-fork [idle]``: a child forks a grandchild and exits; the grandchild makes IDs
  (with ``idle``, none: it never touches the library) and then outlives the parent until its
  stdin closes.
- ``pool METHOD``: a ``multiprocessing`` pool started with METHOD (fork, forkserver, spawn).
- ``threads N``: N threads start using the generator at once.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from array import array
from pathlib import Path
from typing import Protocol

# Each process makes IDs for this long; long enough for all of them to overlap.
SPAN_S = 0.4
BATCH = 16
PAUSE_S = 0.0005
# A process that has not finished by then is stuck: the default SIGALRM action ends it.
STUCK_S = 30


class Source(Protocol):
    def next_id(self) -> int: ...

    def next_ids(self, count: int) -> list[int]: ...


def module_functions() -> Source:
    import django_flakeid

    return django_flakeid


def setup() -> None:
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django

        django.setup()


def make_ids(
    seconds: float = SPAN_S, batch: int = BATCH, source: Source | None = None
) -> tuple[list[int], Exception | None]:
    issuer = module_functions() if source is None else source
    ids: list[int] = []
    end = time.monotonic() + seconds
    try:
        while True:
            ids.extend(issuer.next_ids(batch) if batch > 1 else [issuer.next_id()])
            if time.monotonic() >= end:
                return ids, None
            time.sleep(PAUSE_S)
    except Exception as error:
        return ids, error


def record(out: Path, role: str, ids: list[int], error: Exception | None) -> None:
    summary: dict[str, object] = {"role": role, "pid": os.getpid()}
    if error is not None:
        summary |= {"error": type(error).__name__, "message": str(error)}
    write(out, os.getpid(), ids, summary)


def write(out: Path, pid: int, ids: list[int], summary: dict[str, object]) -> None:
    with (out / f"{pid}.ids").open("wb") as handle:
        array("q", ids).tofile(handle)
    # Renamed into place, so that a reader never sees half a summary.
    partial = out / f"{pid}.partial"
    partial.write_text(json.dumps(summary))
    partial.replace(out / f"{pid}.json")


def in_child(out: Path, role: str, batch: int = BATCH, source: Source | None = None) -> None:
    """Runs in a forked child: make IDs, record them, and never return into the parent's code."""
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(STUCK_S)
        record(out, role, *make_ids(batch=batch, source=source))
    finally:
        os._exit(0)


def wait(pid: int) -> None:
    deadline = time.monotonic() + STUCK_S
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def c_fork(out: Path, own: bool) -> None:
    import django_flakeid

    source = django_flakeid.make_generator("twitter", machine_id=5) if own else None
    (source or module_functions()).next_id()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fork.restype = ctypes.c_int
    pid = libc.fork()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork() failed")
    if pid == 0:
        # One ID at a time: the module-level next_id(), as a plain script calls it.
        in_child(out, "child", batch=1, source=source)
    record(out, "parent", *make_ids(batch=1, source=source))
    wait(pid)


def thread_fork(out: Path) -> None:
    import django_flakeid

    django_flakeid.next_id()
    started = threading.Event()
    bulk: list[int] = []
    failure: list[Exception] = []

    def make_a_million() -> None:
        started.set()
        try:
            bulk.extend(django_flakeid.next_ids(1_000_000))
        except Exception as error:
            failure.append(error)

    def fork_meanwhile() -> None:
        started.wait(STUCK_S)
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            in_child(out, "child")
        wait(pid)

    threads = [threading.Thread(target=make_a_million), threading.Thread(target=fork_meanwhile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(STUCK_S)
    record(out, "parent", bulk, failure[0] if failure else None)


def double_fork(out: Path, idle: bool) -> None:
    import django_flakeid

    django_flakeid.next_id()
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                # The grandchild keeps stdin open and stays until the test closes it; its
                # stdout is not the parent's, so that reading the parent's output ends.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(STUCK_S)
                record(out, "grandchild", *(([], None) if idle else make_ids()))
                sys.stdin.read()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    record(out, "parent", *make_ids())
    # The parent exits only once the grandchild has made its IDs: it must outlive the parent.
    deadline = time.monotonic() + STUCK_S
    while time.monotonic() < deadline and len(list(out.glob("*.json"))) < 2:
        time.sleep(0.01)


def pool_task(_: int) -> tuple[int, list[int], str | None, str]:
    ids, error = make_ids(SPAN_S / 2)
    if error is None:
        return os.getpid(), ids, None, ""
    return os.getpid(), ids, type(error).__name__, str(error)


def pool(out: Path, method: str) -> None:
    import django_flakeid

    django_flakeid.next_id()
    context = multiprocessing.get_context(method)
    with context.Pool(3, initializer=setup) as workers:
        pending = workers.map_async(pool_task, range(6))
        record(out, "parent", *make_ids())
        results = pending.get(timeout=STUCK_S)
    made: dict[int, list[int]] = {}
    refused: dict[int, dict[str, str]] = {}
    for pid, ids, error, message in results:
        made.setdefault(pid, []).extend(ids)
        if error is not None:
            refused[pid] = {"error": error, "message": message}
    for pid, ids in made.items():
        write(out, pid, ids, {"role": "worker", "pid": pid, **refused.get(pid, {})})


def threads(out: Path, count: int) -> None:
    start = threading.Barrier(count)
    made: list[list[int]] = [[] for _ in range(count)]
    failures: list[Exception] = []

    def work(index: int) -> None:
        start.wait(STUCK_S)
        # Half the threads ask one ID at a time, half a few at once.
        ids, error = make_ids(batch=1 if index % 2 else 7)
        made[index] = ids
        if error is not None:
            failures.append(error)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(STUCK_S)
    record(out, "threads", [uid for ids in made for uid in ids], failures[0] if failures else None)


def main() -> None:
    signal.alarm(STUCK_S * 2)
    out, scenario, *args = sys.argv[1:]
    setup()
    folder = Path(out)
    if scenario == "c-fork":
        c_fork(folder, own=args == ["own"])
    elif scenario == "thread-fork":
        thread_fork(folder)
    elif scenario == "double-fork":
        double_fork(folder, idle=args == ["idle"])
    elif scenario == "pool":
        pool(folder, args[0])
    elif scenario == "threads":
        threads(folder, int(args[0]))
    else:
        sys.exit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main()
