from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import StateApps
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from django_flakeid import InvalidIDError, LegacyIDError, conf
from django_flakeid.fields import SnowflakeAutoField, SnowflakeField
from django_flakeid.models import SnowflakeModel
from tests.autoapp.models import Author, Book, Comment, Entry, Note, Series
from tests.testapp.models import Order, OrderLine

SAF = "django_flakeid.fields.SnowflakeAutoField"
LEGACY_KEY = 3
AUTO_TABLES = [
    "autoapp_author",
    "autoapp_book",
    "autoapp_book_co_authors",
    "autoapp_series",
    "autoapp_entry",
    "autoapp_comment",
    "autoapp_note",
]


def whole_ms(moment: dt.datetime) -> dt.datetime:
    """``moment`` cut to the millisecond, as an ID stamped then reads it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def assert_new_ids(pks: list[Any], before: dt.datetime, after: dt.datetime) -> None:
    """Snowflake IDs this process made between ``before`` and ``after``, in creation order."""
    layout = conf.get_layout()
    assert all(isinstance(pk, int) and pk >= layout.min_snowflake_id for pk in pks), pks
    assert pks == sorted(set(pks))
    for pk in pks:
        decoded = layout.decode(pk)
        assert whole_ms(before) <= decoded.datetime <= after
        # tests.settings: datacenter 1, machine 7.
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)


def only_insert(queries: CaptureQueriesContext, table: str) -> str:
    """The one query run, which must be an INSERT into ``table`` that reads nothing back."""
    [query] = [captured["sql"] for captured in queries.captured_queries]
    assert query.startswith(f"INSERT INTO {connection.ops.quote_name(table)} ")
    assert "RETURNING" not in query.upper()
    return query


def has_identity(table: str) -> bool:
    """Whether the database fills the id column itself: identity, sequence, AUTO_INCREMENT."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT is_identity, column_default, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "AND column_name = 'id'",
                [table],
            )
            is_identity, default, data_type = cursor.fetchone()
            assert data_type == "bigint"
            return bool(is_identity == "YES" or default)
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT EXTRA, DATA_TYPE FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = %s AND column_name = 'id'",
                [table],
            )
            extra, data_type = cursor.fetchone()
            assert data_type == "bigint"
            return "auto_increment" in extra.lower()
        # SQLite fills a NULL rowid whatever the declaration; AUTOINCREMENT is what Django's
        # auto fields add, and what a table keyed by Snowflake IDs must not have.
        return "AUTOINCREMENT" in table_sql(table).upper()


def table_sql(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        [(sql,)] = cursor.fetchall()
    return str(sql)


@functools.cache
def migrated_apps() -> StateApps:
    """The models as the project's migrations build them."""
    return MigrationLoader(None, ignore_no_migrations=True).project_state().apps


@pytest.fixture
def isolated() -> Iterator[None]:
    # An app with no AppConfig of its own: its models take DEFAULT_AUTO_FIELD.
    with isolate_apps("tests"):
        yield


def make_model(app_label: str = "tests", **fields: Any) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": app_label})
    return type("Model", (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


@pytest.mark.usefixtures("isolated")
class TestAcceptedAsTheDefault:
    def test_default_auto_field_setting(self) -> None:
        pk = make_model(name=models.CharField(max_length=10))._meta.pk

        assert type(pk) is SnowflakeAutoField
        assert pk.auto_created
        assert pk.primary_key

    def test_app_config_attribute(self) -> None:
        assert apps.get_app_config("autoapp").default_auto_field == SAF
        for model in (Author, Book, Series, Entry, Comment, Book.co_authors.through):
            assert type(model._meta.pk) is SnowflakeAutoField, model

    @override_settings(DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
    def test_app_config_attribute_without_the_setting(self) -> None:
        with isolate_apps("tests.autoapp"):
            model = make_model("autoapp")
            other = make_model()

        assert type(model._meta.pk) is SnowflakeAutoField
        assert type(other._meta.pk) is models.BigAutoField

    def test_startapp_config_keeps_its_own(self) -> None:
        # startapp writes default_auto_field = "django.db.models.BigAutoField" into apps.py,
        # as tests.testapp has: it wins over the setting for that app's models.
        assert type(OrderLine._meta.pk) is models.BigAutoField
        assert type(Order._meta.pk) is SnowflakeField

    @override_settings(DEFAULT_AUTO_FIELD="django_flakeid.fields.SnowflakeField")
    def test_the_plain_field_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must subclass AutoField"):
            make_model()


@pytest.mark.django_db
class TestSaving:
    def test_unsaved_instance_has_no_key(self) -> None:
        assert Author(name="Ada").pk is None
        assert Note().pk is None
        assert Book.co_authors.through().pk is None

    def test_save_is_one_insert_that_carries_the_id(self) -> None:
        author = Author(name="Ada")
        before = timezone.now()

        with CaptureQueriesContext(connection) as queries:
            author.save()

        assert_new_ids([author.pk], before, timezone.now())
        sql = only_insert(queries, "autoapp_author")
        assert str(author.pk) in sql
        assert Author.objects.get().pk == author.pk

    def test_saving_again_updates(self) -> None:
        author = Author.objects.create(name="Ada")
        first = author.pk
        author.name = "Ada L."

        with CaptureQueriesContext(connection) as queries:
            author.save()

        [query] = [captured["sql"] for captured in queries.captured_queries]
        assert query.startswith("UPDATE ")
        assert author.pk == first
        assert Author.objects.get().name == "Ada L."

    def test_create(self) -> None:
        before = timezone.now()

        with CaptureQueriesContext(connection) as queries:
            note = Note.objects.create(text="hi")

        assert_new_ids([note.pk], before, timezone.now())
        assert str(note.pk) in only_insert(queries, "autoapp_note")

    def test_bulk_create_sets_every_key(self) -> None:
        authors = [Author(name=name) for name in "abc"]
        before = timezone.now()

        with CaptureQueriesContext(connection) as queries:
            created = Author.objects.bulk_create(authors)

        assert created == authors
        pks = [author.pk for author in authors]
        assert_new_ids(pks, before, timezone.now())
        only_insert(queries, "autoapp_author")
        assert sorted(Author.objects.values_list("pk", flat=True)) == pks

    def test_an_explicit_key_is_kept(self) -> None:
        author = Author.objects.create(id=LEGACY_KEY, name="old")

        assert author.pk == LEGACY_KEY
        assert Author.objects.get(pk=LEGACY_KEY).name == "old"

    def test_a_new_instance_with_a_taken_key_is_an_insert(self) -> None:
        # Unlike AutoField, and as for any key with a default (a UUIDField, say), saving a
        # new instance does not try an UPDATE first; update a row through its saved instance.
        Author.objects.create(id=LEGACY_KEY, name="old")

        with pytest.raises(IntegrityError), transaction.atomic():
            Author(id=LEGACY_KEY, name="new").save()

        Author(id=LEGACY_KEY, name="new").save(force_update=True)
        assert Author.objects.get().name == "new"

    def test_new_keys_are_above_the_old_ones(self) -> None:
        Author.objects.bulk_create(Author(id=pk, name="old") for pk in (1, 2, 10**12))

        new = Author.objects.create(name="new")

        assert Author.objects.order_by("-pk").first() == new

    def test_copy_gets_a_new_key(self) -> None:
        note = Note.objects.create(text="hi")
        first = note.pk
        note.pk = None
        note._state.adding = True

        note.save()

        assert note.pk > first
        assert Note.objects.count() == 2

    def test_delete_clears_the_key(self) -> None:
        note = Note.objects.create(text="hi")

        note.delete()

        assert note.pk is None


@pytest.mark.django_db
class TestManyToMany:
    def test_auto_created_through_rows_get_snowflake_ids(self) -> None:
        author, other = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
        book = Book.objects.create(title="t", author=author)
        through = Book.co_authors.through
        before = timezone.now()

        book.co_authors.add(author, other)

        pks = list(through.objects.order_by("pk").values_list("pk", flat=True))
        assert_new_ids(pks, before, timezone.now())
        assert set(book.co_authors.all()) == {author, other}
        assert list(other.co_written.all()) == [book]

    def test_explicit_through_rows_get_snowflake_ids(self) -> None:
        author = Author.objects.create(name="a")
        book = Book.objects.create(title="t", author=author)
        series = Series.objects.create(name="s")
        before = timezone.now()

        series.books.add(book, through_defaults={"position": 2})

        entry = Entry.objects.get()
        assert_new_ids([entry.pk], before, timezone.now())
        assert (entry.series, entry.book, entry.position) == (series, book, 2)

    def test_auth_through_tables_keep_their_identity(self) -> None:
        # django.contrib.auth keeps AutoField: at run time the database fills the key of
        # auth_user_groups, so the table must have an identity even though migrations
        # build it with DEFAULT_AUTO_FIELD.
        user = User.objects.create(username="ada")
        groups = Group.objects.bulk_create([Group(name="a"), Group(name="b")])

        user.groups.add(*groups)

        assert set(user.groups.all()) == set(groups)
        assert type(User.groups.through._meta.pk) is models.AutoField
        assert has_identity("auth_user_groups")
        pks = list(User.groups.through.objects.values_list("pk", flat=True))
        assert len(pks) == 2
        assert max(pks) < conf.get_layout().min_snowflake_id


class TestThroughTableDDL:
    """What migrations render: a through model's key there is DEFAULT_AUTO_FIELD's."""

    @staticmethod
    def historical_pk(app_label: str, model: str, field: str) -> SnowflakeAutoField[Any, Any]:
        relation = migrated_apps().get_model(app_label, model)._meta.get_field(field).remote_field
        pk = relation.through._meta.pk
        assert type(pk) is SnowflakeAutoField
        return pk

    @staticmethod
    def rendered(field: models.Field[Any, Any]) -> str:
        suffix = field.db_type_suffix(connection)
        return " ".join(filter(None, [field.db_type(connection), suffix]))

    def test_of_an_app_on_snowflake_keys(self) -> None:
        pk = self.historical_pk("autoapp", "Book", "co_authors")

        assert self.rendered(pk) == self.rendered(SnowflakeField(primary_key=True))

    def test_of_an_app_that_keeps_another_auto_field(self) -> None:
        pk = self.historical_pk("auth", "User", "groups")

        identity = self.rendered(models.BigAutoField(primary_key=True))
        assert identity != self.rendered(SnowflakeField(primary_key=True))
        assert self.rendered(pk) == identity

    def test_an_explicit_key_in_such_an_app_stays_snowflake(self) -> None:
        with isolate_apps("django.contrib.auth"):
            model = make_model("auth", id=SnowflakeAutoField(primary_key=True))

        assert self.rendered(model._meta.pk) == self.rendered(SnowflakeField(primary_key=True))


@pytest.mark.django_db
class TestColumns:
    @pytest.mark.parametrize("table", AUTO_TABLES)
    def test_no_identity(self, table: str) -> None:
        assert not has_identity(table)

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="the rowid is SQLite's")
    @pytest.mark.parametrize("table", AUTO_TABLES)
    def test_key_is_the_sqlite_rowid(self, table: str) -> None:
        assert '"id" integer NOT NULL PRIMARY KEY,' in table_sql(table)

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="the rowid is SQLite's")
    def test_rows_are_stored_under_their_id(self) -> None:
        authors = Author.objects.bulk_create([Author(name="a"), Author(name="b")])
        Author.objects.create(id=LEGACY_KEY, name="old")

        with connection.cursor() as cursor:
            cursor.execute("SELECT rowid, id FROM autoapp_author ORDER BY rowid")
            rows = cursor.fetchall()

        assert rows == [(pk, pk) for pk in sorted([LEGACY_KEY, *(a.pk for a in authors)])]

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="the rowid is SQLite's")
    def test_foreign_keys_stay_bigint(self) -> None:
        sql = table_sql("autoapp_book_co_authors")

        assert '"book_id" bigint NOT NULL' in sql
        assert '"author_id" bigint NOT NULL' in sql

    def test_makemigrations_finds_no_changes(self) -> None:
        out = StringIO()

        call_command("makemigrations", check=True, dry_run=True, stdout=out)

        assert out.getvalue() == "No changes detected\n"


@pytest.mark.django_db
class TestTimeOfARow:
    def test_snowflake_model(self) -> None:
        assert SnowflakeModel._meta.abstract
        assert [field.name for field in Note._meta.concrete_fields] == ["id", "text"]
        pk = Note._meta.pk
        assert type(pk) is SnowflakeAutoField
        assert pk.primary_key
        assert not pk.auto_created

    def test_generated_at_of_an_instance(self) -> None:
        note = Note(text="hi")
        assert note.get_id_generated_at() is None  # type: ignore[attr-defined]
        before = timezone.now()

        note.save()

        moment = note.get_id_generated_at()  # type: ignore[attr-defined]
        assert whole_ms(before) <= moment <= timezone.now()
        assert moment == Note._meta.pk.decode(note.pk).datetime
        author = Author.objects.create(name="Ada")
        assert author.get_id_generated_at() == conf.get_layout().decode(author.pk).datetime

    def test_legacy_key_has_no_time(self) -> None:
        author = Author.objects.create(id=LEGACY_KEY, name="old")

        assert author.get_id_generated_at() is None

    def test_decode_refuses_legacy_keys(self) -> None:
        field = Author._meta.pk
        assert isinstance(field, SnowflakeAutoField)
        layout = conf.get_layout()
        lowest = layout.min_snowflake_id

        for legacy in (0, LEGACY_KEY, lowest - 1):
            with pytest.raises(LegacyIDError, match=f"^{legacy} is an integer key from before"):
                field.decode(legacy)
        assert issubclass(LegacyIDError, InvalidIDError)
        assert field.decode(lowest).datetime == layout.decode(lowest).datetime
        epoch = dt.datetime.fromtimestamp(layout.epoch_ms / 1000, dt.timezone.utc)
        assert field.decode(lowest).datetime == epoch + dt.timedelta(days=1)
        assert field.generated_at(lowest - 1) is None
        assert field.generated_at(None) is None


@pytest.mark.usefixtures("isolated")
class TestChecks:
    def test_plain_field_passes(self) -> None:
        for model in (Author, Book, Note, Entry, Comment, Book.co_authors.through):
            assert model.check() == [], model
        assert make_model().check() == []

    @pytest.mark.parametrize(
        ("options", "check_id"),
        [({"default": 5}, "django_flakeid.E101"), ({"db_default": 5}, "django_flakeid.E102")],
    )
    def test_snowflake_checks_apply(self, options: dict[str, Any], check_id: str) -> None:
        model = make_model(id=SnowflakeAutoField(primary_key=True, **options))

        assert [error.id for error in model.check()] == [check_id]


class TestUnsavedInstancesAreRefused:
    """Code that tests ``pk is None`` (django-taggit's managers, say) refuses unsaved rows."""

    @staticmethod
    def taggit_style_guard(instance: models.Model) -> None:
        if instance.pk is None:
            raise ValueError(
                f"{type(instance).__name__} objects need to have a primary key value "
                "before you can access their tags."
            )

    def test_third_party_guard(self) -> None:
        with pytest.raises(ValueError, match="Author objects need to have a primary key"):
            self.taggit_style_guard(Author(name="Ada"))
        # A SnowflakeField key is there from the start: the guard lets an unsaved row through.
        self.taggit_style_guard(Order())

    def test_django_related_managers(self) -> None:
        author = Author(name="Ada")
        book = Book(title="t", author=author)

        with pytest.raises(ValueError, match='needs to have a value for field "id"'):
            book.co_authors.all()
        with pytest.raises(ValueError, match="needs to have a primary key value"):
            author.books.all()

    @pytest.mark.django_db
    def test_generic_relation_writes_no_orphan(self) -> None:
        # Django's generic relation manager has no guard of its own; the NULL object_id of
        # an unsaved row is refused by the column.
        author = Author(name="Ada")

        with pytest.raises(IntegrityError), transaction.atomic():
            author.comments.create(text="hi")

        assert not Comment.objects.exists()


@pytest.mark.django_db
def test_generic_relation_holds_snowflake_ids() -> None:
    author = Author.objects.create(name="Ada")
    comment = Comment.objects.create(content_object=author, text="hi")

    assert comment.object_id == author.pk
    assert Comment.objects.get().content_object == author
    assert list(author.comments.all()) == [comment]
    assert Author.objects.filter(comments__text="hi").get() == author
