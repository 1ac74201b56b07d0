from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.db import IntegrityError, connection, migrations, models
from django.db.migrations.state import ProjectState
from django.test import override_settings

from django_flakeid import conf, errors
from django_flakeid.backfill import BackfillError, Stamper, backfill
from django_flakeid.errors import NodeInUseError
from django_flakeid.fields import SnowflakeField
from django_flakeid.hostclaim import claim_node
from django_flakeid.layout import Layout
from django_flakeid.progress import Progress
from tests.testapp.models import Article, LegacyEvent, Order

UTC = dt.timezone.utc
LAYOUT = Layout()
BACKFILL_NODE = (31, 31)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def unix_ms(moment: dt.datetime) -> int:
    return (moment - utc(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def events(*moments: dt.datetime | None) -> list[LegacyEvent]:
    return list(
        LegacyEvent.objects.bulk_create(LegacyEvent(created_at=moment) for moment in moments)
    )


def filled() -> list[tuple[int, dt.datetime, int]]:
    """(pk, created_at, public_id) of every event, in (created_at, pk) order."""
    rows = LegacyEvent.objects.order_by("created_at", "pk")
    return list(rows.values_list("pk", "created_at", "public_id"))


class TestStamper:
    def test_each_row_at_its_own_millisecond(self) -> None:
        stamper = Stamper(LAYOUT, BACKFILL_NODE)
        at = unix_ms(utc(2024, 3, 5))

        first, second = stamper.stamp(at), stamper.stamp(at + 7)

        assert LAYOUT.decode(first).timestamp_ms == at
        assert LAYOUT.decode(second).timestamp_ms == at + 7
        assert (LAYOUT.decode(first).datacenter_id, LAYOUT.decode(first).machine_id) == (31, 31)
        assert LAYOUT.decode(first).sequence == LAYOUT.decode(second).sequence == 0

    def test_ties_take_the_next_sequence_numbers(self) -> None:
        stamper = Stamper(LAYOUT, BACKFILL_NODE)
        at = unix_ms(utc(2024, 3, 5))

        ids = [stamper.stamp(at) for _ in range(3)]

        assert [LAYOUT.decode(uid).sequence for uid in ids] == [0, 1, 2]
        assert ids == sorted(ids)

    def test_past_the_last_sequence_number_the_next_millisecond(self) -> None:
        layout = Layout(41, 5, 16, 1)
        stamper = Stamper(layout, (31, 65_535))
        at = unix_ms(utc(2024, 3, 5))

        ids = [stamper.stamp(at) for _ in range(3)] + [stamper.stamp(at + 1), stamper.stamp(at + 5)]

        decoded = [
            (layout.decode(uid).timestamp_ms - at, layout.decode(uid).sequence) for uid in ids
        ]
        assert decoded == [(0, 0), (0, 1), (1, 0), (1, 1), (5, 0)]

    def test_stays_above_an_id_already_given(self) -> None:
        at = unix_ms(utc(2024, 3, 5))
        given = Stamper(LAYOUT, BACKFILL_NODE).stamp(at)

        stamper = Stamper(LAYOUT, BACKFILL_NODE, after=given)

        assert stamper.stamp(at - 1000) == given + 1
        assert stamper.stamp(at + 1) == LAYOUT.min_id_at(at + 1) | (31 << 17) | (31 << 12)

    def test_refuses_times_the_layout_cannot_hold(self) -> None:
        with pytest.raises(BackfillError, match="row 5 was made at 0 ms, before the layout's"):
            Stamper(LAYOUT, BACKFILL_NODE).stamp(0, 5)
        last = Stamper(LAYOUT, BACKFILL_NODE, after=2**63 - 1)
        with pytest.raises(BackfillError, match="row 6 would need a time past the layout's last"):
            last.stamp(LAYOUT.max_timestamp_ms, 6)


@pytest.mark.django_db(transaction=True)
class TestFromField:
    def test_ids_carry_each_rows_time_in_order(self) -> None:
        # Inserted out of order, with ties: ID order is (created_at, pk) order.
        events(
            utc(2024, 3, 5, 12),
            utc(2023, 1, 1),
            utc(2024, 3, 5, 12),
            utc(2024, 3, 5, 12, 0, 0, 999),
            utc(2024, 3, 5, 12, 0, 0, 1_000),
        )

        result = backfill(LegacyEvent, "public_id", from_field="created_at")

        rows = filled()
        assert result.filled == 5
        ids = [uid for _pk, _moment, uid in rows]
        assert ids == sorted(ids)
        assert len(set(ids)) == 5
        decoded = [LAYOUT.decode(uid) for uid in ids]
        assert [d.timestamp_ms for d in decoded] == [unix_ms(moment) for _pk, moment, _ in rows]
        assert [d.sequence for d in decoded] == [0, 0, 1, 2, 0]
        assert {(d.datacenter_id, d.machine_id) for d in decoded} == {BACKFILL_NODE}

    def test_running_again_changes_nothing(self) -> None:
        events(*(utc(2024, 3, day) for day in range(1, 11)))
        backfill(LegacyEvent, "public_id", from_field="created_at", batch_size=3)
        before = filled()

        again = backfill(LegacyEvent, "public_id", from_field="created_at", batch_size=3)

        assert again.filled == 0
        assert filled() == before

    def test_resumes_where_it_was_interrupted(self) -> None:
        moments = [utc(2024, 3, 5, 12, 0, 0, 1_000 * (index // 4)) for index in range(25)]
        events(*moments)

        class Interrupted(Exception):
            pass

        def interrupt(progress: Progress) -> None:
            if progress.done >= 10:
                raise Interrupted

        with pytest.raises(Interrupted):
            backfill(
                LegacyEvent, "public_id", from_field="created_at", batch_size=5, progress=interrupt
            )
        halfway = LegacyEvent.objects.filter(public_id__isnull=False).count()
        resumed = backfill(LegacyEvent, "public_id", from_field="created_at", batch_size=5)

        stamper = Stamper(LAYOUT, BACKFILL_NODE)
        expected = [stamper.stamp(unix_ms(moment)) for _pk, moment, _ in filled()]
        assert halfway == 10
        assert resumed.filled == 15
        assert [uid for _pk, _moment, uid in filled()] == expected

    def test_many_rows_in_one_millisecond_spill_over_in_order(self) -> None:
        # Two IDs per millisecond: five rows at t take t and t+1 (twice) and t+2, and the row
        # made at t+1 comes after them.
        at = utc(2024, 3, 5)
        events(*[at] * 5, at + dt.timedelta(milliseconds=1))
        preset = {
            "timestamp_bits": 41,
            "datacenter_bits": 5,
            "machine_bits": 16,
            "sequence_bits": 1,
        }

        with override_settings(FLAKEID={"preset": preset, "datacenter_id": 1, "machine_id": 7}):
            backfill(LegacyEvent, "public_id", from_field="created_at")
            layout = conf.get_layout()

        ids = [uid for _pk, _moment, uid in filled()]
        assert ids == sorted(ids)
        times = [
            (layout.decode(uid).timestamp_ms - unix_ms(at), layout.decode(uid).sequence)
            for uid in ids
        ]
        assert times == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]

    def test_late_rows_get_ids_after_those_given(self) -> None:
        events(utc(2024, 3, 5), utc(2024, 3, 6))
        backfill(LegacyEvent, "public_id", from_field="created_at")
        highest = max(uid for _pk, _moment, uid in filled())
        # A transaction that committed late: its row is older than rows already filled.
        (late,) = events(utc(2024, 3, 5, 12))

        result = backfill(LegacyEvent, "public_id", from_field="created_at")

        late.refresh_from_db()
        assert result.filled == 1
        assert late.public_id == highest + 1
        assert len({uid for _pk, _moment, uid in filled()}) == 3

    def test_ids_of_live_generators_are_left_alone_and_never_repeated(self) -> None:
        live = conf.get_generator()
        moment = utc(2024, 3, 5)
        old = events(moment, moment)
        newer = LegacyEvent.objects.create(created_at=moment, public_id=live.next_id())

        backfill(LegacyEvent, "public_id", from_field="created_at")

        newer_id = newer.public_id
        newer.refresh_from_db()
        backfilled = [LegacyEvent.objects.get(pk=event.pk).public_id for event in old]
        assert newer.public_id == newer_id
        assert [LAYOUT.decode(uid).timestamp_ms for uid in backfilled] == [unix_ms(moment)] * 2
        # Another node: no live generator can make these numbers, whenever it runs.
        nodes = {
            (LAYOUT.decode(uid).datacenter_id, LAYOUT.decode(uid).machine_id) for uid in backfilled
        }
        assert nodes == {BACKFILL_NODE}

    @override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo")
    def test_without_time_zone_support_times_are_local(self) -> None:
        LegacyEvent.objects.create(created_at=dt.datetime(2024, 3, 5, 9))

        backfill(LegacyEvent, "public_id", from_field="created_at")

        ((_pk, _moment, uid),) = filled()
        assert LAYOUT.decode(uid).datetime == utc(2024, 3, 5)

    def test_a_layout_reaching_past_the_year_9999(self) -> None:
        events(utc(2024, 3, 5))
        preset = {"timestamp_bits": 50, "datacenter_bits": 0, "machine_bits": 4, "sequence_bits": 9}

        with override_settings(FLAKEID={"preset": preset, "machine_id": 7}):
            backfill(LegacyEvent, "public_id", from_field="created_at")
            layout = conf.get_layout()

        decoded = layout.decode(LegacyEvent.objects.get().public_id)
        assert (decoded.datetime, decoded.machine_id) == (utc(2024, 3, 5), 15)

    def test_a_pass_that_fills_nothing_ends_the_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Someone else fills every row first: the rows are counted, but none is left to fill.
        events(utc(2024, 3, 5))
        monkeypatch.setattr("django_flakeid.backfill.update_pairs", lambda *args, **kwargs: 0)

        assert backfill(LegacyEvent, "public_id", from_field="created_at").filled == 0

    def test_reports_progress(self) -> None:
        events(*(utc(2024, 3, 5, 12, minute) for minute in range(7)))
        seen: list[tuple[int, int]] = []

        backfill(
            LegacyEvent,
            "public_id",
            from_field="created_at",
            batch_size=3,
            progress=lambda progress: seen.append((progress.done, progress.total)),
        )

        assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]

    def test_holds_the_backfill_node_while_it_runs(self) -> None:
        events(utc(2024, 3, 5))
        claim = claim_node(LAYOUT, *BACKFILL_NODE)
        try:
            with pytest.raises(NodeInUseError, match="datacenter_id=31 machine_id=31 is already"):
                backfill(LegacyEvent, "public_id", from_field="created_at")
        finally:
            claim.release()

        backfill(LegacyEvent, "public_id", from_field="created_at")
        # Released afterwards: the node can be claimed again.
        claim_node(LAYOUT, *BACKFILL_NODE).release()


@pytest.mark.django_db(transaction=True)
class TestNewIDs:
    def test_ids_from_the_generator_in_key_order(self) -> None:
        rows = events(utc(2024, 3, 5), None, utc(2020, 6, 1))

        result = backfill(LegacyEvent, "public_id", batch_size=2)

        ids = [LegacyEvent.objects.get(pk=row.pk).public_id for row in rows]
        assert result.filled == 3
        assert ids == sorted(ids)
        decoded = [LAYOUT.decode(uid) for uid in ids]
        assert {(d.datacenter_id, d.machine_id) for d in decoded} == {(1, 7)}

    def test_only_empty_rows(self) -> None:
        kept = LegacyEvent.objects.create(public_id=5)
        events(None)

        assert backfill(LegacyEvent, "public_id").filled == 1
        assert backfill(LegacyEvent, "public_id").filled == 0
        kept.refresh_from_db()
        assert kept.public_id == 5

    def test_nothing_to_do(self) -> None:
        seen: list[Progress] = []

        result = backfill(LegacyEvent, "public_id", progress=seen.append)

        assert result.filled == 0
        assert seen == []


@pytest.mark.django_db
class TestRefusals:
    def test_raise_the_package_error(self) -> None:
        assert BackfillError is errors.BackfillError

    @pytest.mark.parametrize(
        ("model", "field", "message"),
        [
            (LegacyEvent, "colour", "testapp.LegacyEvent has no field 'colour'."),
            (LegacyEvent, "name", "testapp.LegacyEvent.name is a CharField, not a SnowflakeField."),
            (Order, "tags", "testapp.Order.tags is not a column of the table."),
            (Article, "public_id", "testapp.Article.public_id is not nullable, so it has no empty"),
        ],
    )
    def test_the_field(self, model: type[models.Model], field: str, message: str) -> None:
        with pytest.raises(BackfillError) as caught:
            backfill(model, field)
        assert str(caught.value).startswith(message)

    def test_the_source_field(self) -> None:
        with pytest.raises(BackfillError, match=r"^testapp.LegacyEvent.name is a CharField, not a"):
            backfill(LegacyEvent, "public_id", from_field="name")

    @pytest.mark.parametrize("size", [0, -1, 1.5, True])
    def test_batch_size(self, size: Any) -> None:
        with pytest.raises(BackfillError, match="batch_size must be a whole number of rows"):
            backfill(LegacyEvent, "public_id", batch_size=size)

    def test_rows_without_a_time(self) -> None:
        events(utc(2024, 3, 5), None, None)

        with pytest.raises(BackfillError) as caught:
            backfill(LegacyEvent, "public_id", from_field="created_at")

        assert str(caught.value) == (
            "2 empty rows have no testapp.LegacyEvent.created_at to take the time from; "
            "give them one, or backfill without from_field."
        )
        assert not LegacyEvent.objects.filter(public_id__isnull=False).exists()

    @pytest.mark.parametrize(
        ("moment", "where"),
        [
            (utc(2019, 12, 31, 23, 59, 59, 999_999), "before the layout's epoch"),
            (utc(2089, 9, 6, 15, 47, 35, 552_000), "past the layout's last millisecond"),
        ],
    )
    def test_times_outside_the_layout(self, moment: dt.datetime, where: str) -> None:
        events(utc(2024, 3, 5))
        (row,) = events(moment)

        with pytest.raises(BackfillError, match=f"created_at of row {row.pk} is {where}"):
            backfill(LegacyEvent, "public_id", from_field="created_at")

    def test_the_last_millisecond_is_fine(self) -> None:
        events(utc(2089, 9, 6, 15, 47, 35, 551_999))

        backfill(LegacyEvent, "public_id", from_field="created_at")

        assert LegacyEvent.objects.get().public_id == 2**63 - 2**22 + (31 << 17) + (31 << 12)

    @override_settings(FLAKEID={"preset": "minimal"})
    def test_a_layout_without_node_bits(self) -> None:
        with pytest.raises(BackfillError, match=r"^The layout has no datacenter or machine bits"):
            backfill(LegacyEvent, "public_id", from_field="created_at")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hundred_thousand_rows() -> None:
    # 100,000 rows over about 28 hours, 25 rows to a millisecond here and there.
    start = utc(2023, 6, 1)
    LegacyEvent.objects.bulk_create(
        (
            LegacyEvent(created_at=start + dt.timedelta(seconds=index // 25 * 25))
            for index in range(100_000)
        ),
        batch_size=5_000,
    )
    seen: list[Progress] = []

    result = backfill(LegacyEvent, "public_id", from_field="created_at", progress=seen.append)

    assert result.filled == 100_000
    assert [progress.done for progress in seen] == list(range(0, 100_001, 1_000))
    ids = list(LegacyEvent.objects.order_by("created_at", "pk").values_list("public_id", flat=True))
    assert all(low < high for low, high in itertools.pairwise(ids))
    assert backfill(LegacyEvent, "public_id", from_field="created_at").filled == 0


VISIT = migrations.CreateModel(
    "Visit",
    [("id", models.BigAutoField(primary_key=True)), ("created_at", models.DateTimeField())],
)


@pytest.mark.django_db(transaction=True)
def test_one_migration_gives_every_row_the_same_id() -> None:
    # Why backfill exists: Django computes a callable default once, for all the existing rows.
    state = apply("testapp", VISIT, ProjectState())
    visit = state.apps.get_model("testapp", "Visit")
    visit.objects.bulk_create(visit(created_at=utc(2024, 3, 5, hour)) for hour in (1, 2))
    try:
        with pytest.raises(IntegrityError):
            apply(
                "testapp",
                migrations.AddField("Visit", "public_id", SnowflakeField(unique=True)),
                state,
            )
    finally:
        apply("testapp", migrations.DeleteModel("Visit"), state)


@pytest.mark.django_db(transaction=True)
def test_the_three_migrations_of_the_readme() -> None:
    """Add nullable, backfill in RunPython, then unique and not null, on a table with rows."""
    app = "testapp"

    def forwards(apps: Any, schema_editor: Any) -> None:
        visit = apps.get_model(app, "Visit")
        backfill(visit, "public_id", from_field="created_at", using=schema_editor.connection.alias)

    steps: list[migrations.operations.base.Operation] = [
        migrations.AddField("Visit", "public_id", SnowflakeField(null=True, default=None)),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.AlterField("Visit", "public_id", SnowflakeField(unique=True)),
    ]
    state = apply(app, VISIT, ProjectState())
    visit = state.apps.get_model(app, "Visit")
    visit.objects.bulk_create(visit(created_at=utc(2024, 3, 5, hour)) for hour in (3, 1, 2))
    try:
        for step in steps:
            state = apply(app, step, state)

        visit = state.apps.get_model(app, "Visit")
        rows = list(visit.objects.order_by("created_at").values_list("public_id", flat=True))
        assert rows == sorted(rows)
        assert [LAYOUT.decode(uid).datetime.hour for uid in rows] == [1, 2, 3]
        assert not visit._meta.get_field("public_id").null
        assert visit.objects.create(created_at=utc(2024, 3, 6)).public_id > rows[-1]
    finally:
        apply(app, migrations.DeleteModel("Visit"), state)


def apply(app: str, operation: Any, state: ProjectState) -> ProjectState:
    """Run one migration operation on the test database, as ``migrate`` would."""
    after = state.clone()
    operation.state_forwards(app, after)
    with connection.schema_editor(atomic=connection.features.can_rollback_ddl) as editor:
        operation.database_forwards(app, editor, state, after)
    return after
