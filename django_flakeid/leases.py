"""Leased machine IDs: each process claims a free machine ID of its datacenter in the database.

Claims are conditional UPDATEs, so the database decides who wins; expiry is judged by the
database's clock. Each row keeps a high-water mark, the last millisecond its holders may have
stamped: a holder stores it *before* it stamps up to it, and whoever takes the machine ID next
stamps only later milliseconds, so two holders of one machine ID never share a millisecond,
whatever their clocks say. A holder that cannot renew stops at its mark.

A table emptied under live holders (``manage.py flush``, ``TRUNCATE``) loses their rows and
marks, while a holder whose row vanished keeps stamping up to its own mark, at most one TTL
ahead, until its next renewal notices. The migration that creates the table adds a marker row
that only such an emptying removes: without it, the first holder of a row never held (mark 0)
starts one TTL after it claims it, and then puts the marker back. A table fresh from migrate
has the marker, so its first holders start at once.
"""

from __future__ import annotations

import contextlib
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
from django.db.models import DateTimeField, ExpressionWrapper, F, Max, Q, QuerySet, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Greatest, Now

from .errors import ClockBackwardsError, FlakeIDError, LeaseError, NodeInUseError
from .layout import Layout
from .lease_model import NodeLease
from .marks import MAX_CATCH_UP_MS, wall_ms

logger = logging.getLogger("django_flakeid.leases")

# Refusals name this many rows; the rest are counted.
_NAMED = 3
# Rounds of listing free rows and claiming them: rows can change under a claim (the table
# emptied and filled again, other processes winning them), and are then listed afresh.
_ROUNDS = 3

_sleep: Callable[[float], None] = time.sleep


def layout_key(layout: Layout) -> str:
    """The key a layout's rows carry: :attr:`Layout.key`, as its host claims'."""
    return layout.key


#: The marker row (a layout key no layout has): see the module docstring.
TABLE_MARKER = {"layout": "", "datacenter_id": 0, "machine_id": 0}


def _expires_in(ttl_seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + Value(timedelta(seconds=ttl_seconds)), DateTimeField())


def _free() -> Q:
    return Q(holder="") | Q(expires_at__lt=Now())


def _live() -> Q:
    return ~Q(holder="") & Q(expires_at__gte=Now())


@dataclass(eq=False)
class Lease:
    """This process's hold on one machine ID, renewed by a daemon thread."""

    layout: Layout
    datacenter_id: int
    machine_id: int
    row_id: int
    holder: str
    using: str
    ttl_seconds: float
    #: The last millisecond a previous holder may have stamped: this one stamps only later ones.
    after_ms: int
    #: The last millisecond this holder has stored as its mark, and so may stamp.
    until_ms: int
    #: The process that acquired the lease; in any other, the lease does nothing.
    pid: int = field(default_factory=os.getpid)
    lost: bool = False
    #: Called once, from the renewal, when the row is found deleted or taken over.
    on_lost: Callable[[], None] | None = None
    last_error: str | None = None
    last_renewed_monotonic: float = field(default_factory=time.monotonic)
    _lost_reason: str = field(default="", init=False, repr=False)
    _released: bool = field(default=False, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    # Renewal and release must not interleave: a renewal landing after the release's write
    # would find the row given back and report the lease lost.
    _mutex: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def cap(self, now: int) -> int:
        """The last millisecond this process may stamp, given that the clock reads ``now``.

        For a generator's ``on_limit``: returns :attr:`until_ms` while ``now`` is within it,
        else raises :meth:`limit_error`, as it does at once when the lease is lost, released,
        or used in a process other than the one that acquired it. Never blocks.
        """
        if now > self.until_ms or self.lost or self._stop.is_set() or os.getpid() != self.pid:
            raise self.limit_error(now)
        return self.until_ms

    def limit_error(self, now: int) -> FlakeIDError:
        node = f"the lease on datacenter {self.datacenter_id} machine {self.machine_id}"
        if os.getpid() != self.pid:
            return LeaseError(
                f"{node} belongs to process {self.pid}, and this process ({os.getpid()}) "
                "inherited it through fork(); lease a machine ID of its own here"
            )
        if self.lost:
            return LeaseError(
                f"{node} {self._lost_reason}; IDs stopped at once so that no other process can "
                "repeat them: lease a new machine ID"
            )
        if self._stop.is_set():
            return LeaseError(f"{node} was released: IDs stamped under it have stopped")
        since = time.monotonic() - self.last_renewed_monotonic
        return LeaseError(
            f"{node} has not been renewed for {since:.1f} s ({self.last_error or 'no answer'}); "
            f"IDs stop at its last stored millisecond ({self.until_ms}, clock: {now}) so that "
            f"no other process can repeat them, and resume once database '{self.using}' "
            "renews it"
        )

    def renew(self) -> bool:
        """Extend the lease and store a later mark; False once it is lost or released.

        A database error is recorded (see :meth:`limit_error`) and raised.
        """
        if os.getpid() != self.pid:
            return False
        with self._mutex:
            if self._stop.is_set() or self.lost:
                return False
            try:
                self._renew()
            except DatabaseError as error:
                self.last_error = f"{type(error).__name__}: {error}".strip()
                raise
            lost = self.lost
        # Outside the mutex: the callback typically releases this very lease.
        if lost and self.on_lost is not None:
            self.on_lost()
        return not lost

    def _renew(self) -> None:
        until = wall_ms() + round(self.ttl_seconds * 1000)
        updated = self._row().update(
            expires_at=_expires_in(self.ttl_seconds),
            renewed_at=Now(),
            high_water_ms=Greatest(F("high_water_ms"), Value(until)),
        )
        if not updated:
            # Set before anything else, so that cap() refuses from now on.
            self.lost = True
            self._lost_reason = self._why_lost()
            logger.error(
                "lease on datacenter %s machine %s lost: it %s",
                self.datacenter_id,
                self.machine_id,
                self._lost_reason,
            )
            return
        # Only once the mark is stored may the generator stamp up to it.
        self.until_ms = max(self.until_ms, until)
        self.last_renewed_monotonic = time.monotonic()
        self.last_error = None

    def _row(self) -> QuerySet[NodeLease]:
        # The token is random, so primary keys reused after a TRUNCATE cannot match.
        row: QuerySet[NodeLease] = NodeLease.objects.using(self.using).filter(
            pk=self.row_id, holder=self.holder
        )
        return row

    def _why_lost(self) -> str:
        row = NodeLease.objects.using(self.using).filter(
            pk=self.row_id,
            layout=self.layout.key,
            datacenter_id=self.datacenter_id,
            machine_id=self.machine_id,
        )
        try:
            holder = row.values_list("host", "pid").first()
        except DatabaseError:
            return "was deleted or taken over"
        if holder is None:
            return (
                "was deleted: its row is gone from the lease table (emptied by "
                "'manage.py flush' or TRUNCATE?)"
            )
        return f"was taken over by another process (host {holder[0]!r}, pid {holder[1]})"

    def release(self, reached_ms: int | None = None) -> None:
        """Stop renewing and give the machine ID back.

        ``reached_ms`` is the last millisecond really stamped under the lease: the stored mark
        drops to it (never below :attr:`after_ms`), so that the next holder need not wait for
        milliseconds announced but never used, and the machine ID is free at once. Without
        it nothing is known of what was stamped: the mark stays and the row frees itself when
        it expires. In a process other than the one that acquired the lease (a child forked by
        any means) this does nothing, and never waits for a lock the parent may have held.
        """
        if os.getpid() != self.pid:
            return
        self._stop.set()
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self.lost or reached_ms is None:
                return
            try:
                self._row().update(
                    holder="", expires_at=None, high_water_ms=max(self.after_ms, reached_ms)
                )
            except DatabaseError:
                logger.warning(
                    "could not release the lease on machine %s; it expires instead",
                    self.machine_id,
                )

    def _renew_forever(self) -> None:
        interval = self.ttl_seconds / 3
        try:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        return
                    interval = self.ttl_seconds / 3
                except DatabaseError:
                    logger.warning("lease renewal failed: %s", self.last_error)
                    with contextlib.suppress(DatabaseError):
                        connections[self.using].close()
                    interval = min(1.0, self.ttl_seconds / 10)
        finally:
            with contextlib.suppress(DatabaseError):
                connections[self.using].close()

    def _start_renewing(self) -> None:
        threading.Thread(
            target=self._renew_forever, name=f"flakeid-lease-{self.machine_id}", daemon=True
        ).start()


def _holder_name() -> tuple[str, str]:
    host = socket.gethostname()[:80]
    return host, f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


class _MarkAhead(Exception):
    """Rolls a claim back: the row's mark is too far ahead of this host's clock."""

    def __init__(self, mark: int) -> None:
        self.mark = mark


@dataclass
class _Claimer:
    """One attempt of this process to lease a machine ID of a datacenter."""

    layout: Layout
    datacenter_id: int
    ttl_seconds: float
    using: str
    host: str
    holder: str
    #: Free machine IDs passed over, with their marks.
    ahead: dict[int, int] = field(default_factory=dict)
    #: Whether the lease starts one TTL late because the table was emptied.
    waits_out_emptying: bool = False

    @property
    def key(self) -> str:
        return self.layout.key

    @property
    def rows(self) -> QuerySet[NodeLease]:
        rows: QuerySet[NodeLease] = NodeLease.objects.using(self.using).filter(
            layout=self.key, datacenter_id=self.datacenter_id
        )
        return rows

    def ensure_rows(self) -> None:
        machines = self.layout.max_machine_id + 1
        if self.rows.count() < machines:
            NodeLease.objects.using(self.using).bulk_create(
                [
                    NodeLease(layout=self.key, datacenter_id=self.datacenter_id, machine_id=m)
                    for m in range(machines)
                ],
                ignore_conflicts=True,
            )

    def free_rows(self) -> list[tuple[int, int]]:
        return list(
            self.rows.filter(_free()).order_by("machine_id").values_list("pk", "machine_id")
        )

    def claim(self, row_id: int, machine_id: int) -> int | None:
        """Claim the row if it is still free: its mark, or None when another process won it."""
        try:
            with transaction.atomic(using=self.using):
                won = self.rows.filter(_free(), pk=row_id, machine_id=machine_id).update(
                    holder=self.holder,
                    host=self.host,
                    pid=os.getpid(),
                    acquired_at=Now(),
                    renewed_at=Now(),
                    expires_at=_expires_in(self.ttl_seconds),
                )
                if not won:
                    return None
                # Our UPDATE holds the row until commit, so the mark read here is final.
                mark: int = (
                    self.rows.filter(pk=row_id).values_list("high_water_ms", flat=True).get()
                )
                if mark - wall_ms() > MAX_CATCH_UP_MS:
                    raise _MarkAhead(mark)
                return mark
        except _MarkAhead as ahead:
            self.ahead[machine_id] = ahead.mark
            return None

    def give_back(self, row_id: int) -> None:
        self.rows.filter(pk=row_id, holder=self.holder).update(holder="", expires_at=None)

    def other_layouts(self, row_id: int) -> int:
        """The highest mark of other layouts' rows; refuses while one of them is live.

        Called once this claim is committed: of two layouts claiming at once, the later
        check sees the earlier claim, so the two never both run.
        """
        others = NodeLease.objects.using(self.using).exclude(
            layout__in=(self.key, TABLE_MARKER["layout"])
        )
        live = list(
            others.filter(_live())
            .order_by("layout", "datacenter_id", "machine_id")
            .values_list("layout", "datacenter_id", "machine_id", "host", "pid")[: _NAMED + 1]
        )
        if live:
            self.give_back(row_id)
            named = "; ".join(
                f"layout {layout} datacenter {dc} machine {machine} held by host {host!r} pid {pid}"
                for layout, dc, machine, host, pid in live[:_NAMED]
            )
            more = ", and more" if len(live) > _NAMED else ""
            raise NodeInUseError(
                f"database '{self.using}' has live leases of another layout ({named}{more}); "
                f"this process's layout is {self.key} (timestamp-datacenter-machine-sequence "
                "bits@epoch), and IDs of two layouts can be equal, so they never run side by "
                "side. Stop every process of the other layout first (its leases expire "
                "lease_ttl after its last process stops), or, for a project whose IDs never "
                "meet the other's, use a lease_database of its own"
            )
        carried: int = others.aggregate(mark=Max("high_water_ms"))["mark"] or 0
        lag = carried - wall_ms()
        if lag > MAX_CATCH_UP_MS:
            self.give_back(row_id)
            raise ClockBackwardsError(
                f"rows of another layout in database '{self.using}' carry a high-water mark "
                f"{lag / 1000:.1f} s ahead of this host's clock, and a new layout stamps only "
                "later milliseconds: a host whose clock ran ahead stamped up to it, or this "
                "host's clock is behind. Check NTP on this host and on the hosts that ran the "
                "other layout"
            )
        return carried

    def emptied(self) -> bool:
        """True when the table lost its marker: emptied since migrate, maybe under holders."""
        return not NodeLease.objects.using(self.using).filter(**TABLE_MARKER).exists()

    def settle(self, row_id: int, machine_id: int, mark: int) -> Lease | None:
        """Store the new holder's mark on a claimed row; None if the row vanished meanwhile."""
        carried = self.other_layouts(row_id)
        now = wall_ms()
        ttl_ms = round(self.ttl_seconds * 1000)
        # A row never held may hide a holder whose row was deleted: see the module docstring.
        self.waits_out_emptying = mark == 0 and self.emptied()
        after = max(mark, carried, now + ttl_ms if self.waits_out_emptying else 0)
        until = max(after, now) + ttl_ms
        stored = self.rows.filter(pk=row_id, holder=self.holder).update(
            high_water_ms=Greatest(F("high_water_ms"), Value(until))
        )
        if not stored:
            return None
        return Lease(
            layout=self.layout,
            datacenter_id=self.datacenter_id,
            machine_id=machine_id,
            row_id=row_id,
            holder=self.holder,
            using=self.using,
            ttl_seconds=self.ttl_seconds,
            after_ms=after,
            until_ms=until,
        )

    def refusal(self) -> FlakeIDError:
        machines = self.layout.max_machine_id + 1
        in_use = self.rows.filter(_live()).count()
        if not self.ahead:
            return NodeInUseError(
                f"all {machines} machine IDs of datacenter {self.datacenter_id} are leased "
                f"({in_use} in use by live processes); run fewer processes, use another "
                "datacenter_id, or a layout with more machine_bits"
            )
        now = wall_ms()
        ahead = sorted(self.ahead.items())
        named = ", ".join(
            f"machine {machine} ({(mark - now) / 1000:.1f} s ahead)"
            for machine, mark in ahead[:_NAMED]
        )
        more = f" and {len(ahead) - _NAMED} more" if len(ahead) > _NAMED else ""
        return ClockBackwardsError(
            f"no machine ID of datacenter {self.datacenter_id} can be leased: {in_use} of "
            f"{machines} are in use by live processes, and the free ones carry a high-water "
            f"mark more than {MAX_CATCH_UP_MS / 1000:g} s ahead of this host's clock: "
            f"{named}{more}. A host whose clock ran ahead stamped up to those marks, or this "
            "host's clock is behind: check NTP on this host and on the hosts that held them. "
            "Those machine IDs become usable once this clock nears their marks"
        )


def _wait_past(ms: int) -> None:
    while (lag := ms - wall_ms()) >= 0:
        _sleep((lag + 1) / 1000)


def acquire(
    layout: Layout, datacenter_id: int, *, ttl_seconds: float, using: str = "default"
) -> Lease:
    """Claim the lowest free machine ID of ``datacenter_id`` (blocking database I/O).

    Returns once this host's clock has passed the lease's :attr:`~Lease.after_ms`: after at
    most ``MAX_CATCH_UP_MS`` behind a previous holder's mark, and one TTL for a machine ID no
    process has held since the table was created or emptied. A free machine ID whose mark is
    further ahead is passed over; if no other is free, :class:`ClockBackwardsError`.
    """
    host, holder = _holder_name()
    claimer = _Claimer(layout, datacenter_id, ttl_seconds, using, host, holder)
    for _ in range(_ROUNDS):
        claimer.ensure_rows()
        free = claimer.free_rows()
        if not free and claimer.rows.exists():
            break
        for row_id, machine_id in free:
            mark = claimer.claim(row_id, machine_id)
            lease = None if mark is None else claimer.settle(row_id, machine_id, mark)
            if lease is not None:
                _started(lease)
                if claimer.waits_out_emptying:
                    # One TTL has passed since the emptying was seen: every holder whose row
                    # vanished has stopped, so rows never held are safe to start at once again.
                    NodeLease.objects.using(using).get_or_create(**TABLE_MARKER)
                return lease
    raise claimer.refusal()


def _started(lease: Lease) -> Lease:
    # Renewing starts before the wait, which can last a TTL: the lease must outlive it.
    lease._start_renewing()
    try:
        _wait_past(lease.after_ms)
    except BaseException:
        lease.release(lease.after_ms)  # nothing was stamped
        raise
    if lease.lost:
        raise LeaseError(
            f"the lease on datacenter {lease.datacenter_id} machine {lease.machine_id} "
            f"{lease._lost_reason} while this process waited for its clock to pass "
            f"{lease.after_ms}; try again"
        )
    return lease
