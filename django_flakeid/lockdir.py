"""The folder of host claims: where it is, and whether it is safe to hold claims in.

Every process of a host must find the same folder whatever its ``TMPDIR`` or private ``/tmp``,
so the default is a fixed path, never the temporary folder of the environment. Whoever owns
the folder can delete live holders' lock files or hold every node, so a folder that another
user owns, or that others may write without the sticky bit, is refused.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from .errors import ConfigurationError

LOCK_DIR_ENV = "FLAKEID_LOCK_DIR"
_FOLDER_NAME = "django-flakeid"
_SHARED_MODE = 0o1777

#: A problem with the lock folder: the message, then the fix.
Problem = tuple[str, str]


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$FLAKEID_LOCK_DIR`` (an absolute path), else a fixed folder shared by the whole host.

    The fixed folder is ``/dev/shm/django-flakeid`` on Linux and ``/tmp/django-flakeid``
    elsewhere; ``TMPDIR`` is ignored, so that every process of the host finds it.
    """
    configured = (os.environ if environ is None else environ).get(LOCK_DIR_ENV)
    if configured:
        if not os.path.isabs(configured):
            message, fix = _relative(configured)
            raise ConfigurationError(f"{message}; {fix}")
        return Path(os.path.normpath(configured))
    if sys.platform.startswith("linux") and os.path.isdir("/dev/shm"):
        return Path("/dev/shm") / _FOLDER_NAME
    return Path("/tmp") / _FOLDER_NAME


def problem(environ: Mapping[str, str] | None = None) -> Problem | None:
    """What is wrong with the configured lock folder, as (message, hint), or None.

    Only looks: nothing is created. A folder that does not exist yet is fine when it can be
    created.
    """
    configured = (os.environ if environ is None else environ).get(LOCK_DIR_ENV)
    if configured and not os.path.isabs(configured):
        return _relative(configured)
    directory = default_lock_dir(environ)
    if os.path.lexists(directory):
        return _inspect(directory)
    parent = directory.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not os.path.isdir(parent) or not _writable(parent):
        return (
            f"the folder of host claims {directory} does not exist and this process (uid "
            f"{os.geteuid()}) cannot create it in {parent}",
            _fix(),
        )
    return None


def prepare(lock_dir: Path | None = None) -> Path:
    """The lock folder (``default_lock_dir()`` unless given), created if missing and checked.

    Raises :class:`ConfigurationError` naming the cause and the fix when it is unsafe or
    unusable.
    """
    directory = default_lock_dir() if lock_dir is None else Path(os.path.normpath(lock_dir))
    if not directory.is_absolute():
        raise ConfigurationError(
            f"the folder of host claims must be an absolute path, got {str(directory)!r}"
        )
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the folder of host claims {directory} ({exc.strerror}); {_fix()}"
        ) from exc
    else:
        # Shared by every user of the host, like /tmp, so that their processes see each
        # other; the sticky bit keeps them from deleting each other's lock files.
        with suppress(OSError):
            directory.chmod(_SHARED_MODE)
    found = _inspect(directory)
    if found is not None:
        raise ConfigurationError(f"{found[0]}; {found[1]}")
    return directory


def _inspect(directory: Path) -> Problem | None:
    try:
        link = os.lstat(directory)
        # Followed on purpose: a symlink to someone else's folder is theirs to tamper with.
        info = os.stat(directory)
    except OSError as exc:
        return (f"cannot use the folder of host claims {directory} ({exc.strerror})", _fix())
    mode = stat.S_IMODE(info.st_mode)
    where = f"the folder of host claims {directory}"
    if stat.S_ISLNK(link.st_mode) and not _trusted(link.st_uid):
        found = (
            f"{where} is a symlink owned by {_user(link.st_uid)}, another user, who could "
            "point it elsewhere at any time",
            f"remove it (as root) or {_fix()}",
        )
    elif not stat.S_ISDIR(info.st_mode):
        found = (f"{where} is not a folder", _fix())
    elif not _trusted(info.st_uid):
        found = (
            f"{where} belongs to {_user(info.st_uid)}, another user, who could delete live "
            "processes' lock files or hold every node",
            f"remove it (as root) or {_fix()}",
        )
    elif mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        found = (
            f"{where} is writable by other users without the sticky bit (mode {mode:04o}), "
            "so any of them could delete a live process's lock file",
            f"run 'chmod +t {directory}', or {_fix()}",
        )
    elif not _writable(directory):
        found = (f"this process (uid {os.geteuid()}) cannot write to {where}", _fix())
    else:
        return None
    return found


def _relative(configured: str) -> Problem:
    return (
        f"{LOCK_DIR_ENV}={configured!r} is not an absolute path, so processes started in "
        "different folders would not meet",
        f"set {LOCK_DIR_ENV} to an absolute path, or unset it to use {default_lock_dir({})}",
    )


def _fix() -> str:
    return (
        f"set {LOCK_DIR_ENV} to a folder owned by root or by this user (uid {os.geteuid()}) that "
        "every process of this host can write, with the sticky bit if others may write it"
    )


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _writable(directory: Path) -> bool:
    return os.access(
        directory,
        os.W_OK | os.X_OK,
        effective_ids=os.access in os.supports_effective_ids,
    )


def _user(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"
