"""Switching the keys of tables that already hold rows and references, in place.

A scratch project (tests/switching/project: apps ``shop`` and ``crm``) starts on AutoField,
BigAutoField and SmallAutoField keys and gets rows that refer to each other in every way: in
the same app and across apps, many-to-many (to another model and to itself), one-to-one (also
as the key, and by multi-table inheritance), to itself. Then it switches with one
``makemigrations`` and one ``migrate``: model by model, or for every model at once with
``DEFAULT_AUTO_FIELD``. On PostgreSQL, crm's keys are serial columns, as Django made them
before 4.1, and shop's are identity columns. Each step runs in a subprocess, on a database of
its own (a file on SQLite, ``switch_<pid>_<name>_<role>`` on the server FLAKEID_TEST_DB names);
tests/switching/probe.py writes and reads the rows. Switched with the setting, each app also
gets the migration that runs ``AlterThroughKeys`` on its many-to-many tables.

The tests at the end run ``AlterThroughKeys`` in this process, on tables of their own in the
test database, made the ways an auto field makes them.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.migrations import Migration
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.writer import MigrationWriter
from django.test import override_settings

from django_flakeid import conf
from django_flakeid.fields import SnowflakeAutoField
from django_flakeid.operations import AlterThroughKeys

HERE = Path(__file__).resolve().parent / "switching"
PROBE = HERE / "probe.py"
DATABASE = os.environ.get("FLAKEID_TEST_DB", "sqlite")
# Every subprocess is bounded by this; each takes a second or two.
TIMEOUT_S = 120

SNOWFLAKE_AUTO = "id = SnowflakeAutoField(primary_key=True)"
SNOWFLAKE = "id = SnowflakeField(primary_key=True)"
# As a project from before Django 3.2 is: DEFAULT_AUTO_FIELD is AutoField, shop's apps.py has
# the BigAutoField that startapp writes, and one model names its key.
BEFORE = {
    "default_auto_field": "django.db.models.AutoField",
    "default_auto_field_line": 'default_auto_field = "django.db.models.BigAutoField"',
    "customer_key": "",
    "product_key": "id = models.SmallAutoField(primary_key=True)",
    "order_key": "",
    "contact_key": "",
}
PER_MODEL = BEFORE | {
    "customer_key": SNOWFLAKE_AUTO,
    "product_key": SNOWFLAKE,
    "order_key": SNOWFLAKE,
    "contact_key": SNOWFLAKE_AUTO,
}
BY_SETTING = BEFORE | {
    "default_auto_field": "django_flakeid.fields.SnowflakeAutoField",
    "default_auto_field_line": "",
    "product_key": "",
}
UNCHANGED_KEYS = {"shop_profile": "OneToOneField", "crm_partner": "OneToOneField"}
KEYS = {
    "per_model": UNCHANGED_KEYS
    | {
        "shop_customer": "SnowflakeAutoField",
        "shop_product": "SnowflakeField",
        "shop_order": "SnowflakeField",
        "crm_contact": "SnowflakeAutoField",
        "crm_call": "AutoField",
        "crm_visit": "AutoField",
        # Django's own mismatch: at run time a through table's key takes its app's default,
        # while migrations made the table with the setting's (AutoField, so integer).
        "shop_order_products": "BigAutoField",
        "crm_contact_friends": "AutoField",
        "crm_contact_products": "AutoField",
    },
    "by_setting": UNCHANGED_KEYS
    | dict.fromkeys(
        [
            "shop_customer",
            "shop_product",
            "shop_order",
            "shop_order_products",
            "crm_contact",
            "crm_contact_friends",
            "crm_contact_products",
            "crm_call",
            "crm_visit",
        ],
        "SnowflakeAutoField",
    ),
}
ALTERED = {
    "per_model": {"shop": {"customer", "order", "product"}, "crm": {"contact"}},
    "by_setting": {"shop": {"customer", "order", "product"}, "crm": {"call", "contact", "visit"}},
}
INT32_MAX = 2**31 - 1
APPS = ("shop", "crm")
THROUGH_KEYS = "0003_snowflake_through_keys"
OPERATIONS = "operations = [\n        AlterThroughKeys(),\n    ]"
THROUGH_TABLES = {
    "shop": {"shop_order_products"},
    "crm": {"crm_contact_friends", "crm_contact_products"},
}


class Scratch:
    """A Django project in a folder, written from tests/switching/project, on its own databases."""

    def __init__(self, folder: Path, databases: dict[str, str]) -> None:
        self.folder = folder
        self.databases = databases
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "FLAKEID_", "PYTHONPATH"))
            or key.startswith("FLAKEID_TEST_DB")
        }
        self.env |= {
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": str(folder),
            "FLAKEID_LOCK_DIR": str(folder / "locks"),
        }

    def write(self, stage: dict[str, str]) -> None:
        source = HERE / "project"
        for template in source.rglob("*.py-tpl"):
            target = self.folder / template.relative_to(source).with_suffix(".py")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(string.Template(template.read_text()).substitute(stage))
        for app in APPS:
            (self.folder / app / "migrations").mkdir(exist_ok=True)
            for package in (self.folder / app, self.folder / app / "migrations"):
                (package / "__init__.py").touch()

    def run(self, *args: str, database: str = "switched") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.folder,
            env=self.env | {"SWITCH_DATABASE_NAME": self.databases[database]},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )

    def manage(self, *args: str, database: str = "switched") -> str:
        done = self.run("-m", "django", *args, database=database)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def probe(self, *args: str, database: str = "switched") -> Any:
        done = self.run(str(PROBE), *args, database=database)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def add_through_key_migrations(self) -> None:
        """The step makemigrations leaves to the user, as the README gives it, in each app."""
        for app in APPS:
            self.manage("makemigrations", app, "--empty", "--name", "snowflake_through_keys")
            path = self.folder / app / "migrations" / f"{THROUGH_KEYS}.py"
            written, imported = re.subn(
                r"^from django.db import migrations\n",
                r"\g<0>\nfrom django_flakeid.operations import AlterThroughKeys\n",
                path.read_text(),
                flags=re.MULTILINE,
            )
            written, given = re.subn(r"operations = \[\s*\]", OPERATIONS, written)
            assert (imported, given) == (1, 1), written
            path.write_text(written)

    def sqlmigrate(self, app: str, database: str = "switched") -> list[str]:
        """The statements the through key migration of ``app`` runs on that database now."""
        out = self.manage("sqlmigrate", app, THROUGH_KEYS, database=database)
        assert f"-- {AlterThroughKeys().describe()}\n" in out, out
        return [
            line
            for line in out.splitlines()
            if line and not line.startswith("--") and line not in ("BEGIN;", "COMMIT;")
        ]


def on_server(statement: str) -> None:
    """Run one statement on the test database server, outside Django."""
    host = os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1")
    if DATABASE == "postgresql":
        import psycopg

        with psycopg.connect(
            host=host,
            port=int(os.environ.get("FLAKEID_TEST_DB_PORT", "5432")),
            user=os.environ.get("FLAKEID_TEST_DB_USER", "postgres"),
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(statement.encode())
        return
    import MySQLdb

    connection = MySQLdb.connect(
        host=host,
        port=int(os.environ.get("FLAKEID_TEST_DB_PORT", "3306")),
        user=os.environ.get("FLAKEID_TEST_DB_USER", "root"),
        password="",
    )
    try:
        connection.cursor().execute(statement)
    finally:
        connection.close()


@contextmanager
def scratch(
    factory: pytest.TempPathFactory, name: str, roles: tuple[str, ...] = ("switched", "fresh")
) -> Iterator[Scratch]:
    """A scratch project with empty databases: by default one to switch, one to build anew."""
    folder = factory.mktemp(name)
    if DATABASE == "sqlite":
        yield Scratch(folder, {role: str(folder / f"{role}.sqlite3") for role in roles})
        return
    databases = {role: f"switch_{os.getpid()}_{name}_{role}" for role in roles}
    try:
        for database in databases.values():
            on_server(f"CREATE DATABASE {database}")
        yield Scratch(folder, databases)
    finally:
        for database in databases.values():
            drop = f"DROP DATABASE IF EXISTS {database}"
            on_server(f"{drop} WITH (FORCE)" if DATABASE == "postgresql" else drop)


@dataclass
class ThroughKeys:
    """What the through key migrations do, per app: planned, then run again on either database."""

    planned: dict[str, list[str]]
    again: dict[str, list[str]]
    on_fresh: dict[str, list[str]]
    backwards: subprocess.CompletedProcess[str]


@dataclass
class Switch:
    name: str
    seed: dict[str, Any]
    made: str
    check: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    fresh: dict[str, Any]
    through_keys: ThroughKeys | None

    @property
    def named(self) -> dict[str, int]:
        return {**self.seed["named"], **self.report["new"]["named"]}

    def switched(self) -> list[str]:
        """The tables whose key is now a Snowflake key."""
        return [table for table, key in KEYS[self.name].items() if key.startswith("Snowflake")]

    def key_column(self, table: str) -> str:
        return {"shop_profile": "customer_id", "crm_partner": "contact_ptr_id"}.get(table, "id")

    def old_keys(self, table: str) -> list[int]:
        return [row[self.key_column(table)] for row in self.seed["rows"][table]]

    def new_keys(self, table: str) -> list[int]:
        old = self.old_keys(table)
        keys = [row[self.key_column(table)] for row in self.report["rows"][table]]
        return [key for key in keys if key not in old]


def switch(project: Scratch, name: str, stage: dict[str, str], through_keys: bool) -> Switch:
    project.write(BEFORE)
    project.manage("makemigrations")
    project.manage("migrate")
    seed = project.probe("seed")
    project.write(stage)
    made = project.manage("makemigrations")
    if through_keys:
        project.add_through_key_migrations()
        planned = {app: project.sqlmigrate(app) for app in APPS}
    project.manage("migrate")
    check = project.run("-m", "django", "makemigrations", "--check", "--dry-run")
    report = project.probe("report", json.dumps(seed["named"]))
    # As for a test database or a new checkout: every migration, from an empty database.
    project.manage("migrate", database="fresh")
    fresh = project.probe("columns", database="fresh")
    steps = None
    if through_keys:
        previous = re.findall(r"shop/migrations/(0002_\w+)\.py", made)[0]
        steps = ThroughKeys(
            planned=planned,
            again={app: project.sqlmigrate(app) for app in APPS},
            on_fresh={app: project.sqlmigrate(app, database="fresh") for app in APPS},
            backwards=project.run("-m", "django", "migrate", "shop", previous),
        )
    return Switch(name, seed, made, check, report, fresh, steps)


@pytest.fixture(scope="module")
def per_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    """Each model names its Snowflake key; DEFAULT_AUTO_FIELD and apps.py stay as they were."""
    with scratch(tmp_path_factory, "per_model") as project:
        yield switch(project, "per_model", PER_MODEL, through_keys=False)


@pytest.fixture(scope="module")
def by_setting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    """DEFAULT_AUTO_FIELD names SnowflakeAutoField, no app names its own, no model its key."""
    with scratch(tmp_path_factory, "by_setting") as project:
        yield switch(project, "by_setting", BY_SETTING, through_keys=True)


@pytest.fixture(params=["per_model", "by_setting"])
def switched(request: pytest.FixtureRequest) -> Switch:
    found: Switch = request.getfixturevalue(request.param)
    return found


@pytest.mark.slow
def test_makemigrations_alters_each_key_in_one_migration_per_app(switched: Switch) -> None:
    made = switched.made
    for app, altered in ALTERED[switched.name].items():
        assert len(re.findall(rf"{app}/migrations/0002_\w+\.py", made)) == 1, made
        section = made.split(f"Migrations for '{app}':")[1].split("Migrations for")[0]
        assert set(re.findall(r"Alter field id on (\w+)", section)) == altered, made


@pytest.mark.slow
def test_a_second_makemigrations_finds_nothing(switched: Switch) -> None:
    assert switched.check.returncode == 0, switched.check.stdout + switched.check.stderr
    assert switched.check.stdout == "No changes detected\n"


@pytest.mark.slow
def test_each_model_has_the_key_it_declares(switched: Switch) -> None:
    assert switched.report["keys"] == KEYS[switched.name]


@pytest.mark.slow
def test_every_old_row_is_kept_as_it_was(switched: Switch) -> None:
    for table, old_rows in switched.seed["rows"].items():
        after = switched.report["rows"][table]
        assert old_rows, table
        assert [row for row in old_rows if row not in after] == [], table
        assert len(after) == len(old_rows) + len(switched.new_keys(table)), table


@pytest.mark.slow
def test_new_rows_refer_to_old_and_new_rows(switched: Switch) -> None:
    named = switched.named
    assert switched.report["read_back"] == {
        "cat.referred_by": named["ada"],
        "dan.referred_by": named["cat"],
        "ada.referrals": sorted([named["bob"], named["cat"]]),
        "dan.profile": named["dan"],
        "third.customer": named["big"],
        "third.products": sorted([named["cup"], named["ink"]]),
        "first.products": sorted([named["pen"], named["ink"], named["mug"]]),
        "temp.manager": named["clerk"],
        "temp.friends": [named["boss"]],
        "boss.friends": sorted([named["clerk"], named["temp"]]),
        "temp.products": sorted([named["pen"], named["cup"]]),
        "clerk.products": sorted([named["ink"], named["mug"]]),
        "temp.calls": [named["first"]],
        "corp.visits": 1,
        "acme.visits": 2,
    }


@pytest.mark.slow
def test_new_keys_are_snowflake_ids_above_every_old_key(switched: Switch) -> None:
    lowest = switched.report["min_snowflake_id"]
    every_old_key = [key for table in KEYS[switched.name] for key in switched.old_keys(table)]
    assert max(every_old_key) == 10**12
    for table in switched.switched():
        new = switched.new_keys(table)
        assert new, table
        assert min(new) > max(every_old_key), table
        assert min(new) >= lowest, table


@pytest.mark.slow
def test_tables_that_keep_their_auto_field_keep_counting(per_model: Switch) -> None:
    lowest = per_model.report["min_snowflake_id"]
    for table in ("crm_call", "crm_visit", "shop_order_products", "crm_contact_products"):
        new = per_model.new_keys(table)
        assert new, table
        assert max(new) < lowest, table


@pytest.mark.slow
def test_save_create_and_bulk_create_set_the_key(switched: Switch) -> None:
    new = switched.report["new"]
    assert new["unsaved_pk"] is None
    assert all(isinstance(key, int) for key in new["named"].values()), new


@pytest.mark.slow
def test_every_foreign_key_refuses_a_missing_row(switched: Switch) -> None:
    references = switched.report["references"]
    assert len(references) == 16
    assert switched.report["foreign_keys"] == dict.fromkeys(references, "IntegrityError")


@pytest.mark.slow
def test_switched_keys_are_plain_64_bit_columns(switched: Switch) -> None:
    columns = switched.report["columns"]
    # SQLite makes an "integer" key the rowid, 64 bits wide; other integer types are too.
    wide = "integer" if DATABASE == "sqlite" else "bigint"
    for table in switched.switched():
        assert columns[f"{table}.id"] == {"type": wide, "auto": False}, table


@pytest.mark.slow
def test_keys_left_as_auto_fields_are_still_filled_by_the_database(per_model: Switch) -> None:
    columns = per_model.report["columns"]
    for table in ("crm_call", "crm_visit", "shop_order_products", "crm_contact_friends"):
        assert columns[f"{table}.id"]["auto"] is True, table


@pytest.mark.slow
def test_columns_that_refer_to_a_key_are_64_bit(switched: Switch) -> None:
    columns = switched.report["columns"]
    for column in switched.report["references"]:
        kind = columns[column]["type"]
        # Every SQLite integer type holds 64 bits: the declared name does not matter.
        assert ("int" in kind) if DATABASE == "sqlite" else (kind == "bigint"), column


@pytest.mark.slow
def test_old_keys_are_legacy_and_hold_no_time(switched: Switch) -> None:
    legacy = switched.report["legacy"]
    assert sorted(legacy) == sorted(switched.switched())
    for table, found in legacy.items():
        old, new = sorted(switched.old_keys(table)), sorted(switched.new_keys(table))
        assert found == {
            "decode_oldest": "LegacyIDError",
            "generated_at_oldest": None,
            "after_2000": new,
            "before_tomorrow": new,
            "no_time": old,
            "with_time": new,
        }, table


@pytest.mark.slow
def test_migrations_are_recorded_under_keys_the_database_makes(by_setting: Switch) -> None:
    # django_migrations is never migrated: in this project its key is 32 bits wide.
    report = by_setting.report
    assert report["columns"]["django_migrations.id"]["auto"] is True
    assert len(report["recorded_migrations"]) > 4
    assert max(report["recorded_migrations"]) < 100


@pytest.fixture(scope="module")
def without_through_step(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The switch by DEFAULT_AUTO_FIELD without the through key migrations: what add() does."""
    with scratch(tmp_path_factory, "without_through_step", roles=("switched",)) as project:
        project.write(BEFORE)
        project.manage("makemigrations")
        project.manage("migrate")
        project.write(BY_SETTING)
        project.manage("makemigrations")
        project.manage("migrate")
        yield project.probe("add")


@pytest.mark.slow
def test_many_to_many_tables_need_the_through_key_step(
    without_through_step: dict[str, Any],
) -> None:
    outcome = without_through_step
    if DATABASE == "postgresql":
        assert outcome == {"error": "DataError"}
    elif DATABASE == "mariadb":
        # add() inserts with IGNORE: the ID is cut to the column's top, the second row lost.
        assert outcome == {"error": None, "through_keys": [INT32_MAX]}
    else:
        keys = outcome["through_keys"]
        assert outcome["error"] is None
        assert len(keys) == 2
        assert min(keys) > INT32_MAX


@pytest.mark.django_db
def test_the_migration_recorder_leaves_its_key_to_the_database() -> None:
    # Its model takes DEFAULT_AUTO_FIELD, but no migration ever alters its table.
    recorder = MigrationRecorder.Migration
    key = recorder._meta.pk
    assert isinstance(key, SnowflakeAutoField)
    assert key.db_type(connection) == models.BigAutoField().db_type(connection)
    assert key.db_type_suffix(connection) == models.BigAutoField().db_type_suffix(connection)

    row = recorder.objects.create(app="switching", name="0001_test")

    assert 0 < row.pk < conf.get_layout().min_snowflake_id
    assert recorder.objects.get(app="switching").pk == row.pk


@pytest.mark.slow
def test_an_empty_database_migrates_to_the_same_columns(switched: Switch) -> None:
    # django_migrations is made once, with the auto field of its day, and never migrated.
    fresh, columns = switched.fresh.copy(), switched.report["columns"].copy()
    assert fresh.pop("django_migrations.id")["auto"] is True
    assert columns.pop("django_migrations.id")["auto"] is True
    assert len(fresh) == 25
    if DATABASE == "sqlite":
        # The through key step rebuilds a many-to-many table from the models as they are now,
        # which name its foreign key columns bigint; a new database keeps the names the first
        # migration wrote. Every name with "int" in it stores 64 bits on SQLite.
        for name in {*fresh, *columns}:
            table, column = name.split(".")
            if table in THROUGH_TABLES[table.split("_")[0]] and column != "id":
                assert "int" in fresh[name]["type"], name
                assert "int" in columns.pop(name)["type"], name
                fresh.pop(name)
    assert fresh == columns


@pytest.fixture
def through_keys(by_setting: Switch) -> ThroughKeys:
    assert by_setting.through_keys is not None
    return by_setting.through_keys


def written_tables(statements: list[str]) -> set[str]:
    """The tables the statements change; SQLite rebuilds a table as a copy named new__<table>."""
    names = re.findall(
        r"(?:ALTER TABLE|CREATE TABLE|DROP TABLE|INSERT INTO|RENAME TO)\s+[`\"]?(\w+)",
        "\n".join(statements),
    )
    return {name.removeprefix("new__") for name in names}


@pytest.mark.slow
def test_the_through_key_step_alters_the_many_to_many_tables_of_its_app(
    through_keys: ThroughKeys,
) -> None:
    planned = through_keys.planned
    assert {app: written_tables(statements) for app, statements in planned.items()} == (
        THROUGH_TABLES
    ), planned


@pytest.mark.slow
def test_the_through_key_step_changes_nothing_once_the_keys_are_snowflake_keys(
    through_keys: ThroughKeys,
) -> None:
    assert through_keys.again == {"shop": [], "crm": []}
    # A new database: migrations make the tables with Snowflake keys in the first place.
    assert through_keys.on_fresh == {"shop": [], "crm": []}


@pytest.mark.slow
def test_the_through_key_step_cannot_be_unapplied(through_keys: ThroughKeys) -> None:
    backwards = through_keys.backwards
    assert backwards.returncode == 1
    refused = f"Operation <AlterThroughKeys > in shop.{THROUGH_KEYS} is not reversible"
    assert f"IrreversibleError: {refused}\n" in backwards.stderr


# The operation in this process, on the test database.

SNOWFLAKE_AUTO_FIELD = "django_flakeid.fields.SnowflakeAutoField"
# An app label no project installs: at run time its tables' keys are DEFAULT_AUTO_FIELD's.
UNINSTALLED = "throughop"


def posts_and_topics(default_auto_field: str, app_label: str = UNINSTALLED) -> ProjectState:
    """Posts with many topics, as migrations make them while DEFAULT_AUTO_FIELD is that field."""
    state = ProjectState()
    state.add_model(
        ModelState(app_label, "Topic", [("id", models.BigIntegerField(primary_key=True))])
    )
    state.add_model(
        ModelState(
            app_label,
            "Post",
            [
                ("id", models.BigIntegerField(primary_key=True)),
                ("topics", models.ManyToManyField(f"{app_label}.Topic")),
            ],
        )
    )
    with override_settings(DEFAULT_AUTO_FIELD=default_auto_field):
        # The through model gets its key when the models are rendered.
        through(state, f"{app_label}.Post.topics")
    return state


def through(state: ProjectState, path: str = f"{UNINSTALLED}.Post.topics") -> type[models.Model]:
    """The model of the table Django makes for the many-to-many field "app.Model.field"."""
    app_label, model, field = path.split(".")
    found = state.apps.get_model(app_label, model)._meta.get_field(field)
    assert isinstance(found, models.ManyToManyField)
    made = found.remote_field.through
    assert made is not None
    return made


@contextmanager
def tables_of(state: ProjectState, app_label: str = UNINSTALLED) -> Iterator[str]:
    """The posts, topics and their many-to-many table made in the test database, dropped after.

    Yields the name of the many-to-many table, empty; posts 1 and 2 and topic 1 are there.
    """
    post, topic = (state.apps.get_model(app_label, name) for name in ("Post", "Topic"))
    with connection.schema_editor() as editor:
        editor.create_model(topic)
        editor.create_model(post)
    try:
        topic._default_manager.create(id=1)
        post._default_manager.bulk_create([post(id=1), post(id=2)])
        yield through(state, f"{app_label}.Post.topics")._meta.db_table
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(post)
            editor.delete_model(topic)


def key_column(table: str) -> tuple[str, bool]:
    """The type of the table's "id" column, and whether the database fills it, from its catalog."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT data_type, is_identity = 'YES' OR column_default IS NOT NULL "
                "OR pg_get_serial_sequence(table_name, column_name) IS NOT NULL "
                "FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'id'",
                [table],
            )
            kind, auto = cursor.fetchone()
            return kind, auto
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT data_type, extra FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = %s AND column_name = 'id'",
                [table],
            )
            kind, extra = cursor.fetchone()
            return kind, "auto_increment" in extra.lower()
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table])
        (sql,) = cursor.fetchone()
        declared = re.search(r'"id" (\w+) NOT NULL PRIMARY KEY( AUTOINCREMENT)?', sql)
        assert declared is not None, sql
        return declared[1].lower(), declared[2] is not None


def remake(table: str, how: str) -> None:
    """Turn an auto field's key column into one made another way."""
    with connection.cursor() as cursor:
        if how == "serial":
            # A PostgreSQL key with a sequence, as Django made them before 4.1.
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY")
            cursor.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
            cursor.execute(
                f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')"
            )
        elif how == "by hand" and connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP IDENTITY")
        elif how == "by hand":
            cursor.execute(f"ALTER TABLE {table} MODIFY id integer NOT NULL")


def planned(app_label: str, state: ProjectState) -> list[str]:
    """The statements the operation would run on the test database, as sqlmigrate shows them."""
    with connection.schema_editor(collect_sql=True) as editor:
        AlterThroughKeys().database_forwards(app_label, editor, state, state)
    return [str(statement) for statement in editor.collected_sql]


SNOWFLAKE_KEY = ("integer" if DATABASE == "sqlite" else "bigint", False)
MADE_BY = [
    *(
        pytest.param(f"django.db.models.{name}", "by Django", id=name)
        for name in ("AutoField", "BigAutoField", "SmallAutoField")
    ),
    *(
        pytest.param(f"django.db.models.{name}", "serial", id=f"{name}-serial")
        for name in ("AutoField", "BigAutoField")
        if DATABASE == "postgresql"
    ),
    *(
        # A 32-bit key that is no auto field any more: still too narrow for a Snowflake ID.
        [pytest.param("django.db.models.AutoField", "by hand", id="integer")]
        if DATABASE != "sqlite"
        else []
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("made_by", "how"), MADE_BY)
def test_a_table_made_by_any_auto_field_gets_a_snowflake_key_and_keeps_its_rows(
    made_by: str, how: str
) -> None:
    before, after = posts_and_topics(made_by), posts_and_topics(SNOWFLAKE_AUTO_FIELD)
    with tables_of(before) as table:
        remake(table, how)
        through(before)._default_manager.create(id=1, post_id=1, topic_id=1)
        assert key_column(table) != SNOWFLAKE_KEY

        with connection.schema_editor() as editor:
            AlterThroughKeys().database_forwards(UNINSTALLED, editor, before, after)

        assert key_column(table) == SNOWFLAKE_KEY
        new = through(after)._default_manager.create(post_id=2, topic_id=1).pk
        assert new >= conf.get_layout().min_snowflake_id
        rows = through(after)._default_manager.order_by("pk").values_list("pk", "post_id")
        assert list(rows) == [(1, 1), (new, 2)]
        assert planned(UNINSTALLED, after) == []


@pytest.mark.django_db(transaction=True)
def test_a_table_migrations_made_with_the_snowflake_key_is_left_as_it_is() -> None:
    state = MigrationLoader(connection).project_state()
    assert key_column(through(state, "autoapp.Book.co_authors")._meta.db_table) == SNOWFLAKE_KEY

    assert planned("autoapp", state) == []


@pytest.mark.django_db(transaction=True)
def test_a_table_whose_app_keeps_another_auto_field_is_left_alone() -> None:
    # As in a project older than BigAutoField: DEFAULT_AUTO_FIELD was AutoField, so its
    # many-to-many tables have 32-bit keys. The setting is Snowflake now, but the app's
    # AppConfig (testapp's) still names BigAutoField, so Django fills those keys at run time.
    before = posts_and_topics("django.db.models.AutoField", "testapp")
    after = posts_and_topics(SNOWFLAKE_AUTO_FIELD, "testapp")
    with tables_of(before, "testapp") as table:
        made = key_column(table)

        assert planned("testapp", after) == []

        assert made[1] is True
        assert key_column(table) == made


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "default_auto_field", [SNOWFLAKE_AUTO_FIELD, "django.db.models.BigAutoField"]
)
def test_a_table_gets_a_snowflake_key_when_its_app_names_one(
    default_auto_field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever DEFAULT_AUTO_FIELD made the table, the app's AppConfig says what writes its rows.
    with override_settings(DEFAULT_AUTO_FIELD=default_auto_field):
        state = MigrationLoader(connection).project_state()
        table = through(state, "testapp.Order.tags")._meta.db_table
    assert key_column(table)[1] is True
    assert planned("testapp", state) == []

    monkeypatch.setattr(apps.get_app_config("testapp"), "default_auto_field", SNOWFLAKE_AUTO_FIELD)

    assert written_tables(planned("testapp", state)) == {table}


class KeepsUninstalledOff:
    """A database router that migrates nothing of the app nobody installs."""

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == UNINSTALLED else None


@pytest.mark.django_db(transaction=True)
def test_a_table_the_router_keeps_off_the_database_is_left_alone() -> None:
    before, after = (
        posts_and_topics("django.db.models.AutoField"),
        posts_and_topics(SNOWFLAKE_AUTO_FIELD),
    )
    with tables_of(before) as table:
        with override_settings(DATABASE_ROUTERS=[KeepsUninstalledOff()]):
            assert planned(UNINSTALLED, after) == []

        assert written_tables(planned(UNINSTALLED, after)) == {table}


@pytest.mark.django_db(transaction=True)
def test_a_table_not_made_yet_is_left_for_later() -> None:
    # sqlmigrate shows a migration before the ones that make its tables have run.
    assert planned(UNINSTALLED, posts_and_topics(SNOWFLAKE_AUTO_FIELD)) == []


def test_the_operation_is_described_and_serialized_as_django_operations_are() -> None:
    operation = AlterThroughKeys()

    class ThroughKeysMigration(Migration):
        dependencies = (("shop", "0002_alter_order_id"),)
        operations = (operation,)

    migration = ThroughKeysMigration(THROUGH_KEYS, "shop")

    assert operation.describe() == (
        "Alter the key of each auto-created many-to-many table to a Snowflake key"
    )
    assert operation.formatted_description() == f"~ {operation.describe()}"
    assert migration.suggest_name() == "snowflake_through_keys"
    assert operation.deconstruct() == ("AlterThroughKeys", (), {})
    written = MigrationWriter(migration).as_string()
    assert "import django_flakeid.operations\n" in written
    assert "operations = [\n        django_flakeid.operations.AlterThroughKeys(\n" in written
    namespace: dict[str, Any] = {}
    exec(compile(written, THROUGH_KEYS, "exec"), namespace)
    assert [type(each) for each in namespace["Migration"].operations] == [AlterThroughKeys]


def test_the_operation_leaves_the_migration_state_as_it_is() -> None:
    state = posts_and_topics(SNOWFLAKE_AUTO_FIELD)
    before = state.clone()

    AlterThroughKeys().state_forwards(UNINSTALLED, state)

    assert state == before


@pytest.mark.django_db(transaction=True)
def test_the_operation_refuses_to_be_undone() -> None:
    state = MigrationLoader(connection).project_state()
    operation = AlterThroughKeys()

    assert operation.reversible is False
    with (
        connection.schema_editor(collect_sql=True) as editor,
        pytest.raises(IrreversibleError, match="cannot be undone"),
    ):
        operation.database_backwards("autoapp", editor, state, state)
    assert editor.collected_sql == []
