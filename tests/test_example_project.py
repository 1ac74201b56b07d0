"""The example project as a new user runs it: `manage.py demo`, twice, then `check`; and the
same shop with its keys from `DEFAULT_AUTO_FIELD` (`--settings example.settings_auto`).

The shop's tests run on the database FLAKEID_TEST_DB names, in a scratch database of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from django_flakeid import PRESET_TWITTER, Layout

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"
SERVER = os.environ.get("FLAKEID_TEST_DB", "sqlite")
SHOP_TABLES = ("shop_customer", "shop_tag", "shop_order", "shop_orderline", "shop_order_tags")
# The example's layout: twitter, default epoch.
LAYOUT = Layout(**PRESET_TWITTER)
Manage = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class ShopDatabase:
    #: What points the example's settings at this database.
    env: dict[str, str]
    query: Callable[[str], list[tuple[Any, ...]]]


def clean_environment(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLAKEID_", "DJANGO_", "EXAMPLE_"))
    }
    return env | {
        "EXAMPLE_DATABASE_NAME": str(tmp_path / "shop.sqlite3"),
        "FLAKEID_LOCK_DIR": str(tmp_path / "locks"),
    }


def manager(env: dict[str, str]) -> Manage:
    def manage(*args: str, settings_module: str = "example.settings") -> Any:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            capture_output=True,
            text=True,
            env=env | {"DJANGO_SETTINGS_MODULE": settings_module},
            timeout=120,
            check=False,
        )

    return manage


@pytest.fixture
def run(tmp_path):
    """manage.py on a new SQLite file, as the README runs it."""
    return manager(clean_environment(tmp_path))


@pytest.fixture
def shop_database(tmp_path) -> Iterator[ShopDatabase]:
    """A new, empty database for the shop on the server the suite runs against."""
    if SERVER == "sqlite":
        yield sqlite_database(tmp_path / "shop.sqlite3")
    elif SERVER == "postgresql":
        yield from postgresql_database()
    else:
        yield from mariadb_database()


def sqlite_database(path: Path) -> ShopDatabase:
    import sqlite3

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return ShopDatabase({"EXAMPLE_DATABASE_NAME": str(path)}, query)


def postgresql_database() -> Iterator[ShopDatabase]:
    import psycopg

    server = settings.DATABASES["default"]
    login = {"host": server["HOST"], "port": server["PORT"], "user": server["USER"]}
    name = f"flakeid_example_{os.getpid()}"
    with psycopg.connect(**login, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        admin.execute(f'CREATE DATABASE "{name}"'.encode())

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(**login, dbname=name) as conn:
            return conn.execute(sql.encode()).fetchall()

    env = {"EXAMPLE_DATABASE": "postgresql", "EXAMPLE_DATABASE_NAME": name}
    env |= {"PGHOST": login["host"], "PGPORT": str(login["port"]), "PGUSER": login["user"]}
    try:
        yield ShopDatabase(env, query)
    finally:
        with psycopg.connect(**login, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def mariadb_database() -> Iterator[ShopDatabase]:
    import MySQLdb

    server = settings.DATABASES["default"]
    login = {"host": server["HOST"], "port": int(server["PORT"]), "user": server["USER"]}
    name = f"flakeid_example_{os.getpid()}"

    def execute(sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        conn = MySQLdb.connect(**login, password=server["PASSWORD"], database=database or "")
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            conn.close()

    execute(f"DROP DATABASE IF EXISTS `{name}`")
    execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    env = {"EXAMPLE_DATABASE": "mariadb", "EXAMPLE_DATABASE_NAME": name}
    env |= {"MYSQL_HOST": login["host"], "MYSQL_TCP_PORT": str(login["port"])}
    try:
        yield ShopDatabase(env, lambda sql: execute(sql, name))
    finally:
        execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def run_on_server(tmp_path, shop_database: ShopDatabase) -> Manage:
    return manager(clean_environment(tmp_path) | shop_database.env)


def through_key_is_left_to_the_database(database: ShopDatabase) -> bool:
    """Whether the id column of the table Django made for Order.tags fills itself in."""
    if SERVER == "sqlite":
        [(sql,)] = database.query("SELECT sql FROM sqlite_master WHERE name = 'shop_order_tags'")
        assert '"id" integer NOT NULL PRIMARY KEY' in sql
        return "AUTOINCREMENT" in sql
    if SERVER == "postgresql":
        [(identity, default)] = database.query(
            "SELECT is_identity, column_default FROM information_schema.columns "
            "WHERE table_name = 'shop_order_tags' AND column_name = 'id'"
        )
        return identity == "YES" or default is not None
    [(extra,)] = database.query(
        "SELECT extra FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = 'shop_order_tags' AND column_name = 'id'"
    )
    return "auto_increment" in extra.lower()


def test_demo_runs_twice_and_adds_an_order_each_time(run):
    first = run("demo")
    assert first.returncode == 0, first.stderr
    assert "1 order in the shop" in first.stdout
    order_id = next(line.split()[1] for line in first.stdout.splitlines() if "Order " in line)
    decoded = run("flakeid", "decode", order_id, "--format", "json")
    assert decoded.returncode == 0, decoded.stderr
    assert '"datacenter_id": 1' in decoded.stdout
    second = run("demo")
    assert second.returncode == 0, second.stderr
    assert "2 orders in the shop" in second.stdout


@pytest.mark.parametrize("settings_module", ["example.settings", "example.settings_auto"])
def test_example_project_passes_its_checks(run, settings_module):
    result = run("check", "--fail-level", "WARNING", settings_module=settings_module)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("settings_module", ["example.settings", "example.settings_auto"])
def test_both_settings_share_the_shops_migrations(run, settings_module):
    result = run("makemigrations", "--check", "--dry-run", settings_module=settings_module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.parametrize(
    ("settings_module", "chosen_by", "through_key_by_database"),
    [
        # The project's DEFAULT_AUTO_FIELD stays BigAutoField, which migrations use for the
        # through table; the running shop still writes Snowflake keys into it.
        ("example.settings", "ShopConfig.default_auto_field", True),
        ("example.settings_auto", "settings.DEFAULT_AUTO_FIELD", False),
    ],
)
def test_every_shop_key_is_a_new_snowflake_id(
    run_on_server, shop_database, settings_module, chosen_by, through_key_by_database
):
    started_ms = time.time_ns() // 1_000_000
    for _ in range(2):
        result = run_on_server("demo", settings_module=settings_module)
        assert result.returncode == 0, result.stderr
    assert f"Keys: SnowflakeAutoField, from {chosen_by}\n" in result.stdout
    assert "2 orders in the shop" in result.stdout
    assert through_key_is_left_to_the_database(shop_database) is through_key_by_database
    for table in SHOP_TABLES:
        [(count, lowest, highest)] = shop_database.query(
            f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}"
        )
        assert count > 0, table
        # Made by this test's demo runs, not counted 1, 2, 3 by the database.
        assert lowest >= LAYOUT.min_id_at(started_ms), table
        assert highest <= LAYOUT.min_id_at(time.time_ns() // 1_000_000 + 1), table
    [(tagged,)] = shop_database.query("SELECT COUNT(*) FROM shop_order_tags")
    assert tagged == 4


def test_a_shop_made_before_its_keys_became_snowflake_auto_fields_keeps_its_rows(
    run_on_server, shop_database
):
    assert run_on_server("migrate", "shop", "0001").returncode == 0
    made = run_on_server(
        "shell",
        "--no-imports",
        "-c",
        "from shop.models import Customer; "
        "print(Customer.objects.create(name='Ada Lovelace', email='ada@example.com').pk)",
    )
    assert made.returncode == 0, made.stderr
    customer_id = int(made.stdout)
    result = run_on_server("demo")
    assert result.returncode == 0, result.stderr
    # The demo found the customer it makes on a first run: the migration kept the row.
    assert "\n  Customer " not in result.stdout
    assert shop_database.query("SELECT customer_id FROM shop_order") == [(customer_id,)]
