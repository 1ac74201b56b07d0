"""Turning the configured node into a running generator this process alone may use.

A fixed machine ID is claimed on the host (``hostclaim``), so a second process configured
alike is refused rather than allowed to repeat IDs; ``auto`` claims the lowest machine ID no
live process of the host holds; ``lease`` claims one in the database (``leases``), which
makes it unique across hosts too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .errors import LeaseError
from .generator import SnowflakeGenerator
from .hostclaim import NodeClaim, claim_free_machine, claim_node

if TYPE_CHECKING:
    from .conf import Config
    from .leases import Lease

_T = TypeVar("_T")

FIXED_NODE_FIX = (
    "Give each process its own FLAKEID['machine_id'] (or FLAKEID_MACHINE_ID), or let each "
    "claim a free one with 'machine_id': 'auto' (one host) or 'lease' (many hosts)."
)


@dataclass
class Running:
    """The process's generator and what entitles it to its node."""

    generator: SnowflakeGenerator
    claim: NodeClaim | None = None
    lease: Lease | None = None

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()
        if self.claim is not None:
            self.claim.release()


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
    """Claim the configured node and build its generator; raises a :class:`FlakeIDError`."""
    layout, node = config.layout, config.node
    datacenter = node.datacenter_id.value
    machine = node.machine_id.value

    def build(machine_id: int) -> SnowflakeGenerator:
        return SnowflakeGenerator(
            timestamp_bits=layout.timestamp_bits,
            datacenter_bits=layout.datacenter_bits,
            machine_bits=layout.machine_bits,
            sequence_bits=layout.sequence_bits,
            epoch_ms=layout.epoch_ms,
            datacenter_id=datacenter,
            machine_id=machine_id,
        )

    if machine == "lease":
        lease = _in_own_thread(lambda: _acquire_lease(config))
        lease.on_lost = lambda: on_lease_lost(lease)
        generator = build(lease.machine_id)
        lease.attach(generator)
        return Running(generator, lease=lease)
    if machine == "auto":
        claim = claim_free_machine(layout, datacenter)
        return Running(build(claim.machine_id), claim=claim)
    claim = claim_node(layout, datacenter, machine, fix=FIXED_NODE_FIX)
    return Running(build(machine), claim=claim)


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
