"""High-water marks: a node's holder stamps only after its predecessor's mark, and below its own.

A holder stores the last millisecond it may stamp (its mark) before stamping it, a little ahead
of the clock; whoever holds the node next starts above that mark. So a restart after the host
clock stepped back waits for the clock to pass the mark (or refuses) instead of stamping again
milliseconds already used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ClockBackwardsError

if TYPE_CHECKING:
    from .generator import SnowflakeGenerator
    from .hostclaim import NodeClaim

#: How far ahead of the clock a holder announces its mark: one write per second of activity,
#: and at most this long to wait for a successor whose clock did not move.
MARK_WINDOW_MS = 1_000
#: The longest a new holder waits for its clock to pass the previous holder's mark; beyond
#: it, the clock is taken to have stepped back and :class:`ClockBackwardsError` is raised.
MAX_CATCH_UP_MS = 5_000


def wall_ms() -> int:
    """The wall clock in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def catch_up(
    after_ms: int,
    describe: str,
    *,
    clock: Callable[[], int] | None = None,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Wait until the clock passes ``after_ms``, the mark of the node ``describe`` names.

    Raises :class:`ClockBackwardsError` when the clock is more than :data:`MAX_CATCH_UP_MS`
    behind the mark, or does not reach it within that time.
    """
    read = wall_ms if clock is None else clock
    pause = time.sleep if sleep is None else sleep
    waited = 0
    while True:
        now = read()
        lag = after_ms - now
        if lag < 0:
            return
        if lag > MAX_CATCH_UP_MS:
            raise ClockBackwardsError(
                f"this host's clock reads {now} ms, {lag} ms behind the high-water mark of "
                f"{describe} ({after_ms} ms), the last millisecond a previous holder may have "
                f"stamped; a clock more than {MAX_CATCH_UP_MS} ms behind is not waited for. "
                "Check NTP on this host; the node can be used again once the clock passes "
                "the mark."
            )
        if waited > MAX_CATCH_UP_MS:
            raise ClockBackwardsError(
                f"this host's clock has not passed the high-water mark of {describe} "
                f"({after_ms} ms) in {waited} ms of waiting; it reads {now} ms. Check the "
                "clock of this host."
            )
        pause((lag + 1) / 1000)
        waited += lag + 1


def guard(
    generator: SnowflakeGenerator,
    claim: NodeClaim,
    *,
    after_ms: int | None = None,
    cap: Callable[[int], int] | None = None,
) -> None:
    """Make ``generator`` stamp only above the node's mark, announcing its own as it goes.

    ``after_ms`` defaults to the claim's; ``cap(now)`` (a lease's) bounds each announcement
    or raises. The first announcement is made with the first ID, not before.
    """
    after = claim.after_ms if after_ms is None else after_ms
    catch_up(after, f"datacenter_id={claim.datacenter_id} machine_id={claim.machine_id}")

    def on_limit(now: int) -> int:
        until = now + MARK_WINDOW_MS
        if cap is not None:
            until = min(until, cap(now))
        claim.announce(until)
        return until

    generator.limit_window(after_ms=after, until_ms=after, on_limit=on_limit)
