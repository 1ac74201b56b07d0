"""Abstract Unix sockets as node claims (Linux): their names, and who listens on them.

An abstract socket lives in the network namespace rather than in a file system, so neither
``TMPDIR``, a private ``/tmp``, the working directory nor an ``rm -rf`` of the lock folder can
hide it from another claimer, and the kernel frees its name when the holder dies. The name
hashes the lock folder's path, so that only processes meeting in one folder compete for it, and
a prober that connects learns the holder's pid from the kernel, not from a file anyone can write.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import sys
from pathlib import Path

from .layout import Layout
from .lockfile import READ_LIMIT, layout_key, one_line

AVAILABLE = sys.platform.startswith("linux") and hasattr(socket, "AF_UNIX")
_PREFIX = "django-flakeid/"
_MAX_NAME = 107


def namespace(directory: Path) -> str:
    # The folder's path string, not its inode: processes that see different folders under
    # one path (a private /tmp) must still meet.
    digest = hashlib.sha256(os.fsencode(str(directory))).hexdigest()[:12]
    return f"{_PREFIX}{digest}/"


def key(layout: Layout) -> str:
    full = layout_key(layout)
    # Node numbers take at most 2 x 19 digits; a key that would not fit is hashed.
    if len(full) > _MAX_NAME - 1 - len(namespace(Path("/"))) - 40:
        return "#" + hashlib.sha256(full.encode()).hexdigest()[:16]
    return full


def name_for(directory: Path, layout: Layout, datacenter_id: int, machine_id: int) -> str:
    return f"{namespace(directory)}{key(layout)}/{datacenter_id}.{machine_id}"


def peer(name: str) -> str | None:
    """``pid N (command line)`` of the process listening on abstract socket ``name``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        probe.connect(b"\0" + name.encode())
        credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        probe.close()
    pid, uid, _ = struct.unpack("3i", credentials)
    if pid <= 0:
        # The holder lives in a pid namespace this process cannot see.
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as source:
            raw = source.read(READ_LIMIT)
    except OSError:
        raw = b""
    command = one_line(raw.replace(b"\0", b" ").decode(errors="replace"))
    return f"pid {pid} ({command})" if command else f"pid {pid} (uid {uid})"


def live_names(directory: Path) -> set[str]:
    """Names of the abstract sockets of ``directory``'s claims bound in this network namespace."""
    if not AVAILABLE:
        return set()
    try:
        with open("/proc/net/unix", "rb") as table:
            lines = table.read().splitlines()[1:]
    except OSError:
        return set()
    needle = b"@" + namespace(directory).encode()
    names = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[7].startswith(needle):
            names.add(fields[7][1:].decode(errors="replace"))
    return names
