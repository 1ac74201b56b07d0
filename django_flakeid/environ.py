"""Reading integers from environment variables, with errors that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .errors import ConfigurationError

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


def int_from_env(name: str, environ: Mapping[str, str] | None = None) -> int | None:
    """The integer in environment variable ``name``, or None when it is unset."""
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer")
    return int(raw)
