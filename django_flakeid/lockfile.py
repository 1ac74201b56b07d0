"""A node's lock file: its name, the ``flock`` that claims it, and the mark and holder it records.

Processes that share the lock folder (:mod:`.lockdir`) but not a network namespace meet only
here, and on systems without abstract sockets so does everyone. The file outlives its holder on
purpose: the next holder starts above the mark it records (:mod:`.marks`), and a refused process
can name who holds the node. The folder may be writable by every user, so only a regular file,
never a symlink, is opened for writing.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import time
from pathlib import Path

from .errors import ConfigurationError
from .layout import Layout
from .lockdir import LOCK_DIR_ENV

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

AVAILABLE = fcntl is not None

# A lock file starts with the mark, fixed-width so that one pwrite replaces it whole, then
# names its holder.
_MARK_DIGITS = 20
_HOLDER_AT = _MARK_DIGITS + 1
_MAX_MARK = 10**_MARK_DIGITS - 1
READ_LIMIT = 4096

# Probes of a lock file (held_on_host, other layouts) hold a shared lock for a few
# microseconds; a claimer retries rather than take a probe for a holder.
_LOCK_ATTEMPTS = 3
_LOCK_RETRY_S = 0.002
FILE_NAME = re.compile(r"epoch(\d+)-bits(\d+-\d+-\d+-\d+)-dc(\d+)-m(\d+)\.lock")


def list_names(directory: Path) -> list[str]:
    try:
        return [name for name in os.listdir(directory) if name.endswith(".lock")]
    except OSError:
        return []


def is_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return not try_shared(fd)
    finally:
        os.close(fd)


def try_shared(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    return True


def lock_exclusive(fd: int) -> bool:
    for attempt in range(_LOCK_ATTEMPTS):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
        else:
            return True
        if attempt + 1 < _LOCK_ATTEMPTS:
            time.sleep(_LOCK_RETRY_S)
    return False


def open_rw(path: Path) -> int:
    # O_NOFOLLOW: in a folder every user can write, a symlink planted under a lock file's name
    # must not make this process write its mark into a file of the planter's choosing.
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot open the lock file {path} for writing ({exc.strerror}); it holds the "
            "node's high-water mark. Remove it (its owner or root can), or set "
            f"{LOCK_DIR_ENV} to another folder."
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ConfigurationError(
            f"{path} is not a regular file; remove it, or set {LOCK_DIR_ENV} to another folder"
        )
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != 0o666:
        # Whichever user's process holds the node next must be able to store its mark.
        os.fchmod(fd, 0o666)
    return fd


def read(fd: int) -> bytes:
    try:
        return os.pread(fd, READ_LIMIT, 0)
    except OSError:
        return b""


def parse(data: bytes) -> tuple[int | None, str]:
    """The mark (None when missing or unreadable) and the holder's text of a lock file."""
    head = data[:_MARK_DIGITS]
    if len(head) == _MARK_DIGITS and head.isdigit() and data[_MARK_DIGITS:_HOLDER_AT] == b"\n":
        return int(head), data[_HOLDER_AT:].decode(errors="replace").strip()
    return None, data.replace(b"\0", b"").decode(errors="replace").strip()


def holder(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        return parse(read(fd))[1]
    finally:
        os.close(fd)


def mark_field(mark: int) -> bytes:
    return f"{min(max(mark, 0), _MAX_MARK):0{_MARK_DIGITS}d}\n".encode()


def rewrite(fd: int, mark: int) -> None:
    """Store ``mark`` and name this process as the holder."""
    record = mark_field(mark) + f"pid {os.getpid()} ({one_line(' '.join(sys.argv))})\n".encode()
    os.pwrite(fd, record, 0)
    os.ftruncate(fd, len(record))


def one_line(command: str) -> str:
    return " ".join(command.split())[:200]


def layout_key(layout: Layout) -> str:
    return layout.key


def file_key(match: re.Match[str]) -> str:
    return f"{match[2]}@{match[1]}"


def file_name(layout: Layout, datacenter_id: int, machine_id: int) -> str:
    widths = layout.key.partition("@")[0]
    return f"epoch{layout.epoch_ms}-bits{widths}-dc{datacenter_id}-m{machine_id}.lock"
