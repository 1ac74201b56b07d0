"""Progress of a long job, shown as a bar on a terminal and as plain lines in a log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class _CommandStream(Protocol):
    # What Django's OutputWrapper (a command's stdout and stderr) offers.
    def write(self, msg: str = "", style_func: None = None, ending: str | None = None) -> None: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


@dataclass(frozen=True)
class Progress:
    """Rows done out of ``total`` after ``elapsed`` seconds."""

    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None before there is a rate."""
        if self.done >= self.total:
            return 0.0
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def describe(self) -> str:
        """``40,000/100,000 rows (40%), 25,000 rows/s, ETA 0:00:02``."""
        percent = 100 * self.done // self.total if self.total else 100
        eta = self.eta
        return (
            f"{self.done:,}/{self.total:,} rows ({percent}%), {self.rate:,.0f} rows/s, "
            f"ETA {'?' if eta is None else dt.timedelta(seconds=round(eta))}"
        )


class ProgressDisplay:
    """Writes progress to a terminal as one bar redrawn in place, or elsewhere as lines.

    ``write`` receives text with its own line endings. A terminal is redrawn at most every
    ``refresh`` seconds, a log gets a line at most every ``every`` seconds (and none before
    the first row is done); the last update, all rows done, is always shown.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        tty: bool,
        width: int = 30,
        refresh: float = 0.1,
        every: float = 5.0,
    ) -> None:
        self.write = write
        self.tty = tty
        self.width = width
        self.interval = refresh if tty else every
        self.shown_at: float | None = None
        self.drawn = False

    @classmethod
    def on(cls, stream: _CommandStream) -> ProgressDisplay:
        """A display on a management command's output, flushed at every write."""

        def write(text: str) -> None:
            stream.write(text, ending="")
            stream.flush()

        return cls(write, tty=stream.isatty())

    def announcing(self, announce: Callable[[Progress], None]) -> Callable[[Progress], None]:
        """A progress callback that calls ``announce`` with the first progress, then shows it."""
        announced = False

        def report(progress: Progress) -> None:
            nonlocal announced
            if not announced:
                announce(progress)
                announced = True
            self.update(progress)

        return report

    def update(self, progress: Progress) -> None:
        final = progress.done >= progress.total
        if not self.tty and not progress.done:
            # A log has the count from the line before; "0 rows" adds nothing.
            return
        if (
            not final
            and self.shown_at is not None
            and progress.elapsed - self.shown_at < self.interval
        ):
            return
        self.shown_at = progress.elapsed
        if self.tty:
            self.write(f"\r{self.bar(progress)} {progress.describe()}\033[K")
            self.drawn = True
        else:
            self.write(progress.describe() + "\n")

    def close(self) -> None:
        """End the bar's line, so that what follows starts on a line of its own."""
        if self.drawn:
            self.write("\n")
            self.drawn = False

    def bar(self, progress: Progress) -> str:
        filled = self.width * progress.done // progress.total if progress.total else self.width
        filled = min(filled, self.width)
        return f"[{'#' * filled}{'-' * (self.width - filled)}]"
