"""Telling a true integer from everything else that passes ``isinstance(value, int)``."""

from __future__ import annotations

from typing import TypeGuard

from .errors import ConfigurationTypeError


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an integer and not a bool.

    ``bool`` subclasses ``int`` in Python, so ``isinstance(True, int)`` holds; a width, node,
    count or ID of ``True`` is a mistake to report, not the number 1.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: object) -> int:
    """Return ``value`` as a plain int if it is a true integer, else raise a configuration error."""
    if not is_int(value):
        raise ConfigurationTypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        )
    return int(value)
