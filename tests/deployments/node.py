"""A process that makes IDs on command, for tests that run several side by side.

``python -m tests.deployments.node``: with ``DJANGO_SETTINGS_MODULE`` set, Django is set up and
``django_flakeid.next_ids()`` follows its FLAKEID setting; without it, the plain-Python default
generator is used. Prints ``{"pid": ...}`` once ready, then answers each command read from
stdin with one JSON line:

- ``claim``: make one ID, which makes the process take its node.
- ``for SECONDS``: make IDs, a few at a time, for that long.
- ``until UNIX_MS``: make IDs until this process's clock passes that millisecond.
- ``flush``: empty every table, as ``manage.py flush`` does.

Answers carry the IDs made (``ids``) and, when the library refused, the error's class name
and message; IDs made before a refusal are kept.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

# Paced rather than flat out: a few IDs in most milliseconds is enough for two processes that
# share a node to repeat each other, and keeps the answers small.
BATCH = 16
PAUSE_S = 0.0005
# No command runs longer than this, whatever its argument.
LONGEST_S = 15.0


def make_ids(done: Callable[[], bool]) -> dict[str, object]:
    import django_flakeid

    ids: list[int] = []
    deadline = time.monotonic() + LONGEST_S
    try:
        while time.monotonic() < deadline:
            ids.extend(django_flakeid.next_ids(BATCH))
            if done():
                break
            time.sleep(PAUSE_S)
    except Exception as error:
        return {"ids": ids, "error": type(error).__name__, "message": str(error)}
    return {"ids": ids}


def answer(command: str) -> dict[str, object]:
    import django_flakeid

    name, _, argument = command.partition(" ")
    if name == "claim":
        try:
            return {"ids": [django_flakeid.next_id()]}
        except Exception as error:
            return {"ids": [], "error": type(error).__name__, "message": str(error)}
    if name == "for":
        end = time.monotonic() + float(argument)
        return make_ids(lambda: time.monotonic() >= end)
    if name == "flush":
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)
        return {"ids": []}
    if name == "until":
        last = int(argument)
        return make_ids(lambda: time.time_ns() // 1_000_000 > last)
    return {"error": "UnknownCommand", "message": command}


def main() -> None:
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        import django

        django.setup()
    print(json.dumps({"pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        print(json.dumps(answer(line.strip())), flush=True)


if __name__ == "__main__":
    main()
