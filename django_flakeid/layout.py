"""The bit layout of an ID, and what can be read back out of one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, InvalidIDError
from .ints import check_int, is_int
from .timefmt import Moment, ms_to_datetime, ms_to_iso, unix_ms

ID_BITS = 63
MAX_ID = (1 << ID_BITS) - 1
DEFAULT_EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
WIDTH_NAMES = ("timestamp_bits", "datacenter_bits", "machine_bits", "sequence_bits")
_MS_PER_YEAR = 1000 * 60 * 60 * 24 * 365.25
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class DecodedID:
    """The fields of one ID. ``timestamp_ms`` is Unix time in milliseconds."""

    raw: int
    timestamp_ms: int
    datacenter_id: int
    machine_id: int
    sequence: int

    @property
    def generated_at(self) -> str:
        """ISO-8601 UTC time with milliseconds, e.g. ``'2025-03-15T10:22:01.123Z'``."""
        return ms_to_iso(self.timestamp_ms)

    @property
    def datetime(self) -> dt.datetime:
        """The generation time as an aware UTC datetime."""
        return ms_to_datetime(self.timestamp_ms)

    def __repr__(self) -> str:
        return (
            f"DecodedID(raw={self.raw}, generated_at={self.generated_at!r}, "
            f"datacenter_id={self.datacenter_id}, machine_id={self.machine_id}, "
            f"sequence={self.sequence})"
        )


@dataclass(frozen=True)
class Capacity:
    """The limits of a layout: how long it lasts, how many nodes, how many IDs per node."""

    timestamp_range_years: float
    max_datacenters: int
    max_machines_per_dc: int
    total_nodes: int
    ids_per_ms_per_node: int
    runs_out_ms: int

    @property
    def ids_per_sec_per_node(self) -> int:
        return self.ids_per_ms_per_node * 1000

    @property
    def runs_out_at(self) -> str:
        """ISO-8601 UTC time of the last millisecond the layout can stamp."""
        return ms_to_iso(self.runs_out_ms)

    def __repr__(self) -> str:
        return (
            f"Capacity(years={self.timestamp_range_years}, nodes={self.total_nodes}, "
            f"ids_per_sec={self.ids_per_sec_per_node:,})"
        )


@dataclass(frozen=True)
class Layout:
    """Field widths (high to low: timestamp, datacenter, machine, sequence) and the epoch."""

    timestamp_bits: int = 41
    datacenter_bits: int = 5
    machine_bits: int = 5
    sequence_bits: int = 12
    epoch_ms: int = DEFAULT_EPOCH_MS

    def __post_init__(self) -> None:
        for name in (*WIDTH_NAMES, "epoch_ms"):
            check_int(name, getattr(self, name))
        widths = {name: getattr(self, name) for name in WIDTH_NAMES}
        negative = [name for name, width in widths.items() if width < 0]
        if negative:
            raise ConfigurationError(f"bit widths cannot be negative: {', '.join(negative)}")
        if sum(widths.values()) != ID_BITS:
            raise ConfigurationError(
                f"bit widths must sum to {ID_BITS}, got {sum(widths.values())} "
                f"({' + '.join(str(w) for w in widths.values())})"
            )
        for name in ("timestamp_bits", "sequence_bits"):
            if widths[name] < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {widths[name]}")
        if self.epoch_ms < 0:
            raise ConfigurationError(f"epoch_ms must be 0 or more, got {self.epoch_ms}")

    @property
    def machine_shift(self) -> int:
        return self.sequence_bits

    @property
    def datacenter_shift(self) -> int:
        return self.sequence_bits + self.machine_bits

    @property
    def timestamp_shift(self) -> int:
        return self.sequence_bits + self.machine_bits + self.datacenter_bits

    @property
    def max_datacenter_id(self) -> int:
        return (1 << self.datacenter_bits) - 1

    @property
    def max_machine_id(self) -> int:
        return (1 << self.machine_bits) - 1

    @property
    def max_timestamp_ms(self) -> int:
        """The last Unix millisecond this layout can stamp."""
        return self.epoch_ms + (1 << self.timestamp_bits) - 1

    @property
    def max_sequence(self) -> int:
        return (1 << self.sequence_bits) - 1

    @property
    def node_mask(self) -> int:
        """The bits of an ID that hold its node (datacenter and machine)."""
        return ((1 << (self.datacenter_bits + self.machine_bits)) - 1) << self.machine_shift

    @property
    def key(self) -> str:
        """The layout's identity, e.g. ``'41-5-5-12@1577836800000'``: widths, then the epoch.

        Host claims and node leases are filed under it, so it must never change spelling.
        """
        return (
            f"{self.timestamp_bits}-{self.datacenter_bits}-{self.machine_bits}-"
            f"{self.sequence_bits}@{self.epoch_ms}"
        )

    @property
    def backfill_node(self) -> tuple[int, int] | None:
        """The (datacenter, machine) set aside for backfilled IDs, or None for a single node.

        It is the highest node of the layout; the generator of ``settings.FLAKEID`` never uses
        it, so IDs stamped with old times for it cannot repeat an ID a live process made.
        """
        if self.datacenter_bits + self.machine_bits == 0:
            return None
        return self.max_datacenter_id, self.max_machine_id

    @property
    def min_snowflake_id(self) -> int:
        """The smallest value read as a Snowflake ID: the first of the day after the epoch.

        A table switched from an ``AutoField`` keeps its old keys 1, 2, 3, ...; they are all
        far below this (``362387865600000`` for the twitter layout), so they are known as
        integer keys that hold no time, and every ID made a day or more after the epoch is
        greater than all of them.
        """
        return self.min_id_at(self.epoch_ms + _DAY_MS)

    def min_id_at(self, moment: Moment) -> int:
        """The smallest ID that can be stamped in the millisecond holding ``moment``.

        ``moment`` is an aware datetime, a naive one read as UTC, or Unix milliseconds. Moments
        before the epoch count as its first millisecond, and moments past the layout's last
        millisecond as that one, so the result is always an ID.
        """
        ms = min(max(unix_ms(moment), self.epoch_ms), self.max_timestamp_ms)
        return (ms - self.epoch_ms) << self.timestamp_shift

    def max_id_at(self, moment: Moment) -> int:
        """The largest ID that can be stamped in the millisecond holding ``moment``.

        Clamped like :meth:`min_id_at`.
        """
        return self.min_id_at(moment) | ((1 << self.timestamp_shift) - 1)

    def id_range(self, start: Moment, end: Moment) -> tuple[int, int]:
        """``(low, high)`` such that ``low <= id < high`` for exactly the IDs made in [start, end).

        An ID's time is a whole millisecond, so a bound between two milliseconds counts from
        the later one. The bounds stay within 0 and ``MAX_ID + 1``; an empty interval (one
        outside the layout's time span, or with ``end <= start``) gives ``low == high``.
        """
        low = self._first_id_from(unix_ms(start, round_up=True))
        high = self._first_id_from(unix_ms(end, round_up=True))
        return low, max(low, high)

    def _first_id_from(self, ms: int) -> int:
        # The smallest ID stamped at or after ms, or MAX_ID + 1 when the layout has none.
        if ms <= self.epoch_ms:
            return 0
        if ms > self.max_timestamp_ms:
            return MAX_ID + 1
        return (ms - self.epoch_ms) << self.timestamp_shift

    def check_node(self, datacenter_id: Any, machine_id: Any) -> tuple[int, int]:
        """Validate a node identity against this layout and return it as two ints."""
        node = (check_int("datacenter_id", datacenter_id), check_int("machine_id", machine_id))
        for name, value, top in (
            ("datacenter_id", node[0], self.max_datacenter_id),
            ("machine_id", node[1], self.max_machine_id),
        ):
            if not 0 <= value <= top:
                bits = self.datacenter_bits if name == "datacenter_id" else self.machine_bits
                raise ConfigurationError(
                    f"{name} must be from 0 to {top} for a {bits}-bit field, got {value}"
                )
        return node

    def node_bits(self, datacenter_id: Any, machine_id: Any) -> int:
        """The bits a node sets in each of its IDs, after :meth:`check_node` has accepted it."""
        dc, machine = self.check_node(datacenter_id, machine_id)
        return (dc << self.datacenter_shift) | (machine << self.machine_shift)

    def encode(self, timestamp_ms: Any, datacenter_id: Any, machine_id: Any, sequence: Any) -> int:
        """The ID with these fields, the inverse of :meth:`decode`; ``timestamp_ms`` is Unix ms."""
        ms = check_int("timestamp_ms", timestamp_ms)
        node = self.node_bits(datacenter_id, machine_id)
        seq = check_int("sequence", sequence)
        if not self.epoch_ms <= ms <= self.max_timestamp_ms:
            raise ConfigurationError(
                f"timestamp_ms must be from {self.epoch_ms} to {self.max_timestamp_ms} "
                f"for this layout, got {ms}"
            )
        if not 0 <= seq <= self.max_sequence:
            raise ConfigurationError(
                f"sequence must be from 0 to {self.max_sequence} for a {self.sequence_bits}-bit "
                f"field, got {seq}"
            )
        return ((ms - self.epoch_ms) << self.timestamp_shift) | node | seq

    def decode(self, uid: Any) -> DecodedID:
        """Split ``uid`` into its fields; reject anything but an int from 0 to 2**63 - 1."""
        if not is_int(uid):
            raise InvalidIDError(f"an ID must be an integer, got {type(uid).__name__} {uid!r}")
        if not 0 <= uid <= MAX_ID:
            raise InvalidIDError(f"an ID must be from 0 to {MAX_ID}, got {uid}")
        uid = int(uid)
        return DecodedID(
            raw=uid,
            timestamp_ms=(uid >> self.timestamp_shift) + self.epoch_ms,
            datacenter_id=(uid >> self.datacenter_shift) & self.max_datacenter_id,
            machine_id=(uid >> self.machine_shift) & self.max_machine_id,
            sequence=uid & self.max_sequence,
        )

    def capacity(self) -> Capacity:
        datacenters = 1 << self.datacenter_bits
        machines = 1 << self.machine_bits
        return Capacity(
            timestamp_range_years=round(((1 << self.timestamp_bits) - 1) / _MS_PER_YEAR, 1),
            max_datacenters=datacenters,
            max_machines_per_dc=machines,
            total_nodes=datacenters * machines,
            ids_per_ms_per_node=1 << self.sequence_bits,
            runs_out_ms=self.max_timestamp_ms,
        )
