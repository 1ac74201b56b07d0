"""Reading integers from environment variables, with errors that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .errors import ConfigurationError

# ASCII digits only: str.isdigit() and int() also accept other scripts' digits ("١٢" is 12),
# which nobody means to write into a node ID.
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)


def int_from_env(name: str, environ: Mapping[str, str] | None = None) -> int | None:
    """The integer in environment variable ``name``, or None when it is unset."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer")
    try:
        return int(raw)
    except ValueError:
        # Past Python's limit on integer digits (4,300 by default): no node ID or epoch is
        # that long, so it is a mistake, not a number to honour.
        shown = raw if len(raw) <= 40 else f"{raw[:20]}...{raw[-10:]}"
        raise ConfigurationError(
            f"environment variable {name}={shown!r} is not an integer: it has {len(raw)} characters"
        ) from None
