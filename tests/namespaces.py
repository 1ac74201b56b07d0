"""Command prefixes that run a process with a private ``/tmp``, as systemd's PrivateTmp does.

The interpreter, its virtualenv and the checkout may themselves live in ``/tmp`` (CI makes its
virtualenv with ``mktemp -d``): those folders stay visible inside, bound from the host's
``/tmp`` through a descriptor opened before the private one hides it (``mount`` must not
canonicalize that path: it would resolve to the new, empty ``/tmp``). Everything else in
``/tmp``, claim folders included, is the process's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
exec 3</tmp
mount -t tmpfs private-tmp /tmp || exit 97
for kept in {kept}; do
    [ -n "$kept" ] || continue
    mkdir -p "/tmp/$kept" || exit 98
    mount --no-canonicalize --bind "/proc/self/fd/3/$kept" "/tmp/$kept" || exit 98
done
{dev_shm}exec 3<&- "$@"
"""


def _under_tmp() -> list[str]:
    """The first folders below /tmp that hold the interpreter, its prefixes or the checkout."""
    kept = set()
    for path in (sys.executable, sys.prefix, sys.base_prefix, str(ROOT)):
        parts = Path(os.path.realpath(path)).parts
        if len(parts) > 2 and parts[:2] == ("/", "tmp"):
            kept.add(parts[2])
    return sorted(kept)


def private_tmp(*, dev_shm: bool = False) -> list[str]:
    """``unshare --mount`` with a tmpfs on /tmp (and on /dev/shm if asked), then the command."""
    script = _SCRIPT.format(
        kept=" ".join(f"'{name}'" for name in _under_tmp()) or '""',
        dev_shm="mount -t tmpfs private-shm /dev/shm || exit 99\n" if dev_shm else "",
    )
    return ["unshare", "--mount", "sh", "-c", script, "sh"]
