"""Claims on a node identity among the processes of one host.

A claim is two kernel objects, and a process must win both:

- on Linux, an abstract Unix socket (:mod:`.claimsocket`) named after the lock folder, the
  layout and the node. It lives in the network namespace rather than in a file system, so
  neither ``TMPDIR``, a private ``/tmp``, the working directory nor an ``rm -rf`` of the lock
  folder can hide it; a prober that connects to it learns the holder's pid;
- an exclusive ``flock`` on the node's file (:mod:`.lockfile`) in the lock folder
  (:mod:`.lockdir`): the meeting place of processes that share the folder from other network
  namespaces, the only one on other systems, and the home of the node's high-water mark
  (:mod:`.marks`).

The kernel drops both when the process exits, however it exits, so a crash never blocks a
restart. Only one layout may be live in a lock folder at a time: the IDs of two layouts overlap
whatever their nodes. A forked child never keeps its parent's claims alive, whether or not the
fork ran Python's fork hooks.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from . import claimsocket, lockdir, lockfile
from .errors import ConfigurationError, FlakeIDError, ForkedProcessError, NodeInUseError
from .layout import Layout
from .lockdir import LOCK_DIR_ENV, default_lock_dir

__all__ = [
    "LOCK_DIR_ENV",
    "NodeClaim",
    "claim_free_machine",
    "claim_node",
    "default_lock_dir",
    "held_on_host",
    "try_claim",
]

# Probers that connect to learn the holder queue up until the holder accepts; a full queue
# only makes later probers fall back to the lock file's text.
_BACKLOG = 8


class NodeClaim:
    """This process's hold on one (datacenter, machine) of one layout on this host."""

    def __init__(
        self,
        layout: Layout,
        datacenter_id: int,
        machine_id: int,
        path: Path,
        *,
        fd: int,
        sock: socket.socket | None,
        mark: int,
    ) -> None:
        self.layout = layout
        self.datacenter_id = datacenter_id
        self.machine_id = machine_id
        self.path = path
        #: The highest mark found for this node (and for the other layouts of the lock folder)
        #: when it was claimed: this holder stamps only later milliseconds.
        self.after_ms = mark
        self._fd = fd
        self._sock = sock
        self._mark = mark
        self._pid = os.getpid()
        self._open = True
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"NodeClaim(datacenter_id={self.datacenter_id}, machine_id={self.machine_id}, "
            f"path={str(self.path)!r}, after_ms={self.after_ms})"
        )

    def announce(self, until_ms: int) -> None:
        """Store ``until_ms`` as the node's mark, before stamping any millisecond up to it.

        The mark never moves back. A lock file deleted or replaced since the claim is created
        again, under this claim's lock, first. Raises a :class:`FlakeIDError` when the mark
        cannot be stored.
        """
        if self._pid != os.getpid():
            raise ForkedProcessError(
                f"the claim on datacenter_id={self.datacenter_id} "
                f"machine_id={self.machine_id} belongs to process {self._pid}; process "
                f"{os.getpid()} inherited it through fork() and must claim a node of its own"
            )
        with self._lock:
            if not self._open:
                raise FlakeIDError(
                    f"the claim on datacenter_id={self.datacenter_id} "
                    f"machine_id={self.machine_id} was released; claim the node again"
                )
            self._drain_probes()
            self._ensure_file()
            if until_ms > self._mark:
                self._store(until_ms)

    def release(self, reached_ms: int | None = None) -> None:
        """Give the node back; ``reached_ms``, the last millisecond really stamped, lowers the mark.

        The mark only moves down, and never below :attr:`after_ms`. In a process that
        inherited the claim through fork, this only closes that process's copies: the node
        stays the parent's.
        """
        with _registry() as held:
            if held.get(self.path) is not self:
                return
            del held[self.path]
            with self._lock:
                if reached_ms is not None:
                    # Best effort: a mark that cannot be lowered stays where it was, which
                    # only makes the next holder wait a little. Never raised: a generator that
                    # stamped nothing reports a millisecond before its epoch, which may be
                    # ahead of the clock.
                    with suppress(OSError, FlakeIDError):
                        self._ensure_file()
                        self._store(min(self._mark, max(self.after_ms, reached_ms)))
                self._close()

    def _store(self, mark: int) -> None:
        try:
            os.pwrite(self._fd, lockfile.mark_field(mark), 0)
        except OSError as exc:
            raise FlakeIDError(
                f"cannot store the high-water mark of datacenter_id={self.datacenter_id} "
                f"machine_id={self.machine_id} in {self.path} ({exc.strerror}); no ID is made "
                "past the last mark stored"
            ) from exc
        self._mark = mark

    def _ensure_file(self) -> None:
        try:
            current = os.lstat(self.path)
            mine = os.fstat(self._fd)
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                return
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise FlakeIDError(f"cannot check the lock file {self.path} ({exc.strerror})") from exc
        # Deleted (tmpreaper, an rm -rf) or replaced: a process sharing the folder from
        # another network namespace would meet a new file, so the claim moves to one.
        lockdir.prepare(self.path.parent)
        fd = lockfile.open_rw(self.path)
        try:
            if not lockfile.lock_exclusive(fd):
                holder = lockfile.parse(lockfile.read(fd))[1] or "another process"
                raise NodeInUseError(
                    f"the lock file of datacenter_id={self.datacenter_id} "
                    f"machine_id={self.machine_id} was deleted while this process held the "
                    f"node, and {holder} has claimed it since; this process makes no more IDs "
                    "with it"
                )
            mark = max(self._mark, lockfile.parse(lockfile.read(fd))[0] or 0)
            lockfile.rewrite(fd, mark)
        except OSError as exc:
            os.close(fd)
            raise FlakeIDError(
                f"cannot create the lock file {self.path} again ({exc.strerror}); no ID is "
                "made past the last mark stored"
            ) from exc
        except BaseException:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd, self._mark = fd, mark

    def _drain_probes(self) -> None:
        if self._sock is None:
            return
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            connection.close()

    def _close(self) -> None:
        # Closing never unlocks: after a fork the parent's lock is the same open file, and
        # the copies going away leaves it held.
        if self._open:
            self._open = False
            os.close(self._fd)
            if self._sock is not None:
                self._sock.close()


# Claims held by this process, by lock file. A child forked without Python's hooks finds the
# parent's here and its registry lock in whatever state the fork caught it.
_held: dict[Path, NodeClaim] = {}
_owner = os.getpid()
_locks: dict[int, threading.Lock] = {}


@contextmanager
def _registry() -> Iterator[dict[Path, NodeClaim]]:
    global _owner
    pid = os.getpid()
    # setdefault is atomic: the threads of a forked child agree on one fresh lock and never
    # wait for one that a parent thread held at fork time.
    lock = _locks.get(pid) or _locks.setdefault(pid, threading.Lock())
    with lock:
        if _owner != pid:
            for claim in _held.values():
                claim._close()
            _held.clear()
            for other in [key for key in _locks if key != pid]:
                _locks.pop(other, None)
            _owner = pid
        yield _held


def try_claim(
    layout: Layout, datacenter_id: int, machine_id: int, lock_dir: Path | None = None
) -> NodeClaim | None:
    """Claim the node for this process; None when a live process (this one too) holds it.

    Raises :class:`NodeInUseError` when a process of another layout is live in the lock
    folder, and :class:`ConfigurationError` when the folder is unsafe or unusable.
    """
    if not lockfile.AVAILABLE:  # pragma: no cover - Windows
        raise ConfigurationError("node claims need flock(), which this platform lacks")
    with _registry() as held:
        directory = lockdir.prepare(lock_dir)
        path = directory / lockfile.file_name(layout, datacenter_id, machine_id)
        if path in held:
            # Held by another generator of this very process: just as unsafe to share.
            return None
        claim = _take(directory, path, layout, datacenter_id, machine_id)
        if claim is None:
            return None
        try:
            claim.after_ms = _check_other_layouts(directory, layout, claim.after_ms)
            lockfile.rewrite(claim._fd, claim.after_ms)
        except BaseException:
            claim._close()
            raise
        claim._mark = claim.after_ms
        held[path] = claim
        return claim


def claim_node(
    layout: Layout,
    datacenter_id: int,
    machine_id: int,
    lock_dir: Path | None = None,
    *,
    fix: str = "Give each process its own machine_id.",
) -> NodeClaim:
    """Claim a static node identity, or raise :class:`NodeInUseError` naming its holder."""
    claim = try_claim(layout, datacenter_id, machine_id, lock_dir)
    if claim is None:
        directory = lockdir.prepare(lock_dir)
        raise NodeInUseError(
            f"datacenter_id={datacenter_id} machine_id={machine_id} is already generating IDs "
            f"on this host in {_holder(directory, layout, datacenter_id, machine_id)}; two "
            f"processes with one node identity would make the same IDs. {fix}"
        )
    return claim


def claim_free_machine(
    layout: Layout, datacenter_id: int, lock_dir: Path | None = None
) -> NodeClaim:
    """Claim the lowest machine ID of the datacenter that no live process on this host holds."""
    for machine_id in range(layout.max_machine_id + 1):
        claim = try_claim(layout, datacenter_id, machine_id, lock_dir)
        if claim is not None:
            return claim
    raise NodeInUseError(
        f"all {layout.max_machine_id + 1} machine IDs of datacenter {datacenter_id} are in use "
        "by live processes on this host; run fewer processes, or use a layout with more "
        "machine_bits"
    )


def held_on_host(
    layout: Layout, datacenter_id: int, lock_dir: Path | None = None
) -> list[tuple[int, str]]:
    """The machine IDs of the datacenter that live processes of this host hold, with holders.

    Only looks: nothing is created, and a lock file found free is let go at once.
    """
    if not lockfile.AVAILABLE:  # pragma: no cover - Windows
        return []
    directory = default_lock_dir() if lock_dir is None else Path(os.path.normpath(lock_dir))
    with _registry() as mine:
        found = {
            claim.machine_id: f"pid {os.getpid()} (this process)"
            for path, claim in mine.items()
            if path == directory / lockfile.file_name(layout, datacenter_id, claim.machine_id)
        }
    prefix = f"{claimsocket.namespace(directory)}{claimsocket.key(layout)}/{datacenter_id}."
    for name in claimsocket.live_names(directory):
        digits = name[len(prefix) :] if name.startswith(prefix) else ""
        if digits.isdigit() and int(digits) not in found:
            path = directory / lockfile.file_name(layout, datacenter_id, int(digits))
            found[int(digits)] = (
                claimsocket.peer(name) or lockfile.holder(path) or "another process"
            )
    key = lockfile.layout_key(layout)
    for entry in lockfile.list_names(directory):
        match = lockfile.FILE_NAME.fullmatch(entry)
        if match is None or lockfile.file_key(match) != key or int(match[3]) != datacenter_id:
            continue
        machine = int(match[4])
        if machine not in found and lockfile.is_held(directory / entry):
            found[machine] = lockfile.holder(directory / entry) or "another process"
    return sorted(found.items())


def _take(
    directory: Path, path: Path, layout: Layout, datacenter_id: int, machine_id: int
) -> NodeClaim | None:
    sock: socket.socket | None = None
    if claimsocket.AVAILABLE:
        name = claimsocket.name_for(directory, layout, datacenter_id, machine_id)
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:
            # A sandbox without Unix sockets: the lock file alone decides, as on macOS.
            sock = None
        if sock is not None:
            try:
                sock.bind(b"\0" + name.encode())
                sock.listen(_BACKLOG)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    return None
                raise
            sock.setblocking(False)
    try:
        fd = lockfile.open_rw(path)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    if not lockfile.lock_exclusive(fd):
        os.close(fd)
        if sock is not None:
            sock.close()
        return None
    mark = lockfile.parse(lockfile.read(fd))[0]
    return NodeClaim(layout, datacenter_id, machine_id, path, fd=fd, sock=sock, mark=mark or 0)


def _check_other_layouts(directory: Path, layout: Layout, after_ms: int) -> int:
    """The highest mark of the folder's other layouts (and ``after_ms``), if none is live.

    Called once this process holds its own claim, so that two layouts starting at the same
    moment see each other: one or both give up, never neither.
    """
    live: list[str] = []
    own_key = claimsocket.key(layout)
    namespace = claimsocket.namespace(directory)
    for name in sorted(claimsocket.live_names(directory)):
        key, _, node = name[len(namespace) :].rpartition("/")
        if key != own_key:
            live.append(
                f"{_describe_layout(key)} node {node} ({claimsocket.peer(name) or 'its holder'})"
            )
    key = lockfile.layout_key(layout)
    highest = after_ms
    for entry in lockfile.list_names(directory):
        match = lockfile.FILE_NAME.fullmatch(entry)
        if match is None or lockfile.file_key(match) == key:
            continue
        try:
            fd = os.open(directory / entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            data = lockfile.read(fd)
            highest = max(highest, lockfile.parse(data)[0] or 0)
            if not live and not lockfile.try_shared(fd):
                holder = lockfile.parse(data)[1] or "its holder"
                other = _describe_layout(lockfile.file_key(match))
                live.append(f"{other} node {match[3]}.{match[4]} ({holder})")
        finally:
            os.close(fd)
    if live:
        more = f" and {len(live) - 1} more" if len(live) > 1 else ""
        raise NodeInUseError(
            f"a process of another layout is generating IDs on this host: {live[0]}{more}. "
            "The IDs of two layouts overlap whatever their nodes, so they must not run at "
            "once. To change the layout, stop every process of the old one first; projects "
            f"whose IDs never meet can each set {LOCK_DIR_ENV} to a folder of their own."
        )
    return highest


def _holder(directory: Path, layout: Layout, datacenter_id: int, machine_id: int) -> str:
    path = directory / lockfile.file_name(layout, datacenter_id, machine_id)
    with _registry() as held:
        if path in held:
            return f"pid {os.getpid()} (this process)"
    if claimsocket.AVAILABLE:
        peer = claimsocket.peer(claimsocket.name_for(directory, layout, datacenter_id, machine_id))
        if peer is not None:
            return peer
    return lockfile.holder(path) or "another process"


def _describe_layout(key: str) -> str:
    widths, _, epoch = key.partition("@")
    if not epoch:
        return "another layout"
    return (
        f"layout {widths.replace('-', '/')} (timestamp/datacenter/machine/sequence bits, "
        f"epoch_ms={epoch})"
    )


def _drop_inherited() -> None:
    with _registry():
        pass


if hasattr(os, "register_at_fork"):
    # Forks that skip this hook are caught by the next call into this module instead.
    os.register_at_fork(after_in_child=_drop_inherited)
