"""Where a benchmark ran: stored beside its figures, since figures mean little without it."""

from __future__ import annotations

import csv
import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """E.g. ``Linux 6.1 x86_64, AMD EPYC, 2 CPUs, CPython 3.12.1``."""
    release = ".".join(platform.release().split(".")[:2])
    return (
        f"{platform.system()} {release} {platform.machine()}, {cpu_model()}, "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}"
    )


def today() -> str:
    """The UTC date, ISO-formatted."""
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def write_csv(rows: Sequence[Any], path: Path) -> None:
    """Write dataclass rows to ``path`` as CSV, one column per field, and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(rows[0])])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    print(f"wrote {path}")
