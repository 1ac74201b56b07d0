"""Turning the configured node into a running generator this process alone may use.

Every node is claimed on the host (``hostclaim``): a fixed machine ID, so that a second process
configured alike is refused; ``auto``, the lowest machine ID no live process of the host holds;
``lease``, a machine ID claimed in the database (``leases``), which makes it unique across
hosts, and then on the host too, so that a process leasing from another table cannot share it.
The generator stamps only above the node's high-water mark, on the host and in the database
(``marks``), so a restart after the clock stepped back cannot repeat an ID.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from . import marks
from .errors import FlakeIDError, LeaseError, NodeInUseError
from .generator import SnowflakeGenerator, StopError
from .hostclaim import NodeClaim, claim_free_machine, claim_node

if TYPE_CHECKING:
    from .leases import Lease
    from .settings_reader import Config

_T = TypeVar("_T")

FIXED_NODE_FIX = (
    "Give each process its own FLAKEID['machine_id'] (or FLAKEID_MACHINE_ID), or let each "
    "claim a free one with 'machine_id': 'auto' (one host) or 'lease' (many hosts)."
)
LEASED_NODE_FIX = (
    "The machine ID was leased from database '{database}', so that process leases from another "
    "table or has a fixed machine_id: give every process of the host the same "
    "FLAKEID['lease_database']."
)


def _released(now: int) -> FlakeIDError:
    return FlakeIDError(
        f"this generator was released (clock: {now} ms): FLAKEID changed or the process gave "
        "its node back. Ask for the generator again: django_flakeid.conf.get_generator()."
    )


@dataclass
class Running:
    """The process's generator and what entitles it to its node."""

    generator: SnowflakeGenerator
    claim: NodeClaim | None = None
    lease: Lease | None = None

    def release(self, error: StopError | None = None) -> None:
        """Stop the generator, then give its node back with the last millisecond it stamped.

        The generator stops first, so that whoever takes the node next, in this process or
        another, starts above everything it stamped; later requests to it raise
        ``error(now)`` (by default: it was released). In a process that inherited it through
        fork, this only lets go of the copies: the node is the parent's.
        """
        reached: int | None = None
        if not self.generator.inherited:
            reached = self.generator.stop_new_milliseconds(error or _released)
        if self.lease is not None:
            self.lease.release(reached)
        if self.claim is not None:
            self.claim.release(reached)


def _in_own_thread(work: Callable[[], _T]) -> _T:
    """Run database work in a short-lived thread with database connections of its own.

    Django forbids blocking queries in an event loop's thread, and a forked child's
    connections are the parent's sockets: a thread of its own avoids both.
    """

    def in_thread() -> _T:
        from django.db import connections

        try:
            return work()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1, thread_name_prefix="flakeid-claim") as pool:
        return pool.submit(in_thread).result()


def start(config: Config, on_lease_lost: Callable[[Lease], None]) -> Running:
    """Claim the configured node and build its generator; raises a :class:`FlakeIDError`.

    The node set aside for backfilled IDs is never kept, however it was reached.
    """
    layout, node = config.layout, config.node
    datacenter = node.datacenter_id.value
    machine = node.machine_id.value
    lease: Lease | None = None
    if machine == "lease":
        lease = _in_own_thread(lambda: _acquire_lease(config))
        try:
            claim = claim_node(
                layout,
                datacenter,
                lease.machine_id,
                fix=LEASED_NODE_FIX.format(database=config.lease_database),
            )
        except BaseException:
            lease.release(lease.after_ms)  # nothing was stamped
            raise
    elif machine == "auto":
        claim = claim_free_machine(layout, datacenter)
    else:
        claim = claim_node(layout, datacenter, machine, fix=FIXED_NODE_FIX)
    running = Running(
        SnowflakeGenerator(
            timestamp_bits=layout.timestamp_bits,
            datacenter_bits=layout.datacenter_bits,
            machine_bits=layout.machine_bits,
            sequence_bits=layout.sequence_bits,
            epoch_ms=layout.epoch_ms,
            datacenter_id=datacenter,
            machine_id=claim.machine_id,
        ),
        claim=claim,
        lease=lease,
    )
    try:
        marks.guard(
            running.generator,
            claim,
            after_ms=claim.after_ms if lease is None else max(claim.after_ms, lease.after_ms),
            cap=None if lease is None else lease.cap,
        )
    except BaseException:
        running.release()
        raise
    if lease is not None:
        lease.on_lost = lambda: on_lease_lost(lease)
    return _refuse_backfill_node(running)


def _refuse_backfill_node(running: Running) -> Running:
    # A fixed node is refused by validation; "auto" and "lease" take the lowest free machine
    # ID, and so reach the backfill node only when every other machine ID of its datacenter
    # is taken. It is given back at once: backfilled IDs are stamped with past times, which
    # a live generator may have stamped too, so no live generator may ever have used it.
    generator = running.generator
    node = (generator.datacenter_id, generator.machine_id)
    if node != generator.layout.backfill_node:
        return running
    running.release()
    raise NodeInUseError(
        f"every machine ID of datacenter {node[0]} is in use except {node[1]}, which is set "
        "aside for backfilled IDs; run fewer processes, use another datacenter_id, or a "
        "layout with more machine_bits"
    )


def _acquire_lease(config: Config) -> Lease:
    from django.db import DatabaseError

    from . import leases

    try:
        return leases.acquire(
            config.layout,
            config.node.datacenter_id.value,
            ttl_seconds=config.lease_ttl,
            using=config.lease_database,
        )
    except DatabaseError as error:
        raise LeaseError(
            f"could not lease a machine ID from database '{config.lease_database}': {error}"
        ) from error
