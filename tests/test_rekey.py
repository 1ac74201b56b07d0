from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, connections, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.test import override_settings

from django_flakeid import errors
from django_flakeid import rekey as rekey_module
from django_flakeid.backfill import update_pairs
from django_flakeid.errors import NodeInUseError
from django_flakeid.fields import SnowflakeAutoField
from django_flakeid.hostclaim import claim_node
from django_flakeid.layout import Layout
from django_flakeid.progress import Progress
from django_flakeid.rekey import RekeyError, plan_rekey, rekey
from tests.rekeyapp.models import (
    Child,
    Comment,
    Loose,
    LooseRef,
    Mention,
    Outside,
    Pair,
    PairRef,
    Parent,
    ParentProxy,
    Profile,
    ShortComment,
    Special,
    SpecialNote,
    Tag,
)
from tests.testapp.models import LegacyEvent

UTC = dt.timezone.utc
LAYOUT = Layout()
MIN = LAYOUT.min_snowflake_id
BACKFILL_NODE = (31, 31)
#: The node of tests.settings' generator.
NODE = (1, 7)
LEGACY = 6
START = dt.datetime(2024, 3, 5, 12, tzinfo=UTC)


def unix_ms(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)


def node(uid: int) -> tuple[int, int]:
    decoded = LAYOUT.decode(uid)
    return decoded.datacenter_id, decoded.machine_id


def world() -> None:
    """Legacy parents 1..6 and 7 (a multi-table child), one live row, references of every kind.

    Their times run backwards from key 6 to key 1; keys 3 and 4 share one, as do 6 and 7.
    """
    tag = Tag.objects.create(name="red")
    times = {1: 50, 2: 40, 3: 30, 4: 30, 5: 20, 6: 10}
    Parent.objects.bulk_create(
        Parent(
            id=key,
            name=f"p{key}",
            code=f"c{key}",
            created_at=START + dt.timedelta(minutes=minutes),
        )
        for key, minutes in times.items()
    )
    Special.objects.create(
        id=LEGACY + 1, name="p7", code="c7", created_at=START + dt.timedelta(minutes=10), rank=3
    )
    live = Parent.objects.create(name="live", code="clive", created_at=START)
    for key in range(2, LEGACY + 2):
        Parent.objects.filter(pk=key).update(parent_id=key - 1)
    Parent.objects.get(pk=1).friends.add(Parent.objects.get(pk=2))
    Parent.objects.get(pk=live.pk).friends.add(Parent.objects.get(pk=3))
    Parent.tags.through.objects.bulk_create(
        Parent.tags.through(parent_id=key, tag=tag) for key in [*range(1, LEGACY + 2), live.pk]
    )
    Child.objects.bulk_create(
        Child(parent_id=key, proxied_id=key, by_code_id=code)
        for key, code in Parent.objects.values_list("pk", "code")
    )
    Profile.objects.create(parent_id=1)
    SpecialNote.objects.create(special_id=LEGACY + 1)
    of = ContentType.objects.get_for_model
    parent, special, other = of(Parent), of(Special), of(Tag)
    Comment.objects.bulk_create(
        [
            Comment(content_type=parent, object_id=1),
            Comment(content_type=special, object_id=LEGACY + 1),
            Comment(content_type=parent, object_id=live.pk),
            # The same number, for another model: not a reference to key 1.
            Comment(content_type=other, object_id=1),
        ]
    )
    Mention.objects.bulk_create(
        [Mention(content_type=parent, object_pk="2"), Mention(content_type=other, object_pk="2")]
    )


def graph() -> dict[str, list[tuple[Any, ...]]]:
    """Every reference, with the parents named instead of keyed: equal before and after."""
    name = dict(Parent.objects.values_list("pk", "name"))
    through = Parent.friends.through.objects.values_list("from_parent_id", "to_parent_id")
    tags = Parent.tags.through.objects.values_list("parent_id", "tag__name")
    keyed = {"parent", "special"}

    def target(model: str, value: Any) -> Any:
        return name[int(value)] if model in keyed else value

    return {
        "parents": sorted(
            (row.name, row.code, name.get(row.parent_id)) for row in Parent.objects.all()
        ),
        "friends": sorted((name[a], name[b]) for a, b in through),
        "tags": sorted((name[key], tag) for key, tag in tags),
        "children": sorted(
            (row.pk, name[row.parent_id], name[row.proxied_id], row.by_code_id)
            for row in Child.objects.all()
        ),
        "profiles": [(name[row.parent_id],) for row in Profile.objects.all()],
        "specials": [(name[row.pk], row.rank) for row in Special.objects.all()],
        "notes": [(name[row.special_id],) for row in SpecialNote.objects.all()],
        "comments": sorted(
            (row.pk, row.content_type.model, target(row.content_type.model, row.object_id))
            for row in Comment.objects.select_related("content_type")
        ),
        "mentions": sorted(
            (row.pk, row.content_type.model, target(row.content_type.model, row.object_pk))
            for row in Mention.objects.select_related("content_type")
        ),
    }


def stored() -> dict[str, list[Any]]:
    """The raw values of the keys and of the columns that hold them."""
    return {
        "parents": sorted(Parent.objects.values_list("pk", "parent_id")),
        "children": sorted(Child.objects.values_list("pk", "parent_id", "proxied_id")),
        "specials": sorted(Special.objects.values_list("pk", flat=True)),
        "comments": sorted(Comment.objects.values_list("pk", "object_id")),
        "mentions": sorted(Mention.objects.values_list("pk", "object_pk")),
    }


def keys_by_name() -> dict[str, int]:
    return dict(Parent.objects.values_list("name", "pk"))


def constraints_hold() -> None:
    """Every foreign key of the database points at a row (raises IntegrityError otherwise)."""
    connection.check_constraints()


@pytest.mark.django_db(transaction=True)
class TestRewrites:
    @pytest.mark.parametrize("from_field", [None, "created_at"])
    def test_every_reference_follows_its_row(self, from_field: str | None) -> None:
        world()
        before, counts = graph(), counts_of_every_table()
        live = keys_by_name()["live"]

        result = rekey(Parent, from_field=from_field, generic_relations=True, batch_size=3)

        assert result.rekeyed == LEGACY + 1
        # Self 6; friends 4 (1 and 2, both ways) and 2 (live and 3); tags 7; multi-table
        # child 1; children 2 x 7; profile 1; note 1; comments 2; mentions 1.
        assert result.references == 6 + 4 + 2 + 7 + 1 + 14 + 1 + 1 + 2 + 1
        assert graph() == before
        assert counts_of_every_table() == counts
        assert min(keys_by_name().values()) >= MIN
        assert keys_by_name()["live"] == live
        constraints_hold()

    def test_what_refers_to_another_field_or_model_is_left(self) -> None:
        world()
        rekey(Parent, generic_relations=True)

        other = ContentType.objects.get_for_model(Tag)
        assert sorted(Child.objects.values_list("by_code_id", flat=True)) == sorted(
            Parent.objects.values_list("code", flat=True)
        )
        assert Comment.objects.get(content_type=other).object_id == 1
        assert Mention.objects.get(content_type=other).object_pk == "2"

    def test_new_ids_in_key_order_from_the_generator(self) -> None:
        world()
        old = Parent.objects.filter(pk__lt=MIN).order_by("pk").values_list("name", flat=True)
        names = list(old)

        rekey(Parent, generic_relations=False)

        keys = keys_by_name()
        new = [keys[name] for name in names]
        assert new == sorted(new)
        assert {node(uid) for uid in new} == {NODE}

    def test_from_field_stamps_each_rows_time_on_the_backfill_node(self) -> None:
        world()
        rows = Parent.objects.filter(pk__lt=MIN).order_by("created_at", "pk")
        order = list(rows.values_list("name", "created_at"))

        rekey(Parent, from_field="created_at", generic_relations=False, batch_size=2)

        keys = keys_by_name()
        new = [keys[name] for name, _moment in order]
        assert new == sorted(new)
        decoded = [LAYOUT.decode(uid) for uid in new]
        assert [item.timestamp_ms for item in decoded] == [unix_ms(when) for _n, when in order]
        assert {node(uid) for uid in new} == {BACKFILL_NODE}
        # p7 and p6 share a time, as do p3 and p4: in old key order, one sequence number apart.
        assert [name for name, _moment in order][:2] == ["p6", "p7"]
        assert [item.sequence for item in decoded] == [0, 1, 0, 0, 1, 0, 0]

    def test_running_again_does_nothing(self) -> None:
        world()
        rekey(Parent, generic_relations=True)
        before = stored()

        again = rekey(Parent, generic_relations=True)

        assert again == rekey_module.RekeyResult(0, 0, 0.0)
        assert stored() == before

    def test_reports_progress(self) -> None:
        world()
        seen: list[tuple[int, int]] = []

        rekey(
            Parent,
            generic_relations=False,
            batch_size=3,
            progress=lambda progress: seen.append((progress.done, progress.total)),
        )

        assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]

    def test_a_proxy_rekeys_its_model(self) -> None:
        world()

        rekey(ParentProxy, generic_relations=False)

        assert not Parent.objects.filter(pk__lt=MIN).exists()


def counts_of_every_table() -> dict[str, int]:
    return {
        model._meta.label: model._base_manager.count()
        for model in (Parent, Special, Child, Profile, SpecialNote, Comment, Mention)
    } | {
        "friends": Parent.friends.through.objects.count(),
        "tags": Parent.tags.through.objects.count(),
    }


class Interrupted(Exception):
    pass


@pytest.mark.django_db(transaction=True)
class TestResuming:
    @pytest.mark.parametrize("from_field", [None, "created_at"])
    def test_a_failed_batch_is_rolled_back_and_a_rerun_completes(
        self, from_field: str | None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world()
        before = graph()
        real = update_pairs
        keys_written = 0

        def fail_in_the_second_batch(*args: Any, **kwargs: Any) -> int:
            nonlocal keys_written
            _connection, table, column = args[:3]
            if (table, column) == ("rekeyapp_parent", "id"):
                keys_written += 1
                if keys_written == 2:
                    # The second batch's references are written by now.
                    raise Interrupted
            return real(*args, **kwargs)

        monkeypatch.setattr("django_flakeid.rekey.update_pairs", fail_in_the_second_batch)
        with pytest.raises(Interrupted):
            rekey(Parent, from_field=from_field, generic_relations=True, batch_size=2)
        monkeypatch.undo()

        halfway = Parent.objects.filter(pk__gte=MIN).count()
        assert halfway == 2 + 1  # the first batch, and the live row
        assert graph() == before
        constraints_hold()
        if connection.vendor == "mysql":
            assert foreign_key_checks() == 1

        resumed = rekey(Parent, from_field=from_field, generic_relations=True, batch_size=2)

        assert resumed.rekeyed == LEGACY + 1 - 2
        assert graph() == before
        assert not Parent.objects.filter(pk__lt=MIN).exists()
        constraints_hold()

    def test_a_resumed_stamping_continues_above_the_keys_given(self) -> None:
        world()

        def interrupt(progress: Progress) -> None:
            if progress.done >= 4:
                raise Interrupted

        with pytest.raises(Interrupted):
            rekey(
                Parent,
                from_field="created_at",
                generic_relations=False,
                batch_size=4,
                progress=interrupt,
            )
        rekey(Parent, from_field="created_at", generic_relations=False, batch_size=4)

        stamped = sorted(
            uid for uid in Parent.objects.values_list("pk", flat=True) if node(uid) == BACKFILL_NODE
        )
        assert len(stamped) == len(set(stamped)) == LEGACY + 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite has no row locks")
@pytest.mark.django_db(transaction=True)
def test_a_reference_made_during_a_batch_waits_for_it_then_fails() -> None:
    """A batch locks its rows: a new reference to one of them cannot slip in between."""
    world()
    before = graph()
    outcome: list[str] = []

    def insert_a_child_of_key_1() -> None:
        try:
            Child.objects.create(parent_id=1)
            outcome.append("inserted")
        except IntegrityError:
            outcome.append("refused")
        finally:
            connections.close_all()

    real = update_pairs
    waiting: list[bool] = []

    def meanwhile(*args: Any, **kwargs: Any) -> int:
        if not waiting:
            other = threading.Thread(target=insert_a_child_of_key_1)
            other.start()
            other.join(1.0)
            waiting.append(other.is_alive())
            threads.append(other)
        return real(*args, **kwargs)

    threads: list[threading.Thread] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django_flakeid.rekey.update_pairs", meanwhile)
        rekey(Parent, generic_relations=True, batch_size=LEGACY + 1)
    threads[0].join(30)

    assert waiting == [True]
    assert outcome == ["refused"]
    assert graph() == before
    constraints_hold()


@pytest.mark.skipif(connection.vendor == "mysql", reason="MariaDB's checks are off in a batch")
@pytest.mark.django_db(transaction=True)
class TestImmediateForeignKeys:
    """Foreign keys made by hand, checked at each statement: deferred for the batch."""

    def test_are_deferred_for_the_batch(self) -> None:
        with immediate_profile_foreign_key():
            world()
            before = graph()

            rekey(Parent, generic_relations=True)

            assert graph() == before
            constraints_hold()

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's NOT DEFERRABLE")
    def test_one_that_cannot_be_deferred_is_refused(self) -> None:
        with immediate_profile_foreign_key("NOT DEFERRABLE") as name:
            world()
            before = stored()

            with pytest.raises(RekeyError) as caught:
                rekey(Parent, generic_relations=True)

            assert stored() == before
        assert str(caught.value) == (
            f"The foreign key {name} from rekeyapp_profile.parent_id to rekeyapp_parent.id is "
            "NOT DEFERRABLE: PostgreSQL would check it between the statements of a batch, "
            "before the key and its references agree. Make it DEFERRABLE INITIALLY DEFERRED, "
            "as Django makes foreign keys."
        )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's NOT DEFERRABLE")
@pytest.mark.django_db(transaction=True)
def test_a_foreign_key_to_another_column_may_stay_not_deferrable() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "rekeyapp_child")
        (name,) = (
            name
            for name, constraint in constraints.items()
            if constraint["foreign_key"] == ("rekeyapp_parent", "code")
        )
        cursor.execute(f"ALTER TABLE rekeyapp_child ALTER CONSTRAINT {name} NOT DEFERRABLE")
    try:
        world()
        before = graph()

        rekey(Parent, generic_relations=True)

        assert graph() == before
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE rekeyapp_child ALTER CONSTRAINT {name} DEFERRABLE INITIALLY DEFERRED"
            )


@contextmanager
def immediate_profile_foreign_key(how: str = "DEFERRABLE INITIALLY IMMEDIATE") -> Iterator[str]:
    """Profile's foreign key to Parent checked at each statement, then as Django made it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, "rekeyapp_profile")
            (name,) = (
                name
                for name, constraint in constraints.items()
                if constraint["foreign_key"] == ("rekeyapp_parent", "id")
            )
            cursor.execute(f"ALTER TABLE rekeyapp_profile ALTER CONSTRAINT {name} {how}")
        try:
            yield name
        finally:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"ALTER TABLE rekeyapp_profile ALTER CONSTRAINT {name} "
                    "DEFERRABLE INITIALLY DEFERRED"
                )
        return
    # SQLite cannot alter a constraint: the table is made again, with an immediate one.
    with connection.schema_editor() as editor:
        editor.delete_model(Profile)
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE "rekeyapp_profile" ("id" integer NOT NULL PRIMARY KEY, '
            '"parent_id" bigint NOT NULL UNIQUE REFERENCES "rekeyapp_parent" ("id"))'
        )
    try:
        yield ""
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE "rekeyapp_profile"')
        with connection.schema_editor() as editor:
            editor.create_model(Profile)


@pytest.mark.skipif(connection.vendor != "mysql", reason="MariaDB's foreign key checks")
@pytest.mark.django_db(transaction=True)
class TestMariaDB:
    def test_foreign_key_checks_are_on_again_after_a_run(self) -> None:
        world()

        rekey(Parent, generic_relations=True, batch_size=2)

        assert foreign_key_checks() == 1

    def test_a_session_without_checks_keeps_them_off(self) -> None:
        world()
        with connection.cursor() as cursor:
            cursor.execute("SET foreign_key_checks = 0")
        try:
            rekey(Parent, generic_relations=True)
            assert foreign_key_checks() == 0
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET foreign_key_checks = 1")

    def test_a_table_that_cannot_roll_back_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world()
        before = stored()
        introspection = type(connection.introspection)
        real = introspection.get_storage_engine  # type: ignore[attr-defined]

        def engine(self: Any, cursor: Any, table: str) -> str:
            return "MyISAM" if table == "rekeyapp_child" else str(real(self, cursor, table))

        monkeypatch.setattr(introspection, "get_storage_engine", engine)

        with pytest.raises(RekeyError) as caught:
            rekey(Parent, generic_relations=True)

        assert str(caught.value) == (
            "rekeyapp_child uses the MyISAM storage engine, which cannot roll a batch back: "
            "convert it to InnoDB first."
        )
        assert stored() == before


def foreign_key_checks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@foreign_key_checks")
        return int(cursor.fetchone()[0])


class OtherDatabase:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        model = hints.get("model")
        return False if model is Child else None


@pytest.mark.django_db(transaction=True)
class TestRefusals:
    def test_raise_the_package_error(self) -> None:
        assert RekeyError is errors.RekeyError
        assert issubclass(RekeyError, errors.FlakeIDError)
        assert issubclass(RekeyError, ValueError)

    def refused(self, model: type[models.Model], **options: Any) -> str:
        before = stored()
        with pytest.raises(RekeyError) as caught:
            rekey(model, **options)
        assert stored() == before
        return str(caught.value)

    def test_a_key_that_is_not_a_snowflake_field(self) -> None:
        LegacyEvent.objects.create()

        assert self.refused(LegacyEvent) == (
            "The key of testapp.LegacyEvent, id, is a BigAutoField, not a SnowflakeField or "
            "SnowflakeAutoField: switch the field first, then rekey its legacy rows."
        )

    @override_settings(AUTH_USER_MODEL="rekeyapp.Parent")
    def test_a_swapped_model(self) -> None:
        from django.contrib.auth.models import User

        assert self.refused(User) == "auth.User is swapped for rekeyapp.Parent: rekey that model."

    def test_a_database_it_does_not_know(self, monkeypatch: pytest.MonkeyPatch) -> None:
        world()
        monkeypatch.setattr(connections["default"], "vendor", "oracle")
        monkeypatch.setattr(connections["default"], "display_name", "Oracle")

        assert self.refused(Parent, generic_relations=True) == (
            "rekey knows how PostgreSQL, MariaDB, MySQL and SQLite check foreign keys, not how "
            "Oracle does."
        )

    def test_a_multi_table_child(self) -> None:
        world()

        assert self.refused(Special, generic_relations=True) == (
            "rekeyapp.Special takes its key from rekeyapp.Parent (multi-table inheritance): "
            "rekey rekeyapp.Parent, which rewrites the keys of rekeyapp.Special with its own."
        )

    def test_a_reference_through_several_columns(self) -> None:
        Pair.objects.create(id=1, number=5)
        PairRef.objects.create(pair_id=1, pair_number=5)

        assert self.refused(Pair) == (
            "rekeyapp.PairRef.pair refers to rekeyapp.Pair through several columns: rekey "
            "follows single-column references only, so it cannot rewrite it."
        )
        assert Pair.objects.get().pk == 1

    def test_a_table_django_does_not_manage(self) -> None:
        Outside.objects.create(id=1)

        assert self.refused(Outside) == (
            "rekeyapp.OutsideReport.outside refers to rekeyapp.Outside, but "
            "rekeyapp.OutsideReport is not managed by Django (managed = False): its table may "
            "be a view or belong to another system, so rekey will not rewrite it."
        )

    @override_settings(DATABASE_ROUTERS=[OtherDatabase()])
    def test_a_reference_in_another_database(self) -> None:
        world()

        assert self.refused(Parent, generic_relations=True) == (
            "rekeyapp.Child.parent refers to rekeyapp.Parent, but rekeyapp.Child is not in the "
            "database 'default': rekey rewrites one database at a time, in one transaction per "
            "batch."
        )

    def test_generic_relations_neither_followed_nor_left(self) -> None:
        world()

        message = self.refused(Parent)

        assert message.startswith("Generic relations may point at rekeyapp.Parent: ")
        assert "rekeyapp.Comment.target, rekeyapp.Mention.target" in message
        assert message.endswith(
            "Pass generic_relations=True (--generic-relations) to rewrite those that do, or "
            "False (--no-generic-relations) to leave them pointing at the old keys."
        )

    def test_no_generic_relation_can_name_a_model_without_a_content_type(self) -> None:
        Parent.objects.bulk_create(Parent(id=key, name=f"p{key}") for key in (1, 2))
        ContentType.objects.filter(
            app_label="rekeyapp", model__in=["parent", "parentproxy", "special"]
        ).delete()

        assert rekey(Parent).rekeyed == 2

    def test_without_contenttypes_there_are_no_generic_relations(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world()
        installed = global_apps.is_installed
        monkeypatch.setattr(
            global_apps,
            "is_installed",
            lambda name: name != "django.contrib.contenttypes" and installed(name),
        )

        plan = plan_rekey(Parent)

        assert not [ref for ref in plan.references if ref.kind == "generic relation"]

    def test_left_generic_relations_keep_the_old_keys(self) -> None:
        world()
        comments = sorted(Comment.objects.values_list("pk", "object_id"))

        plan = plan_rekey(Parent, generic_relations=False)
        rekey(Parent, generic_relations=False)

        assert "rekeyapp.Comment.target" in plan.left
        assert sorted(Comment.objects.values_list("pk", "object_id")) == comments

    def test_a_32_bit_column(self) -> None:
        Loose.objects.create(id=1)
        LooseRef.objects.create(loose_id=1)

        if connection.vendor == "sqlite":
            # SQLite stores every integer in up to 8 bytes, whatever the declared type.
            rekey(Loose, generic_relations=False)
            assert LooseRef.objects.get().loose_id == Loose.objects.get().pk >= MIN
            return
        assert self.refused(Loose, generic_relations=False) == (
            "rekeyapp.LooseRef.loose (foreign object) is a 32-bit integer column in the "
            "database: it cannot hold a Snowflake ID (64 bits); make it a BigIntegerField first."
        )

    def test_a_32_bit_generic_relation_that_holds_the_rows(self) -> None:
        world()
        ShortComment.objects.create(
            content_type=ContentType.objects.get_for_model(Parent), object_id=1
        )

        if connection.vendor == "sqlite":
            rekey(Parent, generic_relations=True)
            assert ShortComment.objects.get().object_id == keys_by_name()["p1"]
            return
        assert self.refused(Parent, generic_relations=True) == (
            "rekeyapp.ShortComment.target (generic relation) is a 32-bit integer column in the "
            "database: it cannot hold a Snowflake ID (64 bits); make it a BigIntegerField "
            "first, or leave generic relations as they are (generic_relations=False)."
        )

    @pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's integers are 64-bit")
    def test_a_32_bit_generic_relation_that_holds_none_of_them_is_left(self) -> None:
        world()
        ShortComment.objects.create(
            content_type=ContentType.objects.get_for_model(Tag), object_id=1
        )

        plan = plan_rekey(Parent, generic_relations=True)

        assert plan.left == ("rekeyapp.ShortComment.target",)
        assert "rekeyapp.ShortComment.target" not in [ref.label for ref in plan.references]

    def test_a_foreign_key_only_the_database_knows(self) -> None:
        world()
        suffix = " ENGINE=InnoDB" if connection.vendor == "mysql" else ""
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE rekey_unknown (id bigint PRIMARY KEY, parent_id bigint, "
                "CONSTRAINT rekey_unknown_parent FOREIGN KEY (parent_id) "
                f"REFERENCES rekeyapp_parent (id)){suffix}"
            )
        try:
            message = self.refused(Parent, generic_relations=True)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE rekey_unknown")

        assert message.startswith("The database has a foreign key ")
        assert message.endswith(
            " from rekey_unknown.parent_id to rekeyapp_parent.id that no installed model "
            "declares: rekey cannot rewrite a reference it does not know. Drop the "
            "constraint, or install the app that declares it."
        )

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (
                {"from_field": "name"},
                "rekeyapp.Parent.name is a CharField, not a DateTimeField: the IDs' times must "
                "come from a date and time.",
            ),
            (
                {"from_field": "created_on"},
                "rekeyapp.Parent.created_on is a DateField, not a DateTimeField: the IDs' times "
                "must come from a date and time.",
            ),
            ({"from_field": "nope"}, "rekeyapp.Parent has no field 'nope'."),
            ({"batch_size": 0}, "batch_size must be a whole number of rows, 1 or more: 0"),
        ],
    )
    def test_bad_arguments(self, options: dict[str, Any], message: str) -> None:
        world()

        assert self.refused(Parent, generic_relations=True, **options) == message

    def test_legacy_rows_without_a_time(self) -> None:
        world()
        Parent.objects.filter(pk__in=[2, 3]).update(created_at=None)

        assert self.refused(Parent, from_field="created_at", generic_relations=True) == (
            "2 legacy rows have no rekeyapp.Parent.created_at to take the time from; give "
            "them one, or rekey without from_field."
        )

    def test_a_time_before_the_first_snowflake_id(self) -> None:
        world()
        # The layout's first day: IDs stamped then are below min_snowflake_id.
        Parent.objects.filter(pk=4).update(created_at=dt.datetime(2020, 1, 1, 23, tzinfo=UTC))

        assert self.refused(Parent, from_field="created_at", generic_relations=True) == (
            "rekeyapp.Parent.created_at of row 4 is before 2020-01-02T00:00:00.000Z, a day "
            "after the layout's epoch: its ID would be below Layout.min_snowflake_id and read "
            "as a legacy key."
        )

    def test_the_first_snowflake_day_is_fine(self) -> None:
        world()
        Parent.objects.filter(pk=4).update(created_at=dt.datetime(2020, 1, 2, tzinfo=UTC))

        rekey(Parent, from_field="created_at", generic_relations=True)

        assert keys_by_name()["p4"] == MIN | (31 << 17) | (31 << 12)

    @override_settings(FLAKEID={"preset": "minimal"})
    def test_from_field_on_a_layout_without_node_bits(self) -> None:
        world()

        message = self.refused(Parent, from_field="created_at", generic_relations=True)

        assert message.startswith("The layout has no datacenter or machine bits")
        assert message.endswith(
            "; rekey without from_field (new IDs), or use a layout with machine bits."
        )

    def test_the_backfill_node_held_by_another_job(self) -> None:
        world()
        before = stored()
        claim = claim_node(LAYOUT, *BACKFILL_NODE)
        try:
            with pytest.raises(NodeInUseError, match="Let the other rekey finish"):
                rekey(Parent, from_field="created_at", generic_relations=True)
        finally:
            claim.release()

        assert stored() == before


@pytest.mark.django_db(transaction=True)
class TestPlan:
    def test_lists_every_reference_key_first(self) -> None:
        world()

        plan = plan_rekey(Parent, generic_relations=True)

        listed = [(ref.label, ref.kind) for ref in plan.references]
        expected = [
            ("rekeyapp.Parent.id", "key"),
            ("rekeyapp.Parent_friends.from_parent", "many-to-many"),
            ("rekeyapp.Parent_friends.to_parent", "many-to-many"),
            ("rekeyapp.Parent_tags.parent", "many-to-many"),
            ("rekeyapp.Parent.parent", "self-reference"),
            ("rekeyapp.Special.parent_ptr", "multi-table child"),
            ("rekeyapp.Child.parent", "foreign key"),
            ("rekeyapp.Child.proxied", "foreign key"),
            ("rekeyapp.Profile.parent", "one-to-one"),
            ("rekeyapp.SpecialNote.special", "foreign key"),
            ("autoapp.Comment.content_object", "generic relation"),
            ("rekeyapp.Comment.target", "generic relation"),
            ("rekeyapp.Mention.target", "generic relation"),
        ]
        if connection.vendor == "sqlite":
            expected.append(("rekeyapp.ShortComment.target", "generic relation"))
        assert sorted(listed) == sorted(expected)
        assert listed[0] == ("rekeyapp.Parent.id", "key")
        assert (plan.legacy, plan.below, plan.database) == (LEGACY + 1, MIN, "default")
        unindexed = [ref.label for ref in plan.references if not ref.indexed]
        assert sorted(unindexed) == sorted(
            label
            for label, _kind in expected
            if label.endswith(("Mention.target", "ShortComment.target"))
        )
        mention = next(ref for ref in plan.references if ref.label == "rekeyapp.Mention.target")
        assert mention.text
        assert set(mention.content_types) == {
            ContentType.objects.get_for_model(model, for_concrete_model=False).pk
            for model in (Parent, Special, ParentProxy)
        }

    def test_a_model_without_legacy_rows(self) -> None:
        Parent.objects.create(name="live")

        plan = plan_rekey(Parent)

        assert plan.legacy == 0
        assert [ref.label for ref in plan.references] == ["rekeyapp.Parent.id"]
        assert rekey(Parent) == rekey_module.RekeyResult(0, 0, 0.0)


# A table switched in place from AutoField, rekeyed in the migration that follows.
VISIT = migrations.CreateModel(
    "Visit",
    [
        ("id", models.AutoField(primary_key=True)),
        ("created_at", models.DateTimeField()),
    ],
)
STOP = migrations.CreateModel(
    "Stop",
    [
        ("id", models.AutoField(primary_key=True)),
        ("visit", models.ForeignKey("rekeyapp.Visit", on_delete=models.CASCADE)),
    ],
)
SWITCH = migrations.AlterField("Visit", "id", SnowflakeAutoField(primary_key=True))
APP = "rekeyapp"


@pytest.fixture
def visits() -> Iterator[list[ProjectState]]:
    """The Visit and Stop tables with AutoField keys and rows; dropped afterwards.

    The state starts where contenttypes' migrations end: the content types are there, the
    models with generic relations are not yet.
    """
    contenttypes = ("contenttypes", "0002_remove_content_type_name")
    start = MigrationLoader(connection).project_state(contenttypes, at_end=True)
    state = apply(STOP, apply(VISIT, start))
    visit, stop = state.apps.get_model(APP, "Visit"), state.apps.get_model(APP, "Stop")
    visit.objects.bulk_create(
        visit(created_at=START + dt.timedelta(hours=hours)) for hours in (3, 1, 2)
    )
    stop.objects.bulk_create(stop(visit_id=key) for key in (1, 1, 2, 3))
    states = [state]
    yield states
    apply(migrations.DeleteModel("Visit"), apply(migrations.DeleteModel("Stop"), states[-1]))


@pytest.mark.django_db(transaction=True)
class TestRunPython:
    def test_with_a_historical_model(self, visits: list[ProjectState]) -> None:
        def forwards(apps: Any, schema_editor: Any) -> None:
            rekey(
                apps.get_model(APP, "Visit"),
                from_field="created_at",
                using=schema_editor.connection.alias,
            )

        state = apply(SWITCH, visits[0])
        visits.append(state)
        state = apply(migrations.RunPython(forwards, migrations.RunPython.noop), state)

        visit, stop = state.apps.get_model(APP, "Visit"), state.apps.get_model(APP, "Stop")
        rows = list(visit.objects.order_by("created_at").values_list("pk", "created_at"))
        assert [LAYOUT.decode(key).timestamp_ms for key, _moment in rows] == [
            unix_ms(moment) for _key, moment in rows
        ]
        assert [key for key, _moment in rows] == sorted(key for key, _moment in rows)
        first, second, third = (key for key, _moment in sorted(rows, key=lambda row: row[1]))
        # The stops of old keys 1, 1, 2, 3: old key 1 is the row made at 3 o'clock.
        assert sorted(stop.objects.values_list("visit_id", flat=True)) == sorted(
            [third, third, first, second]
        )
        constraints_hold()

    def test_with_the_historical_models_of_every_app(self) -> None:
        world()
        before = graph()
        state = MigrationLoader(connection).project_state()

        result = rekey(state.apps.get_model(APP, "Parent"), generic_relations=True)

        assert result.rekeyed == LEGACY + 1
        assert graph() == before
        assert not Parent.objects.filter(pk__lt=MIN).exists()
        constraints_hold()

    def test_a_state_without_content_types(self, visits: list[ProjectState]) -> None:
        state = apply(SWITCH, visits[0])
        visits.append(state)
        bare = state.clone()
        bare.remove_model("contenttypes", "contenttype")

        # No content types, so no generic relation: none to choose about.
        assert rekey(bare.apps.get_model(APP, "Visit")).rekeyed == 3

    def test_a_reference_the_database_does_not_have_yet(self, visits: list[ProjectState]) -> None:
        state = apply(SWITCH, visits[0])
        visits.append(state)
        later = state.clone()
        migrations.AddField(
            "Stop", "next", models.ForeignKey("rekeyapp.Visit", models.CASCADE, null=True)
        ).state_forwards(APP, later)

        with pytest.raises(RekeyError) as caught:
            rekey(later.apps.get_model(APP, "Visit"))

        assert str(caught.value) == (
            "rekeyapp.Stop.next has no column next_id in rekeyapp_stop: apply the migrations first."
        )

    @pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's integers are 64-bit")
    def test_a_key_column_the_database_has_not_switched(self, visits: list[ProjectState]) -> None:
        # The model says Snowflake, the database still holds a 32-bit key.
        state = visits[0].clone()
        SWITCH.state_forwards(APP, state)

        with pytest.raises(RekeyError) as caught:
            rekey(state.apps.get_model(APP, "Visit"))

        assert str(caught.value) == (
            "rekeyapp.Visit.id (key) is a 32-bit integer column in the database: it cannot "
            "hold a Snowflake ID (64 bits); apply the migration that switches it to a "
            "Snowflake field first."
        )


def apply(operation: Any, state: ProjectState) -> ProjectState:
    """Run one migration operation on the test database, as ``migrate`` would."""
    after = state.clone()
    operation.state_forwards(APP, after)
    with connection.schema_editor(atomic=connection.features.can_rollback_ddl) as editor:
        operation.database_forwards(APP, editor, state, after)
    return after


def run(*args: str) -> str:
    stdout, stderr = StringIO(), StringIO()
    call_command("flakeid", "rekey", *args, stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    return stdout.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return str(caught.value)


PLAN = """\
It rewrites:
  rekeyapp.Parent.id                   key
  rekeyapp.Parent_friends.from_parent  many-to-many
  rekeyapp.Parent_friends.to_parent    many-to-many
  rekeyapp.Parent_tags.parent          many-to-many
  rekeyapp.Parent.parent               self-reference
  rekeyapp.Special.parent_ptr          multi-table child
  rekeyapp.Child.parent                foreign key
  rekeyapp.Child.proxied               foreign key
  rekeyapp.Profile.parent              one-to-one
  rekeyapp.SpecialNote.special         foreign key
It leaves as they are (they will keep pointing at the old keys):
  autoapp.Comment.content_object       generic relation
  rekeyapp.Comment.target              generic relation
  rekeyapp.Mention.target              generic relation
  rekeyapp.ShortComment.target         generic relation
"""


@pytest.mark.django_db(transaction=True)
class TestCommand:
    def test_log_output(self) -> None:
        world()

        output = run(
            "rekeyapp.Parent", "--from-field", "created_at", "--no-generic-relations", "--noinput"
        )

        header, rest = output.split("\n", 1)
        assert header == (
            f"Rekeying rekeyapp.Parent: 7 legacy rows (keys below {MIN}), each stamped with the "
            "row's created_at."
        )
        assert rest.startswith(PLAN)
        progress, done = rest.removeprefix(PLAN).splitlines()
        assert progress.startswith("7/7 rows (100%), ")
        assert done.startswith("Rekeyed 7 rows and 36 references in ")
        assert not Parent.objects.filter(pk__lt=MIN).exists()

    def test_dry_run_writes_nothing(self) -> None:
        world()
        before = stored()

        output = run("rekeyapp.Parent", "--generic-relations", "--dry-run")

        assert output.startswith(
            f"Rekeying rekeyapp.Parent: 7 legacy rows (keys below {MIN}), new IDs in key order.\n"
            "It rewrites:\n"
        )
        assert re.search(
            r"\n  rekeyapp\.Mention\.target +generic relation \(no index: each batch reads the "
            r"whole table\)\n",
            output,
        )
        assert output.endswith("Dry run: nothing was written.\n")
        assert stored() == before

    def test_asks_first(self, monkeypatch: pytest.MonkeyPatch) -> None:
        world()
        before = stored()
        questions: list[str] = []

        def answer(question: str) -> str:
            questions.append(question)
            return "no"

        monkeypatch.setattr("builtins.input", answer)

        assert fails("rekeyapp.Parent", "--no-generic-relations") == "Rekeying cancelled."
        assert stored() == before
        assert questions == [
            "Links, caches, search indexes, exports and other systems that hold these keys "
            "will not follow.\nType 'yes' to rekey, or 'no' to cancel: "
        ]
        monkeypatch.setattr("builtins.input", lambda question: "yes")
        run("rekeyapp.Parent", "--no-generic-relations", "--batch-size", "2")
        assert not Parent.objects.filter(pk__lt=MIN).exists()

    def test_nothing_to_do(self) -> None:
        Parent.objects.create(name="live")

        output = run("rekeyapp.Parent", "--database", "default")

        assert output == f"rekeyapp.Parent has no legacy keys (below {MIN}): nothing to do.\n"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ("rekeyapp.Nope",),
                "'rekeyapp.Nope' is not an installed model: expected app_label.Model, e.g. "
                "shop.Order.",
            ),
            (
                ("rekeyapp.Parent", "--batch-size", "0", "--noinput"),
                "batch_size must be a whole number of rows, 1 or more: 0",
            ),
            (
                ("rekeyapp.Parent", "--database", "old"),
                "There is no database 'old' in DATABASES.",
            ),
            (
                ("rekeyapp.Parent", "--from-field", "name"),
                "rekeyapp.Parent.name is a CharField, not a DateTimeField: the IDs' times must "
                "come from a date and time.",
            ),
            (
                ("rekeyapp.Special", "--no-generic-relations"),
                "rekeyapp.Special takes its key from rekeyapp.Parent (multi-table inheritance): "
                "rekey rekeyapp.Parent, which rewrites the keys of rekeyapp.Special with its "
                "own.",
            ),
        ],
    )
    def test_bad_input(self, args: tuple[str, ...], message: str) -> None:
        world()
        before = stored()

        assert fails(*args) == message
        assert stored() == before

    def test_generic_relations_one_way_or_the_other(self) -> None:
        with pytest.raises(CommandError, match="not allowed with argument"):
            run("rekeyapp.Parent", "--generic-relations", "--no-generic-relations")

    def test_undecided_generic_relations(self) -> None:
        world()

        assert fails("rekeyapp.Parent", "--noinput").startswith(
            "Generic relations may point at rekeyapp.Parent: "
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("declared", "holds"),
    [
        ("bigint", "integer"),
        ("varchar(19)", "text"),
        ("varchar(18)", "a text column of 18 characters"),
        ("text", "text"),
        ("integer", "integer" if connection.vendor == "sqlite" else "a 32-bit integer column"),
        ("smallint", "integer" if connection.vendor == "sqlite" else "a 16-bit integer column"),
        ("date", "a column of type DateField"),
    ],
)
def test_columns_that_hold_every_id(declared: str, holds: str) -> None:
    """``integer`` or ``text`` for a column that holds every ID, else how it is described."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE rekey_columns (id bigint PRIMARY KEY, value {declared})")
        try:
            (info,) = [
                info
                for info in connection.introspection.get_table_description(cursor, "rekey_columns")
                if info.name == "value"
            ]
        finally:
            cursor.execute("DROP TABLE rekey_columns")

    if holds in ("integer", "text"):
        assert rekey_module._holds(connection, info) == holds
    else:
        assert rekey_module._holds(connection, info) is None
        assert rekey_module._described_type(connection, info) == holds


class LostConnection:
    def __init__(self, usable: bool) -> None:
        self.usable = usable

    def cursor(self) -> LostConnection:
        return self

    def __enter__(self) -> LostConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, params: Any = None) -> None:
        raise DatabaseError("server has gone away")

    def is_usable(self) -> bool:
        return self.usable


def test_restoring_the_checks_on_a_lost_connection_is_not_an_error() -> None:
    # The session, and its setting, went with the connection.
    rekey_module._restore(LostConnection(usable=False), 1)  # type: ignore[arg-type]

    with pytest.raises(DatabaseError):
        rekey_module._restore(LostConnection(usable=True), 1)  # type: ignore[arg-type]
