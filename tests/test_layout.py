from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from django_flakeid.errors import (
    ConfigurationError,
    ConfigurationTypeError,
    FlakeIDError,
    InvalidIDError,
)
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import (
    DEFAULT_EPOCH_MS,
    MAX_ID,
    WIDTH_NAMES,
    Capacity,
    DecodedID,
    Layout,
)
from django_flakeid.presets import ALL_PRESETS

UTC = dt.timezone.utc
UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MINIMAL = Layout(**ALL_PRESETS["minimal"])


def unix_ms(moment: dt.datetime) -> int:
    return (moment - UNIX_EPOCH) // dt.timedelta(milliseconds=1)


def test_constants() -> None:
    assert MAX_ID == 9_223_372_036_854_775_807
    assert unix_ms(dt.datetime(2020, 1, 1, tzinfo=UTC)) == DEFAULT_EPOCH_MS


class TestConstruction:
    def test_defaults_are_the_twitter_layout(self) -> None:
        layout = Layout()
        assert (
            layout.timestamp_bits,
            layout.datacenter_bits,
            layout.machine_bits,
            layout.sequence_bits,
            layout.epoch_ms,
        ) == (41, 5, 5, 12, DEFAULT_EPOCH_MS)

    def test_is_frozen(self) -> None:
        layout = Layout()
        with pytest.raises(dataclasses.FrozenInstanceError):
            layout.sequence_bits = 1  # type: ignore[misc]

    @pytest.mark.parametrize(
        "field", ["timestamp_bits", "datacenter_bits", "machine_bits", "sequence_bits", "epoch_ms"]
    )
    @pytest.mark.parametrize("bad", [5.0, True, "5", None])
    def test_refuses_non_integers(self, field: str, bad: object) -> None:
        with pytest.raises(ConfigurationTypeError, match=f"^{field} must be an integer") as caught:
            Layout(**{field: bad})  # type: ignore[arg-type]
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, FlakeIDError)

    @pytest.mark.parametrize(
        ("widths", "named"),
        [
            ((44, -1, 5, 15), "datacenter_bits"),
            ((41, 5, -5, 22), "machine_bits"),
            ((-1, 32, 20, 12), "timestamp_bits"),
            ((41, 5, 5, -1), "sequence_bits"),
        ],
    )
    def test_refuses_negative_widths(self, widths: tuple[int, ...], named: str) -> None:
        with pytest.raises(ConfigurationError, match="cannot be negative") as caught:
            Layout(*widths)
        assert named in str(caught.value)

    @pytest.mark.parametrize(
        "widths", [(41, 5, 5, 11), (41, 5, 5, 13), (64, 0, 0, 1), (1, 0, 0, 1)]
    )
    def test_refuses_widths_not_summing_to_63(self, widths: tuple[int, ...]) -> None:
        with pytest.raises(ConfigurationError, match=f"sum to 63, got {sum(widths)}"):
            Layout(*widths)

    @pytest.mark.parametrize(
        ("widths", "named"),
        [((0, 25, 26, 12), "timestamp_bits"), ((41, 11, 11, 0), "sequence_bits")],
    )
    def test_timestamp_and_sequence_need_a_bit(self, widths: tuple[int, ...], named: str) -> None:
        with pytest.raises(ConfigurationError, match=f"^{named} must be at least 1, got 0$"):
            Layout(*widths)

    def test_smallest_fields_are_allowed(self) -> None:
        assert Layout(1, 0, 61, 1).max_timestamp_ms == DEFAULT_EPOCH_MS + 1
        assert Layout(62, 0, 0, 1, epoch_ms=0).epoch_ms == 0

    def test_refuses_negative_epoch(self) -> None:
        with pytest.raises(ConfigurationError, match="epoch_ms must be 0 or more, got -1"):
            Layout(epoch_ms=-1)


class TestGeometry:
    def test_twitter(self) -> None:
        layout = Layout()
        assert layout.machine_shift == 12
        assert layout.datacenter_shift == 17
        assert layout.timestamp_shift == 22
        assert layout.max_datacenter_id == 31
        assert layout.max_machine_id == 31
        assert layout.max_timestamp_ms == DEFAULT_EPOCH_MS + 2_199_023_255_551

    def test_empty_node_fields(self) -> None:
        assert MINIMAL.timestamp_shift == 10
        assert MINIMAL.max_datacenter_id == 0
        assert MINIMAL.max_machine_id == 0


class TestCheckNode:
    def test_returns_the_node(self) -> None:
        assert Layout().check_node(31, 0) == (31, 0)
        assert MINIMAL.check_node(0, 0) == (0, 0)

    @pytest.mark.parametrize(
        ("node", "message"),
        [
            ((32, 0), "datacenter_id must be from 0 to 31 for a 5-bit field, got 32"),
            ((-1, 0), "datacenter_id must be from 0 to 31 for a 5-bit field, got -1"),
            ((0, 32), "machine_id must be from 0 to 31 for a 5-bit field, got 32"),
            ((0, -1), "machine_id must be from 0 to 31 for a 5-bit field, got -1"),
        ],
    )
    def test_out_of_range(self, node: tuple[int, int], message: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            Layout().check_node(*node)
        assert str(caught.value) == message

    def test_no_room_for_a_node(self) -> None:
        with pytest.raises(ConfigurationError, match="machine_id must be from 0 to 0 for a 0-bit"):
            MINIMAL.check_node(0, 1)

    @pytest.mark.parametrize("node", [(1.0, 0), (0, True), ("1", 0), (0, None)])
    def test_refuses_non_integers(self, node: tuple[Any, Any]) -> None:
        with pytest.raises(ConfigurationTypeError, match="_id must be an integer"):
            Layout().check_node(*node)


class TestNodeBits:
    def test_twitter(self) -> None:
        assert Layout().node_bits(17, 9) == (17 << 17) | (9 << 12)
        assert Layout().node_bits(0, 0) == 0

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_is_what_decode_reads(self, name: str) -> None:
        layout = Layout(**ALL_PRESETS[name])
        dc, machine = layout.max_datacenter_id, layout.max_machine_id
        decoded = layout.decode(layout.node_bits(dc, machine))
        assert (decoded.datacenter_id, decoded.machine_id) == (dc, machine)
        assert layout.node_bits(dc, machine) == layout.node_mask

    def test_mask_holds_only_the_node(self) -> None:
        assert Layout().node_mask == ((1 << 10) - 1) << 12
        assert MINIMAL.node_mask == 0

    def test_refuses_a_node_the_layout_cannot_hold(self) -> None:
        with pytest.raises(ConfigurationError, match="machine_id must be from 0 to 31"):
            Layout().node_bits(0, 32)
        with pytest.raises(ConfigurationTypeError, match="datacenter_id must be an integer"):
            Layout().node_bits(True, 0)


class TestEncode:
    def test_fields(self) -> None:
        layout = Layout(epoch_ms=1_000)
        uid = (123_456 << 22) | (17 << 17) | (9 << 12) | 4_000
        assert layout.encode(1_000 + 123_456, 17, 9, 4_000) == uid

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_round_trips_with_decode(self, name: str) -> None:
        layout = Layout(**ALL_PRESETS[name])
        for fields in (
            (layout.epoch_ms, 0, 0, 0),
            (layout.max_timestamp_ms, layout.max_datacenter_id, layout.max_machine_id, 0),
            (layout.epoch_ms + 12_345, 0, layout.max_machine_id, layout.max_sequence),
            (layout.epoch_ms + 1, layout.max_datacenter_id, 0, 1),
        ):
            uid = layout.encode(*fields)
            decoded = layout.decode(uid)
            assert (
                decoded.timestamp_ms,
                decoded.datacenter_id,
                decoded.machine_id,
                decoded.sequence,
            ) == fields
        assert layout.encode(layout.epoch_ms, 0, 0, 0) == 0
        top = layout.encode(
            layout.max_timestamp_ms,
            layout.max_datacenter_id,
            layout.max_machine_id,
            layout.max_sequence,
        )
        assert top == MAX_ID

    def test_matches_the_generator(self) -> None:
        generator = SnowflakeGenerator(
            datacenter_id=3, machine_id=7, clock=lambda: 1_600_000_000_000
        )
        first, second = generator.next_ids(2)
        layout = generator.layout
        assert first == layout.encode(1_600_000_000_000, 3, 7, 0)
        assert second == layout.encode(1_600_000_000_000, 3, 7, 1)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            (
                (DEFAULT_EPOCH_MS - 1, 0, 0, 0),
                f"timestamp_ms must be from {DEFAULT_EPOCH_MS} to "
                f"{DEFAULT_EPOCH_MS + 2**41 - 1} for this layout, got {DEFAULT_EPOCH_MS - 1}",
            ),
            (
                (DEFAULT_EPOCH_MS + 2**41, 0, 0, 0),
                f"timestamp_ms must be from {DEFAULT_EPOCH_MS} to "
                f"{DEFAULT_EPOCH_MS + 2**41 - 1} for this layout, got {DEFAULT_EPOCH_MS + 2**41}",
            ),
            (
                (DEFAULT_EPOCH_MS, 32, 0, 0),
                "datacenter_id must be from 0 to 31 for a 5-bit field, got 32",
            ),
            (
                (DEFAULT_EPOCH_MS, 0, -1, 0),
                "machine_id must be from 0 to 31 for a 5-bit field, got -1",
            ),
            (
                (DEFAULT_EPOCH_MS, 0, 0, 4096),
                "sequence must be from 0 to 4095 for a 12-bit field, got 4096",
            ),
            (
                (DEFAULT_EPOCH_MS, 0, 0, -1),
                "sequence must be from 0 to 4095 for a 12-bit field, got -1",
            ),
        ],
    )
    def test_out_of_range(self, fields: tuple[int, int, int, int], message: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            Layout().encode(*fields)
        assert str(caught.value) == message

    @pytest.mark.parametrize(
        ("fields", "name"),
        [
            ((float(DEFAULT_EPOCH_MS), 0, 0, 0), "timestamp_ms"),
            ((DEFAULT_EPOCH_MS, True, 0, 0), "datacenter_id"),
            ((DEFAULT_EPOCH_MS, 0, "1", 0), "machine_id"),
            ((DEFAULT_EPOCH_MS, 0, 0, False), "sequence"),
        ],
    )
    def test_refuses_non_integers(self, fields: tuple[Any, ...], name: str) -> None:
        with pytest.raises(ConfigurationTypeError, match=f"^{name} must be an integer, got "):
            Layout().encode(*fields)


class TestKey:
    def test_spelling(self) -> None:
        assert Layout().key == f"41-5-5-12@{DEFAULT_EPOCH_MS}"
        assert (
            MINIMAL.key
            == f"{MINIMAL.timestamp_bits}-0-0-{MINIMAL.sequence_bits}@{MINIMAL.epoch_ms}"
        )

    def test_tells_layouts_apart(self) -> None:
        keys = {Layout(**preset).key for preset in ALL_PRESETS.values()}
        assert len(keys) == len(ALL_PRESETS)
        assert Layout(epoch_ms=0).key != Layout().key


class TestDecode:
    def test_fields(self) -> None:
        layout = Layout(epoch_ms=1_000)
        uid = (123_456 << 22) | (17 << 17) | (9 << 12) | 4_000
        assert layout.decode(uid) == DecodedID(
            raw=uid, timestamp_ms=1_000 + 123_456, datacenter_id=17, machine_id=9, sequence=4_000
        )

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_extremes(self, name: str) -> None:
        layout = Layout(**ALL_PRESETS[name])
        assert layout.decode(0) == DecodedID(0, layout.epoch_ms, 0, 0, 0)
        top = layout.decode(MAX_ID)
        assert top.timestamp_ms == layout.max_timestamp_ms
        assert top.datacenter_id == 2**layout.datacenter_bits - 1
        assert top.machine_id == 2**layout.machine_bits - 1
        assert top.sequence == 2**layout.sequence_bits - 1

    @pytest.mark.parametrize("uid", [1.0, "1", b"1", True, False, None, [1]])
    def test_refuses_non_integers(self, uid: object) -> None:
        with pytest.raises(InvalidIDError, match="an ID must be an integer"):
            Layout().decode(uid)

    @pytest.mark.parametrize("uid", [-1, MAX_ID + 1, 2**64, -(2**63)])
    def test_refuses_out_of_range(self, uid: int) -> None:
        with pytest.raises(ValueError, match=f"from 0 to {MAX_ID}, got {uid}") as caught:
            Layout().decode(uid)
        assert isinstance(caught.value, InvalidIDError)


class TestDecodedID:
    def test_times(self) -> None:
        moment = dt.datetime(2025, 3, 15, 10, 22, 1, 123_000, tzinfo=UTC)
        decoded = DecodedID(
            raw=1, timestamp_ms=unix_ms(moment), datacenter_id=2, machine_id=3, sequence=4
        )
        assert decoded.generated_at == "2025-03-15T10:22:01.123Z"
        assert decoded.datetime == moment
        assert decoded.datetime.utcoffset() == dt.timedelta(0)

    def test_repr(self) -> None:
        decoded = DecodedID(raw=77, timestamp_ms=1_000, datacenter_id=2, machine_id=3, sequence=4)
        assert repr(decoded) == (
            "DecodedID(raw=77, generated_at='1970-01-01T00:00:01.000Z', "
            "datacenter_id=2, machine_id=3, sequence=4)"
        )

    def test_repr_of_the_largest_minimal_id(self) -> None:
        # About 285,000 years after 2020: past datetime's range, so only the ISO text works.
        decoded = MINIMAL.decode(MAX_ID)
        assert decoded.generated_at == "+287446-10-13T08:59:00.991Z"
        assert repr(decoded) == (
            f"DecodedID(raw={MAX_ID}, generated_at='+287446-10-13T08:59:00.991Z', "
            "datacenter_id=0, machine_id=0, sequence=1023)"
        )
        with pytest.raises(InvalidIDError):
            _ = decoded.datetime

    def test_is_frozen(self) -> None:
        decoded = DecodedID(raw=1, timestamp_ms=0, datacenter_id=0, machine_id=0, sequence=1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            decoded.sequence = 2  # type: ignore[misc]


class TestCapacity:
    @pytest.mark.parametrize(
        ("name", "years", "datacenters", "machines", "per_ms"),
        [
            ("twitter", 69.7, 32, 32, 4096),
            ("minimal", 285_420.9, 1, 1, 1024),
            ("single_dc", 69.7, 1, 1024, 4096),
            ("large_cluster", 69.7, 256, 256, 64),
            ("high_throughput", 69.7, 8, 8, 65_536),
        ],
    )
    def test_presets(
        self, name: str, years: float, datacenters: int, machines: int, per_ms: int
    ) -> None:
        widths = ALL_PRESETS[name]
        capacity = Layout(**widths).capacity()
        assert capacity == Capacity(
            timestamp_range_years=years,
            max_datacenters=datacenters,
            max_machines_per_dc=machines,
            total_nodes=datacenters * machines,
            ids_per_ms_per_node=per_ms,
            runs_out_ms=DEFAULT_EPOCH_MS + 2 ** widths["timestamp_bits"] - 1,
        )
        assert capacity.ids_per_sec_per_node == per_ms * 1000
        # 365.25-day years, counted from the milliseconds the timestamp field can hold.
        in_days = (2 ** widths["timestamp_bits"] - 1) / 86_400_000
        assert abs(capacity.timestamp_range_years - in_days / 365.25) <= 0.05

    def test_runs_out_at(self) -> None:
        capacity = Layout().capacity()
        last = dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=2**41 - 1)
        assert capacity.runs_out_at == f"{last:%Y-%m-%dT%H:%M:%S}.{last.microsecond // 1000:03d}Z"

    def test_runs_out_at_beyond_year_9999(self) -> None:
        assert MINIMAL.capacity().runs_out_at == "+287446-10-13T08:59:00.991Z"

    def test_follows_the_epoch(self) -> None:
        assert Layout(epoch_ms=0).capacity().runs_out_ms == 2**41 - 1

    def test_repr(self) -> None:
        assert repr(Layout().capacity()) == (
            "Capacity(years=69.7, nodes=1024, ids_per_sec=4,096,000)"
        )
        assert repr(Layout(**ALL_PRESETS["high_throughput"]).capacity()) == (
            "Capacity(years=69.7, nodes=64, ids_per_sec=65,536,000)"
        )


class TestBackfillNode:
    @pytest.mark.parametrize(
        ("name", "node"),
        [
            ("twitter", (31, 31)),
            ("single_dc", (0, 1023)),
            ("large_cluster", (255, 255)),
            ("high_throughput", (7, 7)),
            ("minimal", None),
        ],
    )
    def test_is_the_highest_node(self, name: str, node: tuple[int, int] | None) -> None:
        assert Layout(**ALL_PRESETS[name]).backfill_node == node

    def test_a_datacenter_without_machines(self) -> None:
        assert Layout(41, 3, 0, 19).backfill_node == (7, 0)


# 2024-03-05T06:07:08.009Z
MOMENT = dt.datetime(2024, 3, 5, 6, 7, 8, 9_000, tzinfo=UTC)
MOMENT_MS = 1_709_618_828_009


def made_at(layout: Layout, ms: int, node: tuple[int, int] = (0, 0), count: int = 1) -> list[int]:
    """IDs a real generator of the layout makes when its clock reads ``ms``."""
    generator = SnowflakeGenerator(
        **{name: getattr(layout, name) for name in WIDTH_NAMES},
        epoch_ms=layout.epoch_ms,
        datacenter_id=node[0],
        machine_id=node[1],
        clock=lambda: ms,
    )
    return generator.next_ids(count)


class TestIDsAtAMoment:
    def test_bounds_of_one_millisecond(self) -> None:
        layout = Layout()
        offset = (MOMENT_MS - DEFAULT_EPOCH_MS) << 22

        assert layout.min_id_at(MOMENT) == offset
        assert layout.max_id_at(MOMENT) == offset + 2**22 - 1
        assert layout.decode(layout.max_id_at(MOMENT)) == DecodedID(
            offset + 2**22 - 1, MOMENT_MS, 31, 31, 4095
        )

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_hold_every_id_made_in_that_millisecond(self, name: str) -> None:
        layout = Layout(**ALL_PRESETS[name])
        low, high = layout.min_id_at(MOMENT_MS), layout.max_id_at(MOMENT_MS)

        first = made_at(layout, MOMENT_MS)[0]
        last = made_at(layout, MOMENT_MS, layout.backfill_node or (0, 0), 2**layout.sequence_bits)

        assert low == first
        assert high == last[-1]
        assert made_at(layout, MOMENT_MS - 1)[0] < low
        assert made_at(layout, MOMENT_MS + 1)[0] > high

    @pytest.mark.parametrize(
        "moment",
        [
            MOMENT,
            MOMENT.replace(microsecond=9_999),
            MOMENT.replace(tzinfo=None),
            MOMENT.astimezone(dt.timezone(dt.timedelta(hours=-5))),
            MOMENT_MS,
        ],
        ids=["aware", "within-the-millisecond", "naive-is-utc", "other-zone", "unix-ms"],
    )
    def test_moment_forms(self, moment: dt.datetime | int) -> None:
        layout = Layout()
        assert layout.min_id_at(moment) == layout.min_id_at(MOMENT_MS)
        assert layout.max_id_at(moment) == layout.max_id_at(MOMENT_MS)

    def test_clamped_to_the_layout(self) -> None:
        layout = Layout()

        assert layout.min_id_at(0) == 0
        assert layout.max_id_at(dt.datetime(2000, 1, 1)) == 2**22 - 1
        assert layout.min_id_at(10**15) == layout.min_id_at(layout.max_timestamp_ms)
        assert layout.max_id_at(10**15) == MAX_ID

    @pytest.mark.parametrize("moment", [1.5, "2024-03-05", dt.date(2024, 3, 5), True, None])
    def test_refuses_other_types(self, moment: object) -> None:
        with pytest.raises(TypeError) as caught:
            Layout().min_id_at(moment)  # type: ignore[arg-type]
        assert str(caught.value).startswith(
            "a moment must be a datetime or an int of Unix milliseconds, got "
        )


class TestIDRange:
    def test_half_open(self) -> None:
        layout = Layout()
        start = dt.datetime(2024, 3, 1, tzinfo=UTC)
        end = dt.datetime(2024, 4, 1, tzinfo=UTC)

        low, high = layout.id_range(start, end)

        assert low == layout.min_id_at(start)
        assert high == layout.min_id_at(end)
        first_ms, last_ms = unix_ms(start), unix_ms(end) - 1
        assert low <= made_at(layout, first_ms)[0] < high
        assert low <= made_at(layout, last_ms, (31, 31), 4096)[-1] < high
        assert made_at(layout, first_ms - 1, (31, 31), 4096)[-1] < low
        assert made_at(layout, last_ms + 1)[0] >= high

    def test_bounds_between_milliseconds_round_up(self) -> None:
        layout = Layout()
        start = MOMENT.replace(microsecond=9_001)

        low, high = layout.id_range(start, start + dt.timedelta(microseconds=998))

        # No ID's time, a whole millisecond, lies in [.009001, .009999).
        assert low == high == layout.min_id_at(MOMENT_MS + 1)

    def test_unix_ms(self) -> None:
        layout = Layout()
        assert layout.id_range(MOMENT_MS, MOMENT_MS + 2) == (
            layout.min_id_at(MOMENT_MS),
            layout.max_id_at(MOMENT_MS + 1) + 1,
        )

    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            (0, DEFAULT_EPOCH_MS, (0, 0)),
            (0, DEFAULT_EPOCH_MS + 1, (0, 2**22)),
            (DEFAULT_EPOCH_MS + 2**41, 10**15, (MAX_ID + 1, MAX_ID + 1)),
            (DEFAULT_EPOCH_MS + 2**41 - 1, 10**15, (MAX_ID + 1 - 2**22, MAX_ID + 1)),
            (0, 10**15, (0, MAX_ID + 1)),
            (MOMENT_MS, MOMENT_MS, ((MOMENT_MS - DEFAULT_EPOCH_MS) << 22,) * 2),
            (MOMENT_MS + 5, MOMENT_MS, ((MOMENT_MS + 5 - DEFAULT_EPOCH_MS) << 22,) * 2),
        ],
        ids=[
            "before-the-epoch",
            "first-millisecond",
            "after-the-end",
            "last-millisecond",
            "everything",
            "empty",
            "reversed",
        ],
    )
    def test_edges(self, start: int, end: int, expected: tuple[int, int]) -> None:
        assert Layout().id_range(start, end) == expected
