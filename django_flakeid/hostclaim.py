"""Claims on a node identity among the processes of one host, held with ``flock``.

A claim is an exclusive lock on a small file named after the layout and the node. The kernel
drops it when the process exits, however it exits, so a crash never blocks a restart. A
process that forks keeps its claims; the child drops its inherited copies, so a child that
needs a node claims its own.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError, NodeInUseError
from .layout import Layout

LOCK_DIR_ENV = "FLAKEID_LOCK_DIR"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]


def default_lock_dir() -> Path:
    """``$FLAKEID_LOCK_DIR``, else ``django-flakeid`` in the system temporary folder."""
    configured = os.environ.get(LOCK_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "django-flakeid"


@dataclass(frozen=True)
class NodeClaim:
    """This process's hold on one (datacenter, machine) of one layout on this host."""

    datacenter_id: int
    machine_id: int
    path: Path
    fd: int

    def release(self) -> None:
        with _registry_lock:
            if _held.get(self.path) is self:
                del _held[self.path]
                os.close(self.fd)


_registry_lock = threading.Lock()
_held: dict[Path, NodeClaim] = {}


def _lock_path(lock_dir: Path, layout: Layout, datacenter_id: int, machine_id: int) -> Path:
    widths = "-".join(
        str(w)
        for w in (
            layout.timestamp_bits,
            layout.datacenter_bits,
            layout.machine_bits,
            layout.sequence_bits,
        )
    )
    return lock_dir / f"epoch{layout.epoch_ms}-bits{widths}-dc{datacenter_id}-m{machine_id}.lock"


def _ensure_dir(lock_dir: Path) -> None:
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        if lock_dir.stat().st_uid == os.geteuid():
            # Shared by every user of the host, like /tmp, so that their processes see each other.
            lock_dir.chmod(0o1777)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot use {lock_dir} for node claims ({exc.strerror}); set {LOCK_DIR_ENV} "
            "to a folder every process of this host can write"
        ) from exc


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


def try_claim(
    layout: Layout, datacenter_id: int, machine_id: int, lock_dir: Path | None = None
) -> NodeClaim | None:
    """Claim the node for this process; None when a live process (this one too) holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        raise ConfigurationError("node claims need flock(), which this platform lacks")
    directory = lock_dir or default_lock_dir()
    path = _lock_path(directory, layout, datacenter_id, machine_id)
    with _registry_lock:
        if path in _held:
            # Held by another generator of this very process: just as unsafe to share.
            return None
        _ensure_dir(directory)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            writable = True
        except PermissionError:
            # Another user's lock file: flock works on a read-only descriptor too.
            fd = os.open(path, os.O_RDONLY)
            writable = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return None
            raise
        if writable:
            record = f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n".encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        claim = NodeClaim(datacenter_id, machine_id, path, fd)
        _held[path] = claim
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
        path = _lock_path(lock_dir or default_lock_dir(), layout, datacenter_id, machine_id)
        raise NodeInUseError(
            f"datacenter_id={datacenter_id} machine_id={machine_id} is already generating IDs "
            f"on this host in {_holder(path)}; two processes with one node identity would "
            f"make the same IDs. {fix}"
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

    Only looks: a lock that is free is let go at once.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return []
    directory = lock_dir or default_lock_dir()
    held = []
    for machine_id in range(layout.max_machine_id + 1):
        path = _lock_path(directory, layout, datacenter_id, machine_id)
        if path in _held:
            held.append((machine_id, f"pid {os.getpid()} (this process)"))
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            held.append((machine_id, _holder(path)))
        finally:
            os.close(fd)
    return held


def _drop_inherited() -> None:
    # The parent still holds these locks; the child's copies must not keep them alive after
    # the parent exits, nor let the child think it owns them. The registry lock may have been
    # held by another parent thread at fork time, so the child starts a fresh one.
    global _registry_lock
    _registry_lock = threading.Lock()
    for claim in list(_held.values()):
        os.close(claim.fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited)
