"""Building generators from presets and the environment, and the module-level default."""

from __future__ import annotations

import atexit
import difflib
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .environ import int_from_env
from .errors import ConfigurationError, ConfigurationTypeError
from .generator import SnowflakeGenerator
from .hostclaim import NodeClaim, claim_node
from .marks import guard
from .presets import ALL_PRESETS, PRESET_MINIMAL, PRESET_TWITTER

PresetArg = Mapping[str, Any] | str | None


def resolve_preset(preset: PresetArg) -> dict[str, Any]:
    """A fresh dict of the widths of ``preset``: a mapping, a preset name, or None (twitter)."""
    if preset is None:
        return dict(PRESET_TWITTER)
    if isinstance(preset, str):
        try:
            return dict(ALL_PRESETS[preset])
        except KeyError:
            raise ConfigurationError(
                f"Unknown preset {preset!r}; choose one of {', '.join(ALL_PRESETS)}"
            ) from None
    if isinstance(preset, Mapping):
        return dict(preset)
    raise ConfigurationTypeError(
        f"preset must be a mapping, a preset name or None, got {type(preset).__name__}"
    )


_PARAMETERS = tuple(inspect.signature(SnowflakeGenerator).parameters)


def make_generator(preset: PresetArg = None, **overrides: Any) -> SnowflakeGenerator:
    """A generator from a preset (mapping, name, or None for twitter) plus keyword overrides."""
    options = {**resolve_preset(preset), **overrides}
    for key in options:
        if key not in _PARAMETERS:
            close = difflib.get_close_matches(key, _PARAMETERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationTypeError(f"unknown generator option {key!r}{hint}")
    return SnowflakeGenerator(**options)


def make_generator_from_env(
    preset: PresetArg = None,
    *,
    datacenter_env: str = "FLAKEID_DATACENTER_ID",
    machine_env: str = "FLAKEID_MACHINE_ID",
    epoch_env: str = "FLAKEID_EPOCH_MS",
    **overrides: Any,
) -> SnowflakeGenerator:
    """Like :func:`make_generator`, with node IDs and epoch read from environment variables.

    Explicit overrides win over the environment; unset variables fall back to the defaults.
    """
    from_env: dict[str, int] = {}
    for key, variable in (
        ("datacenter_id", datacenter_env),
        ("machine_id", machine_env),
        ("epoch_ms", epoch_env),
    ):
        value = int_from_env(variable)
        if value is not None:
            from_env[key] = value
    return make_generator(preset, **{**from_env, **overrides})


_lock = threading.Lock()
# The process that made _lock: a child forked without Python's fork hooks inherits it as it
# was, possibly held by a thread that does not exist in the child.
_lock_pid = os.getpid()
_default: SnowflakeGenerator | None = None
_default_claim: NodeClaim | None = None
_default_source: Callable[[], SnowflakeGenerator] | None = None


def set_default_source(source: Callable[[], SnowflakeGenerator] | None) -> None:
    """Make the module-level functions draw from ``source()`` (the Django app installs one)."""
    global _default_source
    _default_source = source


def default_generator() -> SnowflakeGenerator:
    """The generator behind the module-level :func:`next_id` and :func:`next_ids`."""
    if _default_source is not None:
        return _default_source()
    default = _default
    if default is None or default.inherited:
        default = _build_default()
    return default


def _build_default() -> SnowflakeGenerator:
    global _default, _default_claim
    if _lock_pid != os.getpid():
        _forget_default_after_fork()
    with _lock:
        if _default is not None and _default.inherited:
            # Its claim is the parent's: only this process's copy is let go.
            if _default_claim is not None:
                _default_claim.release()
            _default, _default_claim = None, None
        if _default is None:
            generator = make_generator(PRESET_MINIMAL)
            # The minimal layout has no node field, so only one process per host may use it;
            # a second one gets NodeInUseError rather than the first one's IDs.
            claim = claim_node(
                generator.layout,
                0,
                0,
                fix="For IDs from several processes, give each one a generator of its own "
                "with a distinct node, e.g. make_generator('twitter', machine_id=N).",
            )
            try:
                guard(generator, claim)
            except BaseException:
                claim.release()
                raise
            _default, _default_claim = generator, claim
        return _default


def _forget_default_after_fork() -> None:
    # The inherited generator refuses in the child; dropping it lets the child build its own,
    # which must then win a claim of its own.
    global _default, _default_claim, _lock, _lock_pid
    _default, _default_claim, _lock, _lock_pid = None, None, threading.Lock(), os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_default_after_fork)


@atexit.register
def _release_default_at_exit() -> None:
    # Lowers the node's mark to the last millisecond really stamped, so that the next process
    # does not wait out the second announced ahead.
    default, claim = _default, _default_claim
    if default is not None and claim is not None and not default.inherited:
        claim.release(default.stop_new_milliseconds())


def next_id() -> int:
    """One new ID from the default generator."""
    return default_generator().next_id()


def next_ids(count: int) -> list[int]:
    """``count`` new IDs from the default generator."""
    return default_generator().next_ids(count)
