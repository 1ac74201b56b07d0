"""The process's configuration and generator, built once from ``settings.FLAKEID``.

Reading and validating the setting is ``settings_reader``'s job; this module caches its result,
claims the node on first use, and forgets both when the setting changes, after fork, and at
exit. Nothing here touches settings at import time: a bad setting becomes a
:class:`ConfigurationError` only when an ID is actually requested.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import identity
from .errors import ConfigurationError
from .generator import SnowflakeGenerator
from .identity import Running
from .layout import Layout
from .settings_reader import (
    DEFAULT_LEASE_TTL,
    ENVIRONMENT_VARIABLES,
    MACHINE_WORDS,
    MAX_LEASE_TTL,
    MIN_LEASE_TTL,
    SETTING_KEYS,
    SETTING_NAME,
    Config,
    MachineMode,
    NodeIdentity,
    Problem,
    ProblemKind,
    Source,
    Sourced,
    validate,
)

if TYPE_CHECKING:
    from .leases import Lease

# What the reader defines is re-exported: code and projects import it from here.
__all__ = [
    "DEFAULT_LEASE_TTL",
    "ENVIRONMENT_VARIABLES",
    "MACHINE_WORDS",
    "MAX_LEASE_TTL",
    "MIN_LEASE_TTL",
    "SETTING_KEYS",
    "SETTING_NAME",
    "Config",
    "MachineMode",
    "NodeIdentity",
    "Problem",
    "ProblemKind",
    "Source",
    "Sourced",
    "clear_cache",
    "get_config",
    "get_generator",
    "get_layout",
    "get_running",
    "ids_as_strings",
    "validate",
]


class _State(NamedTuple):
    config: Config | None
    problems: list[Problem]


_lock = threading.Lock()
# The process that made _lock: a child forked without Python's fork hooks (uWSGI, a fork in C)
# inherits it as it was, possibly held by a thread that does not exist in the child.
_lock_pid = os.getpid()
_state: _State | None = None
_running: Running | None = None


def _invalid(problems: list[Problem]) -> ConfigurationError:
    first = problems[0].message.rstrip(".")
    more = len(problems) - 1
    also = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ConfigurationError(
        f"Invalid {SETTING_NAME}: {first}{also}. Run 'manage.py check' for details."
    )


def get_config() -> Config:
    """The configuration in ``settings.FLAKEID``, read once; raises :class:`ConfigurationError`.

    Unlike :func:`get_generator` it claims nothing.
    """
    global _state
    state = _state
    if state is None:
        with _lock:
            if _state is None:
                _state = _State(*validate())
            state = _state
    if state.config is None:
        raise _invalid(state.problems)
    return state.config


def get_running() -> Running:
    """The process's generator with its host claim or database lease, built on first use.

    A generator inherited through fork, by whatever means, is replaced by one of this
    process's own, under a claim of its own.
    """
    running = _running
    if running is None or running.generator.inherited:
        running = _start()
    return running


def _start() -> Running:
    global _running
    if _lock_pid != os.getpid():
        _forget_after_fork()
    config = get_config()
    with _lock:
        # Two threads racing here must not each build a generator: two generators with the
        # same node identity in one process would hand out the same IDs. A failed claim is
        # not kept, so the next request tries again.
        if _running is not None and _running.generator.inherited:
            _running.release()
            _running = None
        if _running is None:
            _running = identity.start(config, _forget_lost_lease)
        return _running


def get_generator() -> SnowflakeGenerator:
    """The process's generator, built from ``settings.FLAKEID`` on first use.

    Raises :class:`ConfigurationError` when the setting is invalid, and the claim's error
    (such as :class:`NodeInUseError`) when the node cannot be had.
    """
    return get_running().generator


def get_layout() -> Layout:
    """The bit layout and epoch from ``settings.FLAKEID``; raises :class:`ConfigurationError`."""
    return get_config().layout


def ids_as_strings() -> bool:
    """``FLAKEID['ids_as_strings']``: True (the default) to write IDs to JSON as strings.

    Read on each call rather than cached: it is one dict lookup, and it must not depend on the
    rest of the setting being valid. A value that is not a bool counts as the default; the
    checks report it.
    """
    setting = getattr(settings, SETTING_NAME, None)
    value = setting.get("ids_as_strings") if isinstance(setting, Mapping) else None
    return value is not False


def clear_cache() -> None:
    """Release the node and forget the generator, so the next use reads the setting again."""
    global _state, _running
    with _lock:
        # Released under the lock, so that no other thread can ask for the same node while
        # this process still holds it.
        if _running is not None:
            _running.release()
        _state, _running = None, None


def _forget_lost_lease(lease: Lease) -> None:
    # Called from the renewal thread: only the generator of that very lease is dropped.
    global _running
    with _lock:
        if _running is None or _running.lease is not lease:
            return
        # Callers still holding the generator learn why it stopped: the lease's own error.
        _running.release(lease.limit_error)
        _running = None


def _forget_after_fork() -> None:
    # The child's inherited generator refuses to run; dropping it lets the child build its own
    # under a claim of its own. Nothing is released: the claims and the lease are the parent's.
    global _state, _running, _lock, _lock_pid
    _state, _running, _lock, _lock_pid = None, None, threading.Lock(), os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _release_at_exit() -> None:
    # Lowers the node's marks to the last millisecond really stamped, so that the next holder
    # does not wait out the second announced ahead.
    running = _running
    if running is not None and not running.generator.inherited:
        running.release()


@receiver(setting_changed)
def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        clear_cache()
