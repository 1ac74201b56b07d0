"""Leased machine IDs: each process claims a free machine ID of its datacenter in the database.

Claims are conditional UPDATEs, so the database decides who wins; expiry is judged by the
database's clock. Each renewal announces a high-water mark, the last millisecond the holder may
stamp, *before* the holder may stamp it; whoever takes an expired machine ID over stamps only
later milliseconds. Two holders of one machine ID therefore never share a millisecond, whatever
their clocks say, and a holder that cannot renew stops at its mark (fail closed).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Greatest, Now

from .errors import ClockBackwardsError, FlakeIDError, LeaseError, NodeInUseError
from .generator import SnowflakeGenerator
from .layout import Layout
from .models import NodeLease

logger = logging.getLogger("django_flakeid.leases")

DEFAULT_TTL_SECONDS = 30
# A new holder whose clock is behind the previous holder's mark waits for it, up to this long.
MAX_CATCH_UP_MS = 5_000


def layout_key(layout: Layout) -> str:
    return (
        f"{layout.timestamp_bits}-{layout.datacenter_bits}-{layout.machine_bits}-"
        f"{layout.sequence_bits}@{layout.epoch_ms}"
    )


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _expires_in(ttl_seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + Value(timedelta(seconds=ttl_seconds)), DateTimeField())


@dataclass
class Lease:
    """This process's hold on one machine ID, renewed by a daemon thread."""

    layout: Layout
    datacenter_id: int
    machine_id: int
    row_id: int
    holder: str
    using: str
    ttl_seconds: float
    #: The previous holder's mark: this holder stamps only later milliseconds.
    after_ms: int
    #: The last millisecond this holder has announced, and so may stamp.
    until_ms: int
    pid: int = field(default_factory=os.getpid)
    lost: bool = False
    #: Called from the renewal thread when another process has taken the machine ID over.
    on_lost: Callable[[], None] | None = None
    last_error: str | None = None
    last_renewed_monotonic: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    # Renewal and release must not interleave: a renewal landing after a release would let
    # the generators stamp past the mark the release stored.
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _generators: list[SnowflakeGenerator] = field(default_factory=list)

    def limit_error(self, now: int) -> FlakeIDError:
        if self.lost:
            reason = "was taken over by another process after it expired"
        elif self._stop.is_set():
            reason = "was released because the process is shutting down"
        else:
            since = time.monotonic() - self.last_renewed_monotonic
            reason = f"has not been renewed for {since:.1f} s ({self.last_error or 'no answer'})"
        return LeaseError(
            f"the lease on datacenter {self.datacenter_id} machine {self.machine_id} {reason}; "
            f"IDs stop at its last announced millisecond ({self.until_ms}) so that no other "
            f"process can repeat them, and resume once database '{self.using}' renews it"
        )

    def attach(self, generator: SnowflakeGenerator) -> None:
        generator.limit_window(
            after_ms=self.after_ms, until_ms=self.until_ms, on_limit=self.limit_error
        )
        self._generators.append(generator)

    def renew(self) -> bool:
        """Extend the lease and the mark; False when another process has taken it over."""
        was_lost = self.lost
        with self._mutex:
            renewed = not self._stop.is_set() and self._renew()
        # Outside the mutex: the callback typically releases this very lease.
        if self.lost and not was_lost and self.on_lost is not None:
            self.on_lost()
        return renewed

    def _renew(self) -> bool:
        until = wall_ms() + int(self.ttl_seconds * 1000)
        with transaction.atomic(using=self.using):
            updated = (
                NodeLease.objects.using(self.using)
                .filter(pk=self.row_id, holder=self.holder)
                .update(
                    expires_at=_expires_in(self.ttl_seconds),
                    renewed_at=Now(),
                    high_water_ms=Greatest(F("high_water_ms"), Value(until)),
                )
            )
        if not updated:
            self.lost = True
            logger.error(
                "lease on datacenter %s machine %s was taken over",
                self.datacenter_id,
                self.machine_id,
            )
            return False
        # Only once the mark is stored may the generators stamp up to it.
        self.until_ms = max(self.until_ms, until)
        self.last_renewed_monotonic = time.monotonic()
        self.last_error = None
        for generator in self._generators:
            generator.extend_limit(self.until_ms)
        return True

    def release(self) -> None:
        """Stop the generators and give the machine ID back, with the mark they really reached.

        The mark drops from the announced millisecond to the last one stamped, so that the next
        holder does not have to wait for a future it was promised but never used.
        """
        with self._mutex:
            if self._stop.is_set():
                return
            self._stop.set()
            atexit.unregister(self.release)
            if os.getpid() == self.pid and not self.lost:
                self._release()

    def _release(self) -> None:
        reached = max([self.after_ms, *(g.stop_new_milliseconds() for g in self._generators)])
        try:
            NodeLease.objects.using(self.using).filter(pk=self.row_id, holder=self.holder).update(
                holder="", expires_at=None, high_water_ms=reached
            )
        except DatabaseError:  # pragma: no cover - the lease simply expires instead
            logger.warning("could not release the lease on machine %s", self.machine_id)

    def _renew_forever(self) -> None:
        interval = self.ttl_seconds / 3
        try:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        return
                    interval = self.ttl_seconds / 3
                except DatabaseError as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}".strip()
                    logger.warning("lease renewal failed: %s", self.last_error)
                    connections[self.using].close()
                    interval = min(1.0, self.ttl_seconds / 10)
        finally:
            connections[self.using].close()

    def start_renewing(self) -> None:
        threading.Thread(
            target=self._renew_forever, name=f"flakeid-lease-{self.machine_id}", daemon=True
        ).start()
        atexit.register(self.release)


def _holder_name() -> tuple[str, str]:
    host = socket.gethostname()[:80]
    return host, f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


def acquire(
    layout: Layout, datacenter_id: int, *, ttl_seconds: float, using: str = "default"
) -> Lease:
    """Claim the lowest free machine ID of ``datacenter_id`` (blocking database I/O)."""
    key = layout_key(layout)
    machines = layout.max_machine_id + 1
    rows = NodeLease.objects.using(using).filter(layout=key, datacenter_id=datacenter_id)
    if rows.count() < machines:
        NodeLease.objects.using(using).bulk_create(
            [
                NodeLease(layout=key, datacenter_id=datacenter_id, machine_id=machine)
                for machine in range(machines)
            ],
            ignore_conflicts=True,
        )
    host, holder = _holder_name()
    free = Q(holder="") | Q(expires_at__lt=Now())
    for row_id, machine_id in (
        rows.filter(free).order_by("machine_id").values_list("pk", "machine_id")
    ):
        with transaction.atomic(using=using):
            won = rows.filter(free, pk=row_id).update(
                holder=holder,
                host=host,
                pid=os.getpid(),
                acquired_at=Now(),
                renewed_at=Now(),
                expires_at=_expires_in(ttl_seconds),
            )
            if not won:
                continue
            # Our UPDATE holds the row until commit, so the mark read here is final.
            after = rows.filter(pk=row_id).values_list("high_water_ms", flat=True).get()
            lag = after - wall_ms()
            if lag > MAX_CATCH_UP_MS:
                raise ClockBackwardsError(
                    f"this host's clock is {lag} ms behind the last millisecond the previous "
                    f"holder of machine {machine_id} announced; check NTP on both hosts"
                )
            until = max(after, wall_ms()) + int(ttl_seconds * 1000)
            rows.filter(pk=row_id).update(high_water_ms=until)
        if lag > 0:
            time.sleep(lag / 1000)
        lease = Lease(
            layout=layout,
            datacenter_id=datacenter_id,
            machine_id=machine_id,
            row_id=row_id,
            holder=holder,
            using=using,
            ttl_seconds=ttl_seconds,
            after_ms=after,
            until_ms=until,
        )
        lease.start_renewing()
        return lease
    in_use = rows.exclude(free).count()
    raise NodeInUseError(
        f"all {machines} machine IDs of datacenter {datacenter_id} are leased ({in_use} in use "
        f"by live processes); run fewer processes, use another datacenter_id, or a layout with "
        "more machine_bits"
    )
